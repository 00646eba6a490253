"""The real DAG, run with dag.test() against the seeded sandbox, reproduces the seeded truth."""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tag_compliance.aws.collectors import cost_mappings
from tag_compliance.config import environment
from tag_compliance.sandbox import Sandbox, load_manifest
from tag_compliance.sandbox.ledger import load_ledger
from tag_compliance.sandbox.recipes import RECIPES
from tests.conftest import REPO_ROOT

# Types Cost Explorer bills under a SERVICE mapped to them; the others have no cost columns.
COSTED_TYPES = frozenset(mapping.resource_type for mapping in cost_mappings())

pytestmark = pytest.mark.e2e
TODAY = datetime.now(UTC).date()
RUN_DAY = TODAY - timedelta(days=3)  # final figures, and within the 14 days of resource-level data
OLD_DAY = TODAY - timedelta(days=20)  # too old for resource-level data
CENT = Decimal("0.01")


def run_at(day: date) -> datetime:
    """A run whose one-day data interval is ``day``: the schedule fires after the day ends."""
    return datetime.combine(day + timedelta(days=1), time(6), tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    with Sandbox(seed=7, data_dir=tmp_path_factory.mktemp("sandbox"), scale=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline_env(sandbox, tmp_path_factory):
    """Point the pipeline at the sandbox and a fresh lake, as the demo does."""
    root = tmp_path_factory.mktemp("pipeline")
    with environment(lake_env(sandbox.env(), root)):
        yield root


def lake_env(env: dict[str, str], root: Path) -> dict[str, str]:
    """``env`` (a sandbox's) with the lake and the warehouse under ``root``."""
    return {
        **env,
        "TAG_COMPLIANCE_LAKE": str(root / "lake"),
        "TAG_COMPLIANCE_WAREHOUSE": str(root / "warehouse.duckdb"),
    }


def run_dag(logical_date: datetime, sandbox_clock: datetime | None = None, run_after: datetime | None = None):
    """dag.test() for one logical date; ``sandbox_clock`` replays that time as 'now' (live inventory).

    ``run_after`` names the run with the logical date (``manual__<run_after>``): two calls with
    the same one are the same Airflow run, as a cleared run is (default: now, a new run each time).
    """
    from airflow.dag_processing.dagbag import DagBag

    from tag_compliance.aws.hook import forget_process_cache

    # A deployed run's tasks are processes of their own; dag.test() runs them all in this one,
    # which must not carry the previous run's caller identity and credentials into this run.
    forget_process_cache()
    dag = DagBag(dag_folder=REPO_ROOT / "dags").dags["tag_compliance"]
    for task in dag.tasks:
        task.retries = 0  # fail fast here; production runs retry with backoff
    if sandbox_clock is not None:
        os.environ["TAG_COMPLIANCE_SANDBOX_CLOCK"] = sandbox_clock.isoformat()
    try:
        return dag.test(logical_date=logical_date, run_after=run_after)
    finally:
        os.environ.pop("TAG_COMPLIANCE_SANDBOX_CLOCK", None)


def row_counts(lake: Path) -> dict[str, int]:
    con = duckdb.connect()
    return {
        dataset: con.execute(
            f"select count(*) from read_parquet('{lake}/{dataset}/**/*.parquet')"
        ).fetchone()[0]
        for dataset in ("resources", "violations", "resource_compliance", "compliance_summary", "api_calls")
    }


@pytest.fixture(scope="module")
def first_run(airflow_db, pipeline_env):
    # the daily run for RUN_DAY, as it ran the morning after: live inventory
    dag_run = run_dag(run_at(RUN_DAY), sandbox_clock=run_at(RUN_DAY))
    assert dag_run.state == "success"
    return duckdb.connect(str(pipeline_env / "warehouse.duckdb"), read_only=True)


def test_one_snapshot_for_the_run_data_interval(first_run):
    dates = first_run.sql("select distinct snapshot_date from resources").fetchall()
    assert dates == [(RUN_DAY,)]  # the one-day interval before the run


def test_inventory_per_account_region_and_type_equals_the_seeded_estate(first_run, sandbox):
    manifest = load_manifest(sandbox.manifest_path)
    seeded = Counter(
        zip(
            manifest["account_id"].to_pylist(),
            manifest["region"].to_pylist(),
            manifest["resource_type"].to_pylist(),
            strict=True,
        )
    )
    collected = {
        (account, region, resource_type): count
        for account, region, resource_type, count in first_run.sql(
            "select account_id, region, resource_type, count(*) from resources group by all"
        ).fetchall()
    }
    assert collected == dict(seeded)
    ids = first_run.sql("select resource_type, resource_id from resources").fetchall()
    assert sorted(ids) == sorted(
        zip(manifest["resource_type"].to_pylist(), manifest["resource_id"].to_pylist(), strict=True)
    )


def test_tags_read_back_exactly_as_seeded(first_run, sandbox):
    manifest = load_manifest(sandbox.manifest_path).to_pylist()
    # ids repeat across accounts and regions (ECS "<cluster>/<service>"): a resource is all four
    identity = ("account_id", "region", "resource_type", "resource_id")
    seeded = {tuple(row[name] for name in identity): dict(row["tags"]) for row in manifest}
    rows = first_run.sql(f"select {', '.join(identity)}, tags from resources").fetchall()
    collected = {tuple(row[:4]): dict(row[4]) for row in rows}
    assert len(rows) == len(collected) == len(manifest)
    assert collected == seeded


def test_violations_equal_the_seeded_truth(first_run, sandbox):
    manifest = load_manifest(sandbox.manifest_path).to_pylist()
    expected = sorted(
        (row["resource_id"], violation["tag_key"], violation["violation_type"])
        for row in manifest
        for violation in row["expected_violations"]
    )
    actual = sorted(first_run.sql("select resource_id, tag_key, violation_type from violations").fetchall())
    assert actual == expected
    types = {violation_type for _, _, violation_type in actual}
    assert types == {
        "missing_required_tag",
        "wrong_key_case",
        "empty_value",
        "invalid_value",
        "invalid_format",
        "prohibited_tag",
    }


def test_the_run_asks_sts_who_it_is_once(first_run):
    # the organisation task asks; collection and Cost Explorer tasks are told
    assert first_run.execute(
        "select task, sum(pages) from api_calls "
        "where snapshot_date = $day and operation = 'GetCallerIdentity' group by all",
        {"day": RUN_DAY},
    ).fetchall() == [("discover_organisation", 1)]


def test_tag_lookups_take_one_request_per_hundred_tagged_resources(first_run):
    # S3 is inventoried once per account (region "global") and looked up in its buckets'
    # region; Lambda per (account, region).
    rows = first_run.sql(
        """
        with lookups as (
            select account_id, region, resource_type, sum(pages) as requests
            from api_calls where operation = 'GetResources' group by all
        ),
        tagged as (
            select account_id, region, resource_type, count(*) filter (where cardinality(tags) > 0) as tagged
            from resources where resource_type in ('s3:bucket', 'lambda:function') group by all
        )
        select tagged.account_id, tagged.region, tagged.resource_type, tagged.tagged, lookups.requests
        from tagged join lookups
          on lookups.account_id = tagged.account_id and lookups.resource_type = tagged.resource_type
         and (lookups.region = tagged.region or tagged.region = 'global')
        order by all
        """
    ).fetchall()
    assert {row[2] for row in rows} == {"s3:bucket", "lambda:function"}
    assert len(rows) == 3 + 3 * 2  # S3 per account, Lambda per account and region
    for account_id, region, resource_type, tagged, requests in rows:
        assert tagged > 1
        assert requests <= math.ceil(tagged / 100), (account_id, region, resource_type, tagged, requests)


def test_coverage_counts_each_type_by_the_source_that_sees_it(first_run, sandbox):
    manifest = load_manifest(sandbox.manifest_path).to_pylist()
    tagging_only = {resource_type for resource_type, recipe in RECIPES.items() if recipe.tagging_only}
    rows = first_run.execute(
        "select resource_type, sum(resources), sum(service_api_resources), sum(tagging_api_resources), "
        "bool_and(never_tagged_visible), bool_or(never_tagged_visible) from coverage "
        "where snapshot_date = $day group by 1",
        {"day": RUN_DAY},
    ).fetchall()
    seeded = Counter(row["resource_type"] for row in manifest)
    assert {row[0]: row[1] for row in rows} == dict(seeded)
    assert len(seeded) >= 50 + len(tagging_only)
    for resource_type, resources, service_api, tagging_api, all_visible, any_visible in rows:
        if resource_type in tagging_only:  # only the Tagging API's breadth listing sees these
            assert (service_api, tagging_api, all_visible, any_visible) == (0, resources, False, False)
        else:
            assert (service_api, tagging_api, all_visible, any_visible) == (resources, 0, True, True)


def test_rerunning_the_same_date_changes_no_row_count(first_run, pipeline_env):
    before = row_counts(pipeline_env / "lake")
    assert run_dag(run_at(RUN_DAY), sandbox_clock=run_at(RUN_DAY)).state == "success"
    assert row_counts(pipeline_env / "lake") == before


# --------------------------------------------------------------------------- costs against the ledger


def cents(amount: Decimal | None) -> Decimal:
    return (amount or Decimal(0)).quantize(CENT)


def ledger_rows(sandbox: Sandbox, day: date) -> list[dict]:
    return [row for row in load_ledger(sandbox.ledger_path).to_pylist() if row["usage_date"] == day]


def by(rows: list[dict], *keys: str, column: str = "amortized_cost") -> dict[tuple, Decimal]:
    sums: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[tuple(row[key] for key in keys)] += row[column]
    return {key: cents(value) for key, value in sums.items()}


def service_costs(con: duckdb.DuckDBPyConnection, day: date, metric: str) -> dict[tuple, Decimal]:
    rows = con.execute(
        "select account_id, service, sum(amount) from costs where usage_date = $day and source = 'service' "
        "and metric = $metric group by all",
        {"day": day, "metric": metric},
    ).fetchall()
    return {(account, service): cents(amount) for account, service, amount in rows}


def resource_costs(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, tuple[str, Decimal, Decimal]]:
    """arn -> (cost_basis, amortized, unblended) of every costed resource of the snapshot."""
    rows = con.execute(
        "select arn, resource_id, cost_basis, amortized_cost, unblended_cost from resource_compliance "
        "where snapshot_date = $day",
        {"day": day},
    ).fetchall()
    return {arn: (basis, amortized, unblended) for arn, _, basis, amortized, unblended in rows}


def test_spend_in_total_and_per_account_and_service_equals_the_ledger(first_run, sandbox):
    ledger = ledger_rows(sandbox, RUN_DAY)
    for column, metric in (("amortized_cost", "AmortizedCost"), ("unblended_cost", "UnblendedCost")):
        per_service = service_costs(first_run, RUN_DAY, metric)
        assert per_service == by(ledger, "account_id", "service", column=column)
        assert cents(sum(row[column] for row in ledger)) == cents(
            first_run.execute(
                "select sum(amount) from costs where usage_date = $day and source = 'service' "
                "and metric = $metric",
                {"day": RUN_DAY, "metric": metric},
            ).fetchall()[0][0]
        )
    assert not first_run.execute(
        "select bool_or(estimated) from costs where usage_date = $day", {"day": RUN_DAY}
    ).fetchall()[0][0]


def test_per_resource_spend_with_resource_basis_equals_the_ledger(first_run, sandbox):
    manifest = load_manifest(sandbox.manifest_path).to_pylist()
    arn_of = {row["resource_id"]: row["arn"] for row in manifest} | {
        row["arn"]: row["arn"] for row in manifest
    }
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in ledger_rows(sandbox, RUN_DAY):
        if row["inventoried"]:
            costs = expected[arn_of[row["resource_id"]]]
            costs[0] += row["amortized_cost"]
            costs[1] += row["unblended_cost"]
    actual = resource_costs(first_run, RUN_DAY)
    assert set(actual) == {row["arn"] for row in manifest}
    costed_arns = {row["arn"] for row in manifest if row["resource_type"] in COSTED_TYPES}
    costed = {arn: cost for arn, cost in actual.items() if arn in costed_arns}
    assert {basis for basis, _, _ in costed.values()} == {"resource"}
    assert {arn: (cents(a), cents(u)) for arn, (_, a, u) in costed.items()} == {
        arn: (cents(expected[arn][0]), cents(expected[arn][1])) for arn in costed
    }
    # a type Cost Explorer bills under no service of ours has no cost, rather than a made-up one
    assert {cost for arn, cost in actual.items() if arn not in costed_arns} == {(None, None, None)}


def test_spend_of_no_inventoried_resource_is_the_rest_of_the_total(first_run, sandbox):
    ledger = ledger_rows(sandbox, RUN_DAY)
    expected = by([row for row in ledger if not row["inventoried"]], "account_id", "service")
    actual = first_run.execute(
        "select account_id, cost_explorer_service, sum(amortized_cost) from attribution_gap "
        "where snapshot_date = $day and gap_reason = 'no_resource' group by all",
        {"day": RUN_DAY},
    ).fetchall()
    assert {(account, service): cents(amount) for account, service, amount in actual} == expected
    assert {service for _, service in expected} >= {"Tax", "AWS Support (Business)"}


def test_untagged_spend_per_required_key_equals_the_ledger(first_run, sandbox):
    ledger = ledger_rows(sandbox, RUN_DAY)
    keys = [key for (key,) in first_run.execute("select distinct tag_key from untagged_spend").fetchall()]
    assert sorted(keys) == ["Application", "CostCenter", "DataClassification", "Environment", "Owner"]
    for key in keys:
        untagged = [row for row in ledger if not dict(row["tags"]).get(key)]
        actual = first_run.execute(
            "select account_id, untagged_amortized_cost, untagged_unblended_cost from untagged_spend "
            "where usage_date = $day and tag_key = $key",
            {"day": RUN_DAY, "key": key},
        ).fetchall()
        assert {account: cents(amount) for account, amount, _ in actual} == {
            account: amount for (account,), amount in by(untagged, "account_id").items()
        }, key
        assert {account: cents(amount) for account, _, amount in actual} == {
            account: amount
            for (account,), amount in by(untagged, "account_id", column="unblended_cost").items()
        }, key


def test_cost_weighted_compliance_is_compliant_spend_over_in_scope_spend(first_run):
    summary, recomputed = first_run.execute(
        """select
               (select cost_compliance_pct from compliance_summary
                 where snapshot_date = $day and dimension = 'overall'),
               100 * sum(amortized_cost) filter (where compliant)
                   / sum(amortized_cost) filter (where in_scope)
           from resource_compliance where snapshot_date = $day""",
        {"day": RUN_DAY},
    ).fetchall()[0]
    assert 0 < summary < 100
    assert summary == pytest.approx(float(recomputed))


@pytest.fixture(scope="module")
def old_day_backfill(first_run, sandbox):
    """The daily run of the day before OLD_DAY back then (live inventory, resource-level costs,
    the day still Estimated), then a backfill of OLD_DAY today: too old for resource-level data,
    scored with the stored inventory of the day before."""
    back_then = run_at(OLD_DAY - timedelta(days=1))
    sandbox.cost_explorer.today = back_then.date()
    try:
        assert run_dag(back_then, sandbox_clock=back_then).state == "success"
    finally:
        sandbox.cost_explorer.today = sandbox.today
    assert run_dag(run_at(OLD_DAY)).state == "success"


def test_a_day_older_than_14_days_falls_back_to_service_averages_and_still_reconciles(
    old_day_backfill, pipeline_env, sandbox
):
    con = duckdb.connect(str(pipeline_env / "warehouse.duckdb"), read_only=True)
    assert con.execute(
        "select count(*) from costs where usage_date = $day and source = 'resource'", {"day": OLD_DAY}
    ).fetchall() == [(0,)]
    bases = con.execute(
        "select distinct cost_basis, inventory_as_of from resource_compliance where snapshot_date = $day "
        "and resource_type in (select unnest($costed))",
        {"day": OLD_DAY, "costed": sorted(COSTED_TYPES)},
    ).fetchall()
    assert bases == [("service_average", OLD_DAY - timedelta(days=1))]
    assert con.execute(  # a past day's inventory is never collected live
        "select count(*) from resources where snapshot_date = $day", {"day": OLD_DAY}
    ).fetchall() == [(0,)]

    ledger = ledger_rows(sandbox, OLD_DAY)
    per_service = by(ledger, "account_id", "service")
    assert service_costs(con, OLD_DAY, "AmortizedCost") == per_service
    ce_service_of = {mapping.resource_type: mapping.cost_explorer_service for mapping in cost_mappings()}
    allocated: dict[tuple, Decimal] = defaultdict(Decimal)
    per_type = con.execute(
        "select account_id, resource_type, sum(amortized_cost) from resource_compliance "
        "where snapshot_date = $day and resource_type in (select unnest($costed)) group by all",
        {"day": OLD_DAY, "costed": sorted(COSTED_TYPES)},
    ).fetchall()
    for account, resource_type, amount in per_type:
        allocated[(account, ce_service_of[resource_type])] += amount
    # a service several types share ("EC2 - Other": volumes, NAT gateways, ...) is split by usage
    # type: each type gets exactly its own resources' spend, whatever the others cost
    shared = {mapping.resource_type for mapping in cost_mappings() if mapping.usage_types}
    assert {(account, rtype): cents(amount) for account, rtype, amount in per_type if rtype in shared} == {
        key: amount for key, amount in by(ledger, "account_id", "resource_type").items() if key[1] in shared
    }
    for account, service, amount in con.execute(
        "select account_id, cost_explorer_service, sum(amortized_cost) from attribution_gap "
        "where snapshot_date = $day and gap_reason = 'no_resource' group by all",
        {"day": OLD_DAY},
    ).fetchall():
        allocated[(account, service)] += amount
    # each service's total is split across its resources exactly: nothing lost, nothing added
    assert {key: cents(amount) for key, amount in allocated.items()} == per_service


def test_a_backfill_replaces_estimated_costs_of_earlier_days_and_rescores_them(
    old_day_backfill, pipeline_env
):
    day_before = OLD_DAY - timedelta(days=1)
    con = duckdb.connect(str(pipeline_env / "warehouse.duckdb"), read_only=True)
    # stored as Estimated with resource-level data back then; now final, and too old for resources
    assert con.execute(
        "select source, bool_or(estimated) from costs where usage_date = $day group by all order by 1",
        {"day": day_before},
    ).fetchall() == [("service", False), ("tag", False), ("usage_type", False)]
    assert con.execute(
        "select distinct cost_basis, cost_estimated from resource_compliance where snapshot_date = $day "
        "and resource_type in (select unnest($costed))",
        {"day": day_before, "costed": sorted(COSTED_TYPES)},
    ).fetchall() == [("service_average", False)]


def test_the_run_wrote_its_report_with_the_warehouse_figures(first_run, pipeline_env):
    page = (pipeline_env / "reports" / f"tag-compliance-{RUN_DAY.isoformat()}.html").read_text()
    shown = dict(re.findall(r'data-figure="([a-z_]+)"\s+data-value="([^"]*)"', page))
    compliance_pct, cost_compliance_pct, in_scope = first_run.execute(
        "select compliance_pct, cost_compliance_pct, resources_in_scope from compliance_summary "
        "where snapshot_date = $day and dimension = 'overall'",
        {"day": RUN_DAY},
    ).fetchone()
    assert float(shown["compliance_pct"]) == pytest.approx(compliance_pct)
    assert float(shown["cost_compliance_pct"]) == pytest.approx(cost_compliance_pct)
    assert int(shown["resources_in_scope"]) == in_scope
