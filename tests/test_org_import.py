"""Importing AWS Organizations tag policies: exact policies and warnings for realistic inputs,
every error named precisely, the CLI, the checked-in example, and scoring with the result."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tag_compliance.aws.collectors import resource_types
from tag_compliance.cli import main
from tag_compliance.config import DEFAULT_POLICY
from tag_compliance.files import write_text_atomically
from tag_compliance.org_import import (
    ImportResult,
    OrgPolicyError,
    Scope,
    import_org_policy,
    read_org_policy_file,
    render_policy,
)
from tag_compliance.policy import PolicyError, load_policy
from tag_compliance.scoring import connect, score_resources
from tests.sql_fixtures import ACCOUNT_1, resource, resources_table

FIXTURES = Path(__file__).parent / "fixtures" / "org_policies"
DOCS_EXAMPLE = FIXTURES / "aws-docs-costcenter.json"
BASELINE = FIXTURES / "org-baseline.describe-policy.json"
EFFECTIVE = FIXTURES / "effective-policy-222233334444.json"
EXAMPLE_POLICY = DEFAULT_POLICY.parent / "imported-org-policy.yaml"

COLLECTED = ", ".join(resource_types())
INHERITANCE = "ignored: it only controls what child policies may change (inheritance)"
NOT_ENFORCED = (
    "but reports every resource carrying the key, so the rule checks all types (the enforced types "
    "are in its description; --scope enforced limits the rule to them)"
)
NO_VALUES = "absent: AWS accepts any value, even an empty one; this tool reports a blank value as empty_value"


def import_file(path: Path, scope: Scope = "all") -> ImportResult:
    data, raw = read_org_policy_file(path)
    return import_org_policy(data, str(path), raw, scope)


def import_data(data: object, scope: Scope = "all") -> ImportResult:
    return import_org_policy(data, "in/policy.json", json.dumps(data).encode(), scope)


def dumped(result: ImportResult) -> dict[str, Any]:
    return result.policy.model_dump(mode="json", exclude_defaults=True)


def rules(result: ImportResult) -> dict[str, list[dict[str, Any]]]:
    """Both rule lists without descriptions (those are asserted on the fixtures)."""
    data = dumped(result)
    return {
        field: [{k: v for k, v in rule.items() if k != "description"} for rule in data.get(field, [])]
        for field in ("required_tags", "optional_tags")
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the three fixtures ------------------------------------------------------------------------


def test_aws_docs_example() -> None:
    result = import_file(DOCS_EXAMPLE)
    digest = sha256(DOCS_EXAMPLE)
    warning = (
        "tags.costcenter.enforced_for: AWS blocks noncompliant tagging on "
        f"secretsmanager:ALL_SUPPORTED, ec2:instance {NOT_ENFORCED}"
    )
    assert result.warnings == [warning]
    assert dumped(result) == {
        "version": f"org-{digest[:12]}",
        "name": "Imported from aws-docs-costcenter.json",
        "description": "Imported with --scope all from an AWS Organizations tag policy document.",
        "metadata": {
            "source": "aws-organizations-tag-policy",
            "source_file": "aws-docs-costcenter.json",
            "source_sha256": digest,
            "import_warnings": [warning],
        },
        "optional_tags": [
            {
                "key": "CostCenter",
                "description": 'AWS tag policy statement "costcenter": key case and values, wherever '
                "the key is set. AWS enforces it for: secretsmanager:ALL_SUPPORTED, ec2:instance.",
                "allowed_values": ["100", "200", "300*"],
            }
        ],
    }


def test_aws_docs_example_scope_enforced() -> None:
    result = import_file(DOCS_EXAMPLE, scope="enforced")
    assert result.warnings == []
    assert dumped(result)["optional_tags"] == [
        {
            "key": "CostCenter",
            "description": 'AWS tag policy statement "costcenter": key case and values, checked on '
            "the types AWS enforces it for (secretsmanager:ALL_SUPPORTED, ec2:instance).",
            "allowed_values": ["100", "200", "300*"],
            "applies_to": ["secretsmanager:*", "ec2:instance"],
        }
    ]
    assert result.policy.description == (
        "Imported with --scope enforced from an AWS Organizations tag policy document."
    )
    # Another rule set, so another version: results record which one scored them.
    assert result.policy.version == import_file(DOCS_EXAMPLE).policy.version + "-enforced"


BASELINE_WARNINGS = [
    f"tags.costcenter.tag_key.@@operators_allowed_for_child_policies: {INHERITANCE}",
    f"tags.costcenter.tag_value.@@operators_allowed_for_child_policies: {INHERITANCE}",
    f"tags.environment.enforced_for: AWS blocks noncompliant tagging on ec2:instance, rds:db {NOT_ENFORCED}",
    f"tags.owner.tag_value: {NO_VALUES}",
    "tags.dataclassification.enforced_for: AWS blocks noncompliant tagging on s3:bucket, "
    f"dynamodb:table {NOT_ENFORCED}",
    f"tags.application.@@operators_allowed_for_child_policies: {INHERITANCE}",
]
BASELINE_REQUIRED = [
    {"key": "CostCenter", "allowed_values": ["CC-*"], "applies_to": ["ec2:*", "rds:db", "s3:bucket"]},
    {"key": "Environment", "allowed_values": ["prod", "staging", "dev", "sandbox"], "applies_to": ["*"]},
    {"key": "Owner", "applies_to": ["ec2:*", "lambda:function", "ecs:service"]},
    {
        "key": "DataClassification",
        "allowed_values": ["public", "internal", "confidential", "restricted"],
        "applies_to": ["s3:bucket", "rds:db", "dynamodb:table"],
    },
]


def test_org_baseline_from_describe_policy() -> None:
    result = import_file(BASELINE)
    assert result.warnings == BASELINE_WARNINGS
    assert rules(result) == {
        "required_tags": BASELINE_REQUIRED,
        "optional_tags": [
            {"key": "CostCenter", "allowed_values": ["CC-*"]},
            {"key": "Environment", "allowed_values": ["prod", "staging", "dev", "sandbox"]},
            {"key": "Owner"},
            {
                "key": "DataClassification",
                "allowed_values": ["public", "internal", "confidential", "restricted"],
            },
            {"key": "Application", "allowed_values": ["*"]},
        ],
    }
    policy = result.policy
    assert policy.description == (
        'Imported with --scope all from the AWS Organizations tag policy "org-tagging-baseline" '
        '("p-95ouootbaseline").'
    )
    assert [rule.description for rule in policy.required_tags] == [
        'AWS tag policy statement "costcenter": AWS reports the key as required for '
        "ec2:ALL_SUPPORTED, rds:db, s3:bucket.",
        'AWS tag policy statement "environment": AWS reports the key as required for ALL_SUPPORTED.',
        'AWS tag policy statement "owner": AWS reports the key as required for '
        "ec2:ALL_SUPPORTED, lambda:function, ecs:service.",
        'AWS tag policy statement "dataclassification": AWS reports the key as required for '
        "s3:bucket, rds:db, dynamodb:table.",
    ]
    assert [rule.description for rule in policy.optional_tags] == [
        'AWS tag policy statement "costcenter": key case and values, wherever the key is set.',
        'AWS tag policy statement "environment": key case and values, wherever the key is set. '
        "AWS enforces it for: ec2:instance, rds:db.",
        'AWS tag policy statement "owner": key case and values, wherever the key is set.',
        'AWS tag policy statement "dataclassification": key case and values, wherever the key is '
        "set. AWS enforces it for: s3:bucket, dynamodb:table.",
        'AWS tag policy statement "application": key case and values, wherever the key is set.',
    ]
    assert all(
        rule.severity == "error" and rule.case_sensitive_values for _, _, rule in policy.tag_rules_by_field()
    )


def test_org_baseline_scope_enforced() -> None:
    result = import_file(BASELINE, scope="enforced")
    assert result.warnings == [
        f"tags.costcenter.tag_key.@@operators_allowed_for_child_policies: {INHERITANCE}",
        f"tags.costcenter.tag_value.@@operators_allowed_for_child_policies: {INHERITANCE}",
        f"tags.owner.tag_value: {NO_VALUES}",
        f"tags.application.@@operators_allowed_for_child_policies: {INHERITANCE}",
    ]
    assert rules(result) == {
        "required_tags": BASELINE_REQUIRED,
        "optional_tags": [
            {"key": "CostCenter", "allowed_values": ["CC-*"]},
            {
                "key": "Environment",
                "allowed_values": ["prod", "staging", "dev", "sandbox"],
                "applies_to": ["ec2:instance", "rds:db"],
            },
            {"key": "Owner"},
            {
                "key": "DataClassification",
                "allowed_values": ["public", "internal", "confidential", "restricted"],
                "applies_to": ["s3:bucket", "dynamodb:table"],
            },
            {"key": "Application", "allowed_values": ["*"]},
        ],
    }


EFFECTIVE_WARNINGS = [
    'tags.costcenter.tag_value.@@append: values ["400"] added to the @@assign list; unexpected in an '
    "effective policy, where AWS has already applied inheritance",
    f"tags.environment.enforced_for: AWS blocks noncompliant tagging on ec2:ALL_SUPPORTED {NOT_ENFORCED}",
]


def test_effective_policy() -> None:
    result = import_file(EFFECTIVE)
    assert result.warnings == EFFECTIVE_WARNINGS
    digest = sha256(EFFECTIVE)
    assert dumped(result) == {
        "version": f"org-{digest[:12]}",
        "name": "Imported from effective-policy-222233334444.json",
        "description": "Imported with --scope all from the AWS Organizations effective tag policy "
        'of "222233334444".',
        "metadata": {
            "source": "aws-organizations-tag-policy",
            "source_file": "effective-policy-222233334444.json",
            "source_sha256": digest,
            "import_warnings": EFFECTIVE_WARNINGS,
        },
        "required_tags": [
            {
                # The policy key is 'costcenter'; tag_key gives the capitalisation AWS requires.
                "key": "CostCenter",
                "description": 'AWS tag policy statement "costcenter": AWS reports the key as required for '
                "ec2:instance.",
                "allowed_values": ["100", "200", "300*", "400"],
                "applies_to": ["ec2:instance"],
            }
        ],
        "optional_tags": [
            {
                "key": "CostCenter",
                "description": 'AWS tag policy statement "costcenter": key case and values, wherever the '
                "key is set.",
                "allowed_values": ["100", "200", "300*", "400"],
            },
            {
                # Plain values (no @@assign), as some effective policies render them.
                "key": "Environment",
                "description": 'AWS tag policy statement "environment": key case and values, wherever the '
                "key is set. AWS enforces it for: ec2:ALL_SUPPORTED.",
                "allowed_values": ["prod", "dev"],
            },
        ],
    }


def test_effective_policy_scope_enforced() -> None:
    result = import_file(EFFECTIVE, scope="enforced")
    assert result.warnings == EFFECTIVE_WARNINGS[:1]
    assert rules(result)["optional_tags"] == [
        {"key": "CostCenter", "allowed_values": ["100", "200", "300*", "400"]},
        {"key": "Environment", "allowed_values": ["prod", "dev"], "applies_to": ["ec2:*"]},
    ]


def test_version_is_the_input_hash() -> None:
    data, raw = read_org_policy_file(DOCS_EXAMPLE)
    first = import_org_policy(data, "a/one.json", raw).policy
    again = import_org_policy(data, "b/two.json", raw).policy
    assert first.version == again.version == "org-" + hashlib.sha256(raw).hexdigest()[:12]
    reformatted = json.dumps(data).encode()
    assert import_org_policy(data, "a/one.json", reformatted).policy.version != first.version
    assert again.name == "Imported from two.json"
    assert again.metadata["source_file"] == "two.json"


# --- warnings ----------------------------------------------------------------------------------


def test_other_sections_and_inheritance_controls_are_warned() -> None:
    result = import_data(
        {
            "@@operators_allowed_for_child_policies": ["@@none"],
            "tags": {
                "@@operators_allowed_for_child_policies": ["@@all"],
                "owner": {"tag_key": {"@@assign": "Owner"}, "tag_value": {"@@assign": ["*@example.com"]}},
            },
            "backup_plans": {"daily": {}},
        }
    )
    assert result.warnings == [
        f"@@operators_allowed_for_child_policies: {INHERITANCE}",
        "backup_plans: section ignored: only the tags section of a tag policy is imported",
        f"tags.@@operators_allowed_for_child_policies: {INHERITANCE}",
    ]
    assert rules(result)["optional_tags"] == [{"key": "Owner", "allowed_values": ["*@example.com"]}]


def test_append_and_remove_outside_an_effective_policy() -> None:
    result = import_data(
        {
            "tags": {
                "environment": {
                    "tag_key": {"@@assign": "Environment"},
                    "tag_value": {"@@remove": ["dev"], "@@assign": ["prod", "dev"], "@@append": ["qa"]},
                    "report_required_tag_for": {"@@append": ["rds:db"]},
                }
            }
        }
    )
    why = (
        "the parent policies are not known here, so AWS may apply a different list: import the "
        "effective policy (aws organizations describe-effective-policy) instead"
    )
    assert result.warnings == [
        # In the order of the input; all operators apply after @@assign.
        f'tags.environment.tag_value.@@remove: values ["dev"] removed from the @@assign list; {why}',
        f'tags.environment.tag_value.@@append: values ["qa"] added to the @@assign list; {why}',
        'tags.environment.report_required_tag_for.@@append: values ["rds:db"] added to the @@assign '
        f"list; {why}",
    ]
    assert rules(result) == {
        "required_tags": [{"key": "Environment", "allowed_values": ["prod", "qa"], "applies_to": ["rds:db"]}],
        "optional_tags": [{"key": "Environment", "allowed_values": ["prod", "qa"]}],
    }


def test_unknown_operators_and_fields_are_warned() -> None:
    result = import_data(
        {
            "tags": {
                "team": {
                    "tag_key": {"@@assign": "Team", "@@append": "x"},
                    "tag_value": {"@@assign": ["platform"], "@@replace": ["data"]},
                    "region_scope": {"@@assign": ["eu-west-1"]},
                },
                "@@assign": {},
            }
        }
    )
    assert result.warnings == [
        "tags.team.tag_key.@@append: unknown operator ignored",
        "tags.team.tag_value.@@replace: unknown operator ignored",
        "tags.team.region_scope: unknown field ignored (a statement has tag_key, tag_value, "
        "enforced_for, report_required_tag_for)",
        "tags.@@assign: unknown operator ignored",
    ]
    assert rules(result)["optional_tags"] == [{"key": "Team", "allowed_values": ["platform"]}]


def test_tag_key_capitalisation() -> None:
    result = import_data(
        {
            "tags": {
                "cost": {"tag_key": "CostCenter", "tag_value": ["1*"]},
                "Project": {"tag_value": ["x"]},
                "owner": {"tag_value": ["a"]},
                "Business Unit": {"tag_key": "business unit"},
            }
        }
    )
    assert result.warnings == [
        'tags.cost.tag_key: "CostCenter" differs from its policy key "cost" by more than case (AWS '
        "requires them to match); the rule uses the tag_key",
        # AWS: without tag_key, the key must be in lower case, whatever the policy key's case.
        'tags.Project.tag_key: absent: AWS then requires the policy key in lower case, "project"',
        # A member that would read ambiguously in a dotted path is quoted.
        f'tags["Business Unit"].tag_value: {NO_VALUES}',
    ]
    assert [rule["key"] for rule in rules(result)["optional_tags"]] == [
        "CostCenter",
        "project",
        "owner",
        "business unit",
    ]


def test_aws_keys_are_skipped() -> None:
    result = import_data(
        {
            "tags": {
                "aws:cloudformation:stack-name": {"tag_value": ["prod-*"]},
                "owner": {"tag_key": "AWS:Owner", "tag_value": ["x"]},
                "team": {"tag_value": ["data"]},
            }
        }
    )
    assert result.warnings == [
        'tags.aws:cloudformation:stack-name: statement skipped: "aws:cloudformation:stack-name" '
        "starts with 'aws:', which AWS reserves",
        'tags.owner.tag_key: "AWS:Owner" differs from its policy key "owner" by more than case (AWS '
        "requires them to match); the rule uses the tag_key",
        "tags.owner: statement skipped: \"AWS:Owner\" starts with 'aws:', which AWS reserves",
    ]
    assert rules(result) == {
        "required_tags": [],
        "optional_tags": [{"key": "team", "allowed_values": ["data"]}],
    }


def test_empty_and_blank_values() -> None:
    result = import_data(
        {
            "tags": {
                "team": {"tag_value": {"@@assign": []}, "report_required_tag_for": []},
                "env": {"tag_value": ["", "prod", " ", "prod"]},
                "owner": {"tag_value": [""]},
            }
        }
    )
    assert result.warnings == [
        "tags.team.tag_value: no values: imported without allowed_values, so any non-blank value passes",
        'tags.env.tag_value: blank value "" dropped: this tool always reports a blank value as empty_value',
        'tags.env.tag_value: blank value " " dropped: this tool always reports a blank value as empty_value',
        'tags.owner.tag_value: blank value "" dropped: this tool always reports a blank value as empty_value',
        "tags.owner.tag_value: no values: imported without allowed_values, so any non-blank value passes",
    ]
    assert rules(result) == {
        "required_tags": [],
        "optional_tags": [{"key": "team"}, {"key": "env", "allowed_values": ["prod"]}, {"key": "owner"}],
    }


def test_resource_types() -> None:
    result = import_data(
        {
            "tags": {
                "owner": {
                    "report_required_tag_for": [
                        "ec2:ALL_SUPPORTED",
                        "ec2:instance",
                        "ec2:*",
                        "ALL_SUPPORTED",
                        "dynamodb:table",
                        "s3:ALL_SUPPORTED",
                    ]
                }
            }
        }
    )
    assert result.warnings == [f"tags.owner.tag_value: {NO_VALUES}"]
    assert result.policy.required_tags[0].applies_to == [
        "ec2:*",
        "ec2:instance",
        "*",
        "dynamodb:table",
        "s3:*",
    ]


def test_a_rule_on_types_this_tool_never_collects_is_left_out_and_said_so() -> None:
    # The policy language refuses an applies_to glob of a service some collector lists that
    # matches none of its types (it would put nothing in scope), so the importer drops such types
    # and a rule left with none.
    statement = {
        "tag_key": {"@@assign": "Backup"},
        "report_required_tag_for": {"@@assign": ["ec2:dedicated-host"]},
    }
    backup = {**statement, "enforced_for": {"@@assign": ["ec2:dedicated-host"]}}
    owner = {"tag_key": {"@@assign": "Owner"}, "tag_value": {"@@assign": ["*"]}}
    data = {"tags": {"backup": backup, "owner": owner}}
    enforced = import_data(data, scope="enforced")
    assert enforced.warnings == [
        f"tags.backup.tag_value: {NO_VALUES}",
        'tags.backup.enforced_for: "ec2:dedicated-host" matches no resource type this tool '
        f"collects ({COLLECTED}); dropped (import again once it is collected)",
        "tags.backup.enforced_for: rule not imported: this tool collects none of its types",
        'tags.backup.report_required_tag_for: "ec2:dedicated-host" matches no resource type this tool '
        f"collects ({COLLECTED}); dropped (import again once it is collected)",
        "tags.backup.report_required_tag_for: rule not imported: this tool collects none of its types",
    ]
    assert rules(enforced) == {
        "required_tags": [],
        "optional_tags": [{"key": "Owner", "allowed_values": ["*"]}],
    }


def test_a_type_of_a_service_no_collector_lists_is_kept_and_said_to_be_seen_when_tagged_only() -> None:
    data = {"tags": {"team": {"tag_key": {"@@assign": "Team"}, "report_required_tag_for": ["appsync:apis"]}}}
    result = import_data(data)
    assert result.warnings == [
        f"tags.team.tag_value: {NO_VALUES}",
        'tags.team.report_required_tag_for: "appsync:apis": no collector lists appsync resources; only '
        "tagged ones are seen (through the Tagging API), never-tagged ones are not checked",
    ]
    assert result.policy.required_tags[0].applies_to == ["appsync:apis"]


# --- errors ------------------------------------------------------------------------------------


def statement(**fields: object) -> dict[str, Any]:
    return {"tags": {"costcenter": {"tag_key": {"@@assign": "CostCenter"}, **fields}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "(top level): expected a JSON object, got []"),
        (
            {"Version": "1"},
            "tags: no tags section: expected a tag policy document, or the output of "
            'describe-effective-policy or describe-policy; top-level keys are ["Version"]',
        ),
        ({"tags": ["costcenter"]}, 'tags: expected an object of statements, got ["costcenter"]'),
        (
            {"tags": {"costcenter": "CostCenter"}},
            'tags.costcenter: a statement must be an object, got "CostCenter"',
        ),
        (
            {"tags": {"costcenter": {"tag_key": {"@@assign": ["CostCenter"]}}}},
            'tags.costcenter.tag_key.@@assign: expected a string, got ["CostCenter"]',
        ),
        (
            statement(tag_value={"@@assign": "100"}),
            'tags.costcenter.tag_value.@@assign: expected a list of strings, got "100"',
        ),
        (
            statement(tag_value={"@@assign": ["100", 200]}),
            "tags.costcenter.tag_value.@@assign[1]: expected a string, got 200",
        ),
        (
            statement(tag_value={"@@assign": ["100"], "@@append": "200"}),
            'tags.costcenter.tag_value.@@append: expected a list of strings, got "200"',
        ),
        (
            statement(enforced_for="ec2:instance"),
            'tags.costcenter.enforced_for: expected a list of strings, got "ec2:instance"',
        ),
        (
            statement(report_required_tag_for={"@@assign": None}),
            "tags.costcenter.report_required_tag_for.@@assign: expected a list of strings, got null",
        ),
        (
            {"tags": {"costcenter": {}, "CostCenter": {}}},
            'tags.CostCenter: policy key "CostCenter" differs only in case from tags.costcenter: '
            "AWS treats policy keys ignoring case",
        ),
        (
            {"tags": {"costcenter": {}, "cc": {"tag_key": "CostCenter"}}},
            'tags.cc: key "CostCenter" is, ignoring case, also the key of tags.costcenter',
        ),
        ({"EffectivePolicy": "{}"}, 'EffectivePolicy: expected an object, got "{}"'),
        (
            {"EffectivePolicy": {"PolicyType": "TAG_POLICY"}},
            "EffectivePolicy.PolicyContent: missing: it holds the tag policy document",
        ),
        (
            {"EffectivePolicy": {"PolicyType": "BACKUP_POLICY", "PolicyContent": "{}"}},
            'EffectivePolicy.PolicyType: not a tag policy: expected "TAG_POLICY", got "BACKUP_POLICY"',
        ),
        (
            {"EffectivePolicy": {"PolicyContent": '{"tags": {'}},
            "EffectivePolicy.PolicyContent: invalid JSON at line 1, column 11: "
            "Expecting property name enclosed in double quotes",
        ),
        (
            {"Policy": {"PolicySummary": {"Type": "TAG_POLICY"}, "Content": '{"plans": {}}'}},
            'Policy.Content: no tags section; the document\'s keys are ["plans"]',
        ),
        (
            {"Policy": {"PolicySummary": {"Type": "SERVICE_CONTROL_POLICY"}, "Content": "{}"}},
            'Policy.PolicySummary.Type: not a tag policy: expected "TAG_POLICY", '
            'got "SERVICE_CONTROL_POLICY"',
        ),
        ({"Policy": {"Content": '"tags"'}}, 'Policy.Content: expected an object, got "tags"'),
    ],
)
def test_errors_name_file_path_and_value(data: object, message: str) -> None:
    with pytest.raises(OrgPolicyError) as info:
        import_data(data)
    assert str(info.value) == f"in/policy.json: {message}"


def test_result_the_model_rejects_names_the_statement() -> None:
    long_value = "v" * 257
    with pytest.raises(PolicyError) as info:
        import_data(statement(tag_value=[long_value], report_required_tag_for=["ec2:instance"]))
    lines = str(info.value).splitlines()
    assert lines[0] == "in/policy.json: the imported policy is invalid, 2 errors:"
    for line, field in zip(lines[1:], ("required_tags", "optional_tags"), strict=True):
        assert line == (
            f"  in/policy.json: tags.costcenter: {field}[0].allowed_values[0]: "
            f"String should have at most 256 characters (got {long_value!r}) [string_too_long]"
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"tags": {}},
            "tags: required_tags: the policy has no required_tags, optional_tags, prohibited_keys or "
            "max_user_tags, so it would check nothing (got []) [empty_policy]",
        ),
        (
            {"tags": {"aws:createdBy": {}}},
            "tags: required_tags: the policy has no required_tags, optional_tags, prohibited_keys or "
            "max_user_tags, so it would check nothing (got []) [empty_policy]",
        ),
        (
            {"tags": {"cc": {"tag_key": ""}}},
            "tags.cc: optional_tags[0].key: String should have at least 1 character (got '') "
            "[string_too_short]",
        ),
    ],
)
def test_other_model_rejections(data: object, message: str) -> None:
    with pytest.raises(OrgPolicyError) as info:
        import_data(data)
    assert (
        str(info.value)
        == f"in/policy.json: the imported policy is invalid, 1 error:\n  in/policy.json: {message}"
    )


def test_unknown_scope_is_a_bug() -> None:
    with pytest.raises(ValueError, match="scope must be one of"):
        import_data({"tags": {"a": {}}}, scope="some")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read file: No such file or directory"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0): invalid start byte"),
        (
            b'{"tags": {,}}',
            "invalid JSON at line 1, column 11: Expecting property name enclosed in double quotes",
        ),
        (b'{"tags": {"a": {}, "a": {}}}', "invalid JSON: duplicate key 'a'"),
    ],
)
def test_file_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "org.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OrgPolicyError) as info:
        read_org_policy_file(path)
    assert str(info.value) == f"{path}: {message}"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_bytes(b"\xef\xbb\xbf" + DOCS_EXAMPLE.read_bytes())
    data, raw = read_org_policy_file(path)
    assert data == json.loads(DOCS_EXAMPLE.read_text())
    assert raw.startswith(b"\xef\xbb\xbf")


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "import-org", str(EFFECTIVE)]) == 0
    captured = capsys.readouterr()
    assert captured.out == render_policy(import_file(EFFECTIVE))
    copy = tmp_path / "from-stdout.yaml"
    copy.write_text(captured.out, encoding="utf-8")
    assert load_policy(copy) == import_file(EFFECTIVE).policy
    version = import_file(EFFECTIVE).policy.version
    assert captured.err.splitlines() == [
        *(f"warning: {warning}" for warning in EFFECTIVE_WARNINGS),
        f"OK {EFFECTIVE} -> stdout: version {version}, 1 required tags (1 error, 0 warning), "
        "2 optional tags, 0 prohibited key globs; 2 warnings",
    ]


def test_cli_yaml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.yaml"
    out.write_text("old content\n")
    assert main(["policy", "import-org", str(BASELINE), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"OK {BASELINE} -> {out}: " in captured.err
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Generated by `tag-compliance policy import-org`")
    assert "# Import warnings (6):\n#   - tags.costcenter.tag_key.@@operators_allowed" in text
    assert load_policy(out) == import_file(BASELINE).policy
    assert sorted(os.listdir(tmp_path)) == ["imported.yaml"], "no temporary file left behind"


def test_cli_json_file_and_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported.JSON"
    assert main(["policy", "import-org", str(DOCS_EXAMPLE), "--output", str(out), "--scope", "enforced"]) == 0
    expected = import_file(DOCS_EXAMPLE, scope="enforced")
    assert json.loads(out.read_text(encoding="utf-8")) == dumped(expected)
    assert load_policy(out) == expected.policy
    assert expected.policy.optional_tags[0].applies_to == ["secretsmanager:*", "ec2:instance"]
    assert "warning: " not in capsys.readouterr().err  # both types are collected


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"tags": {"costcenter": {"tag_value": {"@@assign": "100"}}}}')
    out = tmp_path / "out.yaml"
    assert main(["policy", "import-org", str(bad), "-o", str(out)]) == 1
    assert capsys.readouterr().err.strip() == (
        f'{bad}: tags.costcenter.tag_value.@@assign: expected a list of strings, got "100"'
    )
    assert not out.exists()
    assert main(["policy", "import-org", str(tmp_path / "missing.json")]) == 1
    assert "missing.json: cannot read file" in capsys.readouterr().err
    assert main(["policy", "import-org", str(DOCS_EXAMPLE), "-o", str(tmp_path / "out.txt")]) == 2
    assert "out.txt: the output must end in .yaml, .yml or .json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["policy", "import-org", str(DOCS_EXAMPLE), "--scope", "some"])


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "policy.yaml"
    out.write_text("old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomically(out, "new\n")
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["policy.yaml"]


# --- the checked-in example --------------------------------------------------------------------


def test_example_policy_is_the_import_of_the_baseline_fixture() -> None:
    result = import_file(BASELINE)
    assert EXAMPLE_POLICY.read_text(encoding="utf-8") == render_policy(result), (
        "regenerate: tag-compliance policy import-org "
        "tests/fixtures/org_policies/org-baseline.describe-policy.json "
        "-o include/policies/imported-org-policy.yaml"
    )
    assert load_policy(EXAMPLE_POLICY) == result.policy


# --- scoring with an imported policy -----------------------------------------------------------


def test_scoring_with_the_imported_effective_policy() -> None:
    """AWS semantics through our SQL: key case and values wherever the key is set, the key itself
    required only on report_required_tag_for types (here ec2:instance)."""
    policy = import_file(EFFECTIVE).policy
    rows = [
        resource(ACCOUNT_1, "us-east-1", "ec2:instance", "i-wrong-case", {"costcenter": "100"}),
        resource(ACCOUNT_1, "us-east-1", "lambda:function", "fn-wrong-case", {"costcenter": "100"}),
        resource(ACCOUNT_1, "us-east-1", "ec2:instance", "i-wildcard", {"CostCenter": "300-x"}),
        resource(ACCOUNT_1, "global", "s3:bucket", "bucket-wildcard", {"CostCenter": "300-x"}),
        resource(
            ACCOUNT_1, "us-east-1", "ec2:instance", "i-bad", {"CostCenter": "999", "Environment": "Prod"}
        ),
        resource(ACCOUNT_1, "us-east-1", "ec2:instance", "i-untagged", {}),
        resource(ACCOUNT_1, "global", "s3:bucket", "bucket-untagged", {}),
        resource(ACCOUNT_1, "us-east-1", "rds:db", "db-untagged", {}),
    ]
    with connect() as con:
        con.register("snapshot_resources", resources_table(rows))
        outputs = {name: table.to_pylist() for name, table in score_resources(con, policy).items()}
    violations = sorted(
        (row["resource_id"], row["tag_key"], row["violation_type"], row["current_value"])
        for row in outputs["violations"]
    )
    assert violations == [
        ("fn-wrong-case", "CostCenter", "wrong_key_case", "costcenter"),
        ("i-bad", "CostCenter", "invalid_value", "999"),
        ("i-bad", "Environment", "invalid_value", "Prod"),
        ("i-untagged", "CostCenter", "missing_required_tag", None),
        ("i-wrong-case", "CostCenter", "wrong_key_case", "costcenter"),
    ]
    status = {row["resource_id"]: row["compliance_status"] for row in outputs["resource_compliance"]}
    assert status == {
        "i-wrong-case": "non_compliant",
        "fn-wrong-case": "non_compliant",
        "i-wildcard": "compliant",
        "bucket-wildcard": "compliant",
        "i-bad": "non_compliant",
        "i-untagged": "non_compliant",
        "bucket-untagged": "compliant",
        "db-untagged": "compliant",
    }
