"""Every feature of the policy language, scored by the SQL: exact rows for small hand-built estates.

One test (or a few) per feature of docs/policy.md: optional tags, optional next to required,
applies_to and prohibited globs, case-insensitive values, the tag limit, exemptions before, on
and after their expiry (resource-level and key-level, by id and by ARN), and the version and
metadata a policy carries. The rows are stated in full so a change in semantics shows here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tag_compliance import lake
from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import connect, score_resources, score_snapshot
from tests.sql_fixtures import ACCOUNT_1, resource, resources_table, write_snapshot

EC2 = "ec2:instance"
RDS = "rds:db"
S3 = "s3:bucket"
LAMBDA = "lambda:function"
REGION = "us-east-1"
DAY = date(2026, 3, 14)


def score(
    rows: list[dict[str, Any]], policy_data: dict[str, Any], scored_date: date | None = DAY
) -> dict[str, list[dict[str, Any]]]:
    policy = TaggingPolicy.model_validate({"version": "p1", **policy_data})
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        outputs = score_resources(con, policy, scored_date=scored_date)
    return {name: table.to_pylist() for name, table in outputs.items()}


def violations(outputs: dict[str, list[dict[str, Any]]], name: str = "violations") -> list[tuple[Any, ...]]:
    return [
        (row["resource_id"], row["tag_key"], row["violation_type"], row["severity"], row["current_value"])
        for row in outputs[name]
    ]


def statuses(outputs: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[Any, ...]]:
    return {
        row["resource_id"]: (
            row["in_scope"],
            row["compliant"],
            row["compliance_status"],
            row["error_violations"],
            row["warning_violations"],
            row["exempted_violations"],
        )
        for row in outputs["resource_compliance"]
    }


def summary(outputs: dict[str, list[dict[str, Any]]], dimension: str = "overall") -> list[tuple[Any, ...]]:
    return [
        (
            row["dimension_value"],
            row["resources_in_scope"],
            row["resources_compliant"],
            row["resources_exempt"],
            row["compliance_pct"],
            row["violations"],
        )
        for row in outputs["compliance_summary"]
        if row["dimension"] == dimension
    ]


# --- optional tags ------------------------------------------------------------------------------

OPTIONAL = {
    "optional_tags": [
        {"key": "Project", "pattern": "[a-z][a-z0-9-]*"},
        {"key": "Tier", "allowed_values": ["gold", "silver"], "severity": "warning"},
    ]
}


def test_optional_tags_are_checked_only_when_present() -> None:
    rows = [
        resource(ACCOUNT_1, REGION, EC2, "i-none", {}),
        resource(ACCOUNT_1, REGION, EC2, "i-null", None),
        resource(ACCOUNT_1, REGION, EC2, "i-good", {"Project": "atlas-2", "Tier": "gold"}),
        resource(ACCOUNT_1, REGION, EC2, "i-bad", {"Project": "Atlas", "Tier": "bronze"}),
        resource(ACCOUNT_1, REGION, EC2, "i-case", {"project": "atlas", "TIER": "gold"}),
        resource(ACCOUNT_1, REGION, EC2, "i-blank", {"Project": " "}),
    ]
    outputs = score(rows, OPTIONAL)
    assert violations(outputs) == [
        ("i-bad", "Project", "invalid_format", "error", "Atlas"),
        ("i-bad", "Tier", "invalid_value", "warning", "bronze"),
        ("i-blank", "Project", "empty_value", "error", " "),
        ("i-case", "Project", "wrong_key_case", "error", "project"),
        ("i-case", "Tier", "wrong_key_case", "warning", "TIER"),
    ]
    # Optional rules put a resource in scope: one without the keys is compliant, not unmeasured.
    assert statuses(outputs) == {
        "i-bad": (True, False, "non_compliant", 1, 1, 0),
        "i-blank": (True, False, "non_compliant", 1, 0, 0),
        "i-case": (True, False, "non_compliant", 1, 1, 0),
        "i-good": (True, True, "compliant", 0, 0, 0),
        "i-none": (True, True, "compliant", 0, 0, 0),
        "i-null": (True, True, "compliant", 0, 0, 0),
    }
    assert summary(outputs, "tag_key") == [
        ("Project", 6, 3, 0, 50.0, 3),
        ("Tier", 6, 4, 0, 400 / 6, 2),
    ]


def test_optional_rule_gives_way_to_a_required_rule_with_the_same_key() -> None:
    """Required on RDS, checked wherever present elsewhere: one rule per resource, never two."""
    policy = {
        "required_tags": [{"key": "Owner", "pattern": "[a-z]+@example\\.com", "applies_to": ["rds:*"]}],
        "optional_tags": [{"key": "Owner", "pattern": "[a-z]+@example\\.com"}],
    }
    rows = [
        resource(ACCOUNT_1, REGION, RDS, "db-missing", {}),
        resource(ACCOUNT_1, REGION, RDS, "db-bad", {"Owner": "nobody"}),
        resource(ACCOUNT_1, REGION, EC2, "i-missing", {}),
        resource(ACCOUNT_1, REGION, EC2, "i-bad", {"Owner": "nobody"}),
        resource(ACCOUNT_1, REGION, EC2, "i-good", {"Owner": "ops@example.com"}),
    ]
    outputs = score(rows, policy)
    assert violations(outputs) == [
        ("i-bad", "Owner", "invalid_format", "error", "nobody"),
        ("db-bad", "Owner", "invalid_format", "error", "nobody"),
        ("db-missing", "Owner", "missing_required_tag", "error", None),
    ]
    assert [row["expected"] for row in outputs["violations"]] == [
        "matches [a-z]+@example\\.com",
        "matches [a-z]+@example\\.com",
        "key Owner",
    ]
    # Both rules have a tag_key row: the required one over the 2 databases, the optional one
    # over the 3 instances.
    assert summary(outputs, "tag_key") == [("Owner", 2, 0, 0, 0.0, 2), ("Owner", 3, 2, 0, 200 / 3, 1)]


# --- applies_to, prohibited keys and their globs ------------------------------------------------


def test_applies_to_globs_know_star_and_question_mark_and_nothing_else() -> None:
    policy = {
        "required_tags": [
            {"key": "A", "applies_to": ["?3:bucket"]},
            {"key": "B", "applies_to": ["lambda:func*"]},
            {"key": "C", "applies_to": ["[er]*"]},  # brackets are literal
        ]
    }
    rows = [
        resource(ACCOUNT_1, REGION, S3, "bucket", {}),
        resource(ACCOUNT_1, REGION, LAMBDA, "fn", {}),
        resource(ACCOUNT_1, REGION, EC2, "i-1", {}),
    ]
    outputs = score(rows, policy)
    assert violations(outputs) == [
        ("fn", "B", "missing_required_tag", "error", None),
        ("bucket", "A", "missing_required_tag", "error", None),
    ]
    assert statuses(outputs)["i-1"] == (False, None, "out_of_scope", 0, 0, 0)


def test_prohibited_key_globs_ignore_case_and_spare_aws_keys() -> None:
    policy = {"prohibited_keys": ["pass?word", "*_TOKEN", "100%"], "prohibited_severity": "warning"}
    rows = [
        resource(
            ACCOUNT_1,
            REGION,
            EC2,
            "i-1",
            {
                "PASS-WORD": "a",
                "passXXword": "b",
                "github_token": "c",
                "AWS:x_token": "d",  # AWS's own key, in any case
                "100%": "e",
                "1000": "f",  # '%' is literal in a glob
            },
        )
    ]
    outputs = score(rows, policy)
    assert violations(outputs) == [
        ("i-1", "100%", "prohibited_tag", "warning", "e"),
        ("i-1", "PASS-WORD", "prohibited_tag", "warning", "a"),
        ("i-1", "github_token", "prohibited_tag", "warning", "c"),
    ]
    # No tag rule: prohibited keys alone never put a resource in scope.
    assert statuses(outputs)["i-1"] == (False, None, "out_of_scope", 0, 3, 0)


# --- values -------------------------------------------------------------------------------------


def test_case_insensitive_values_with_wildcards_and_unicode() -> None:
    policy = {
        "required_tags": [
            {"key": "Env", "allowed_values": ["Prod", "Dev-*"], "case_sensitive_values": False},
            {"key": "Stadt", "allowed_values": ["İstanbul", "Zürich"]},  # case-sensitive (default)
        ]
    }
    rows = [
        resource(ACCOUNT_1, REGION, EC2, "i-1", {"Env": "PROD", "Stadt": "Zürich"}),
        resource(ACCOUNT_1, REGION, EC2, "i-2", {"Env": "dev-EU", "Stadt": "zürich"}),
        resource(ACCOUNT_1, REGION, EC2, "i-3", {"Env": "prod ", "Stadt": "İstanbul"}),
    ]
    assert violations(score(rows, policy)) == [
        ("i-2", "Stadt", "invalid_value", "error", "zürich"),
        ("i-3", "Env", "invalid_value", "error", "prod "),
    ]


# --- the tag limit ------------------------------------------------------------------------------


def test_max_user_tags_counts_only_keys_that_are_not_aws() -> None:
    policy = {"required_tags": [{"key": "Owner"}], "max_user_tags": 3, "max_user_tags_severity": "warning"}
    at_limit = {"Owner": "o", "a": "1", "b": "2", "aws:cloudformation:stack-name": "s", "AWS:x": "y"}
    rows = [
        resource(ACCOUNT_1, REGION, EC2, "i-at-limit", at_limit),
        resource(ACCOUNT_1, REGION, EC2, "i-over", {**at_limit, "c": "3"}),
        resource(ACCOUNT_1, REGION, EC2, "i-null", None),
    ]
    outputs = score(rows, policy)
    assert violations(outputs) == [
        ("i-null", "Owner", "missing_required_tag", "error", None),
        ("i-over", None, "too_many_tags", "warning", "4"),
    ]
    assert outputs["violations"][1]["expected"] == "at most 3 user tags"
    assert statuses(outputs)["i-over"] == (True, True, "compliant", 0, 1, 0)


def test_tag_limit_alone_is_a_policy_and_puts_nothing_in_scope() -> None:
    rows = [resource(ACCOUNT_1, REGION, S3, "b", {str(n): "v" for n in range(51)})]
    outputs = score(rows, {"max_user_tags": 50})
    assert violations(outputs) == [("b", None, "too_many_tags", "error", "51")]
    assert statuses(outputs) == {"b": (False, None, "out_of_scope", 1, 0, 0)}


# --- exemptions ---------------------------------------------------------------------------------

EXEMPTIONS = {
    "required_tags": [{"key": "CostCenter"}, {"key": "Owner", "severity": "warning"}],
    "prohibited_keys": ["secret*"],
    "max_user_tags": 2,
    "exemptions": [
        {
            "resources": ["i-legacy-*"],
            "keys": ["costcenter"],  # ignoring case
            "reason": "Legacy fleet, decommissioned in Q1",
            "expires": "2026-03-14",
        },
        {
            "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT_1}:i-vendor"],
            "reason": "Vendor appliance: tags managed by the vendor",
            "expires": "2026-06-30",
        },
        {
            "resources": ["i-legacy-2"],
            "reason": "Second exemption for i-legacy-2: never reported, the first one matches first",
            "keys": ["Cost*"],
            "expires": "2026-12-31",
        },
    ],
}
# (exemption_reason, exemption_expires) of the first two exemptions.
LEGACY = (EXEMPTIONS["exemptions"][0]["reason"], date(2026, 3, 14))
VENDOR = (EXEMPTIONS["exemptions"][1]["reason"], date(2026, 6, 30))
EXEMPTION_ROWS = [
    # Only CostCenter missing: exempt while the first exemption is in force.
    resource(ACCOUNT_1, REGION, EC2, "i-legacy-1", {"Owner": "o"}),
    # CostCenter exempt, but a prohibited key is not: non-compliant.
    resource(ACCOUNT_1, REGION, EC2, "i-legacy-2", {"Owner": "o", "secret_key": "x"}),
    # Everything waived by ARN: missing keys, a prohibited key and the tag limit.
    resource(ACCOUNT_1, REGION, EC2, "i-vendor", {"secret": "1", "a": "2", "b": "3"}),
    # Matches no exemption (ids are case-sensitive).
    resource(ACCOUNT_1, REGION, EC2, "I-LEGACY-3", {"Owner": "o"}),
]


def test_exemptions_in_force_on_their_expiry_day() -> None:
    outputs = score(EXEMPTION_ROWS, EXEMPTIONS, scored_date=date(2026, 3, 14))
    assert violations(outputs) == [
        ("I-LEGACY-3", "CostCenter", "missing_required_tag", "error", None),
        ("i-legacy-2", "secret_key", "prohibited_tag", "error", "x"),
    ]
    assert [
        (*row, exempted["exemption_reason"], exempted["exemption_expires"])
        for row, exempted in zip(
            violations(outputs, "exempted_violations"), outputs["exempted_violations"], strict=True
        )
    ] == [
        ("i-legacy-1", "CostCenter", "missing_required_tag", "error", None, *LEGACY),
        ("i-legacy-2", "CostCenter", "missing_required_tag", "error", None, *LEGACY),
        ("i-vendor", "CostCenter", "missing_required_tag", "error", None, *VENDOR),
        ("i-vendor", "Owner", "missing_required_tag", "warning", None, *VENDOR),
        ("i-vendor", "secret", "prohibited_tag", "error", "1", *VENDOR),
        ("i-vendor", None, "too_many_tags", "error", "3", *VENDOR),
    ]
    assert statuses(outputs) == {
        "I-LEGACY-3": (True, False, "non_compliant", 1, 0, 0),
        "i-legacy-1": (True, False, "exempt", 0, 0, 1),
        "i-legacy-2": (True, False, "non_compliant", 1, 0, 1),
        "i-vendor": (True, False, "exempt", 0, 0, 4),
    }
    # Exempt resources stay in scope and are not compliant: exemptions never raise the KPI.
    assert summary(outputs) == [("all", 4, 0, 2, 0.0, 2)]
    assert summary(outputs, "tag_key") == [("CostCenter", 4, 0, 3, 0.0, 1), ("Owner", 4, 3, 1, 75.0, 0)]


def test_exemptions_stop_applying_the_day_after_they_expire() -> None:
    outputs = score(EXEMPTION_ROWS, EXEMPTIONS, scored_date=date(2026, 3, 15))
    # The first exemption has expired; i-legacy-2's CostCenter is now waived by the third.
    assert violations(outputs) == [
        ("I-LEGACY-3", "CostCenter", "missing_required_tag", "error", None),
        ("i-legacy-1", "CostCenter", "missing_required_tag", "error", None),
        ("i-legacy-2", "secret_key", "prohibited_tag", "error", "x"),
    ]
    assert [
        (row["resource_id"], row["tag_key"], row["exemption_expires"])
        for row in outputs["exempted_violations"]
    ] == [
        ("i-legacy-2", "CostCenter", date(2026, 12, 31)),
        ("i-vendor", "CostCenter", date(2026, 6, 30)),
        ("i-vendor", "Owner", date(2026, 6, 30)),
        ("i-vendor", "secret", date(2026, 6, 30)),
        ("i-vendor", None, date(2026, 6, 30)),
    ]
    assert statuses(outputs)["i-legacy-1"] == (True, False, "non_compliant", 1, 0, 0)
    after_all = score(EXEMPTION_ROWS, EXEMPTIONS, scored_date=date(2027, 1, 1))
    assert after_all["exempted_violations"] == []
    assert len(after_all["violations"]) == 8


def test_a_key_exemption_never_waives_the_tag_limit() -> None:
    policy = {
        "max_user_tags": 1,
        "exemptions": [{"resources": ["*"], "keys": ["*"], "reason": "all keys", "expires": "2026-12-31"}],
    }
    outputs = score([resource(ACCOUNT_1, REGION, EC2, "i-1", {"a": "1", "b": "2"})], policy)
    assert violations(outputs) == [("i-1", None, "too_many_tags", "error", "2")]


def test_a_policy_with_exemptions_needs_a_scored_date() -> None:
    with pytest.raises(ValueError, match="has exemptions, which expire: pass the scored_date"):
        score(EXEMPTION_ROWS, EXEMPTIONS, scored_date=None)


def test_exemptions_are_judged_on_the_scored_day_through_the_lake(tmp_path: Path) -> None:
    """Through the lake: a day scored before the expiry keeps its exemption when rescored later
    (backfills are reproducible), and the exempted violations land in their own dataset."""
    for day in (date(2026, 3, 14), date(2026, 3, 15)):
        write_snapshot(tmp_path, EXEMPTION_ROWS, snapshot_date=day)
    policy = TaggingPolicy.model_validate({"version": "p1", **EXEMPTIONS})
    before = score_snapshot(tmp_path, date(2026, 3, 14), policy)
    after = score_snapshot(tmp_path, date(2026, 3, 15), policy)
    assert (before.violations, before.exempted_violations) == (2, 6)
    assert (after.violations, after.exempted_violations) == (3, 5)
    written = pq.read_table(before.files["exempted_violations"])
    assert written.schema.names == lake.EXEMPTED_VIOLATIONS.schema.names
    assert written.column("exemption_expires").to_pylist()[0] == date(2026, 3, 14)


# --- version and metadata -----------------------------------------------------------------------


def test_version_is_recorded_and_metadata_changes_nothing() -> None:
    rows = [resource(ACCOUNT_1, REGION, EC2, "i-1", {})]
    plain = score(rows, {"required_tags": [{"key": "Owner"}]})
    annotated = score(
        rows,
        {
            "name": "Baseline",
            "description": "d",
            "metadata": {"owner": "finops@example.com", "ticket": 42, "approved": date(2026, 1, 5)},
            "required_tags": [{"key": "Owner"}],
        },
    )
    assert annotated == plain
    assert {row["policy_version"] for name in plain for row in plain[name]} == {"p1"}
