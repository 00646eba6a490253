"""The sandbox's cost ledger: deterministic, complete, and shaped like Cost Explorer's data."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from tag_compliance.aws.collectors import cost_mappings
from tag_compliance.sandbox.breadth import plan_breadth
from tag_compliance.sandbox.estate import (
    ACCOUNTS,
    EC2,
    ECS,
    LAMBDA,
    MANAGEMENT_ACCOUNT,
    RDS,
    REGIONS,
    S3,
    Estate,
    build_estate,
    load_policy,
)
from tag_compliance.sandbox.ledger import (
    AMOUNT_COLUMNS,
    DATA_TRANSFER,
    LEDGER_FILE,
    LEDGER_SCHEMA,
    SUPPORT,
    TAX,
    UNINVENTORIED,
    build_ledger,
    load_ledger,
    rename_resources,
    write_ledger,
)

TODAY = date(2026, 3, 15)
DAYS = 45
SCALE = 0.05


def seeded_estate(seed: int = 42, scale: float = SCALE) -> Estate:
    """An estate with ids filled in deterministically, as the seeder would (no moto needed)."""
    estate = build_estate(seed, scale)
    for r in estate.resources:
        digest = hashlib.sha256(
            f"{r.account_id}:{r.api_region}:{r.resource_type}:{r.name}".encode()
        ).hexdigest()
        prefix = f"arn:aws:{r.service}:{r.api_region}:{r.account_id}"
        if r.resource_type == EC2:
            r.resource_id = "i-" + digest[:17]
            r.arn = f"{prefix}:instance/{r.resource_id}"
        elif r.resource_type == S3:
            r.resource_id = r.name
            r.arn = f"arn:aws:s3:::{r.name}"
        elif r.resource_type == RDS:
            r.resource_id = r.name
            r.arn = f"{prefix}:db:{r.name}"
        elif r.resource_type == LAMBDA:
            r.resource_id = r.name
            r.arn = f"{prefix}:function:{r.name}"
        else:
            r.resource_id = r.name
            r.arn = f"{prefix}:service/{r.name}"
    return estate


def ce_resource_id(r) -> str:
    return r.resource_id if r.resource_type in (EC2, S3) else r.arn


@pytest.fixture(scope="module")
def estate() -> Estate:
    return seeded_estate()


@pytest.fixture(scope="module")
def ledger(estate: Estate) -> pa.Table:
    return build_ledger(estate, TODAY, days=DAYS)


@pytest.fixture(scope="module")
def rows(ledger: pa.Table) -> list[dict]:
    return ledger.to_pylist()


def window(days: int = DAYS) -> list[date]:
    return [TODAY - timedelta(days=n) for n in range(days - 1, -1, -1)]


def test_schema_and_window(ledger: pa.Table, rows: list[dict]) -> None:
    assert ledger.schema.equals(LEDGER_SCHEMA)
    assert LEDGER_SCHEMA.names == [
        "usage_date",
        "account_id",
        "service",
        "region",
        "resource_type",
        "resource_id",
        "usage_type",
        "inventoried",
        "tags",
        "amortized_cost",
        "unblended_cost",
        "estimated_amortized_cost",
        "estimated_unblended_cost",
    ]
    assert sorted({row["usage_date"] for row in rows}) == window()
    assert {row["account_id"] for row in rows} == set(ACCOUNTS)


def test_deterministic(estate: Estate, ledger: pa.Table) -> None:
    assert build_ledger(seeded_estate(), TODAY, days=DAYS).equals(ledger)
    assert not build_ledger(seeded_estate(43), TODAY, days=DAYS).equals(ledger)
    # amounts of a live resource on a given day do not depend on when the ledger ends
    later = build_ledger(estate, TODAY + timedelta(days=1), days=DAYS)
    day = TODAY - timedelta(days=20)

    def live(table: pa.Table) -> dict:
        return {
            row["resource_id"]: row["unblended_cost"]
            for row in table.to_pylist()
            if row["usage_date"] == day and row["inventoried"]
        }

    assert live(later) == live(ledger)


def test_unseeded_estate_is_refused() -> None:
    with pytest.raises(ValueError, match="not been seeded"):
        build_ledger(build_estate(42, SCALE), TODAY)


def test_key_is_unique(rows: list[dict]) -> None:
    full = Counter(
        (r["usage_date"], r["account_id"], r["service"], r["region"], r["resource_id"]) for r in rows
    )
    assert max(full.values()) == 1
    # resource rows: (day, account, service, resource_id) alone is unique
    resource = Counter(
        (r["usage_date"], r["account_id"], r["service"], r["resource_id"]) for r in rows if r["resource_id"]
    )
    assert max(resource.values()) == 1
    # non-resource rows: one per (day, account, service), but the regional ones have one per region
    other = Counter(
        (r["usage_date"], r["account_id"], r["service"]) for r in rows if r["resource_id"] is None
    )
    regional = {DATA_TRANSFER, *(service for service, *_ in UNINVENTORIED)}
    assert {key[2] for key, count in other.items() if count > 1} == regional


def test_services_come_from_the_collectors(rows: list[dict]) -> None:
    service_of = {mapping.resource_type: mapping.cost_explorer_service for mapping in cost_mappings()}
    for row in rows:
        if row["resource_type"] is None:
            assert row["service"] in (
                SUPPORT,
                TAX,
                DATA_TRANSFER,
                *(service for service, *_ in UNINVENTORIED),
            )
            assert row["resource_id"] is None and row["tags"] == [] and not row["inventoried"]
        else:
            assert service_of[row["resource_type"]] == row["service"]
            assert row["resource_id"]
        assert row["usage_type"]


def test_the_breadth_costs_every_day_under_its_types_service_and_own_usage_types() -> None:
    estate = seeded_estate()
    breadth = plan_breadth(42, SCALE, load_policy(), estate.accounts, estate.regions)
    for n, r in enumerate(breadth):
        r.resource_id, r.arn = f"id-{n}", f"arn:aws:{r.service}:{r.api_region}:{r.account_id}:x/{n}"
    rows = build_ledger(estate, TODAY, days=3, breadth=breadth).to_pylist()
    mapping_of = {mapping.resource_type: mapping for mapping in cost_mappings()}
    costed = [r for r in breadth if r.resource_type in mapping_of]
    uncosted = {r.resource_type for r in breadth} - set(mapping_of)
    assert {"ec2:vpc", "ec2:security-group", "acm:certificate"} <= uncosted  # free: never in the ledger
    breadth_rows = [row for row in rows if row["resource_type"] in {r.resource_type for r in costed}]
    assert len(breadth_rows) == 3 * len(costed)  # every costed resource, every day
    assert {row["resource_type"] for row in breadth_rows} == set(mapping_of) - {EC2, S3, RDS, LAMBDA, ECS}
    for row in breadth_rows:
        mapping = mapping_of[row["resource_type"]]
        assert row["service"] == mapping.cost_explorer_service
        assert row["amortized_cost"] > 0 and row["inventoried"]
        if mapping.usage_types:  # a shared service: the usage type tells the types apart
            usage, after_region_code = row["usage_type"], row["usage_type"].split("-", 1)[-1]
            assert usage.startswith(mapping.usage_types) or after_region_code.startswith(mapping.usage_types)
    # spend on what no collector inventories, and on a shared service's usage of no type
    nobody = {(row["service"], row["usage_type"]) for row in rows if row["resource_type"] is None}
    assert ("AmazonCloudWatch", "CW:MetricMonitorUsage") in nobody
    assert ("AWS Config", "EU-ConfigurationItemRecorded") in nobody


def test_every_inventoried_resource_every_day(estate: Estate, rows: list[dict]) -> None:
    by_resource: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["inventoried"]:
            by_resource[row["resource_id"]].append(row)
    inventory = {ce_resource_id(r): r for r in estate.inventory}
    assert set(by_resource) == set(inventory)
    for resource_id, resource_rows in by_resource.items():
        r = inventory[resource_id]
        assert sorted(row["usage_date"] for row in resource_rows) == window(), resource_id
        for row in resource_rows:
            assert row["account_id"] == r.account_id
            assert row["region"] == r.api_region  # S3: us-east-1, not "global"
            assert row["resource_type"] == r.resource_type
            assert dict(row["tags"]) == r.tags
    # resource ids as Cost Explorer reports them
    kinds = {r.resource_type: ce_resource_id(r) for r in estate.inventory}
    assert kinds[EC2].startswith("i-")
    assert kinds[RDS].startswith("arn:aws:rds:") and ":db:" in kinds[RDS]
    assert kinds[LAMBDA].startswith("arn:aws:lambda:")
    assert kinds[ECS].startswith("arn:aws:ecs:")
    assert not kinds[S3].startswith("arn:")


def test_plausible_daily_costs(estate: Estate, rows: list[dict]) -> None:
    day = TODAY - timedelta(days=5)
    cost = {r["resource_id"]: r["unblended_cost"] for r in rows if r["usage_date"] == day}
    for r in estate.inventory:
        amount = cost[ce_resource_id(r)]
        if r.resource_type == EC2:
            hourly = {0: Decimal("0.0104"), 1: Decimal("0.096"), 2: Decimal("0.136")}[r.reservation % 3]
            if r.state == "stopped":
                assert Decimal("0.01") < amount < Decimal(1), r  # EBS only
            else:
                assert hourly * 18 < amount < hourly * 24 * Decimal("1.1") + 1, r
        elif r.resource_type == RDS:
            assert Decimal("0.4") < amount < Decimal(1), r
        assert Decimal(0) < amount < Decimal(200), r


def test_terminated_instances_cost_until_their_deletion(estate: Estate, rows: list[dict]) -> None:
    terminated = {r.resource_id for r in estate.resources if r.state == "terminated"}
    assert terminated
    days: dict[str, list[date]] = defaultdict(list)
    for row in rows:
        if row["resource_id"] in terminated:
            assert not row["inventoried"]
            days[row["resource_id"]].append(row["usage_date"])
    for resource_id in terminated:
        seen = sorted(days[resource_id])
        assert seen == window()[: len(seen)], resource_id  # from the window start, no gaps
        deletion = seen[-1] + timedelta(days=1)
        assert TODAY - timedelta(days=10) <= deletion <= TODAY, resource_id


def test_non_resource_and_deleted_spend_every_recent_day(estate: Estate, rows: list[dict]) -> None:
    live = {ce_resource_id(r) for r in estate.inventory}
    for offset in range(1, 26):
        day = TODAY - timedelta(days=offset)
        today_rows = [row for row in rows if row["usage_date"] == day]
        support = [row for row in today_rows if row["service"] == SUPPORT]
        assert [row["account_id"] for row in support] == [MANAGEMENT_ACCOUNT]
        assert {row["account_id"] for row in today_rows if row["service"] == TAX} == set(ACCOUNTS)
        assert {
            (row["account_id"], row["region"]) for row in today_rows if row["service"] == DATA_TRANSFER
        } == {(a, r) for a in ACCOUNTS for r in REGIONS}
        assert all(row["region"] is None for row in support)
        gone = [row for row in today_rows if row["resource_id"] and not row["inventoried"]]
        assert gone, day
        assert all(row["resource_id"] not in live for row in gone)
        assert sum(row["unblended_cost"] for row in gone) > 0
    # invented deleted resources of several types, with deletion days spread over the window
    gone_types = {row["resource_type"] for row in rows if not row["inventoried"] and row["resource_type"]}
    assert gone_types == {EC2, RDS, LAMBDA, S3, ECS}
    last_days: dict[str, date] = {}
    for row in rows:
        if row["resource_id"] and not row["inventoried"]:
            last_days[row["resource_id"]] = max(
                last_days.get(row["resource_id"], date.min), row["usage_date"]
            )
    assert min(last_days.values()) < TODAY - timedelta(days=20)


def test_amortized_differs_for_some_ec2_and_rds(rows: list[dict]) -> None:
    differing = {row["resource_id"] for row in rows if row["amortized_cost"] != row["unblended_cost"]}
    assert differing
    types = {row["resource_type"] for row in rows if row["resource_id"] in differing}
    assert types <= {EC2, RDS}
    candidates = {row["resource_id"] for row in rows if row["resource_type"] in (EC2, RDS)}
    assert 0.15 <= len(differing) / len(candidates) <= 0.45
    for row in rows:
        if row["resource_id"] in differing:
            assert row["amortized_cost"] < row["unblended_cost"]


def test_amounts(rows: list[dict]) -> None:
    estimated_differs = 0
    beyond_cent = 0
    for row in rows:
        for column in AMOUNT_COLUMNS:
            amount: Decimal = row[column]
            assert amount.as_tuple().exponent == -10, (column, amount)
            assert amount >= 0
        assert row["unblended_cost"] > 0
        estimated_differs += row["estimated_unblended_cost"] != row["unblended_cost"]
        beyond_cent += row["unblended_cost"] != row["unblended_cost"].quantize(Decimal("0.01"))
        assert row["estimated_unblended_cost"] <= row["unblended_cost"]
    assert estimated_differs >= 0.95 * len(rows)
    assert beyond_cent >= 0.95 * len(rows)


def test_write_and_load(tmp_path: Path, ledger: pa.Table) -> None:
    path = write_ledger(ledger, tmp_path / "ledger")
    assert path == tmp_path / "ledger" / LEDGER_FILE
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    for where in (path, path.parent, tmp_path):
        assert load_ledger(where).equals(ledger)
    with pytest.raises(FileNotFoundError):
        load_ledger(tmp_path / "nowhere")


def test_renaming_resources_gives_the_ledger_built_with_the_new_ids(estate: Estate, ledger: pa.Table) -> None:
    renamed = seeded_estate()
    instance = next(r for r in renamed.resources if r.resource_type == EC2 and r.inventoried)
    old = instance.resource_id
    instance.resource_id = "i-00000000000000000"  # sorts first: the row order changes
    assert build_ledger(renamed, TODAY, days=DAYS).equals(
        rename_resources(ledger, {old: instance.resource_id})
    )
    assert rename_resources(ledger, {}) is ledger
