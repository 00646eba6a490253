"""The tagging policy: a pydantic model, its YAML/JSON loader, and its form as DuckDB data.

A policy is reviewed by people and applied by SQL. The model therefore rejects anything
ambiguous (unknown fields, keys differing only in case, patterns RE2 cannot compile) with
errors that name the file, the field path and the offending value; and ``to_tables``
hands the policy to DuckDB as Arrow tables, so no key, value or pattern ever becomes
part of SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import re2
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Severity = Literal["error", "warning"]

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
LIKE_ESCAPE = "\\"
"""Escape character of every LIKE pattern built here; the SQL says ``ESCAPE '\\'``."""

POLICY_SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}

TagKey = Annotated[str, Field(min_length=1, max_length=TAG_KEY_MAX)]
AllowedValue = Annotated[str, Field(max_length=TAG_VALUE_MAX)]
Glob = Annotated[str, Field(min_length=1)]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequiredTag(_Strict):
    """One tag every resource the rule applies to must carry."""

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
    applies_to: list[Glob] | None = Field(
        default=None,
        min_length=1,
        description="Resource-type globs (e.g. 'ec2:*', 'rds:db'); omitted means every type.",
    )
    severity: Severity = "error"
    case_sensitive_values: bool = True

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        # AWS reserves the prefix in any case; nobody can set such a tag, so requiring it is a bug.
        if key.lower().startswith("aws:"):
            raise PydanticCustomError(
                "reserved_key", "keys starting with 'aws:' are reserved by AWS and cannot be required"
            )
        return key

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        # DuckDB uses RE2 too: a pattern that compiles here behaves the same in regexp_full_match.
        if pattern is not None:
            options = re2.Options()
            options.log_errors = False  # the error goes into our message, not onto stderr
            try:
                re2.compile(pattern, options)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else "error"
                if isinstance(reason, bytes):
                    reason = reason.decode("utf-8", "replace")
                raise PydanticCustomError(
                    "re2_pattern", "not a valid RE2 pattern: {reason}", {"reason": str(reason)}
                ) from None
        return pattern

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


class TaggingPolicy(_Strict):
    """Required tags and prohibited keys, versioned so every result records what it was scored by."""

    version: Annotated[str, Field(min_length=1)]
    description: str | None = None
    required_tags: list[RequiredTag] = Field(default_factory=list)
    prohibited_keys: list[Glob] = Field(
        default_factory=list, description="Key globs that must never be set, matched case-insensitively."
    )
    prohibited_severity: Severity = "error"

    @field_validator("required_tags", "prohibited_keys", mode="before")
    @classmethod
    def _blank_list_is_empty(cls, value: object) -> object:
        # ``prohibited_keys:`` with every entry commented out is YAML null; read it as "none".
        return [] if value is None else value

    @model_validator(mode="after")
    def _keys_unambiguous_and_policy_not_empty(self) -> TaggingPolicy:
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.required_tags):
            first = seen.setdefault(rule.key.lower(), index)
            if first != index:
                raise PydanticCustomError(
                    "duplicate_key",
                    "'{key}' differs only in case from required_tags[{first}].key "
                    "'{other}': a resource could never satisfy both",
                    {
                        "key": rule.key,
                        "first": first,
                        "other": self.required_tags[first].key,
                        "path": f"required_tags[{index}].key",
                        "value": rule.key,
                    },
                )
        if not self.required_tags and not self.prohibited_keys:
            raise PydanticCustomError(
                "empty_policy",
                "the policy has no required_tags and no prohibited_keys, so it would check nothing",
                {"path": "required_tags", "value": []},
            )
        return self

    def summary(self) -> str:
        """One line for humans: what this policy checks."""
        errors = sum(rule.severity == "error" for rule in self.required_tags)
        warnings = len(self.required_tags) - errors
        return (
            f"version {self.version}, {len(self.required_tags)} required tags "
            f"({errors} error, {warnings} warning), {len(self.prohibited_keys)} prohibited key globs"
        )

    def to_tables(self) -> dict[str, pa.Table]:
        """The policy as Arrow tables to register in DuckDB under these names.

        Policy values reach SQL only as data. Tables (rule_id = position in required_tags):

        - ``policy_info``: one row, ``policy_version``, ``prohibited_severity``.
        - ``policy_rules``: ``rule_id, tag_key, severity, pattern, has_allowed_values,
          case_sensitive_values, applies_to_all`` and the ``expected_*`` texts.
        - ``policy_rule_applies_to``: ``rule_id, resource_type_glob``.
        - ``policy_allowed_values``: ``rule_id, allowed_value, like_pattern`` (the ``*``
          wildcard translated to LIKE, to use with ``ESCAPE '\\'``).
        - ``policy_prohibited_keys``: ``key_glob``.
        """
        rules = self.required_tags
        expected = [rule.expected_text for rule in rules]
        return {
            "policy_info": pa.table(
                {"policy_version": [self.version], "prohibited_severity": [self.prohibited_severity]},
                schema=POLICY_TABLE_SCHEMAS["policy_info"],
            ),
            "policy_rules": pa.table(
                {
                    "rule_id": list(range(len(rules))),
                    "tag_key": [rule.key for rule in rules],
                    "severity": [rule.severity for rule in rules],
                    "pattern": [rule.pattern for rule in rules],
                    "has_allowed_values": [rule.allowed_values is not None for rule in rules],
                    "case_sensitive_values": [rule.case_sensitive_values for rule in rules],
                    "applies_to_all": [rule.applies_to is None for rule in rules],
                    "expected_key": [texts["missing_required_tag"] for texts in expected],
                    "expected_non_empty": [texts["empty_value"] for texts in expected],
                    "expected_allowed": [texts.get("invalid_value") for texts in expected],
                    "expected_format": [texts.get("invalid_format") for texts in expected],
                },
                schema=POLICY_TABLE_SCHEMAS["policy_rules"],
            ),
            "policy_rule_applies_to": _rows_table(
                "policy_rule_applies_to",
                ((rule_id, glob) for rule_id, rule in enumerate(rules) for glob in rule.applies_to or ()),
            ),
            "policy_allowed_values": _rows_table(
                "policy_allowed_values",
                (
                    (rule_id, value, wildcard_to_like(value))
                    for rule_id, rule in enumerate(rules)
                    for value in rule.allowed_values or ()
                ),
            ),
            "policy_prohibited_keys": _rows_table(
                "policy_prohibited_keys", ((glob,) for glob in dict.fromkeys(self.prohibited_keys))
            ),
        }


POLICY_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "policy_info": pa.schema(
        [
            pa.field("policy_version", pa.string(), nullable=False),
            pa.field("prohibited_severity", pa.string(), nullable=False),
        ]
    ),
    "policy_rules": pa.schema(
        [
            pa.field("rule_id", pa.int32(), nullable=False),
            pa.field("tag_key", pa.string(), nullable=False),
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
    "policy_rule_applies_to": pa.schema(
        [
            pa.field("rule_id", pa.int32(), nullable=False),
            pa.field("resource_type_glob", pa.string(), nullable=False),
        ]
    ),
    "policy_allowed_values": pa.schema(
        [
            pa.field("rule_id", pa.int32(), nullable=False),
            pa.field("allowed_value", pa.string(), nullable=False),
            pa.field("like_pattern", pa.string(), nullable=False),
        ]
    ),
    "policy_prohibited_keys": pa.schema([pa.field("key_glob", pa.string(), nullable=False)]),
}


def _rows_table(name: str, rows: Iterable[Sequence[object]]) -> pa.Table:
    schema = POLICY_TABLE_SCHEMAS[name]
    columns: list[list[object]] = [[] for _ in schema]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return pa.table(columns, schema=schema)


def wildcard_to_like(value: str) -> str:
    """Translate an AWS tag-policy value (``*`` = any run of characters) into a LIKE pattern.

    LIKE's own metacharacters (``%``, ``_``) and the escape character are escaped so they
    match literally; use the result with ``ESCAPE '\\'``.
    """
    out = []
    for char in value:
        if char == "*":
            out.append("%")
        elif char in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


# --- loading ---------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""

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


def _no_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse(path: Path, text: str) -> object:
    kind = POLICY_SUFFIXES[path.suffix.lower()]
    if kind == "JSON":
        try:
            return json.loads(text, object_pairs_hook=_no_duplicate_json_keys)
        except json.JSONDecodeError as exc:
            raise PolicyError(
                f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except ValueError as exc:
            raise PolicyError(f"{path}: invalid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise PolicyError(f"{path}: invalid YAML{where}: {detail}") from None


def format_location(loc: Sequence[str | int]) -> str:
    """``('required_tags', 2, 'severity')`` -> ``required_tags[2].severity``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _short_repr(value: object, limit: int = 300) -> str:
    # Long enough to show a too-long key or value whole; a pasted blob gets cut.
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def validation_messages(exc: ValidationError) -> list[str]:
    """One line per pydantic error: field path, message and the value found there."""
    lines = []
    for error in exc.errors(include_url=False):
        context = error.get("ctx") or {}
        path = context.get("path") or format_location(error["loc"]) or "(policy)"
        line = f"{path}: {error['msg']}"
        if error["type"] != "missing":
            line += f" (got {_short_repr(context.get('value', error.get('input')))})"
        lines.append(line)
    return lines


def parse_policy(data: object, source: str = "<policy>") -> TaggingPolicy:
    """Validate already-parsed policy data; ``source`` names it in errors."""
    if not isinstance(data, dict):
        kind = "nothing (the file is empty)" if data is None else type(data).__name__
        raise PolicyError(f"{source}: a policy must be a mapping at the top level, got {kind}")
    try:
        return TaggingPolicy.model_validate(data)
    except ValidationError as exc:
        messages = validation_messages(exc)
        noun = "error" if len(messages) == 1 else "errors"
        details = "\n".join(f"  {source}: {message}" for message in messages)
        raise PolicyError(f"{source}: invalid tagging policy, {len(messages)} {noun}:\n{details}") from None


def load_policy(path: Path | str) -> TaggingPolicy:
    """Load and validate a policy file (.yaml, .yml or .json), or raise ``PolicyError``."""
    path = Path(path)
    if path.suffix.lower() not in POLICY_SUFFIXES:
        raise PolicyError(
            f"{path}: unknown policy file type {path.suffix!r}; use one of {sorted(POLICY_SUFFIXES)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy file: {exc}") from None
    return parse_policy(_parse(path, text), str(path))
