"""Scoring SQL on a hand-built lake snapshot: exact expected rows for every output."""

from __future__ import annotations

import fnmatch
import re
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tag_compliance import lake
from tag_compliance.config import DEFAULT_POLICY, SQL_DIR
from tag_compliance.policy import TaggingPolicy, load_policy
from tag_compliance.scoring import (
    SCORING_STEPS,
    SnapshotNotFoundError,
    connect,
    latest_snapshot_on_or_before,
    score_resources,
    score_snapshot,
)
from tests.sql_fixtures import (
    ACCOUNT_1,
    ACCOUNT_2,
    BLANK,
    INJECTION,
    KEY_128,
    RESOURCES,
    SNAPSHOT,
    arn,
    committed_file,
    fixture_policy,
    resource,
    resources_table,
    write_snapshot,
)

VERSION = "test-2026.1"
ENV_ALLOWED = "one of: prod, staging, dev-*"


def violation(
    account: str,
    region: str,
    resource_type: str,
    resource_id: str,
    tag_key: str,
    violation_type: str,
    severity: str,
    current_value: str | None,
    expected: str,
) -> dict[str, Any]:
    return {
        "account_id": account,
        "region": region,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "arn": arn(account, region, resource_type, resource_id),
        "tag_key": tag_key,
        "violation_type": violation_type,
        "severity": severity,
        "current_value": current_value,
        "expected": expected,
        "inventory_as_of": SNAPSHOT,
        "policy_version": VERSION,
    }


EC2, S3, LAMBDA = "ec2:instance", "s3:bucket", "lambda:function"

EXPECTED_VIOLATIONS = [
    # i-0b: wrong key case (smallest of 'COSTCENTER'/'costcenter'), untrimmed value, missing warning
    # rule, PassWord matched case-insensitively, password_secret matched by two globs -> once.
    violation(ACCOUNT_1, "eu-west-1", EC2, "i-0b-violations", "CostCenter", "wrong_key_case", "error",
              "COSTCENTER", "key CostCenter"),
    violation(ACCOUNT_1, "eu-west-1", EC2, "i-0b-violations", "Environment", "invalid_value", "error",
              " prod", ENV_ALLOWED),
    violation(ACCOUNT_1, "eu-west-1", EC2, "i-0b-violations", "Team", "missing_required_tag", "warning",
              None, "key Team"),
    violation(ACCOUNT_1, "eu-west-1", EC2, "i-0b-violations", "PassWord", "prohibited_tag", "error",
              "hunter2", "key not present"),
    violation(ACCOUNT_1, "eu-west-1", EC2, "i-0b-violations", "password_secret", "prohibited_tag", "error",
              "s", "key not present"),
    violation(ACCOUNT_1, "global", S3, "bucket-blank", "CostCenter", "empty_value", "error",
              BLANK, "non-empty value"),
    violation(ACCOUNT_1, "global", S3, "bucket-blank", "Environment", "empty_value", "error",
              "", "non-empty value"),
    violation(ACCOUNT_1, "global", S3, "bucket-format", "CostCenter", "invalid_format", "error",
              "CC-12345", "matches CC-[0-9]{4}"),
    violation(ACCOUNT_1, "global", S3, "bucket-format", "Environment", "invalid_format", "error",
              "dev-X", "matches [a-z-]+"),
    # 'PROD' fails allowed_values and pattern: one violation, the allowed_values one.
    violation(ACCOUNT_1, "us-east-1", EC2, "i-0e-precedence", "Environment", "invalid_value", "error",
              "PROD", ENV_ALLOWED),
    violation(ACCOUNT_1, "us-east-1", EC2, "i-0j-warning", "Team", "invalid_value", "warning",
              "Sales", "one of: Platform, Data"),
    violation(ACCOUNT_2, "us-east-1", LAMBDA, "fn-missing", "CostCenter", "invalid_format", "error",
              INJECTION, "matches CC-[0-9]{4}"),
    violation(ACCOUNT_2, "us-east-1", LAMBDA, "fn-missing", "Environment", "missing_required_tag", "error",
              None, "key Environment"),
    violation(ACCOUNT_2, "us-east-1", LAMBDA, "fn-missing", KEY_128, "wrong_key_case", "error",
              KEY_128.upper(), f"key {KEY_128}"),
    violation(ACCOUNT_2, "us-east-1", "ssm:parameter", "q-out-of-scope", "Secret", "prohibited_tag", "error",
              "abc", "key not present"),
]  # fmt: skip

# (account, region, service, type, id, in_scope, compliant, errors, warnings, violation_types)
EXPECTED_COMPLIANCE = [
    (ACCOUNT_1, "eu-west-1", "ec2", EC2, "i-0b-violations", True, False, 4, 1,
     ["invalid_value", "missing_required_tag", "prohibited_tag", "wrong_key_case"]),
    (ACCOUNT_1, "eu-west-1", "lambda", LAMBDA, "fn-unicode", True, True, 0, 0, []),
    (ACCOUNT_1, "global", "s3", S3, "bucket-blank", True, False, 2, 0, ["empty_value"]),
    (ACCOUNT_1, "global", "s3", S3, "bucket-format", True, False, 2, 0, ["invalid_format"]),
    (ACCOUNT_1, "us-east-1", "ec2", EC2, "i-0a-compliant", True, True, 0, 0, []),
    (ACCOUNT_1, "us-east-1", "ec2", EC2, "i-0e-precedence", True, False, 1, 0, ["invalid_value"]),
    (ACCOUNT_1, "us-east-1", "ec2", EC2, "i-0j-warning", True, True, 0, 1, ["invalid_value"]),
    (ACCOUNT_2, "us-east-1", "ecs", "ecs:service", "svc-untagged", False, None, 0, 0, []),
    (ACCOUNT_2, "us-east-1", "lambda", LAMBDA, "fn-missing", True, False, 3, 0,
     ["invalid_format", "missing_required_tag", "wrong_key_case"]),
    (ACCOUNT_2, "us-east-1", "ssm", "ssm:parameter", "q-out-of-scope", False, None, 1, 0, ["prohibited_tag"]),
]  # fmt: skip

# (dimension, value, total, in_scope, compliant, pct, violations, error_violations)
EXPECTED_SUMMARY = [
    ("overall", "all", 10, 8, 3, 37.5, 15, 13),
    ("account", ACCOUNT_1, 7, 7, 3, 100 * 3 / 7, 11, 9),
    ("account", ACCOUNT_2, 3, 1, 0, 0.0, 4, 4),
    ("region", "eu-west-1", 2, 2, 1, 50.0, 5, 4),
    ("region", "global", 2, 2, 0, 0.0, 4, 4),
    ("region", "us-east-1", 6, 4, 2, 50.0, 6, 5),
    ("service", "ec2", 4, 4, 2, 50.0, 7, 5),
    ("service", "ecs", 1, 0, 0, None, 0, 0),
    ("service", "lambda", 2, 2, 1, 50.0, 3, 3),
    ("service", "s3", 2, 2, 0, 0.0, 4, 4),
    ("service", "ssm", 1, 0, 0, None, 1, 1),
    ("resource_type", EC2, 4, 4, 2, 50.0, 7, 5),
    ("resource_type", "ecs:service", 1, 0, 0, None, 0, 0),
    ("resource_type", LAMBDA, 2, 2, 1, 50.0, 3, 3),
    ("resource_type", S3, 2, 2, 0, 0.0, 4, 4),
    ("resource_type", "ssm:parameter", 1, 0, 0, None, 1, 1),
    ("tag_key", "CostCenter", 8, 8, 4, 50.0, 4, 4),
    ("tag_key", "Environment", 8, 8, 3, 37.5, 5, 5),
    ("tag_key", "Team", 4, 4, 2, 50.0, 2, 0),
    ("tag_key", KEY_128, 2, 2, 1, 50.0, 1, 1),
]


@pytest.fixture(scope="module")
def scored_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    write_snapshot(root)
    score_snapshot(root, SNAPSHOT, fixture_policy())
    return root


def read_output(root: Path, dataset: lake.Dataset, snapshot: date = SNAPSHOT) -> list[dict[str, Any]]:
    return pq.read_table(committed_file(root, dataset, snapshot)).to_pylist()


def test_sql_files_exist_with_produces_header() -> None:
    for step in SCORING_STEPS:
        first_line = (SQL_DIR / f"{step}.sql").read_text().splitlines()[0]
        assert first_line.startswith("-- Produces: "), step


def test_violations_exact(scored_lake: Path) -> None:
    assert read_output(scored_lake, lake.VIOLATIONS) == EXPECTED_VIOLATIONS


def test_resource_compliance_exact(scored_lake: Path) -> None:
    rows = read_output(scored_lake, lake.RESOURCE_COMPLIANCE)
    keys = (
        "account_id",
        "region",
        "service",
        "resource_type",
        "resource_id",
        "in_scope",
        "compliant",
        "error_violations",
        "warning_violations",
        "violation_types",
    )
    assert [tuple(row[key] for key in keys) for row in rows] == EXPECTED_COMPLIANCE
    by_id = {source["resource_id"]: source for source in RESOURCES}
    for row in rows:
        source = by_id[row["resource_id"]]
        assert row["arn"] == source["arn"]
        assert row["name"] == source["name"]
        assert dict(row["tags"]) == source["tags"]
        assert (row["inventory_as_of"], row["policy_version"]) == (SNAPSHOT, VERSION)
        # No costs for the day in this lake: the cost columns are NULL (test_cost_sql has costs).
        cost_keys = ("cost_basis", "amortized_cost", "unblended_cost", "cost_estimated")
        assert [row[key] for key in cost_keys] == [None] * 4


def test_compliance_summary_exact(scored_lake: Path) -> None:
    rows = read_output(scored_lake, lake.COMPLIANCE_SUMMARY)
    keys = (
        "dimension",
        "dimension_value",
        "resources_total",
        "resources_in_scope",
        "resources_compliant",
        "compliance_pct",
        "violations",
        "error_violations",
    )
    assert [tuple(row[key] for key in keys) for row in rows] == EXPECTED_SUMMARY
    assert {(row["inventory_as_of"], row["policy_version"]) for row in rows} == {(SNAPSHOT, VERSION)}
    cost_keys = ("cost_total", "cost_in_scope", "cost_compliant", "cost_compliance_pct")
    assert {tuple(row[key] for key in cost_keys) for row in rows} == {(None, None, None, None)}


def test_no_costs_no_attribution_gap(scored_lake: Path) -> None:
    assert read_output(scored_lake, lake.ATTRIBUTION_GAP) == []


@pytest.mark.parametrize(
    "dataset", [lake.VIOLATIONS, lake.RESOURCE_COMPLIANCE, lake.COMPLIANCE_SUMMARY, lake.ATTRIBUTION_GAP]
)
def test_output_files_have_the_lake_schema(scored_lake: Path, dataset: lake.Dataset) -> None:
    path = committed_file(scored_lake, dataset)
    assert pq.read_schema(path).remove_metadata() == dataset.schema


def test_score_result_counts(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    result = score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    assert (result.resources, result.violations, result.resource_compliance, result.compliance_summary) == (
        10,
        15,
        10,
        20,
    )
    assert result.policy_version == VERSION
    assert (result.attribution_gap, result.has_costs, result.has_resource_costs) == (0, False, False)
    assert sorted(result.files) == [
        "attribution_gap",
        "compliance_summary",
        "exempted_violations",
        "resource_compliance",
        "violations",
    ]
    assert result.exempted_violations == 0
    assert all(Path(path).is_file() for path in result.files.values())


def test_rerun_replaces_results(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    score_snapshot(tmp_path, SNAPSHOT, fixture_policy())
    strict = TaggingPolicy.model_validate({"version": "v2", "required_tags": [{"key": "Owner"}]})
    result = score_snapshot(tmp_path, SNAPSHOT, strict)
    assert result.violations == 10  # every resource misses Owner; no prohibited keys any more
    rows = read_output(tmp_path, lake.VIOLATIONS)
    assert len(rows) == 10
    assert {(row["violation_type"], row["policy_version"]) for row in rows} == {
        ("missing_required_tag", "v2")
    }
    directory = lake.VIOLATIONS.partition_dir(tmp_path, {"snapshot_date": SNAPSHOT})
    assert list(directory.iterdir()) == [committed_file(tmp_path, lake.VIOLATIONS)]  # the first run's: gone


def test_only_the_requested_snapshot_is_scored(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    write_snapshot(tmp_path, RESOURCES[:2], snapshot_date=date(2026, 3, 13))
    assert score_snapshot(tmp_path, date(2026, 3, 13), fixture_policy()).resources == 2
    assert score_snapshot(tmp_path, SNAPSHOT, fixture_policy()).resources == 10


def test_missing_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    with pytest.raises(SnapshotNotFoundError) as info:
        score_snapshot(tmp_path, date(2026, 1, 1), fixture_policy())
    assert "2026-01-01" in str(info.value)
    assert str(tmp_path.resolve()) in str(info.value)


# --- inventory_as_of: a backfilled day scored with an earlier inventory -----------------------------


def test_latest_snapshot_on_or_before(tmp_path: Path) -> None:
    assert latest_snapshot_on_or_before(tmp_path, SNAPSHOT) is None  # no lake at all
    write_snapshot(tmp_path, RESOURCES[:2], snapshot_date=date(2026, 3, 10))
    write_snapshot(tmp_path, RESOURCES[:2], snapshot_date=date(2026, 3, 12))
    resources = tmp_path / lake.RESOURCES.name
    # Not snapshots: a partition holding only a crashed writer's temporary file, a hidden
    # partition, a directory that is not a date, and an empty partition directory.
    only_temporary = resources / "snapshot_date=2026-03-13" / "account_id=1" / "region=r" / "service=ec2"
    only_temporary.mkdir(parents=True)
    (only_temporary / ".part-0.abc.tmp").write_bytes(b"")
    (only_temporary / ".part-0.parquet").write_bytes(b"")
    hidden = resources / ".snapshot_date=2026-03-11" / "account_id=1" / "region=r" / "service=ec2"
    hidden.mkdir(parents=True)
    (hidden / "part-0.parquet").write_bytes(b"")
    (resources / "snapshot_date=not-a-date").mkdir()
    (resources / "snapshot_date=2026-03-14").mkdir()
    assert [
        latest_snapshot_on_or_before(tmp_path, date(2026, 3, day)) for day in (9, 10, 11, 12, 13, 14, 30)
    ] == [None, date(2026, 3, 10), date(2026, 3, 10)] + [date(2026, 3, 12)] * 4


def test_score_snapshot_with_an_earlier_inventory(tmp_path: Path) -> None:
    backfilled = date(2026, 3, 16)
    write_snapshot(tmp_path)
    assert latest_snapshot_on_or_before(tmp_path, backfilled) == SNAPSHOT
    result = score_snapshot(tmp_path, backfilled, fixture_policy(), inventory_as_of=SNAPSHOT)
    assert (result.snapshot_date, result.inventory_as_of, result.resources, result.violations) == (
        backfilled,
        SNAPSHOT,
        10,
        15,
    )
    for dataset in (lake.VIOLATIONS, lake.RESOURCE_COMPLIANCE, lake.COMPLIANCE_SUMMARY):
        assert {row["inventory_as_of"] for row in read_output(tmp_path, dataset, backfilled)} == {SNAPSHOT}
    # The same rows as scoring the inventory's own day, but written under the backfilled date only.
    assert [
        {**row, "inventory_as_of": SNAPSHOT} for row in read_output(tmp_path, lake.VIOLATIONS, backfilled)
    ] == EXPECTED_VIOLATIONS
    assert not lake.VIOLATIONS.partition_dir(tmp_path, {"snapshot_date": SNAPSHOT}).exists()
    assert score_snapshot(tmp_path, SNAPSHOT, fixture_policy()).inventory_as_of == SNAPSHOT


def test_missing_inventory_names_both_dates(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    with pytest.raises(SnapshotNotFoundError) as info:
        score_snapshot(tmp_path, SNAPSHOT, fixture_policy(), inventory_as_of=date(2026, 3, 1))
    assert "inventory 2026-03-01" in str(info.value)
    assert "snapshot 2026-03-14" in str(info.value)
    assert "snapshot_date=2026-03-01" in str(info.value)


def test_a_later_inventory_is_refused(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"2026-03-13.*2026-03-14"):
        score_snapshot(tmp_path, date(2026, 3, 13), fixture_policy(), inventory_as_of=SNAPSHOT)


def test_score_resources_records_inventory_as_of_only_when_given() -> None:
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": "Owner"}]})
    rows = [resource(ACCOUNT_1, "us-east-1", EC2, "i-1", {})]
    outputs = score_rows(rows, policy)
    assert {row["inventory_as_of"] for rows in outputs.values() for row in rows} == {None}
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        tables = score_resources(con, policy, inventory_as_of=SNAPSHOT)
    for name in ("violations", "resource_compliance", "compliance_summary"):
        assert set(tables[name].column("inventory_as_of").to_pylist()) == {SNAPSHOT}, name


def test_default_policy_scores_the_fixture(tmp_path: Path) -> None:
    write_snapshot(tmp_path)
    result = score_snapshot(tmp_path, SNAPSHOT, load_policy(DEFAULT_POLICY))
    assert result.resource_compliance == 10
    summary = {
        (r["dimension"], r["dimension_value"]): r for r in read_output(tmp_path, lake.COMPLIANCE_SUMMARY)
    }
    # Default CostCenter etc. have no applies_to: every resource is in scope.
    assert summary[("overall", "all")]["resources_in_scope"] == 10
    assert {key for dim, key in summary if dim == "tag_key"} == {
        "CostCenter",
        "Environment",
        "Owner",
        "Application",
        "DataClassification",
    }


# --- injection: keys, values and patterns are data -------------------------------------------------


def score_rows(rows: list[dict[str, Any]], policy: TaggingPolicy) -> dict[str, list[dict[str, Any]]]:
    """Score resources straight from Arrow, without a lake, through the same SQL."""
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        outputs = score_resources(con, policy)
        # The inputs are still there: nothing a value said was executed.
        assert con.execute("SELECT count(*) FROM snapshot_resources").fetchone() == (len(rows),)
        assert con.execute("SELECT count(*) FROM policy_rules").fetchone() == (len(policy.required_tags),)
    return {name: table.to_pylist() for name, table in outputs.items()}


def test_quotes_and_sql_in_values_and_policy_are_data() -> None:
    policy = TaggingPolicy.model_validate(
        {
            "version": "v'; drop table snapshot; --",
            "required_tags": [
                {"key": "it's", "allowed_values": ["a'b", "x'; drop table policy_rules; --"]},
                {"key": "Note", "pattern": "'[a-z]+'"},
            ],
            "prohibited_keys": ["pass'word*"],
        }
    )
    rows = [
        resource(ACCOUNT_1, "us-east-1", EC2, "i-ok", {"it's": "a'b", "Note": "'quoted'"}),
        resource(
            ACCOUNT_1,
            "us-east-1",
            EC2,
            "i-bad",
            {"it's": INJECTION, "Note": "x'); DROP TABLE violations; --", "PASS'WORD1": "p'w"},
        ),
        resource(ACCOUNT_1, "us-east-1", EC2, "i-policy-text", {"it's": "x'; drop table policy_rules; --"}),
    ]
    outputs = score_rows(rows, policy)
    assert [
        (row["resource_id"], row["tag_key"], row["violation_type"], row["current_value"])
        for row in outputs["violations"]
    ] == [
        ("i-bad", "it's", "invalid_value", INJECTION),
        ("i-bad", "Note", "invalid_format", "x'); DROP TABLE violations; --"),
        ("i-bad", "PASS'WORD1", "prohibited_tag", "p'w"),
        ("i-policy-text", "Note", "missing_required_tag", None),
    ]
    assert {row["policy_version"] for row in outputs["violations"]} == {"v'; drop table snapshot; --"}
    assert outputs["violations"][0]["expected"] == "one of: a'b, x'; drop table policy_rules; --"


def test_like_metacharacters_in_allowed_values_are_literal() -> None:
    policy = TaggingPolicy.model_validate(
        {"version": "1", "required_tags": [{"key": "Promo", "allowed_values": ["50%_off*", "a\\b"]}]}
    )
    values = {
        "pass-wildcard": "50%_off-today",
        "pass-empty-run": "50%_off",
        "pass-backslash": "a\\b",
        "fail-percent": "50X_off",
        "fail-underscore": "50%Xoff",
        "fail-backslash": "ab",
    }
    rows = [resource(ACCOUNT_1, "us-east-1", EC2, rid, {"Promo": value}) for rid, value in values.items()]
    failed = {row["resource_id"] for row in score_rows(rows, policy)["violations"]}
    assert failed == {"fail-percent", "fail-underscore", "fail-backslash"}


def test_case_insensitive_wildcard_and_null_tags() -> None:
    policy = TaggingPolicy.model_validate(
        {
            "version": "1",
            "required_tags": [
                {"key": "Env", "allowed_values": ["Prod-*"], "case_sensitive_values": False},
            ],
        }
    )
    rows = [
        resource(ACCOUNT_1, "us-east-1", EC2, "upper", {"Env": "PROD-EU"}),
        resource(ACCOUNT_1, "us-east-1", EC2, "lower", {"Env": "prod-"}),
        resource(ACCOUNT_1, "us-east-1", EC2, "other", {"Env": "dev"}),
        resource(ACCOUNT_1, "us-east-1", EC2, "null-tags", None),
    ]
    outputs = score_rows(rows, policy)
    assert [(row["resource_id"], row["violation_type"]) for row in outputs["violations"]] == [
        ("null-tags", "missing_required_tag"),
        ("other", "invalid_value"),
    ]
    compliant = {row["resource_id"]: row["compliant"] for row in outputs["resource_compliance"]}
    assert compliant == {"upper": True, "lower": True, "other": False, "null-tags": False}


def test_duplicate_rows_stay_separate_resources() -> None:
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": "Owner"}]})
    row = resource(ACCOUNT_1, "us-east-1", EC2, "i-twice", {})
    outputs = score_rows([row, row], policy)
    assert len(outputs["violations"]) == 2
    assert [r["error_violations"] for r in outputs["resource_compliance"]] == [1, 1]
    overall = outputs["compliance_summary"][0]
    assert (overall["resources_total"], overall["violations"]) == (2, 2)


def test_rule_applying_to_nothing_has_null_pct() -> None:
    policy = TaggingPolicy.model_validate(
        {"version": "1", "required_tags": [{"key": "Owner", "applies_to": ["rds:*"]}]}
    )
    outputs = score_rows([resource(ACCOUNT_1, "us-east-1", EC2, "i-1", {})], policy)
    assert outputs["violations"] == []
    assert [
        (r["dimension"], r["resources_in_scope"], r["compliance_pct"]) for r in outputs["compliance_summary"]
    ] == [
        ("overall", 0, None),
        ("account", 0, None),
        ("region", 0, None),
        ("service", 0, None),
        ("resource_type", 0, None),
        ("tag_key", 0, None),
    ]


# --- property: the SQL agrees with a plain-Python reading of the rules -----------------------------

PROPERTY_POLICY = TaggingPolicy.model_validate(
    {
        "version": "p",
        "required_tags": [
            {"key": "Env", "allowed_values": ["prod", "dev-*"], "pattern": "[a-z-]+"},
            {
                "key": "Team",
                "allowed_values": ["Ops*"],
                "case_sensitive_values": False,
                "severity": "warning",
            },
            {"key": "Ключ", "pattern": "[0-9]+"},
        ],
        "prohibited_keys": ["secret*"],
    }
)
KEYS = ["Env", "env", "ENV", "Team", "team", "Ключ", "КЛЮЧ", "Secret", "secretX", "aws:secret", "other"]
VALUES = [
    "prod",
    "PROD",
    " prod",
    "",
    " \t",
    "\x0b",
    "dev-",
    "dev-x",
    "dev-X",
    "ops",
    "OPS-1",
    "42",
    "x'y",
    "é",
]


def reference_violations(tags: dict[str, str]) -> set[tuple[str, str, str | None]]:
    """The rules of DESIGN section 6, written the obvious way (every rule applies to every type)."""
    found = set()
    for rule in PROPERTY_POLICY.required_tags:
        if rule.key in tags:
            value = tags[rule.key]
            allowed = [wildcard_regex(v, rule.case_sensitive_values) for v in rule.allowed_values or []]
            if value.strip(" \t\n\x0b\x0c\r") == "":
                found.add((rule.key, "empty_value", value))
            elif rule.allowed_values and not any(pattern.fullmatch(value) for pattern in allowed):
                found.add((rule.key, "invalid_value", value))
            elif rule.pattern and not re.fullmatch(rule.pattern, value):
                found.add((rule.key, "invalid_format", value))
        elif others := sorted(key for key in tags if key.lower() == rule.key.lower()):
            found.add((rule.key, "wrong_key_case", others[0]))
        else:
            found.add((rule.key, "missing_required_tag", None))
    for key, value in tags.items():
        if not key.startswith("aws:") and any(
            fnmatch.fnmatchcase(key.lower(), glob.lower()) for glob in PROPERTY_POLICY.prohibited_keys
        ):
            found.add((key, "prohibited_tag", value))
    return found


def wildcard_regex(value: str, case_sensitive: bool) -> re.Pattern[str]:
    body = ".*".join(re.escape(part) for part in value.split("*"))
    return re.compile(body, re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=6), max_size=4))
def test_sql_matches_reference(tag_sets: list[dict[str, str]]) -> None:
    rows = [resource(ACCOUNT_1, "us-east-1", EC2, f"i-{n}", tags) for n, tags in enumerate(tag_sets)]
    if not rows:
        return
    violations = score_rows(rows, PROPERTY_POLICY)["violations"]
    for n, tags in enumerate(tag_sets):
        got = {
            (row["tag_key"], row["violation_type"], row["current_value"])
            for row in violations
            if row["resource_id"] == f"i-{n}"
        }
        assert got == reference_violations(tags), tags
