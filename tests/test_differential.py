"""Differential test: the scoring SQL against ``tests/reference_scorer.py`` on random estates
and random policies, row for row.

The hand-written SQL tests pin the cases someone thought of; this one looks for the rest, where
SQL and Python disagree on text: Unicode case folding ('İ', final sigma, Kelvin sign, 'ǅ'),
blank versus non-blank whitespace, LIKE metacharacters leaking through globs, RE2 and newlines,
and the precedence rules of docs/policy.md. Hypothesis runs derandomized, so CI sees the same
500 examples every time; a disagreement it once found stays below as an ``@example``.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, example, given, note, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import connect, score_resources
from tests import reference_scorer as ref
from tests.sql_fixtures import resource, resources_table

RESOURCE_TYPES = ("ec2:instance", "rds:db", "s3:bucket", "lambda:function", "ecs:service")
ID_PREFIXES = {
    "ec2:instance": "i-",
    "rds:db": "db:",
    "s3:bucket": "bucket-",
    "lambda:function": "function:",
    "ecs:service": "service/",
}
ACCOUNTS = ("012345678901", "210987654321")
REGIONS = ("us-east-1", "eu-west-1", "global")
DAYS = (date(2026, 3, 14), date(2024, 2, 29), date(2027, 1, 1))

KEY_128 = "Ключ-" + "k" * 123
KEY_128_ASTRAL = "𝔎" * 127 + "K"
VALUE_256 = "värde-" + "é" * 250
VALUE_256_ASTRAL = "😀" * 256

# Rule keys: text where Python and DuckDB could disagree about case or characters.
RULE_KEYS = (
    "CostCenter",
    "Environment",
    "owner",
    "TEAM",
    "İstanbul",  # 'İ' folds to 'i', not 'i' + U+0307
    "ıd",  # dotless i: its upper case 'I' folds back to 'i', not 'ı'
    "ΟΔΟΣ",  # final capital sigma folds to 'σ', not 'ς'
    "Straße",  # upper() gives 'STRASSE', which is not the same key
    "ǅemal",  # title-case digraph: 'Ǆ', 'ǅ', 'ǆ' all fold to 'ǆ'
    "\u212aelvin",  # Kelvin sign folds to ASCII 'k'
    "e\u0301tat",  # combining acute
    "😀emoji",  # non-BMP
    "𝔘ser",  # non-BMP letter without case
    "a%b",
    "a_b",
    "a\\b",
    "x*y",
    "q?",
    "[br]",
    "Project",
    KEY_128,
    KEY_128_ASTRAL,
)
VALUE_POOL = (
    "prod",
    "PROD",
    "Prod",
    " prod",
    "prod ",
    "dev",
    "dev-x",
    "dev-X",
    "dev-",
    "CC-1234",
    "CC-12345",
    "cc-1234",
    "",
    " ",
    "\t",
    "\n",
    "\v",
    "\f",
    "\r",
    " \t\n\v\f\r",
    "\xa0",  # NBSP is not blank
    " \xa0 ",
    "\u2003",  # EM SPACE is not blank either
    "a.b",
    "aXb",
    "a\nb",
    "a\n",
    "50%_off",
    "50X_off",
    "a\\b",
    "a_b",
    "aZb",
    "x?y",
    "xzy",
    "straße",
    "STRASSE",
    "İ",
    "i",
    "ı",
    "I",
    "ΟΔΟΣ",
    "οδος",
    "οδοσ",
    "ǅ",
    "ǆ",
    "Ǆ",
    "\u212a",
    "k",
    "K",
    "😀",
    "e\u0301",
    "é",
    "Ωμέγα",
    "42",
    "x'; drop table snapshot; --",
    VALUE_256,
    VALUE_256_ASTRAL,
)
# Allowed values (only '*' is a wildcard there; '?', '%', '_' and '\' are literal).
ALLOWED_POOL = (
    "prod",
    "Prod",
    "dev-*",
    "*",
    "**",
    "*-eu",
    "PROD*",
    "50%_off*",
    "a\\b",
    "a_b",
    "%",
    "_",
    "x?y",
    "?",
    "v?*",
    "İ*",
    "i",
    "ΟΔΟΣ",
    "straße",
    "ǅ*",
    "\u212a",
    "😀*",
    "e\u0301",
    "a*b",
    "CC-1234",
    "dev",
    "\xa0",
    VALUE_256,
)
# RE2 patterns that are cheap on any input, each with values on both sides of its edge.
PATTERNS: dict[str, tuple[str, ...]] = {
    r"[a-z]+": ("prod", "Prod", "straße", "", "ı"),
    r"CC-[0-9]{4}": ("CC-1234", "CC-12345", "cc-1234", "CC-١٢٣٤"),
    r".*": ("", "anything", "a\nb", "\n", "😀"),
    r"(?s).*": ("a\nb", "\r\n"),
    r".+": ("", "x", "\n", "e\u0301"),
    r"(?i)prod|dev": ("prod", "PROD", "Dev", "prodx", "İ", "prod|dev"),
    r"\p{L}+": ("Ωμέγα", "e\u0301", "é", "😀", "ǅ", "𝔘"),
    r"a.b": ("a.b", "aXb", "a\nb", "a😀b", "ab"),
    r"(?s)a.b": ("a\nb", "a.b"),
    r"\S+": ("a b", "a\xa0b", "ab", "a\u2003b"),
    r"[^ ]*": ("a\nb", "a b", "\xa0"),
    r"\d+": ("42", "٤٢", "4 2"),
    r"\w+": ("abc_1", "straße", "é", "a-b"),
    r"dev-.*": ("dev-", "dev-x\ny", "DEV-x"),
    r"[%_\\]+": ("%_\\", "%x", "\\"),
    r"(?i)straße|ǆ": ("STRASSE", "STRAßE", "Ǆ", "ǅ", "straẞe"),
    r"[\p{Lu}][\p{Ll}]*": ("Prod", "prod", "ǅemal", "Σς", "\u212a"),
    r"x?": ("", "x", "X", "xx"),
}
APPLIES_TO_POOL = (
    "ec2:*",
    "rds:db",
    "s3:bucket",
    "lambda:*",
    "*:service",
    "*",
    "*:*",
    "ec2:instanc?",
    "?3:bucket",
    "EC2:*",  # case-sensitive: matches nothing
    "rds:d_",  # '_' is literal
    "rds:d%",  # '%' is literal
    "s3:[b]ucket",  # brackets are literal
    "ecs:service*",
    "lambda:function?",
)
PROHIBITED_POOL = (
    "secret*",
    "*password*",
    "tmp?",
    "a%b",
    "a_b",
    "a\\b",
    "[x]",
    "İ*",
    "ı*",
    "*σ",
    "ǆ*",
    "\u212a?y",
    "aws:*",
    "*:*",
    "x*y",
    "q?",
    "😀*",
    "Straße",
    "*",
)
OTHER_KEYS = (
    "aws:cloudformation:stack-name",
    "AWS:Created",
    "Aws:owner",
    "aws:",
    "Secret",
    "SECRET-1",
    "password",
    "Password_Reset",
    "tmp1",
    "TMPX",
    "tmp",
    "[X]",
    "x",
    "a%b",
    "aXb",
    "a\\b",
    "kEy",
    "KEY",
    "ǄX",
    "ΑΣ",
    "ας",
    "Name",
    "😀",
)
REASONS = ("legacy fleet", "ticket 'OPS-1'", "Überprüfung läuft", "😀 migrating", " padded ")
EXPIRY_OFFSETS = (-30, -1, 0, 1, 365)
ID_CHARS = "abc019-%_\\*?[]/:é😀İ"
BLANK_AROUND = (" ", "\t", "\n", "\xa0")

Draw = Callable[[st.SearchStrategy[Any]], Any]


def random_case(text: str, rng: random.Random) -> str:
    return "".join(rng.choice((char, char.lower(), char.upper())) for char in text)


def key_variant(draw: Draw, key: str) -> str:
    """The key as typed, half the time (value checks need the exact key); else in another
    capitalisation or normal form, maybe padded with blank or non-blank space."""
    if draw(st.booleans()):
        return key
    rng = draw(st.randoms(use_true_random=False))
    cased = draw(
        st.sampled_from(
            (
                key,
                key.lower(),
                key.upper(),
                key.title(),
                key.swapcase(),
                key.casefold(),
                ref.fold(key),
                random_case(key, rng),
                unicodedata.normalize("NFC", key),
                unicodedata.normalize("NFD", key),
            )
        )
    )
    return draw(
        st.sampled_from(
            (
                cased,
                cased,
                rng.choice(BLANK_AROUND) + cased,
                cased + rng.choice(BLANK_AROUND),
            )
        )
    )


def glob_instance(draw: Draw, glob: str) -> str:
    """Some text the glob (or allowed value) probably matches: ``*`` filled in, ``?`` kept
    (it is literal in allowed values) or filled in, case varied."""
    filler = st.sampled_from(("", "x", "-1", "ß", "😀", "%", "_", "\n"))
    text = "".join(
        draw(filler) if char == "*" else draw(st.sampled_from("?xé_\n")) if char == "?" else char
        for char in glob
    )
    return key_variant(draw, text)


def unique_by_fold(keys: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for key in keys:
        seen.setdefault(ref.fold(key), key)
    return list(seen.values())


@st.composite
def tag_rules(draw: Draw, keys: Sequence[str]) -> list[dict[str, Any]]:
    """One rule per key, with random checks; allowed values its pattern rejects are dropped
    (the model refuses them, and no resource could pass with them anyway)."""
    rules = []
    for key in keys:
        rule: dict[str, Any] = {"key": key}
        pattern = draw(st.none() | st.sampled_from(sorted(PATTERNS)))
        if pattern is not None:
            rule["pattern"] = pattern
        allowed = draw(st.none() | st.lists(st.sampled_from(ALLOWED_POOL), min_size=1, max_size=4))
        if allowed is not None and pattern is not None:
            allowed = [value for value in allowed if "*" in value or ref.pattern_matches(pattern, value)]
        if allowed:
            rule["allowed_values"] = allowed
        if draw(st.booleans()):
            rule["case_sensitive_values"] = draw(st.booleans())
        applies_to = draw(st.none() | st.lists(st.sampled_from(APPLIES_TO_POOL), min_size=1, max_size=3))
        if applies_to is not None:
            rule["applies_to"] = applies_to
        if draw(st.booleans()):
            rule["severity"] = draw(st.sampled_from(("error", "warning")))
        rules.append(rule)
    return rules


@st.composite
def policies(draw: Draw, estate: Sequence[dict[str, Any]], day: date) -> dict[str, Any]:
    """Policy data: rules, prohibited globs, a tag limit, exemptions aimed at the estate."""
    # Mostly at least one required rule: a policy without one leaves most resources out of scope.
    at_least = draw(st.sampled_from((0, 1, 1, 1)))
    required_keys = unique_by_fold(draw(st.lists(st.sampled_from(RULE_KEYS), min_size=at_least, max_size=3)))
    optional_keys = [
        key
        for key in unique_by_fold(draw(st.lists(st.sampled_from(RULE_KEYS), max_size=2)))
        if ref.fold(key) not in {ref.fold(required) for required in required_keys}
    ]
    if required_keys and draw(st.booleans()):
        # The same exact key optional too: checked where present on types the required one skips.
        optional_keys.append(draw(st.sampled_from(required_keys)))
    rule_keys = required_keys + optional_keys
    prohibited = [
        glob
        for glob in draw(st.lists(st.sampled_from(PROHIBITED_POOL), max_size=3))
        if not any(ref.glob_match(glob, key, ignore_case=True) for key in rule_keys)
    ]
    data: dict[str, Any] = {
        "version": "diff-1",
        "required_tags": draw(tag_rules(required_keys)),
        "optional_tags": draw(tag_rules(optional_keys)),
        "prohibited_keys": prohibited,
        "prohibited_severity": draw(st.sampled_from(("error", "warning"))),
        "max_user_tags_severity": draw(st.sampled_from(("error", "warning"))),
    }
    limit = draw(st.none() | st.integers(1, 4) | st.just(50))
    if limit is not None or not (rule_keys or prohibited):
        data["max_user_tags"] = limit or 2
    data["exemptions"] = draw(st.lists(exemptions(estate, rule_keys, prohibited, day), max_size=3))
    return data


@st.composite
def exemptions(
    draw: Draw,
    estate: Sequence[dict[str, Any]],
    rule_keys: Sequence[str],
    prohibited: Sequence[str],
    day: date,
) -> dict[str, Any]:
    def resource_glob() -> str:
        target = draw(st.sampled_from(estate))
        text = draw(st.sampled_from((target["resource_id"], target["arn"])))
        how = draw(st.sampled_from(("exact", "exact", "prefix", "suffix", "question", "upper", "fixed")))
        if how == "prefix":
            return text[: draw(st.integers(0, len(text)))] + "*"
        if how == "suffix":
            return "*" + text[draw(st.integers(0, len(text))) :]
        if how == "question":
            rng = draw(st.randoms(use_true_random=False))
            return "".join("?" if rng.random() < 0.3 else char for char in text)
        if how == "upper":
            return text.upper()  # case-sensitive: usually matches nothing
        if how == "fixed":
            return draw(st.sampled_from(("*", "arn:aws:ec2:*", "i-%*", "*:db*", "nothing-*", "?*")))
        return text

    def key_glob() -> str:
        how = draw(st.sampled_from(("rule", "rule", "prefix", "prohibited", "fixed")))
        if how in ("rule", "prefix") and rule_keys:
            key = key_variant(draw, draw(st.sampled_from(rule_keys))).strip()
            return key if how == "rule" else key[:2] + "*"
        if how == "prohibited" and prohibited:
            return draw(st.sampled_from(prohibited))
        return draw(st.sampled_from(("*", "Cost?enter", "secret*", "ı*", "İ*", "a_b", "a%b", "*σ")))

    data: dict[str, Any] = {
        "resources": [resource_glob() for _ in range(draw(st.integers(1, 2)))],
        "reason": draw(st.sampled_from(REASONS)),
        "expires": day + timedelta(days=draw(st.sampled_from(EXPIRY_OFFSETS))),
    }
    if draw(st.booleans()):
        data["keys"] = [key_glob() for _ in range(draw(st.integers(1, 2)))]
    return data


@st.composite
def tag_values(draw: Draw, rule: dict[str, Any] | None) -> str:
    """A value from the pool, or one aimed at the edge of the rule's allowed values or pattern."""
    sources = ["pool"]
    if rule and rule.get("allowed_values"):
        sources += ["allowed", "allowed"]
    if rule and rule.get("pattern"):
        sources += ["pattern", "pattern"]
    source = draw(st.sampled_from(sources))
    if source == "allowed":
        return glob_instance(draw, draw(st.sampled_from(rule["allowed_values"])))
    if source == "pattern":
        return draw(st.sampled_from(PATTERNS[rule["pattern"]]))
    return draw(st.sampled_from(VALUE_POOL))


@st.composite
def tags_for(draw: Draw, policy_data: dict[str, Any]) -> dict[str, str] | None:
    """A resource's tags: rule keys in any capitalisation, prohibited and AWS keys, others."""
    if draw(st.integers(0, 9)) == 0:
        return None
    rules = policy_data["required_tags"] + policy_data["optional_tags"]
    tags: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 6))):
        source = draw(st.sampled_from(("rule", "rule", "rule", "prohibited", "other", "text")))
        rule = None
        if source == "rule" and rules:
            rule = draw(st.sampled_from(rules))
            key = key_variant(draw, rule["key"])
        elif source == "prohibited" and policy_data["prohibited_keys"]:
            key = glob_instance(draw, draw(st.sampled_from(policy_data["prohibited_keys"])))
        elif source == "text":
            key = draw(st.text(min_size=1, max_size=8))
        else:
            key = draw(st.sampled_from(OTHER_KEYS))
        value = draw(st.text(max_size=6)) if source == "text" else draw(tag_values(rule))
        tags[key] = value
    return tags


@st.composite
def estates(draw: Draw) -> list[dict[str, Any]]:
    """Resources without tags yet (tags depend on the policy): unique ids full of glob and
    LIKE metacharacters."""
    rows = []
    for number in range(draw(st.integers(1, 6))):
        resource_type = draw(st.sampled_from(RESOURCE_TYPES))
        suffix = draw(st.text(st.sampled_from(ID_CHARS), max_size=5))
        rows.append(
            resource(
                draw(st.sampled_from(ACCOUNTS)),
                draw(st.sampled_from(REGIONS)),
                resource_type,
                f"{ID_PREFIXES[resource_type]}{suffix}-{number}",
                None,
            )
        )
    return rows


@st.composite
def cases(draw: Draw) -> tuple[dict[str, Any], list[dict[str, Any]], date]:
    """(policy data, resources, scored day): one scoring call's worth."""
    day = draw(st.sampled_from(DAYS))
    estate = draw(estates())
    policy_data = draw(policies(estate, day))
    for row in estate:
        row["tags"] = draw(tags_for(policy_data))
    return policy_data, estate, day


# --- comparing ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """One connection for all examples: every scoring step replaces its table, and connecting
    anew each time would cost more than the scoring."""
    with connect() as connection:
        yield connection


def rows_as(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """Rows as a multiset of tuples of these columns (lists become tuples, to be hashable)."""
    return Counter(
        tuple(tuple(row[column]) if isinstance(row[column], list) else row[column] for column in columns)
        for row in rows
    )


def assert_same_rows(
    name: str, columns: Sequence[str], sql_rows: Sequence[dict[str, Any]], ref_rows: Sequence[dict[str, Any]]
) -> None:
    got, want = rows_as(columns, sql_rows), rows_as(columns, ref_rows)
    if got != want:
        only_sql = sorted((got - want).elements(), key=repr)
        only_ref = sorted((want - got).elements(), key=repr)
        lines = [f"{name}: SQL and reference disagree ({columns})"]
        lines += [f"  only in SQL:       {row!r}" for row in only_sql]
        lines += [f"  only in reference: {row!r}" for row in only_ref]
        raise AssertionError("\n".join(lines))


def check_case(
    con: duckdb.DuckDBPyConnection, policy_data: dict[str, Any], estate: list[dict[str, Any]], day: date
) -> None:
    try:
        policy = TaggingPolicy.model_validate(policy_data)
    except ValidationError:
        reject()  # the strategies aim for valid policies; the model has the last word
    note(f"policy: {policy_data!r}")
    note(f"scored day: {day}")
    for row in estate:
        note(f"resource {row['resource_type']} {row['resource_id']!r}: {row['tags']!r}")
    con.register("snapshot_resources", resources_table(estate))
    sql = {name: table.to_pylist() for name, table in score_resources(con, policy, scored_date=day).items()}
    want = ref.score(estate, policy, day)
    # Shown by --hypothesis-show-statistics: evidence the examples reach every outcome.
    for row in want.violations:
        event(f"violation {row['violation_type']}")
    for row in want.exempted_violations:
        event(f"exempted {row['violation_type']}")
    for row in want.resource_compliance:
        event(f"status {row['compliance_status']}")
    assert_same_rows("violations", ref.VIOLATION_COLUMNS, sql["violations"], want.violations)
    assert_same_rows(
        "exempted_violations", ref.EXEMPTED_COLUMNS, sql["exempted_violations"], want.exempted_violations
    )
    assert_same_rows(
        "resource_compliance",
        ref.COMPLIANCE_COLUMNS,
        sql["resource_compliance"],
        want.resource_compliance,
    )


# --- seeded examples that once failed ------------------------------------------------------------
# Each is a hand-shrunk form of failures this test reported, kept so every run checks it first.
# The SQL never disagreed with docs/policy.md while this test was written; these failed against
# versions of the reference that read the language the way an implementation most plausibly
# gets it wrong (the test was checked by running it against each such version).

DAY = date(2026, 3, 14)
EC2 = "ec2:instance"

# Caught a reference that folded case with Python's str.lower() on the whole key (and one that
# used str.casefold()): that turns 'İ' into 'i' + U+0307 and a word-final 'Σ' into 'ς', so
# 'i̇stanbul' and 'οδος' looked like 'İstanbul' and 'ΟΔΟΣ' in another case (wrong_key_case) where
# DuckDB's lower(), character by character with 'İ' -> 'i', says they are missing; and the
# other way round for 'istanbul' and 'οδοσ'. The Kelvin sign and 'ǅ' fold as str.lower() says.
FOLDING_EXAMPLE = (
    {
        "version": "regression-folding",
        "required_tags": [{"key": "İstanbul"}, {"key": "ΟΔΟΣ"}, {"key": "Kelvin"}, {"key": "ǅemal"}],
    },
    [
        resource(ACCOUNTS[0], "us-east-1", EC2, "i-python-lower", {"i̇stanbul": "x", "οδος": "y"}),
        resource(
            ACCOUNTS[0],
            "us-east-1",
            EC2,
            "i-duckdb-lower",
            {"istanbul": "x", "οδοσ": "y", "\u212aelvin": "z", "ǆemal": "w"},
        ),
    ],
    DAY,
)

# Caught a reference that let '.' match a newline (RE2's default, and DuckDB's, is not to), one
# that counted NBSP as blank (str.isspace), and one that read '?' in allowed values as a
# wildcard (only '*' is one there, as in AWS tag policies).
VALUES_EXAMPLE = (
    {
        "version": "regression-values",
        "required_tags": [
            {"key": "CostCenter", "pattern": "a.b"},
            {"key": "Env", "allowed_values": ["x?y", "50%_off*"]},
            {"key": "Owner"},
        ],
    },
    [
        resource(
            ACCOUNTS[0], "us-east-1", EC2, "i-newline", {"CostCenter": "a\nb", "Env": "xzy", "Owner": "\xa0"}
        ),
        resource(
            ACCOUNTS[0],
            "us-east-1",
            EC2,
            "i-literal",
            {"CostCenter": "a.b", "Env": "x?y", "Owner": " \t\v\f\r\n"},
        ),
        resource(
            ACCOUNTS[0], "us-east-1", EC2, "i-like", {"CostCenter": "a.b", "Env": "50X_off", "Owner": "me"}
        ),
    ],
    DAY,
)

# Caught a reference that let an exemption expiring on the scored day lapse (it still applies
# that day), one that reported the last matching exemption instead of the first, and one that
# matched exemption resource globs ignoring case; too_many_tags is waived only by an
# exemption without keys.
EXEMPTIONS_EXAMPLE = (
    {
        "version": "regression-exemptions",
        "required_tags": [{"key": "Owner"}, {"key": "Team", "severity": "warning"}],
        "max_user_tags": 1,
        "exemptions": [
            {"resources": ["I-*"], "reason": "case-sensitive: covers nothing", "expires": DAY},
            {"resources": ["i-?ld"], "keys": ["OWNER"], "reason": "last day", "expires": DAY},
            {"resources": ["*:i-old"], "reason": "whole resource", "expires": DAY},
            {"resources": ["i-*"], "reason": "expired yesterday", "expires": DAY - timedelta(days=1)},
        ],
    },
    [
        resource(ACCOUNTS[0], "us-east-1", EC2, "i-old", {"a": "1", "b": "2"}),
        resource(ACCOUNTS[0], "us-east-1", EC2, "i-new", {"Owner": "me", "a": "1", "aws:x": "y"}),
    ],
    DAY,
)

REGRESSION_EXAMPLES = (FOLDING_EXAMPLE, VALUES_EXAMPLE, EXEMPTIONS_EXAMPLE)


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(case=cases())
@example(case=FOLDING_EXAMPLE)
@example(case=VALUES_EXAMPLE)
@example(case=EXEMPTIONS_EXAMPLE)
def test_sql_matches_reference_scorer(
    con: duckdb.DuckDBPyConnection, case: tuple[dict[str, Any], list[dict[str, Any]], date]
) -> None:
    check_case(con, *case)


def outcomes(case: tuple[dict[str, Any], list[dict[str, Any]], date]) -> dict[str, list[tuple[Any, ...]]]:
    """The reference's verdict on a case, per resource id: sorted (tag_key, type, exemption reason)."""
    policy_data, estate, day = case
    result = ref.score(estate, TaggingPolicy.model_validate(policy_data), day)
    found: dict[str, list[tuple[Any, ...]]] = {row["resource_id"]: [] for row in estate}
    for row in result.violations:
        found[row["resource_id"]].append((row["tag_key"] or "", row["violation_type"], None))
    for row in result.exempted_violations:
        found[row["resource_id"]].append(
            (row["tag_key"] or "", row["violation_type"], row["exemption_reason"])
        )
    return {resource_id: sorted(rows, key=repr) for resource_id, rows in found.items()}


def test_regression_examples_mean_what_their_comments_say() -> None:
    """Pin the reference's reading of the seeded examples, so SQL and reference cannot drift
    the same wrong way unnoticed."""
    assert outcomes(FOLDING_EXAMPLE) == {
        "i-python-lower": sorted(
            [
                ("İstanbul", "missing_required_tag", None),
                ("ΟΔΟΣ", "missing_required_tag", None),
                ("Kelvin", "missing_required_tag", None),
                ("ǅemal", "missing_required_tag", None),
            ],
            key=repr,
        ),
        "i-duckdb-lower": sorted(
            [
                ("İstanbul", "wrong_key_case", None),
                ("ΟΔΟΣ", "wrong_key_case", None),
                ("Kelvin", "wrong_key_case", None),
                ("ǅemal", "wrong_key_case", None),
            ],
            key=repr,
        ),
    }
    assert outcomes(VALUES_EXAMPLE) == {
        "i-newline": sorted(
            [("CostCenter", "invalid_format", None), ("Env", "invalid_value", None)], key=repr
        ),
        "i-literal": [("Owner", "empty_value", None)],
        "i-like": [("Env", "invalid_value", None)],
    }
    assert outcomes(EXEMPTIONS_EXAMPLE) == {
        "i-old": sorted(
            [
                ("", "too_many_tags", "whole resource"),
                ("Owner", "missing_required_tag", "last day"),
                ("Team", "missing_required_tag", "whole resource"),
            ],
            key=repr,
        ),
        "i-new": sorted([("", "too_many_tags", None), ("Team", "missing_required_tag", None)], key=repr),
    }
    statuses = {
        row["resource_id"]: row["compliance_status"]
        for row in ref.score(
            EXEMPTIONS_EXAMPLE[1], TaggingPolicy.model_validate(EXEMPTIONS_EXAMPLE[0]), DAY
        ).resource_compliance
    }
    assert statuses == {"i-old": "exempt", "i-new": "non_compliant"}


def test_reference_folds_case_as_duckdb_lower(con: duckdb.DuckDBPyConnection) -> None:
    """docs/policy.md defines "ignoring case" as DuckDB's lower(); the reference folds in Python.
    Check every code point, so a Unicode upgrade on either side shows up here first."""
    chars = [chr(code) for code in range(1, sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF]
    table = pa.table({"char": chars, "folded": [ref.fold(char) for char in chars]})
    con.register("fold_check", table)
    differing = con.execute("SELECT char, lower(char) FROM fold_check WHERE lower(char) <> folded").fetchall()
    con.unregister("fold_check")
    assert differing == []
