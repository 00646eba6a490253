"""The tagging-policy model and loader: the default loads; every bad policy is named precisely."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tag_compliance.config import DEFAULT_POLICY, REPO_ROOT
from tag_compliance.policy import (
    GLOB_MAX,
    MAX_POLICY_BYTES,
    MAX_POLICY_NODES,
    MAX_REPORTED_ERRORS,
    POLICY_TABLE_SCHEMAS,
    PolicyError,
    TaggingPolicy,
    fold_case,
    format_location,
    glob_matches,
    glob_to_like,
    load_policy,
    parse_policy,
    wildcard_to_like,
)

VALID = {
    "version": "1",
    "required_tags": [
        {"key": "CostCenter", "pattern": "CC-[0-9]{4}"},
        {"key": "Environment", "allowed_values": ["prod", "dev-*"]},
    ],
}


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(content), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return path


def policy_with(**rule_changes: object) -> dict:
    """VALID with the first rule changed."""
    data = json.loads(json.dumps(VALID))
    data["required_tags"][0].update(rule_changes)
    return data


def load_error(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert str(path) in message, "every policy error names the file"
    return message


# --- valid policies ----------------------------------------------------------------------------


def test_default_policy_loads() -> None:
    policy = load_policy(DEFAULT_POLICY)
    assert policy.version == "2026.11.1"
    assert [rule.key for rule in policy.required_tags] == [
        "CostCenter",
        "Environment",
        "Owner",
        "Application",
        "DataClassification",
    ]
    application = policy.required_tags[3]
    assert application.severity == "warning"
    assert application.applies_to == ["ec2:*", "ecs:*", "lambda:*"]
    assert policy.required_tags[0].applies_to is None
    assert policy.prohibited_keys == ["password*", "secret*"]
    assert policy.prohibited_severity == "error"
    assert policy.summary() == (
        "version 2026.11.1, 5 required tags (4 error, 1 warning), 2 prohibited key globs"
    )


def test_yaml_and_json_give_the_same_policy(tmp_path: Path) -> None:
    from_yaml = load_policy(write(tmp_path, "p.yml", VALID))
    from_json = load_policy(write(tmp_path, "p.json", VALID))
    assert from_yaml == from_json == TaggingPolicy.model_validate(VALID)


def test_defaults(tmp_path: Path) -> None:
    rule = load_policy(write(tmp_path, "p.yaml", VALID)).required_tags[0]
    assert (rule.severity, rule.case_sensitive_values, rule.applies_to, rule.allowed_values) == (
        "error",
        True,
        None,
        None,
    )


def test_prohibited_keys_alone_is_a_policy(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "p.yaml", "version: '1'\nprohibited_keys: ['secret*']\n"))
    assert policy.required_tags == []


def test_unicode_and_128_char_key_accepted() -> None:
    key = "Ключ-" + "k" * 123
    policy = TaggingPolicy.model_validate({"version": "1", "required_tags": [{"key": key}]})
    assert len(policy.required_tags[0].key) == 128


# --- bad policies: each names file, field path and value ---------------------------------------


def test_bad_yaml_syntax_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "version: '1'\nrequired_tags: [\n  - key: x\n")
    message = load_error(path)
    assert "invalid YAML at line 3" in message


def test_bad_json_syntax_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{"version": "1",\n "required_tags": [}\n')
    message = load_error(path)
    assert "invalid JSON at line 2, column 20" in message


def test_unknown_field(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(severty="error")))
    assert "required_tags[0].severty: Extra inputs are not permitted (got 'error')" in message


def test_unknown_top_level_field(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", {**VALID, "exceptions": []}))
    assert "exceptions: Extra inputs are not permitted (got []) [extra_forbidden]" in message


def test_bad_severity(tmp_path: Path) -> None:
    data = json.loads(json.dumps(VALID))
    data["required_tags"].append({"key": "Owner", "severity": "critical"})
    message = load_error(write(tmp_path, "p.yaml", data))
    assert "required_tags[2].severity: Input should be 'error' or 'warning' (got 'critical')" in message


def test_bad_prohibited_severity(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", {**VALID, "prohibited_severity": "fatal"}))
    assert "prohibited_severity: Input should be 'error' or 'warning' (got 'fatal')" in message


@pytest.mark.parametrize("pattern", ["CC-([0-9]", "CC-(?=[0-9])", r"(a)\1"])
def test_bad_re2_pattern(tmp_path: Path, pattern: str) -> None:
    # The last two are valid Python `re` but not RE2 (no lookaround, no backreferences).
    message = load_error(write(tmp_path, "p.yaml", policy_with(pattern=pattern)))
    assert "required_tags[0].pattern: not a valid RE2 pattern" in message
    assert f"(got {pattern!r})" in message


def test_duplicate_key_ignoring_case(tmp_path: Path) -> None:
    data = json.loads(json.dumps(VALID))
    data["required_tags"].append({"key": "costcenter"})
    message = load_error(write(tmp_path, "p.yaml", data))
    assert "required_tags[2].key: 'costcenter' differs only in case from required_tags[0].key" in message
    assert "(got 'costcenter')" in message


def test_empty_policy(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", {"version": "1", "required_tags": []}))
    assert (
        "required_tags: the policy has no required_tags, optional_tags, prohibited_keys or "
        "max_user_tags, so it would check nothing (got []) [empty_policy]"
    ) in message


def test_missing_version(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.json", {"required_tags": VALID["required_tags"]}))
    assert "version: Field required" in message


def test_version_must_be_text(tmp_path: Path) -> None:
    # Unquoted 2026.10 is a float in YAML: refusing it beats silently storing "2026.1".
    message = load_error(write(tmp_path, "p.yaml", "version: 2026.10\nprohibited_keys: [x]\n"))
    assert "version: Input should be a valid string (got 2026.1)" in message


def test_key_too_long(tmp_path: Path) -> None:
    key = "k" * 129
    message = load_error(write(tmp_path, "p.yaml", policy_with(key=key)))
    assert "required_tags[0].key: String should have at most 128 characters" in message
    assert key in message


def test_empty_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(key="")))
    assert "required_tags[0].key: String should have at least 1 character (got '')" in message


def test_reserved_aws_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(key="AWS:CloudFormation")))
    assert "required_tags[0].key: keys starting with 'aws:' are reserved" in message


def test_empty_allowed_values(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(allowed_values=[])))
    assert "required_tags[0].allowed_values: List should have at least 1 item" in message


def test_allowed_values_must_be_a_list(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(allowed_values="prod")))
    assert "required_tags[0].allowed_values: Input should be a valid list (got 'prod')" in message


def test_allowed_value_must_be_text(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.yaml", policy_with(allowed_values=["a", 7])))
    assert "required_tags[0].allowed_values[1]: Input should be a valid string (got 7)" in message


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    data = {"required_tags": [{"key": "A", "severity": "high"}, {"key": "B", "color": "red"}]}
    message = load_error(write(tmp_path, "p.yaml", data))
    assert "3 errors" in message
    for fragment in ("version: Field required", "required_tags[0].severity", "required_tags[1].color"):
        assert fragment in message


def test_duplicate_yaml_mapping_key(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "version: '1'\nversion: '2'\nprohibited_keys: [x]\n")
    message = load_error(path)
    assert "invalid YAML at line 2" in message
    assert "duplicate key 'version'" in message


def test_duplicate_json_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.json", '{"version": "1", "version": "2"}'))
    assert "duplicate key 'version'" in message


@pytest.mark.parametrize(("content", "kind"), [("", "nothing"), ("- a\n- b\n", "list"), ("3\n", "int")])
def test_top_level_must_be_a_mapping(tmp_path: Path, content: str, kind: str) -> None:
    message = load_error(write(tmp_path, "p.yaml", content))
    assert f"a policy must be a mapping at the top level, got {kind}" in message


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    assert "unknown policy file type '.toml'" in load_error(write(tmp_path, "p.toml", "x"))
    assert "cannot read policy file" in load_error(tmp_path / "absent.yaml")


def test_parse_policy_names_its_source() -> None:
    with pytest.raises(PolicyError, match=r"^inline: invalid tagging policy"):
        parse_policy({"version": "1"}, "inline")


def test_format_location() -> None:
    assert format_location(("required_tags", 2, "severity")) == "required_tags[2].severity"
    assert format_location(("prohibited_keys", 0)) == "prohibited_keys[0]"
    assert format_location(()) == ""


# --- the policy as DuckDB data -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "like"),
    [
        ("prod", "prod"),
        ("dev-*", "dev-%"),
        ("*", "%"),
        ("50%_off*", "50\\%\\_off%"),
        ("a\\b*", "a\\\\b%"),
        ("it's", "it's"),
    ],
)
def test_wildcard_to_like(value: str, like: str) -> None:
    assert wildcard_to_like(value) == like


def test_to_tables_holds_policy_values_as_data() -> None:
    policy = TaggingPolicy.model_validate(
        {
            "version": "v'1",
            "required_tags": [
                {"key": "it's", "allowed_values": ["a'b", "50%*"], "severity": "warning"},
                {"key": "Env", "pattern": "'.*", "applies_to": ["ec2:*", "rds:db"]},
            ],
            "prohibited_keys": ["pass'word*", "pass'word*"],
        }
    )
    tables = policy.to_tables()
    assert {name: table.schema for name, table in tables.items()} == POLICY_TABLE_SCHEMAS
    assert tables["policy_info"].to_pylist() == [
        {
            "policy_version": "v'1",
            "prohibited_severity": "error",
            "max_user_tags": None,
            "max_user_tags_severity": "error",
            "expected_max_tags": None,
        }
    ]
    rules = tables["policy_rules"].to_pylist()
    assert [
        (r["rule_id"], r["tag_key"], r["required"], r["severity"], r["applies_to_all"]) for r in rules
    ] == [
        (0, "it's", True, "warning", True),
        (1, "Env", True, "error", False),
    ]
    assert rules[0]["expected_allowed"] == "one of: a'b, 50%*"
    assert rules[1]["expected_format"] == "matches '.*"
    assert tables["policy_allowed_values"].to_pylist() == [
        {"rule_id": 0, "allowed_value": "a'b", "like_pattern": "a'b"},
        {"rule_id": 0, "allowed_value": "50%*", "like_pattern": "50\\%%"},
    ]
    assert tables["policy_rule_applies_to"].to_pylist() == [
        {"rule_id": 1, "resource_type_glob": "ec2:*", "like_pattern": "ec2:%"},
        {"rule_id": 1, "resource_type_glob": "rds:db", "like_pattern": "rds:db"},
    ]
    # Duplicate globs collapse: one violation per key whatever the policy repeats.
    assert tables["policy_prohibited_keys"].to_pylist() == [
        {"key_glob": "pass'word*", "like_pattern": "pass'word%"}
    ]


def test_tables_of_a_policy_without_prohibited_keys_are_typed_and_empty() -> None:
    tables = TaggingPolicy.model_validate(VALID).to_tables()
    assert tables["policy_prohibited_keys"].num_rows == 0
    assert tables["policy_rule_applies_to"].num_rows == 0
    assert tables["policy_prohibited_keys"].schema == POLICY_TABLE_SCHEMAS["policy_prohibited_keys"]


# --- the policy language's newer features ------------------------------------------------------

FULL = {
    "version": "2026.12",
    "name": "Baseline",
    "description": "Everything at once.",
    "metadata": {"owner": "finops@example.com", "ticket": 42, "reviewed": "2026-11-01", "tags": ["a"]},
    "required_tags": [{"key": "Owner", "applies_to": ["rds:*"]}],
    "optional_tags": [
        {"key": "Owner", "pattern": "[a-z]+"},
        {"key": "Project", "allowed_values": ["atlas", "zeus-*"], "severity": "warning"},
    ],
    "prohibited_keys": ["secret?"],
    "max_user_tags": 40,
    "max_user_tags_severity": "warning",
    "exemptions": [
        {"resources": ["i-legacy-*"], "keys": ["Owner"], "reason": "Legacy", "expires": "2027-03-31"},
        {"resources": ["arn:aws:s3:::logs"], "reason": "Log bucket", "expires": "2026-12-31"},
    ],
}


def test_a_policy_using_every_feature(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "full.yaml", FULL))
    assert policy.exemptions[0].expires == date(2027, 3, 31)
    assert policy.metadata["reviewed"] == "2026-11-01"  # YAML dates stay text in metadata
    assert policy.summary() == (
        "version 2026.12, 1 required tags (1 error, 0 warning), 2 optional tags, "
        "1 prohibited key globs, at most 40 user tags, 2 exemptions"
    )
    tables = policy.to_tables()
    assert [(r["rule_id"], r["tag_key"], r["required"]) for r in tables["policy_rules"].to_pylist()] == [
        (0, "Owner", True),
        (1, "Owner", False),
        (2, "Project", False),
    ]
    assert tables["policy_info"].to_pylist()[0]["expected_max_tags"] == "at most 40 user tags"
    assert tables["policy_exemptions"].to_pylist() == [
        {"exemption_id": 0, "reason": "Legacy", "expires": date(2027, 3, 31), "all_keys": False},
        {"exemption_id": 1, "reason": "Log bucket", "expires": date(2026, 12, 31), "all_keys": True},
    ]
    assert tables["policy_exemption_resources"].to_pylist() == [
        {"exemption_id": 0, "resource_glob": "i-legacy-*", "like_pattern": "i-legacy-%"},
        {"exemption_id": 1, "resource_glob": "arn:aws:s3:::logs", "like_pattern": "arn:aws:s3:::logs"},
    ]
    assert tables["policy_exemption_keys"].to_pylist() == [
        {"exemption_id": 0, "key_glob": "Owner", "like_pattern": "Owner"}
    ]
    assert tables["policy_prohibited_keys"].to_pylist() == [
        {"key_glob": "secret?", "like_pattern": "secret_"}
    ]


@pytest.mark.parametrize(
    ("glob", "text", "case_sensitive", "matches"),
    [
        ("ec2:*", "ec2:instance", True, True),
        ("ec2:*", "EC2:instance", True, False),
        ("ec2:*", "EC2:instance", False, True),
        ("?3:bucket", "s3:bucket", True, True),
        ("?3:bucket", "ss3:bucket", True, False),
        ("[ab]", "a", True, False),  # brackets are literal
        ("[ab]", "[ab]", True, True),
        ("a%b_c", "a%b_c", True, True),
        ("a%b_c", "axbyc", True, False),
        ("*", "line\nbreak", True, True),
        ("İ*", "i-x", False, True),  # folded as DuckDB does: 'İ' -> 'i'
    ],
)
def test_glob_matches(glob: str, text: str, case_sensitive: bool, matches: bool) -> None:
    assert glob_matches(glob, text, case_sensitive) is matches


def test_glob_to_like_escapes_like_metacharacters() -> None:
    assert glob_to_like("a*b?c%d_e\\f") == "a%b_c\\%d\\_e\\\\f"


def test_fold_case_is_duckdb_lower() -> None:
    assert fold_case("İSTANBUL ΟΔΟΣ") == "istanbul οδοσ"
    assert "İ".lower() != fold_case("İ")  # the one difference from Python's str.lower


# --- every kind of bad policy gets its named error ------------------------------------------------

RULE = {"key": "CostCenter"}
EXPIRING = {"resources": ["i-1"], "reason": "r", "expires": "2027-01-01"}

BAD_POLICIES: list[tuple[str, dict[str, Any], str, str]] = [
    # (error name, policy, field path, repr of the offending value)
    ("extra_forbidden", {"required_tags": [{**RULE, "colour": "red"}]}, "required_tags[0].colour", "'red'"),
    (
        "literal_error",
        {"required_tags": [{**RULE, "severity": "critical"}]},
        "required_tags[0].severity",
        "'critical'",
    ),
    ("string_type", {"version": 1.5, "required_tags": [RULE]}, "version", "1.5"),
    (
        "string_too_long",
        {"required_tags": [{"key": "k" * 129}]},
        "required_tags[0].key",
        "'" + "k" * 129 + "'",
    ),
    (
        "reserved_key",
        {"optional_tags": [{"key": "AWS:cloudformation"}]},
        "optional_tags[0].key",
        "'AWS:cloudformation'",
    ),
    (
        "re2_pattern",
        {"required_tags": [{**RULE, "pattern": "(?<=x)y"}]},
        "required_tags[0].pattern",
        "'(?<=x)y'",
    ),
    (
        "duplicate_key",
        {"required_tags": [RULE], "optional_tags": [{"key": "costcenter"}]},
        "optional_tags[0].key",
        "'costcenter'",
    ),
    (
        "prohibited_rule_key",
        {"required_tags": [{"key": "SecretOwner"}], "prohibited_keys": ["secret*"]},
        "required_tags[0].key",
        "'SecretOwner'",
    ),
    (
        "blank_allowed_value",
        {"required_tags": [{**RULE, "allowed_values": ["a", " "]}]},
        "required_tags[0].allowed_values[1]",
        "' '",
    ),
    (
        "unreachable_allowed_value",
        {"required_tags": [{**RULE, "pattern": "CC-[0-9]+", "allowed_values": ["CC-1", "cc-2"]}]},
        "required_tags[0].allowed_values[1]",
        "'cc-2'",
    ),
    ("less_than_equal", {"max_user_tags": 51}, "max_user_tags", "51"),
    ("greater_than_equal", {"max_user_tags": 0}, "max_user_tags", "0"),
    ("int_type", {"max_user_tags": "40"}, "max_user_tags", "'40'"),
    (
        "date_from_datetime_parsing",
        {"required_tags": [RULE], "exemptions": [{**EXPIRING, "expires": "next year"}]},
        "exemptions[0].expires",
        "'next year'",
    ),
    (
        "date_from_datetime_parsing",
        {"required_tags": [RULE], "exemptions": [{**EXPIRING, "expires": "2027-02-30"}]},
        "exemptions[0].expires",
        "'2027-02-30'",
    ),
    (
        "missing",
        {"required_tags": [RULE], "exemptions": [{"resources": ["i-1"], "reason": "r"}]},
        "exemptions[0].expires",
        "",
    ),
    (
        "blank_reason",
        {"required_tags": [RULE], "exemptions": [{**EXPIRING, "reason": "  "}]},
        "exemptions[0].reason",
        "'  '",
    ),
    (
        "too_short",
        {"required_tags": [RULE], "exemptions": [{**EXPIRING, "resources": []}]},
        "exemptions[0].resources",
        "[]",
    ),
    ("empty_policy", {"required_tags": [], "optional_tags": []}, "required_tags", "[]"),
    (
        "unknown_resource_type",
        {"required_tags": [{**RULE, "applies_to": ["ec2:*", "ec2:instances"]}]},
        "required_tags[0].applies_to[1]",
        "'ec2:instances'",
    ),
    (
        "unknown_resource_type",
        {"optional_tags": [{**RULE, "applies_to": ["S3:*"]}]},
        "optional_tags[0].applies_to[0]",
        "'S3:*'",
    ),
    (
        "string_too_long",
        {"required_tags": [RULE], "exemptions": [{**EXPIRING, "resources": ["*" * (GLOB_MAX + 1)]}]},
        "exemptions[0].resources[0]",
        repr("*" * 300) + f"... ({GLOB_MAX + 1} characters)",
    ),
]


@pytest.mark.parametrize(
    ("name", "policy", "path", "value"),
    BAD_POLICIES,
    ids=[f"{name}-{path}" for name, _, path, _ in BAD_POLICIES],
)
def test_each_kind_of_bad_policy_names_file_field_value_and_error(
    tmp_path: Path, name: str, policy: dict[str, Any], path: str, value: str
) -> None:
    file = write(tmp_path, "team-policy.yaml", {"version": "1", **policy})
    message = load_error(file)
    line = next(line for line in message.splitlines() if line.startswith(f"  {file}: {path}: "))
    assert line.endswith(f"[{name}]"), line
    assert not re.search(r"\{\w+(![rsa])?\}", line), f"a placeholder was left unformatted: {line}"
    if value:
        assert f"(got {value})" in line
    else:
        assert "(got" not in line  # nothing there to show


def test_there_are_at_least_ten_kinds_of_named_bad_policy() -> None:
    assert len({name for name, *_ in BAD_POLICIES}) >= 10


# --- the documented examples ----------------------------------------------------------------------

POLICIES_DIR = DEFAULT_POLICY.parent
EXAMPLE_FEATURES: dict[str, Callable[[TaggingPolicy], bool]] = {
    # example file -> the feature it documents, as a fact about the loaded policy
    "default.yaml": lambda p: bool(p.required_tags and p.prohibited_keys),
    "by-resource-type.yaml": lambda p: sum(rule.applies_to is not None for rule in p.required_tags) >= 2,
    "case-insensitive-values.yaml": lambda p: any(not rule.case_sensitive_values for rule in p.required_tags),
    "optional-tags.yaml": lambda p: (
        bool(p.optional_tags)
        and any(rule.key in {r.key for r in p.required_tags} for rule in p.optional_tags)
    ),
    "tag-limit.yaml": lambda p: p.max_user_tags is not None,
    "exemptions.yaml": lambda p: bool(p.exemptions and p.metadata and p.name),
    "imported-org-policy.yaml": lambda p: p.metadata.get("source") == "aws-organizations-tag-policy",
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_FEATURES))
def test_every_example_policy_loads_and_shows_its_feature(name: str) -> None:
    assert EXAMPLE_FEATURES[name](load_policy(POLICIES_DIR / name))


def test_every_example_policy_is_documented_and_tested() -> None:
    documented = set(
        re.findall(r"include/policies/([\w.-]+\.yaml)", (REPO_ROOT / "docs/policy.md").read_text())
    )
    on_disk = {path.name for path in POLICIES_DIR.glob("*.yaml")}
    assert documented == on_disk == set(EXAMPLE_FEATURES)


def test_a_rule_key_is_prohibited_only_if_the_documented_folding_says_so(tmp_path: Path) -> None:
    """Python's re.IGNORECASE would also equate final and medial sigma, and long s with s;
    DuckDB's lower() (and so the scoring) does not, so neither does the policy check."""
    policy = {
        "version": "1",
        "required_tags": [{"key": "Σx"}, {"key": "ſx"}],
        "prohibited_keys": ["ς*", "s*"],
    }
    assert load_policy(write(tmp_path, "p.yaml", policy)).prohibited_keys == ["ς*", "s*"]


# --- inputs that must not hang us -----------------------------------------------------------------


def test_a_message_names_the_prohibited_glob_and_the_pattern(tmp_path: Path) -> None:
    prohibited = load_error(
        write(
            tmp_path,
            "p.yaml",
            {"version": "1", "required_tags": [{"key": "SecretOwner"}], "prohibited_keys": ["x", "secret*"]},
        )
    )
    assert "'SecretOwner' is also prohibited by prohibited_keys glob 'secret*'" in prohibited
    unreachable = load_error(write(tmp_path, "q.yaml", policy_with(allowed_values=["cc-2"])))
    assert "does not match the rule's pattern 'CC-[0-9]{4}'" in unreachable


def test_unknown_resource_type_names_the_known_types_and_the_near_miss(tmp_path: Path) -> None:
    from tag_compliance.aws.collectors import resource_types

    message = load_error(write(tmp_path, "p.yaml", policy_with(applies_to=["ec2:instances", "S3:*"])))
    known = ", ".join(resource_types())
    assert (
        f"applies_to[0]: matches no resource type this tool collects ({known}); did you mean 'ec2:instance'?"
        in message
    )
    assert (
        f"applies_to[1]: matches no resource type this tool collects ({known}); did you mean 's3:*'?"
        in message
    )
    assert "2 errors" in message
    # The language gives such a glob a meaning (it matches nothing); the loader refuses it.
    assert TaggingPolicy.model_validate(policy_with(applies_to=["S3:*"])).required_tags[0].applies_to == [
        "S3:*"
    ]


def yaml_alias_bomb(levels: int = 9) -> str:
    """The billion-laughs document: each level references the previous one nine times."""
    lines = [
        'version: "1"',
        "prohibited_keys: [x]",
        'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    lines += [f"l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def yaml_merge_bomb(levels: int = 9) -> str:
    """Merge keys: PyYAML copies each merged mapping's pairs, nine times per level."""
    lines = ['version: "1"', "prohibited_keys: [x]", "m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 9)}]}}" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("bomb", [yaml_alias_bomb(), yaml_merge_bomb()], ids=["aliases", "merge-keys"])
def test_a_yaml_alias_bomb_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bomb: str
) -> None:
    import tracemalloc

    from tag_compliance import policy

    assert len(bomb.encode()) < 2000  # a small file...
    built: list[object] = []
    monkeypatch.setattr(policy._UniqueKeyLoader, "construct_document", lambda self, node: built.append(node))
    monkeypatch.setattr(policy.TaggingPolicy, "model_validate", lambda data, **_: built.append(data))
    tracemalloc.start()
    try:
        message = load_error(write(tmp_path, "bomb.yaml", bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.endswith("[alias_expansion]")
    assert f"more than {MAX_POLICY_NODES:,} YAML nodes" in message
    assert built == []  # ...refused from its node graph: no object was built, nothing validated
    assert peak < 64 * 1024 * 1024  # and counting the expansion stopped at the bound


def test_anchors_within_the_bound_are_fine(tmp_path: Path) -> None:
    text = (
        'version: "1"\n'
        "required_tags:\n"
        "  - {key: Owner, applies_to: &compute [ec2:*, lambda:*]}\n"
        "  - {key: Team, applies_to: *compute}\n"
    )
    policy = load_policy(write(tmp_path, "p.yaml", text))
    assert [rule.applies_to for rule in policy.required_tags] == [["ec2:*", "lambda:*"]] * 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("nested.yaml", 'version: "1"\nprohibited_keys: [x]\nmetadata: {a: ' + "[" * 40 + "]" * 40 + "}\n"),
        ("recursion.yaml", "[" * 100_000 + "]" * 100_000),
        ("recursion.json", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_a_document_nested_too_deep_is_refused(tmp_path: Path, name: str, text: str) -> None:
    message = load_error(write(tmp_path, name, text))
    assert message.endswith("[document_too_deep]")
    assert "Traceback" not in message


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "big.yaml", 'version: "1"\nprohibited_keys: [x]\n' + "# padding\n" * 300_000)
    assert path.stat().st_size > 2 * MAX_POLICY_BYTES
    message = load_error(path)
    assert message.endswith("[document_too_large]")
    assert f"larger than {MAX_POLICY_BYTES:,} bytes" in message


def test_thousands_of_errors_are_reported_as_the_first_hundred_and_a_count(tmp_path: Path) -> None:
    rules = [{"key": f"Key{n}", "severity": "fatal"} for n in range(1000)]
    message = load_error(write(tmp_path, "p.yaml", {"version": "1", "required_tags": rules}))
    lines = message.splitlines()
    assert lines[0].endswith("invalid tagging policy, 1000 errors:")
    assert len(lines) == 1 + MAX_REPORTED_ERRORS + 1
    assert lines[-1].endswith(f"... and {1000 - MAX_REPORTED_ERRORS} more errors")


def test_a_huge_value_is_shown_cut_short(tmp_path: Path) -> None:
    # The message's repr is bounded before it is built: a 100,000-item list shows a few items.
    message = load_error(write(tmp_path, "p.json", {**VALID, "name": ["x"] * 100_000}))
    line = next(line for line in message.splitlines() if ": name: " in line)
    assert len(line) < 400
    assert "..." in line


PATHOLOGICAL_GLOB = "*a" * 12 + "*b"
"""Backtracking over 13 stars against 128 'a's is ~10**16 steps; RE2 is linear in the key."""


def test_globs_match_in_linear_time_with_re2() -> None:
    from tag_compliance import policy

    assert isinstance(policy._compiled_glob(PATHOLOGICAL_GLOB), policy.re2._Regexp)
    assert glob_matches(PATHOLOGICAL_GLOB, "a" * 127 + "b")
    assert not glob_matches(PATHOLOGICAL_GLOB, "a" * 128)
    assert glob_matches("?" * GLOB_MAX, "é" * GLOB_MAX)  # '?' is one character, as in LIKE


def test_a_pathological_prohibited_glob_validates_within_a_small_cpu_budget(tmp_path: Path) -> None:
    # The work bound, measured as the CPU seconds the checking process itself may use (other
    # jobs on the machine do not count): Python's backtracking `re` took 96 s on a smaller case.
    import subprocess
    import sys

    keys = ["a" * 128, "A" * 127, "aA" * 60]
    path = write(
        tmp_path,
        "p.yaml",
        {
            "version": "1",
            "required_tags": [{"key": key} for key in keys],
            "prohibited_keys": [PATHOLOGICAL_GLOB] * 50,
        },
    )
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (60, 60))\n"
        "from tag_compliance.policy import load_policy\n"
        "print(len(load_policy(sys.argv[1]).required_tags))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "3"
