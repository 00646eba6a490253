"""A plain-Python reading of docs/policy.md ("How a resource is scored on day D").

The differential test (``tests/test_differential.py``) scores random estates with both this and
the SQL and demands identical rows. So that the comparison means something, nothing here comes
from the code under test: no DuckDB, no ``tag_compliance.scoring``, and none of ``policy.py``'s
matching helpers (folding, globs, blank values, expected texts). Only the pydantic model is read,
as the parsed policy. Everything is written the slow, obvious way, straight from the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

import re2

from tag_compliance.policy import Exemption, TaggingPolicy, TagRule

VIOLATION_COLUMNS = (
    "account_id",
    "region",
    "resource_type",
    "resource_id",
    "arn",
    "tag_key",
    "violation_type",
    "severity",
    "current_value",
    "expected",
)
EXEMPTED_COLUMNS = (*VIOLATION_COLUMNS, "exemption_reason", "exemption_expires")
COMPLIANCE_COLUMNS = (
    "account_id",
    "region",
    "resource_type",
    "resource_id",
    "arn",
    "in_scope",
    "compliant",
    "compliance_status",
    "error_violations",
    "warning_violations",
    "exempted_violations",
    "violation_types",
)
RESOURCE_COLUMNS = ("account_id", "region", "resource_type", "resource_id", "arn")

BLANK = frozenset(" \t\n\v\f\r")
"""The document's blank characters; NBSP and other Unicode spaces are deliberately absent."""


def fold(text: str) -> str:
    """Lower-case one character at a time, 'İ' to 'i' (docs/policy.md, "Ignoring case").

    Per character on purpose: ``str.lower`` on a whole word turns a final 'Σ' into 'ς',
    and 'İ' into two characters; DuckDB's ``lower()`` does neither.
    """
    return "".join("i" if char == "\u0130" else char.lower() for char in text)


def wildcard_match(pattern: str, text: str, *, question_mark: bool) -> bool:
    """Whole-text match where ``*`` is any run of characters (none included) and, when
    ``question_mark``, ``?`` is exactly one character; every other character is literal.

    Globs use ``?``; allowed values do not (AWS tag policies know only ``*``). Classic
    backtracking over code points, so no regex or LIKE translation is involved.
    """
    p = t = 0
    star_p, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star_p, star_t = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] == text[t] or (question_mark and pattern[p] == "?")):
            p += 1
            t += 1
        elif star_p >= 0:
            # Let the last star swallow one more character and retry from there.
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    return all(char == "*" for char in pattern[p:])


def glob_match(glob: str, text: str, *, ignore_case: bool = False) -> bool:
    """A policy glob (``*`` any run, ``?`` one character, brackets literal) over the whole text."""
    if ignore_case:
        return wildcard_match(fold(glob), fold(text), question_mark=True)
    return wildcard_match(glob, text, question_mark=True)


@cache
def _regex(pattern: str) -> Any:
    return re2.compile(pattern)


def pattern_matches(pattern: str, value: str) -> bool:
    """RE2 over the whole value, RE2's defaults (as DuckDB's ``regexp_full_match``): '.' does
    not match a newline unless the pattern says ``(?s)``."""
    return _regex(pattern).fullmatch(value) is not None


def is_blank(value: str) -> bool:
    return all(char in BLANK for char in value)


def is_aws_key(key: str) -> bool:
    """AWS's own keys, 'aws:' in any case: never prohibited, never counted for the limit."""
    return fold(key).startswith("aws:")


def rule_applies(rule: TagRule, resource_type: str) -> bool:
    """No ``applies_to``: every type; else any glob matching the type, case-sensitive."""
    return rule.applies_to is None or any(glob_match(glob, resource_type) for glob in rule.applies_to)


def checked_rules(policy: TaggingPolicy, resource_type: str) -> list[tuple[TagRule, bool]]:
    """The rules checked on a resource of this type, each with whether it is required; an
    optional rule gives way to an applying required rule with the same key."""
    required = [rule for rule in policy.required_tags if rule_applies(rule, resource_type)]
    required_keys = {rule.key for rule in required}
    optional = [
        rule
        for rule in policy.optional_tags
        if rule_applies(rule, resource_type) and rule.key not in required_keys
    ]
    return [(rule, True) for rule in required] + [(rule, False) for rule in optional]


def value_allowed(rule: TagRule, value: str) -> bool:
    if rule.case_sensitive_values:
        return any(
            wildcard_match(allowed, value, question_mark=False) for allowed in rule.allowed_values or ()
        )
    return any(
        wildcard_match(fold(allowed), fold(value), question_mark=False)
        for allowed in rule.allowed_values or ()
    )


def rule_outcome(
    rule: TagRule, required: bool, tags: Mapping[str, str]
) -> tuple[str, str | None, str] | None:
    """The rule's violation as ``(violation_type, current_value, expected)``, or None."""
    if rule.key in tags:
        value = tags[rule.key]
        if is_blank(value):
            return "empty_value", value, "non-empty value"
        if rule.allowed_values is not None and not value_allowed(rule, value):
            return "invalid_value", value, "one of: " + ", ".join(rule.allowed_values)
        if rule.pattern is not None and not pattern_matches(rule.pattern, value):
            return "invalid_format", value, f"matches {rule.pattern}"
        return None
    other_case = [key for key in tags if fold(key) == fold(rule.key)]
    if other_case:
        return "wrong_key_case", min(other_case), f"key {rule.key}"
    if required:
        return "missing_required_tag", None, f"key {rule.key}"
    return None


def exemption_for(
    exemptions: Iterable[Exemption], resource: Mapping[str, Any], tag_key: str | None, day: date
) -> Exemption | None:
    """The first exemption in force on ``day`` covering this resource and key, if any."""
    for exemption in exemptions:
        if exemption.expires < day:
            continue
        if not any(
            glob_match(glob, resource["arn"]) or glob_match(glob, resource["resource_id"])
            for glob in exemption.resources
        ):
            continue
        if exemption.keys is None:
            return exemption
        if tag_key is not None and any(
            glob_match(glob, tag_key, ignore_case=True) for glob in exemption.keys
        ):
            return exemption
    return None


@dataclass
class ReferenceScore:
    """Rows as the SQL's outputs name them: active and exempted violations, and one
    ``resource_compliance`` row per resource (only the columns in ``COMPLIANCE_COLUMNS``)."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    exempted_violations: list[dict[str, Any]] = field(default_factory=list)
    resource_compliance: list[dict[str, Any]] = field(default_factory=list)


def resource_violations(
    policy: TaggingPolicy, resource: Mapping[str, Any]
) -> tuple[bool, list[dict[str, Any]]]:
    """Whether the resource is in scope, and all its violations (before exemptions)."""
    tags: Mapping[str, str] = resource["tags"] or {}
    base = {column: resource[column] for column in RESOURCE_COLUMNS}
    rules = checked_rules(policy, resource["resource_type"])
    found = []

    def add(
        tag_key: str | None, violation_type: str, severity: str, current: str | None, expected: str
    ) -> None:
        found.append(
            {
                **base,
                "tag_key": tag_key,
                "violation_type": violation_type,
                "severity": severity,
                "current_value": current,
                "expected": expected,
            }
        )

    for rule, required in rules:
        outcome = rule_outcome(rule, required, tags)
        if outcome is not None:
            add(rule.key, outcome[0], rule.severity, outcome[1], outcome[2])
    for key, value in tags.items():
        if not is_aws_key(key) and any(
            glob_match(glob, key, ignore_case=True) for glob in policy.prohibited_keys
        ):
            add(key, "prohibited_tag", policy.prohibited_severity, value, "key not present")
    user_tags = sum(not is_aws_key(key) for key in tags)
    if policy.max_user_tags is not None and user_tags > policy.max_user_tags:
        add(
            None,
            "too_many_tags",
            policy.max_user_tags_severity,
            str(user_tags),
            f"at most {policy.max_user_tags} user tags",
        )
    return bool(rules), found


def score(resources: Iterable[Mapping[str, Any]], policy: TaggingPolicy, scored_date: date) -> ReferenceScore:
    """Score resources (dicts shaped like ``tests.sql_fixtures.resource``) on day ``scored_date``."""
    result = ReferenceScore()
    for resource in resources:
        in_scope, found = resource_violations(policy, resource)
        active, exempted = [], []
        for violation in found:
            exemption = exemption_for(policy.exemptions, resource, violation["tag_key"], scored_date)
            if exemption is None:
                active.append(violation)
            else:
                exempted.append(
                    {
                        **violation,
                        "exemption_reason": exemption.reason,
                        "exemption_expires": exemption.expires,
                    }
                )
        errors = sum(violation["severity"] == "error" for violation in active)
        exempted_errors = sum(violation["severity"] == "error" for violation in exempted)
        if not in_scope:
            status, compliant = "out_of_scope", None
        elif errors:
            status, compliant = "non_compliant", False
        elif exempted_errors:
            status, compliant = "exempt", False
        else:
            status, compliant = "compliant", True
        result.violations.extend(active)
        result.exempted_violations.extend(exempted)
        result.resource_compliance.append(
            {
                **{column: resource[column] for column in RESOURCE_COLUMNS},
                "in_scope": in_scope,
                "compliant": compliant,
                "compliance_status": status,
                "error_violations": errors,
                "warning_violations": sum(violation["severity"] == "warning" for violation in active),
                "exempted_violations": len(exempted),
                "violation_types": sorted({violation["violation_type"] for violation in active}),
            }
        )
    return result
