"""The tagging policy: a pydantic model, its YAML/JSON loader, and its form as DuckDB data.

The language (documented with an example per feature in ``docs/policy.md`` and
``include/policies/``): required and optional tag rules, prohibited key globs, a maximum number
of user tags, and exemptions that expire. A policy is reviewed by people and applied by SQL.
The model therefore rejects anything ambiguous (unknown fields, keys differing only in case,
patterns RE2 cannot compile, values no resource could pass with) with errors that name the
file, the field path, the offending value and the kind of error; and ``to_tables`` hands the
policy to DuckDB as Arrow tables, so no key, value or pattern ever becomes part of SQL text.
"""

from __future__ import annotations

import difflib
import json
import reprlib
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
import re2
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Severity = Literal["error", "warning"]

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
AWS_USER_TAGS_MAX = 50
"""AWS allows 50 user tags per resource; keys AWS sets itself (``aws:...``) do not count."""
LIKE_ESCAPE = "\\"
"""Escape character of every LIKE pattern built here; the SQL says ``ESCAPE '\\'``."""

POLICY_SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}

# Bounds on what a policy file may cost to read: real policies are a few KB and a few hundred
# nodes, so these only stop a hostile or broken file (a YAML alias bomb expands exponentially).
MAX_POLICY_BYTES = 1024 * 1024
MAX_POLICY_NODES = 100_000
"""YAML nodes after expanding aliases and merge keys, i.e. what validation will walk."""
MAX_POLICY_DEPTH = 32
MAX_REPORTED_ERRORS = 100
GLOB_MAX = 2048
"""As long as the longest ARN AWS allows; exemption globs match ARNs."""

TagKey = Annotated[str, Field(min_length=1, max_length=TAG_KEY_MAX)]
AllowedValue = Annotated[str, Field(max_length=TAG_VALUE_MAX)]
Glob = Annotated[str, Field(min_length=1, max_length=GLOB_MAX)]
"""A glob of this language: ``*`` matches any run of characters, ``?`` exactly one; nothing else
is special (no brackets), so a glob means the same in the SQL (LIKE) and in every reader."""
MetadataValue = str | int | float | bool | date | list[str] | None


def _matches_a_collected_type(glob: str, info: ValidationInfo) -> str:
    """A resource-type glob matching nothing would silently put nothing in scope: a typo.

    Checked against the ``resource_types`` in the validation context, which ``parse_policy``
    (so ``policy check`` and the DAG) passes from the collector registry; the language itself
    (``TaggingPolicy.model_validate`` without it) gives any glob the same meaning in SQL. A glob
    of a service no collector lists (``ecs:task-definition`` is ECS, which has collectors; say,
    ``appsync:apis`` is not) names what only the Tagging API's breadth listing may see, which
    cannot be known in advance: it passes, if it is written as types are (``service:type``, the
    service in lower case)."""
    known: list[str] | None = (info.context or {}).get(RESOURCE_TYPES_CONTEXT)
    if known is None or any(glob_matches(glob, resource_type) for resource_type in known):
        return glob
    service, colon, _ = glob.partition(":")
    services = {resource_type.split(":", 1)[0] for resource_type in known}
    if colon and service.islower() and "*" not in service and "?" not in service and service not in services:
        return glob
    folded = fold_case(glob)
    near = [folded] if any(glob_matches(folded, t) for t in known) else []
    near = near or [t for t in known if glob_matches(glob, t, case_sensitive=False)]
    near = near or difflib.get_close_matches(glob, known, n=1)
    hint = f"; did you mean {near[0]!r}? (types match case-sensitively)" if near else ""
    raise PydanticCustomError(
        "unknown_resource_type",
        "matches no resource type this tool collects ({known}){hint}",
        {"known": ", ".join(known), "hint": hint},
    )


RESOURCE_TYPES_CONTEXT = "resource_types"


def collected_types_context() -> dict[str, list[str]]:
    """The validation context that makes ``applies_to`` globs name collected types."""
    from tag_compliance.aws.collectors import resource_types  # the registry imports collectors

    return {RESOURCE_TYPES_CONTEXT: resource_types()}


ResourceTypeGlob = Annotated[Glob, AfterValidator(_matches_a_collected_type)]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagRule(_Strict):
    """A tag the rule's resources must carry (``required_tags``) or, if they carry it, must get
    right (``optional_tags``): the key's capitalisation, a non-blank value, allowed values, a pattern."""

    key: TagKey
    description: str | None = None
    allowed_values: list[AllowedValue] | None = Field(
        default=None,
        min_length=1,
        description="Exact values allowed; '*' matches any run of characters (as in AWS tag policies).",
    )
    pattern: str | None = Field(
        default=None, description="RE2 regular expression the whole value must match."
    )
    applies_to: list[ResourceTypeGlob] | None = Field(
        default=None,
        min_length=1,
        description="Resource-type globs (e.g. 'ec2:*', 'rds:db'); omitted means every type.",
    )
    severity: Severity = "error"
    case_sensitive_values: bool = True

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        # AWS reserves the prefix in any case; nobody can set such a tag, so a rule on it is a bug.
        if is_aws_key(key):
            raise PydanticCustomError(
                "reserved_key", "keys starting with 'aws:' are reserved by AWS and cannot be checked"
            )
        return key

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        # DuckDB uses RE2 too: a pattern that compiles here behaves the same in regexp_full_match.
        if pattern is not None:
            compile_re2(pattern)
        return pattern

    @model_validator(mode="after")
    def _allowed_values_reachable(self) -> TagRule:
        # A value no resource could ever pass with is a typo in the policy, not a rule.
        for index, value in enumerate(self.allowed_values or ()):
            if is_blank(value):
                raise PydanticCustomError(
                    "blank_allowed_value",
                    "allowed_values[{index}] is blank, but a blank value is always an empty_value violation",
                    {"index": index, "path": f"allowed_values[{index}]", "value": value},
                )
            if self.pattern is not None and "*" not in value and not full_match(self.pattern, value):
                raise PydanticCustomError(
                    "unreachable_allowed_value",
                    "allowed_values[{index}] does not match the rule's pattern {pattern}, "
                    "so a resource with it would always fail",
                    {
                        "index": index,
                        "pattern": short_repr(self.pattern),
                        "path": f"allowed_values[{index}]",
                        "value": value,
                    },
                )
        return self

    @property
    def expected_text(self) -> dict[str, str]:
        """Short human texts for the ``expected`` column, by violation type."""
        texts = {
            "missing_required_tag": f"key {self.key}",
            "wrong_key_case": f"key {self.key}",
            "empty_value": "non-empty value",
        }
        if self.allowed_values is not None:
            texts["invalid_value"] = "one of: " + ", ".join(self.allowed_values)
        if self.pattern is not None:
            texts["invalid_format"] = f"matches {self.pattern}"
        return texts


RequiredTag = TagRule
"""The name of ``TagRule`` before optional tags existed."""


class Exemption(_Strict):
    """Checks waived for some resources until a date: the resource is reported exempt, not compliant."""

    resources: list[Glob] = Field(
        min_length=1, description="Globs matched against each resource's ARN or id (case-sensitive)."
    )
    keys: list[Glob] | None = Field(
        default=None,
        min_length=1,
        description="Tag-key globs (case-insensitive) whose violations are waived; omitted means all checks.",
    )
    reason: Annotated[str, Field(min_length=1)]
    expires: date = Field(description="Last day the exemption applies; from the next day it no longer does.")

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, reason: str) -> str:
        if is_blank(reason):
            raise PydanticCustomError("blank_reason", "an exemption needs a reason people can read")
        return reason


class TaggingPolicy(_Strict):
    """Tag rules, prohibited keys, a tag limit and exemptions, versioned so every result records
    what it was scored by."""

    version: Annotated[str, Field(min_length=1)]
    name: str | None = None
    description: str | None = None
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Free-form facts about the policy (owner, source, ticket...)."
    )
    required_tags: list[TagRule] = Field(default_factory=list)
    optional_tags: list[TagRule] = Field(
        default_factory=list, description="Rules checked only on resources that carry the key (in any case)."
    )
    prohibited_keys: list[Glob] = Field(
        default_factory=list, description="Key globs that must never be set, matched case-insensitively."
    )
    prohibited_severity: Severity = "error"
    max_user_tags: Annotated[int, Field(strict=True, ge=1, le=AWS_USER_TAGS_MAX)] | None = Field(
        default=None, description="At most this many tags per resource; 'aws:' keys do not count."
    )
    max_user_tags_severity: Severity = "error"
    exemptions: list[Exemption] = Field(default_factory=list)

    @field_validator(
        "required_tags", "optional_tags", "prohibited_keys", "exemptions", "metadata", mode="before"
    )
    @classmethod
    def _blank_is_empty(cls, value: object, info: ValidationInfo) -> object:
        # ``prohibited_keys:`` with every entry commented out is YAML null; read it as "none".
        if value is None:
            return {} if info.field_name == "metadata" else []
        return value

    @model_validator(mode="after")
    def _keys_unambiguous_and_policy_not_empty(self) -> TaggingPolicy:
        self._check_keys_unique("required_tags", self.required_tags, {})
        required_keys = {
            fold_case(rule.key): (index, rule.key) for index, rule in enumerate(self.required_tags)
        }
        self._check_keys_unique("optional_tags", self.optional_tags, required_keys)
        prohibited = GlobSet(self.prohibited_keys, case_sensitive=False)
        for field, index, rule in self.tag_rules_by_field():
            matched = prohibited.matching(rule.key)
            if matched:
                raise PydanticCustomError(
                    "prohibited_rule_key",
                    "'{key}' is also prohibited by prohibited_keys glob {glob}: "
                    "a resource could never satisfy both",
                    {
                        "key": rule.key,
                        "glob": short_repr(matched[0]),
                        "path": f"{field}[{index}].key",
                        "value": rule.key,
                    },
                )
        if not (self.required_tags or self.optional_tags or self.prohibited_keys or self.max_user_tags):
            raise PydanticCustomError(
                "empty_policy",
                "the policy has no required_tags, optional_tags, prohibited_keys or max_user_tags, "
                "so it would check nothing",
                {"path": "required_tags", "value": []},
            )
        return self

    @staticmethod
    def _check_keys_unique(
        field: str, rules: list[TagRule], required_keys: dict[str, tuple[int, str]]
    ) -> None:
        """No two rules of one list share a key ignoring case; an optional rule may repeat a
        required key only exactly (then it covers the types the required rule does not)."""
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            folded = fold_case(rule.key)
            first = seen.setdefault(folded, index)
            other = (f"{field}[{first}].key", rules[first].key) if first != index else None
            if other is None and folded in required_keys and required_keys[folded][1] != rule.key:
                other = (f"required_tags[{required_keys[folded][0]}].key", required_keys[folded][1])
            if other is not None:
                raise PydanticCustomError(
                    "duplicate_key",
                    "'{key}' differs only in case from {other_path} '{other}': "
                    "a resource could never satisfy both",
                    {
                        "key": rule.key,
                        "other_path": other[0],
                        "other": other[1],
                        "path": f"{field}[{index}].key",
                        "value": rule.key,
                    },
                )

    def tag_rules_by_field(self) -> list[tuple[str, int, TagRule]]:
        """Every tag rule with the list it is in and its index there, required first."""
        return [("required_tags", index, rule) for index, rule in enumerate(self.required_tags)] + [
            ("optional_tags", index, rule) for index, rule in enumerate(self.optional_tags)
        ]

    def summary(self) -> str:
        """One line for humans: what this policy checks."""
        errors = sum(rule.severity == "error" for rule in self.required_tags)
        warnings = len(self.required_tags) - errors
        parts = [
            f"version {self.version}",
            f"{len(self.required_tags)} required tags ({errors} error, {warnings} warning)",
        ]
        if self.optional_tags:
            parts.append(f"{len(self.optional_tags)} optional tags")
        parts.append(f"{len(self.prohibited_keys)} prohibited key globs")
        if self.max_user_tags is not None:
            parts.append(f"at most {self.max_user_tags} user tags")
        if self.exemptions:
            parts.append(f"{len(self.exemptions)} exemptions")
        return ", ".join(parts)

    def to_tables(self) -> dict[str, pa.Table]:
        """The policy as Arrow tables to register in DuckDB under these names.

        Policy values reach SQL only as data. Every glob comes with its ``like_pattern`` (see
        ``glob_to_like``), to use with ``ESCAPE '\\\\'``. Tables:

        - ``policy_info``: one row, ``policy_version``, ``prohibited_severity``, ``max_user_tags``
          (NULL: no limit), ``max_user_tags_severity``, ``expected_max_tags``.
        - ``policy_rules``: ``rule_id`` (required rules first, in order, then optional ones),
          ``tag_key, required, severity, pattern, has_allowed_values, case_sensitive_values,
          applies_to_all`` and the ``expected_*`` texts.
        - ``policy_rule_applies_to``: ``rule_id, resource_type_glob, like_pattern``.
        - ``policy_allowed_values``: ``rule_id, allowed_value, like_pattern`` (only ``*`` is a
          wildcard in values, as in AWS tag policies).
        - ``policy_prohibited_keys``: ``key_glob, like_pattern``.
        - ``policy_exemptions``: ``exemption_id, reason, expires, all_keys``.
        - ``policy_exemption_resources``: ``exemption_id, resource_glob, like_pattern``.
        - ``policy_exemption_keys``: ``exemption_id, key_glob, like_pattern``.
        """
        rules = [(rule, field == "required_tags") for field, _, rule in self.tag_rules_by_field()]
        expected = [rule.expected_text for rule, _ in rules]
        limit = self.max_user_tags
        return {
            "policy_info": pa.table(
                {
                    "policy_version": [self.version],
                    "prohibited_severity": [self.prohibited_severity],
                    "max_user_tags": [limit],
                    "max_user_tags_severity": [self.max_user_tags_severity],
                    "expected_max_tags": [None if limit is None else f"at most {limit} user tags"],
                },
                schema=POLICY_TABLE_SCHEMAS["policy_info"],
            ),
            "policy_rules": pa.table(
                {
                    "rule_id": list(range(len(rules))),
                    "tag_key": [rule.key for rule, _ in rules],
                    "required": [required for _, required in rules],
                    "severity": [rule.severity for rule, _ in rules],
                    "pattern": [rule.pattern for rule, _ in rules],
                    "has_allowed_values": [rule.allowed_values is not None for rule, _ in rules],
                    "case_sensitive_values": [rule.case_sensitive_values for rule, _ in rules],
                    "applies_to_all": [rule.applies_to is None for rule, _ in rules],
                    "expected_key": [texts["missing_required_tag"] for texts in expected],
                    "expected_non_empty": [texts["empty_value"] for texts in expected],
                    "expected_allowed": [texts.get("invalid_value") for texts in expected],
                    "expected_format": [texts.get("invalid_format") for texts in expected],
                },
                schema=POLICY_TABLE_SCHEMAS["policy_rules"],
            ),
            "policy_rule_applies_to": _rows_table(
                "policy_rule_applies_to",
                (
                    (rule_id, glob, glob_to_like(glob))
                    for rule_id, (rule, _) in enumerate(rules)
                    for glob in dict.fromkeys(rule.applies_to or ())
                ),
            ),
            "policy_allowed_values": _rows_table(
                "policy_allowed_values",
                (
                    (rule_id, value, wildcard_to_like(value))
                    for rule_id, (rule, _) in enumerate(rules)
                    for value in rule.allowed_values or ()
                ),
            ),
            "policy_prohibited_keys": _rows_table(
                "policy_prohibited_keys",
                ((glob, glob_to_like(glob)) for glob in dict.fromkeys(self.prohibited_keys)),
            ),
            "policy_exemptions": _rows_table(
                "policy_exemptions",
                (
                    (exemption_id, exemption.reason, exemption.expires, exemption.keys is None)
                    for exemption_id, exemption in enumerate(self.exemptions)
                ),
            ),
            "policy_exemption_resources": _rows_table(
                "policy_exemption_resources",
                (
                    (exemption_id, glob, glob_to_like(glob))
                    for exemption_id, exemption in enumerate(self.exemptions)
                    for glob in dict.fromkeys(exemption.resources)
                ),
            ),
            "policy_exemption_keys": _rows_table(
                "policy_exemption_keys",
                (
                    (exemption_id, glob, glob_to_like(glob))
                    for exemption_id, exemption in enumerate(self.exemptions)
                    for glob in dict.fromkeys(exemption.keys or ())
                ),
            ),
        }


def _glob_table_schema(glob_column: str, id_column: str | None = None) -> pa.Schema:
    id_fields = [pa.field(id_column, pa.int32(), nullable=False)] if id_column else []
    return pa.schema(
        [
            *id_fields,
            pa.field(glob_column, pa.string(), nullable=False),
            pa.field("like_pattern", pa.string(), nullable=False),
        ]
    )


POLICY_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "policy_info": pa.schema(
        [
            pa.field("policy_version", pa.string(), nullable=False),
            pa.field("prohibited_severity", pa.string(), nullable=False),
            pa.field("max_user_tags", pa.int32()),
            pa.field("max_user_tags_severity", pa.string(), nullable=False),
            pa.field("expected_max_tags", pa.string()),
        ]
    ),
    "policy_rules": pa.schema(
        [
            pa.field("rule_id", pa.int32(), nullable=False),
            pa.field("tag_key", pa.string(), nullable=False),
            pa.field("required", pa.bool_(), nullable=False),
            pa.field("severity", pa.string(), nullable=False),
            pa.field("pattern", pa.string()),
            pa.field("has_allowed_values", pa.bool_(), nullable=False),
            pa.field("case_sensitive_values", pa.bool_(), nullable=False),
            pa.field("applies_to_all", pa.bool_(), nullable=False),
            pa.field("expected_key", pa.string(), nullable=False),
            pa.field("expected_non_empty", pa.string(), nullable=False),
            pa.field("expected_allowed", pa.string()),
            pa.field("expected_format", pa.string()),
        ]
    ),
    "policy_rule_applies_to": _glob_table_schema("resource_type_glob", "rule_id"),
    "policy_allowed_values": pa.schema(
        [
            pa.field("rule_id", pa.int32(), nullable=False),
            pa.field("allowed_value", pa.string(), nullable=False),
            pa.field("like_pattern", pa.string(), nullable=False),
        ]
    ),
    "policy_prohibited_keys": _glob_table_schema("key_glob"),
    "policy_exemptions": pa.schema(
        [
            pa.field("exemption_id", pa.int32(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("expires", pa.date32(), nullable=False),
            pa.field("all_keys", pa.bool_(), nullable=False),
        ]
    ),
    "policy_exemption_resources": _glob_table_schema("resource_glob", "exemption_id"),
    "policy_exemption_keys": _glob_table_schema("key_glob", "exemption_id"),
}


def _rows_table(name: str, rows: Iterable[Sequence[object]]) -> pa.Table:
    schema = POLICY_TABLE_SCHEMAS[name]
    columns: list[list[object]] = [[] for _ in schema]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return pa.table(columns, schema=schema)


# --- the language's primitives, shared by the model, the importer and the tests' reference ----

BLANK_CHARACTERS = " \t\n\v\f\r"
"""A value made only of these (or empty) is blank: the ``empty_value`` violation."""


def is_blank(value: str) -> bool:
    return all(char in BLANK_CHARACTERS for char in value)


def fold_case(text: str) -> str:
    """Lower-case ``text`` one character at a time, exactly as DuckDB's ``lower()`` does.

    "Ignoring case" in this language means equal after ``fold_case``. Python's ``str.lower``
    differs from DuckDB for 'İ' (it gives 'i' + U+0307, DuckDB 'i') and for a final capital
    sigma (context-dependent in Python, not in DuckDB); per character, but for 'İ', they agree.
    """
    return "".join("i" if char == "\u0130" else char.lower() for char in text)


def is_aws_key(key: str) -> bool:
    """Keys AWS sets itself; AWS reserves the prefix in any case, and they count for no limit."""
    return fold_case(key[:4]) == "aws:"


def compile_re2(pattern: str) -> re2._Regexp:
    """Compile with RE2 (as DuckDB does) or raise the ``re2_pattern`` validation error."""
    try:  # log_errors is off: the error goes into our message, not onto stderr
        return re2.compile(pattern, _re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "error"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PydanticCustomError(
            "re2_pattern", "not a valid RE2 pattern: {reason}", {"reason": str(reason)}
        ) from None


def full_match(pattern: str, value: str) -> bool:
    return compile_re2(pattern).fullmatch(value) is not None


def _to_like(text: str, wildcards: dict[str, str]) -> str:
    out = []
    for char in text:
        if char in wildcards:
            out.append(wildcards[char])
        elif char in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


def wildcard_to_like(value: str) -> str:
    """Translate an AWS tag-policy value (``*`` = any run of characters) into a LIKE pattern.

    LIKE's own metacharacters (``%``, ``_``) and the escape character are escaped so they
    match literally; use the result with ``ESCAPE '\\'``.
    """
    return _to_like(value, {"*": "%"})


def glob_to_like(glob: str) -> str:
    """Translate a policy glob (``*`` any run, ``?`` one character) into a LIKE pattern."""
    return _to_like(glob, {"*": "%", "?": "_"})


def _glob_to_re2(glob: str) -> str:
    # RE2 matches in time linear in the text whatever the glob (``*a*a*a*a*b`` included);
    # Python's backtracking ``re`` took minutes on such a glob against a 60-character key.
    return "(?s)" + "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in glob)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    return options


@lru_cache(maxsize=4096)
def _compiled_glob(glob: str) -> re2._Regexp:
    return re2.compile(_glob_to_re2(glob), _re2_options())


def glob_matches(glob: str, text: str, case_sensitive: bool = True) -> bool:
    """Whether ``text`` matches the policy glob, as the SQL's LIKE on ``glob_to_like`` does."""
    if not case_sensitive:
        glob, text = fold_case(glob), fold_case(text)
    return _compiled_glob(glob).fullmatch(text) is not None


class GlobSet:
    """Many globs matched against a text in one linear pass (an RE2 set), so checking every
    rule key against every prohibited glob costs rules x key length, not rules x globs."""

    def __init__(self, globs: Iterable[str], case_sensitive: bool = True) -> None:
        self.globs = list(dict.fromkeys(globs))
        self.case_sensitive = case_sensitive
        self._set = re2.Set.FullMatchSet(_re2_options())
        for glob in self.globs:
            self._set.Add(_glob_to_re2(glob if case_sensitive else fold_case(glob)))
        self._set.Compile()

    def matching(self, text: str) -> list[str]:
        """The globs ``text`` matches, in the order given."""
        if not self.globs:
            return []
        found = self._set.Match(text if self.case_sensitive else fold_case(text))
        return [self.globs[index] for index in sorted(found or ())]  # None: no match


# --- loading ---------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one) and
    leaves dates as text, so pydantic validates them and names the field (PyYAML would crash
    on ``2027-02-30`` without saying where)."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def refuse_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: json keeps the last of two equal keys silently,
    so which one a reviewer meant would be a guess."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json(text: str, where: str, error: type[PolicyError] = PolicyError) -> object:
    """JSON text, or ``error`` naming ``where``, the line and the column (duplicate keys refused)."""
    try:
        return json.loads(text, object_pairs_hook=refuse_duplicate_json_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise error(f"{where}: invalid JSON: {exc}") from None


def _too_deep(path: Path) -> PolicyError:
    return PolicyError(
        f"{path}: the document nests deeper than {MAX_POLICY_DEPTH} levels [document_too_deep]"
    )


def _bounded_yaml_node(path: Path, loader: _UniqueKeyLoader) -> yaml.Node | None:
    """The document's node graph, refused before anything is built from it when expanding its
    aliases (and ``<<`` merges) would exceed ``MAX_POLICY_NODES`` or nest too deep.

    Composing shares one node per anchor, so it is linear in the file; everything after it
    (merging, validation, error messages) walks the expanded tree, which a 600-byte alias
    bomb makes exponential. Counting the expansion stops after ``MAX_POLICY_NODES`` steps."""
    try:
        root = loader.get_single_node()
    except RecursionError:
        root = None
        too_deep = True
    else:
        too_deep = False
    expanded = 0
    pending: list[tuple[yaml.Node, int]] = [(root, 1)] if root is not None else []
    while pending and not too_deep:
        node, depth = pending.pop()
        expanded += 1
        if expanded > MAX_POLICY_NODES:
            raise PolicyError(
                f"{path}: the document expands to more than {MAX_POLICY_NODES:,} YAML nodes "
                "(anchors referenced through aliases multiply); a tagging policy needs far fewer "
                "[alias_expansion]"
            )
        too_deep = depth > MAX_POLICY_DEPTH
        if isinstance(node, yaml.SequenceNode):
            pending.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            pending.extend((child, depth + 1) for pair in node.value for child in pair)
    if too_deep:
        raise _too_deep(path)
    return root


def _parse(path: Path, text: str) -> object:
    if POLICY_SUFFIXES[path.suffix.lower()] == "JSON":
        try:
            return parse_json(text, str(path))
        except RecursionError:
            raise _too_deep(path) from None
    loader = _UniqueKeyLoader(text)
    try:
        root = _bounded_yaml_node(path, loader)
        return None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise PolicyError(f"{path}: invalid YAML{where}: {detail}") from None
    finally:
        loader.dispose()


def format_location(loc: Sequence[str | int]) -> str:
    """``('required_tags', 2, 'severity')`` -> ``required_tags[2].severity``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _bounded_repr() -> reprlib.Repr:
    bounded = reprlib.Repr()  # keyword arguments only from Python 3.12
    bounded.maxlevel = 3
    bounded.maxtuple = bounded.maxlist = bounded.maxset = bounded.maxdict = 8
    bounded.maxstring = bounded.maxother = bounded.maxlong = 300
    return bounded


_BOUNDED_REPR = _bounded_repr()


def short_repr(value: object, limit: int = 300) -> str:
    """``repr`` in bounded work: long enough to show a too-long key or value whole, while a
    pasted blob or a huge structure is cut before it is rendered, not after."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = _BOUNDED_REPR.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def validation_messages(exc: ValidationError) -> list[str]:
    """One line per pydantic error: field path, message, the value found there and, in
    brackets, the error's name (``duplicate_key``, ``re2_pattern``...; see docs/policy.md)."""
    lines = []
    for error in exc.errors(include_url=False):
        context = error.get("ctx") or {}
        # A model validator names the field inside its model (ctx "path"); loc says where the model is.
        path = ".".join(part for part in (format_location(error["loc"]), context.get("path")) if part)
        path = path or "(policy)"
        line = f"{path}: {error['msg']}"
        if error["type"] != "missing":
            line += f" (got {short_repr(context.get('value', error.get('input')))})"
        lines.append(f"{line} [{error['type']}]")
    return lines


def parse_policy(data: object, source: str = "<policy>") -> TaggingPolicy:
    """Validate already-parsed policy data; ``source`` names it in errors."""
    if not isinstance(data, dict):
        kind = "nothing (the file is empty)" if data is None else type(data).__name__
        raise PolicyError(f"{source}: a policy must be a mapping at the top level, got {kind}")
    try:
        return TaggingPolicy.model_validate(data, context=collected_types_context())
    except ValidationError as exc:
        raise PolicyError(
            error_report(f"{source}: invalid tagging policy", source, validation_messages(exc))
        ) from None


def error_report(headline: str, source: str, messages: list[str]) -> str:
    """``headline, N errors:`` and one indented line per error, the first
    ``MAX_REPORTED_ERRORS`` of them (a generated file can have thousands)."""
    noun = "error" if len(messages) == 1 else "errors"
    lines = [f"  {source}: {message}" for message in messages[:MAX_REPORTED_ERRORS]]
    if len(messages) > MAX_REPORTED_ERRORS:
        lines.append(f"  {source}: ... and {len(messages) - MAX_REPORTED_ERRORS} more errors")
    return f"{headline}, {len(messages)} {noun}:\n" + "\n".join(lines)


def load_policy(path: Path | str) -> TaggingPolicy:
    """Load and validate a policy file (.yaml, .yml or .json), or raise ``PolicyError``."""
    path = Path(path)
    if path.suffix.lower() not in POLICY_SUFFIXES:
        raise PolicyError(
            f"{path}: unknown policy file type {path.suffix!r}; use one of {sorted(POLICY_SUFFIXES)}"
        )
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_POLICY_BYTES + 1)
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(
                f"{path}: the file is larger than {MAX_POLICY_BYTES:,} bytes; a tagging policy "
                "is a few KB [document_too_large]"
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from None
    return parse_policy(_parse(path, text), str(path))
