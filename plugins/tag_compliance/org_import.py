"""Import an AWS Organizations tag policy as a tagging policy of this tool.

Accepted input (JSON): a tag policy document (``{"tags": {...}}``), the output of
``aws organizations describe-effective-policy`` (``EffectivePolicy.PolicyContent``) or of
``aws organizations describe-policy`` (``Policy.Content``); the last two hold the document as
a JSON string. Each statement under ``tags`` (a policy key, case-insensitive) has ``tag_key``,
``tag_value``, ``enforced_for`` and ``report_required_tag_for``, each either
``{"@@assign": ...}`` or, as some effective policies show it, the plain value.

The mapping follows what AWS reports, not what it blocks:

- Every statement becomes an ``optional_tags`` rule: ``key`` = ``tag_key`` (when absent, the
  policy key in lower case, as AWS then requires), ``allowed_values`` = ``tag_value`` verbatim
  (``*`` stays a wildcard), no ``applies_to``. AWS checks a key's capitalisation and values
  ("basic compliance rules") on every resource that carries the key, whatever its type, and a
  resource without the key is not noncompliant: exactly an optional rule.
- ``report_required_tag_for`` also gives a ``required_tags`` rule with the same key and values,
  ``applies_to`` = those types (``svc:ALL_SUPPORTED`` -> ``svc:*``, ``ALL_SUPPORTED`` -> ``*``).
  The same exact key may be in both lists; the required rule wins where both apply.
- ``enforced_for`` makes AWS refuse noncompliant tagging operations on those types; it does not
  change which resources AWS reports. With scope ``"all"`` (default) the types only go into the
  optional rule's description (and a warning says so); with scope ``"enforced"`` they become its
  ``applies_to``.

What the model cannot express is a warning naming the JSON path (inside the tag policy
document), never a silent drop. Input that cannot be read, or a result the model rejects,
raises ``OrgPolicyError`` naming the file, the JSON path and the offending value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml
from pydantic import ValidationError

from tag_compliance.aws.collectors import resource_types
from tag_compliance.policy import (
    MAX_POLICY_BYTES,
    PolicyError,
    TaggingPolicy,
    collected_types_context,
    error_report,
    fold_case,
    glob_matches,
    is_aws_key,
    is_blank,
    parse_json,
    validation_messages,
)

Scope = Literal["all", "enforced"]
SCOPES: tuple[Scope, ...] = ("all", "enforced")
OutputFormat = Literal["yaml", "json"]

SOURCE = "aws-organizations-tag-policy"
TAG_POLICY_TYPE = "TAG_POLICY"
STATEMENT_FIELDS = ("tag_key", "tag_value", "enforced_for", "report_required_tag_for")
ASSIGN, APPEND, REMOVE = "@@assign", "@@append", "@@remove"
CHILD_OPERATORS = "@@operators_allowed_for_child_policies"
ALL_SUPPORTED = "ALL_SUPPORTED"

_PLAIN_MEMBER = re.compile(r"[A-Za-z0-9_@:+=/-]+")


class OrgPolicyError(PolicyError):
    """An AWS tag policy that cannot be imported; the message names the file, path and value."""


@dataclass(frozen=True)
class ImportResult:
    """The imported policy and every warning about what it could not express."""

    policy: TaggingPolicy
    warnings: list[str] = field(default_factory=list)


# --- reading -----------------------------------------------------------------------------------


def read_org_policy_file(path: Path | str) -> tuple[object, bytes]:
    """The parsed JSON and the file's bytes (the imported policy's version is their hash)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise OrgPolicyError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_BYTES:  # AWS caps a tag policy at 10,000 characters
        raise OrgPolicyError(
            f"{path}: the file is larger than {MAX_POLICY_BYTES:,} bytes [document_too_large]"
        )
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some Windows shells write
    except UnicodeDecodeError as exc:
        raise OrgPolicyError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    return parse_json(text, str(path), OrgPolicyError), raw


def _member(path: str, key: str) -> str:
    """JSON path of an object member; a key that would read ambiguously is quoted."""
    if _PLAIN_MEMBER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _show(value: object, limit: int = 120) -> str:
    """A value from the input on one line (as JSON, so newlines stay escaped), shortened."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# --- importing ---------------------------------------------------------------------------------


def import_org_policy(
    data: object, source_name: str, source_bytes: bytes, scope: Scope = "all"
) -> ImportResult:
    """Translate parsed AWS tag policy JSON (any of the three shapes) into a ``TaggingPolicy``.

    ``source_name`` names the file in errors; its last part names it in the policy.
    ``source_bytes`` are the file's bytes: the version is their hash (plus ``-enforced`` under that
    scope), so one input always gives the same version and a changed input a new one.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return _Importer(source_name, scope).run(data, source_bytes)


@dataclass
class _Document:
    content: dict[str, Any]
    origin: str
    effective: bool


class _Importer:
    """One import: the warnings so far and, per rule made, the statement it came from."""

    def __init__(self, source: str, scope: Scope) -> None:
        self.source = source
        self.scope = scope
        self.warnings: list[str] = []
        self.effective = False
        self.required: list[dict[str, Any]] = []
        self.optional: list[dict[str, Any]] = []
        self.origins: dict[str, list[str]] = {"required_tags": [], "optional_tags": []}
        self.statement_keys: dict[str, str] = {}
        self.collected = resource_types()
        self.services = {resource_type.split(":", 1)[0] for resource_type in self.collected}

    def warn(self, path: str, text: str) -> None:
        self.warnings.append(f"{path}: {text}")

    def fail(self, path: str, text: str) -> NoReturn:
        raise OrgPolicyError(f"{self.source}: {path}: {text}")

    def run(self, data: object, source_bytes: bytes) -> ImportResult:
        document = self._unwrap(data)
        self.effective = document.effective
        for name in document.content:
            if name == CHILD_OPERATORS:
                self._inheritance_warning(name)
            elif name != "tags":
                self.warn(name, "section ignored: only the tags section of a tag policy is imported")
        tags = document.content["tags"]
        if not isinstance(tags, dict):
            self.fail("tags", f"expected an object of statements, got {_show(tags)}")
        seen: dict[str, str] = {}
        for policy_key, statement in tags.items():
            path = _member("tags", policy_key)
            if policy_key == CHILD_OPERATORS:
                self._inheritance_warning(path)
                continue
            if policy_key.startswith("@@"):
                self.warn(path, "unknown operator ignored")
                continue
            first = seen.setdefault(fold_case(policy_key), policy_key)
            if first != policy_key:
                self.fail(
                    path,
                    f"policy key {_show(policy_key)} differs only in case from "
                    f"{_member('tags', first)}: AWS treats policy keys ignoring case",
                )
            if not isinstance(statement, dict):
                self.fail(path, f"a statement must be an object, got {_show(statement)}")
            self._statement(policy_key, statement, path)
        digest = hashlib.sha256(source_bytes).hexdigest()
        file_name = Path(self.source).name
        data = {
            # The scope changes the rules, so it is part of the version the results record.
            "version": f"org-{digest[:12]}" + ("" if self.scope == "all" else f"-{self.scope}"),
            "name": f"Imported from {file_name}",
            "description": f"Imported with --scope {self.scope} from {document.origin}.",
            "metadata": {
                "source": SOURCE,
                "source_file": file_name,
                "source_sha256": digest,
                "import_warnings": list(self.warnings),
            },
            "required_tags": self.required,
            "optional_tags": self.optional,
        }
        try:
            policy = TaggingPolicy.model_validate(data, context=collected_types_context())
        except ValidationError as exc:
            raise OrgPolicyError(self._rejection(exc)) from None
        return ImportResult(policy, list(self.warnings))

    def _unwrap(self, data: object) -> _Document:
        """The tag policy document inside whichever of the three shapes ``data`` is."""
        if not isinstance(data, dict):
            self.fail("(top level)", f"expected a JSON object, got {_show(data)}")
        if "tags" in data:
            return _Document(data, "an AWS Organizations tag policy document", effective=False)
        if "EffectivePolicy" in data:
            wrapper = self._object(data["EffectivePolicy"], "EffectivePolicy")
            self._check_policy_type(wrapper.get("PolicyType"), "EffectivePolicy.PolicyType")
            target = wrapper.get("TargetId")
            origin = "the AWS Organizations effective tag policy"
            if target is not None:
                origin += f" of {_show(target)}"
            return _Document(self._embedded(wrapper, "EffectivePolicy", "PolicyContent"), origin, True)
        if "Policy" in data:
            wrapper = self._object(data["Policy"], "Policy")
            summary = wrapper.get("PolicySummary")
            summary = summary if isinstance(summary, dict) else {}
            self._check_policy_type(summary.get("Type"), "Policy.PolicySummary.Type")
            origin = "the AWS Organizations tag policy"
            if summary.get("Name") is not None:
                origin += f" {_show(summary['Name'])}"
            if summary.get("Id") is not None:
                origin += f" ({_show(summary['Id'])})"
            return _Document(self._embedded(wrapper, "Policy", "Content"), origin, False)
        self.fail(
            "tags",
            "no tags section: expected a tag policy document, or the output of "
            "describe-effective-policy or describe-policy; top-level keys are "
            f"{_show(list(data))}",
        )

    def _object(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_show(value)}")
        return value

    def _check_policy_type(self, value: object, path: str) -> None:
        if value is not None and value != TAG_POLICY_TYPE:
            self.fail(path, f"not a tag policy: expected {_show(TAG_POLICY_TYPE)}, got {_show(value)}")

    def _embedded(self, wrapper: dict[str, Any], wrapper_path: str, name: str) -> dict[str, Any]:
        """The document the AWS CLI output carries as a JSON string (an object is taken as is)."""
        path = f"{wrapper_path}.{name}"
        if name not in wrapper:
            self.fail(path, "missing: it holds the tag policy document")
        content = wrapper[name]
        if isinstance(content, str):
            content = parse_json(content, f"{self.source}: {path}", OrgPolicyError)
        content = self._object(content, path)
        if "tags" not in content:
            self.fail(path, f"no tags section; the document's keys are {_show(list(content))}")
        return content

    def _inheritance_warning(self, path: str) -> None:
        self.warn(path, "ignored: it only controls what child policies may change (inheritance)")

    def _statement(self, policy_key: str, statement: dict[str, Any], path: str) -> None:
        """The optional rule, and the required rule if any, of one statement."""
        tag_key: str | None = None
        values = enforced = required = None
        for name, node in statement.items():
            member = _member(path, name)
            if name == "tag_key":
                tag_key = self._field(node, member, list_field=False)
            elif name == "tag_value":
                values = self._field(node, member, list_field=True)
            elif name == "enforced_for":
                enforced = self._field(node, member, list_field=True)
            elif name == "report_required_tag_for":
                required = self._field(node, member, list_field=True)
            elif name == CHILD_OPERATORS:
                self._inheritance_warning(member)
            else:
                self.warn(member, f"unknown field ignored (a statement has {', '.join(STATEMENT_FIELDS)})")
        key = self._key(policy_key, tag_key, path)
        if is_aws_key(key):
            self.warn(path, f"statement skipped: {_show(key)} starts with 'aws:', which AWS reserves")
            return
        other = self.statement_keys.setdefault(fold_case(key), path)
        if other != path:
            # Only reachable through a tag_key that does not match its policy key (warned above).
            self.fail(path, f"key {_show(key)} is, ignoring case, also the key of {other}")
        rule: dict[str, Any] = {"key": key}
        allowed = self._allowed_values(values, _member(path, "tag_value"))
        if allowed:
            rule["allowed_values"] = allowed
        statement_name = f"AWS tag policy statement {_show(policy_key)}"

        enforced_path = _member(path, "enforced_for")
        optional = {**rule}
        if self.scope == "enforced" and enforced:
            optional["description"] = (
                f"{statement_name}: key case and values, checked on the types AWS enforces it for "
                f"({', '.join(enforced)})."
            )
            optional["applies_to"] = self._types(enforced, enforced_path)
            if not optional["applies_to"]:
                self.warn(enforced_path, "rule not imported: this tool collects none of its types")
                optional = None
        else:
            optional["description"] = f"{statement_name}: key case and values, wherever the key is set."
            if enforced:
                optional["description"] += f" AWS enforces it for: {', '.join(enforced)}."
                self.warn(
                    enforced_path,
                    f"AWS blocks noncompliant tagging on {', '.join(enforced)} but reports every "
                    "resource carrying the key, so the rule checks all types (the enforced types are "
                    "in its description; --scope enforced limits the rule to them)",
                )
        if optional is not None:
            self.optional.append(optional)
            self.origins["optional_tags"].append(path)
        required_path = _member(path, "report_required_tag_for")
        required_types = self._types(required, required_path) if required else []
        if required and not required_types:
            self.warn(required_path, "rule not imported: this tool collects none of its types")
        elif required:
            self.required.append(
                {
                    **rule,
                    "description": f"{statement_name}: AWS reports the key as required for "
                    f"{', '.join(required)}.",
                    "applies_to": required_types,
                }
            )
            self.origins["required_tags"].append(path)

    def _field(self, node: object, path: str, list_field: bool) -> Any:
        """The value of one statement field, its operators applied (or warned about)."""
        if not isinstance(node, dict):  # the plain value, as some effective policies show it
            return self._typed(node, path, list_field)
        value = None
        changes: list[tuple[str, list[str], str]] = []
        for operator, operand in node.items():
            member = _member(path, operator)
            if operator == ASSIGN:
                value = self._typed(operand, member, list_field)
            elif operator in (APPEND, REMOVE) and list_field:
                changes.append((operator, self._typed(operand, member, list_field=True), member))
            elif operator == CHILD_OPERATORS:
                self._inheritance_warning(member)
            else:
                self.warn(member, "unknown operator ignored")
        for operator, operand, member in changes:
            if operator == APPEND:
                value = list(dict.fromkeys([*(value or []), *operand]))
                done = f"values {_show(operand)} added to the @@assign list"
            else:
                value = None if value is None else [item for item in value if item not in operand]
                done = f"values {_show(operand)} removed from the @@assign list"
            if self.effective:
                why = "unexpected in an effective policy, where AWS has already applied inheritance"
            else:
                why = (
                    "the parent policies are not known here, so AWS may apply a different list: "
                    "import the effective policy (aws organizations describe-effective-policy) instead"
                )
            self.warn(member, f"{done}; {why}")
        return value

    def _typed(self, value: object, path: str, list_field: bool) -> Any:
        if not list_field:
            if not isinstance(value, str):
                self.fail(path, f"expected a string, got {_show(value)}")
            return value
        if not isinstance(value, list):
            self.fail(path, f"expected a list of strings, got {_show(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{path}[{index}]", f"expected a string, got {_show(item)}")
        return value

    def _key(self, policy_key: str, tag_key: str | None, path: str) -> str:
        """The key with the capitalisation AWS requires."""
        if tag_key is None:
            key = fold_case(policy_key)
            if key != policy_key:
                self.warn(
                    _member(path, "tag_key"),
                    f"absent: AWS then requires the policy key in lower case, {_show(key)}",
                )
            return key
        if fold_case(tag_key) != fold_case(policy_key):
            self.warn(
                _member(path, "tag_key"),
                f"{_show(tag_key)} differs from its policy key {_show(policy_key)} by more than case "
                "(AWS requires them to match); the rule uses the tag_key",
            )
        return tag_key

    def _allowed_values(self, values: list[str] | None, path: str) -> list[str] | None:
        if values is None:
            self.warn(
                path,
                "absent: AWS accepts any value, even an empty one; this tool reports a blank "
                "value as empty_value",
            )
            return None
        kept = []
        for value in dict.fromkeys(values):
            if is_blank(value):
                self.warn(
                    path,
                    f"blank value {_show(value)} dropped: this tool always reports a blank value "
                    "as empty_value",
                )
            else:
                kept.append(value)
        if not kept:
            self.warn(path, "no values: imported without allowed_values, so any non-blank value passes")
        return kept or None

    def _types(self, aws_types: list[str], path: str) -> list[str]:
        """AWS resource types as globs of this language, warning about those we never collect."""
        globs = []
        for aws_type in aws_types:
            if aws_type == ALL_SUPPORTED:
                glob = "*"
            elif aws_type.endswith(f":{ALL_SUPPORTED}"):
                glob = aws_type.removesuffix(ALL_SUPPORTED) + "*"
            else:
                glob = aws_type
            service = glob.partition(":")[0]
            if any(glob_matches(glob, collected) for collected in self.collected):
                globs.append(glob)
            elif ":" in glob and service.islower() and service not in self.services:
                # what only the Tagging API's breadth listing may see: kept, and said so
                globs.append(glob)
                self.warn(
                    path,
                    f"{_show(aws_type)}: no collector lists {service} resources; only tagged ones are seen "
                    "(through the Tagging API), never-tagged ones are not checked",
                )
            else:  # the policy language refuses such a glob: it would put nothing in scope
                self.warn(
                    path,
                    f"{_show(aws_type)} matches no resource type this tool collects "
                    f"({', '.join(self.collected)}); dropped (import again once it is collected)",
                )
        return list(dict.fromkeys(globs))

    def _rejection(self, exc: ValidationError) -> str:
        """The model's errors, each also naming the statement that gave the rule."""
        lines = []
        for message in validation_messages(exc):
            match = re.match(r"(required_tags|optional_tags)\[(\d+)\]", message)
            where = self.origins[match[1]][int(match[2])] if match else "tags"
            lines.append(f"{where}: {message}")
        return error_report(f"{self.source}: the imported policy is invalid", self.source, lines)


# --- writing -----------------------------------------------------------------------------------


def render_policy(result: ImportResult, output_format: OutputFormat = "yaml") -> str:
    """The policy as file text: YAML with a header saying where it came from, or JSON."""
    data = result.policy.model_dump(mode="json", exclude_defaults=True)
    if output_format == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    metadata = result.policy.metadata
    header = [
        "Generated by `tag-compliance policy import-org`: change the AWS policy and import it again",
        "rather than edit this file.",
        f"Source: {metadata['source_file']} (sha256 {metadata['source_sha256']})",
        str(result.policy.description),
    ]
    if result.warnings:
        header.append(f"Import warnings ({len(result.warnings)}):")
        header.extend(f"  - {warning}" for warning in result.warnings)
    else:
        header.append("No import warnings.")
    # One comment line per entry, whatever a file or policy name in it contains.
    comment = "".join(f"# {' '.join(line.splitlines())}".rstrip() + "\n" for line in header)
    return comment + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
