"""The real DAG, run with dag.test() against the seeded sandbox, reproduces the seeded truth."""

from __future__ import annotations

import math
import os
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from tag_compliance.sandbox import Sandbox, load_manifest
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
RUN_AT = datetime(2026, 11, 21, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Sandbox:
    with Sandbox(seed=7, data_dir=tmp_path_factory.mktemp("sandbox"), scale=0.3) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline_env(sandbox, tmp_path_factory):
    """Point the pipeline at the sandbox and a fresh lake, as the demo does."""
    root = tmp_path_factory.mktemp("pipeline")
    env = {
        **sandbox.env(),
        "TAG_COMPLIANCE_LAKE": str(root / "lake"),
        "TAG_COMPLIANCE_WAREHOUSE": str(root / "warehouse.duckdb"),
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def run_dag(logical_date: datetime):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=REPO_ROOT / "dags").dags["tag_compliance"]
    for task in dag.tasks:
        task.retries = 0  # fail fast here; production runs retry with backoff
    return dag.test(logical_date=logical_date)


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
    dag_run = run_dag(RUN_AT)
    assert dag_run.state == "success"
    return duckdb.connect(str(pipeline_env / "warehouse.duckdb"), read_only=True)


def test_one_snapshot_for_the_run_data_interval(first_run):
    dates = first_run.sql("select distinct snapshot_date from resources").fetchall()
    assert dates == [(date(2026, 11, 20),)]  # the one-day interval before the 02:00 UTC run


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
    seeded = {(row["resource_type"], row["resource_id"]): dict(row["tags"]) for row in manifest}
    collected = {
        (resource_type, resource_id): dict(tags)
        for resource_type, resource_id, tags in first_run.sql(
            "select resource_type, resource_id, tags from resources"
        ).fetchall()
    }
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


def test_rerunning_the_same_date_changes_no_row_count(first_run, pipeline_env):
    before = row_counts(pipeline_env / "lake")
    assert run_dag(RUN_AT).state == "success"
    assert row_counts(pipeline_env / "lake") == before
