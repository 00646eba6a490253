"""The synthetic organisation: seed -> every planned resource, its tags and its expected violations.

Pure and deterministic (no I/O apart from reading the policy file): the same seed and scale always
give the same plan, so tests and the demo can reconcile the pipeline's output against a truth that is
fully known before moto is even started. Each (account, region, resource type) draws from its own
``random.Random`` seeded with a string, so changing the size of one slice never reshuffles another.

Tags are generated on purpose, one outcome per applicable required rule (ok, missing, wrong key case,
empty, whitespace-only, invalid value/format), plus untagged resources, prohibited keys, unicode, and
128-character keys / 256-character values. The expected violations are then computed from the final
tags by :func:`expected_violations`, a direct transcription of the scoring semantics (DESIGN.md §6).
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

MANAGEMENT_ACCOUNT = "123456789012"  # moto's default account: the connection's own account
MEMBER_ACCOUNTS = ("111111111111", "222222222222")
ACCOUNTS: tuple[str, ...] = (MANAGEMENT_ACCOUNT, *MEMBER_ACCOUNTS)
REGIONS: tuple[str, ...] = ("us-east-1", "eu-west-1")
S3_HOME_REGION = "us-east-1"
ROLE_NAME = "TagComplianceReadOnly"

EC2, RDS, S3, LAMBDA, ECS = "ec2:instance", "rds:db", "s3:bucket", "lambda:function", "ecs:service"
RESOURCE_TYPES: tuple[str, ...] = (EC2, RDS, S3, LAMBDA, ECS)

# Inventory sizes at scale 1.0: per (account, region), except S3 which is per account.
BASE_SIZES: dict[str, int] = {EC2: 80, RDS: 40, S3: 150, LAMBDA: 70, ECS: 25}
EC2_TERMINATED = 4  # per (account, region), on top of the inventory; never inventoried
ECS_CLUSTERS = ("core", "edge")  # neither name is a suffix of the other (moto matches "<name>:")

# moto's GetResources closes a page when its tag count reaches TagsPerPage (>=, max 500), so with
# 100 resources per page these types must stay at <= 4 tags. A fully compliant one has exactly 4.
MAX_TAGS: dict[str, int] = {S3: 4, LAMBDA: 4, EC2: 50, RDS: 50, ECS: 50}
NO_EMPTY_VALUES = frozenset({"cloudtrail:trail"})  # its API refuses a tag value of length 0
# The other types (the sandbox's breadth): AWS's limit, 50 tags, except where it is lower.
TAG_LIMITS: dict[str, int] = {"route53:hostedzone": 10}


def max_tags(resource_type: str) -> int:
    return MAX_TAGS.get(resource_type) or TAG_LIMITS.get(resource_type, 50)


MISSING = "missing_required_tag"
WRONG_CASE = "wrong_key_case"
EMPTY = "empty_value"
INVALID_VALUE = "invalid_value"
INVALID_FORMAT = "invalid_format"
PROHIBITED = "prohibited_tag"
VIOLATION_TYPES = (MISSING, WRONG_CASE, EMPTY, INVALID_VALUE, INVALID_FORMAT, PROHIBITED)

ASCII_WHITESPACE = " \t\n\v\f\r"
# The policy file the package ships (read as data: the sandbox's own reading of it, below, is the truth)
DEFAULT_POLICY = Path(str(resources.files("tag_compliance").joinpath("include", "policies", "default.yaml")))


# --------------------------------------------------------------------------- policy + semantics


@dataclass(frozen=True)
class Rule:
    """One required tag of the policy, reduced to what violation semantics need."""

    key: str
    severity: str = "error"
    allowed_values: tuple[str, ...] | None = None
    pattern: str | None = None
    applies_to: tuple[str, ...] | None = None

    def applies(self, resource_type: str) -> bool:
        if not self.applies_to:
            return True
        return any(fnmatch.fnmatchcase(resource_type, glob) for glob in self.applies_to)


@dataclass(frozen=True)
class Policy:
    version: str
    rules: tuple[Rule, ...]
    prohibited_keys: tuple[str, ...]

    def rules_for(self, resource_type: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.applies(resource_type))


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    """Read a tagging policy (only the fields the sandbox's truth depends on)."""
    return _load_policy_cached(Path(path).resolve())


@cache
def _load_policy_cached(path: Path) -> Policy:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = tuple(
        Rule(
            key=item["key"],
            severity=item.get("severity", "error"),
            allowed_values=tuple(item["allowed_values"]) if item.get("allowed_values") else None,
            pattern=item.get("pattern"),
            applies_to=tuple(item["applies_to"]) if item.get("applies_to") else None,
        )
        for item in raw.get("required_tags", [])
    )
    return Policy(str(raw.get("version", "")), rules, tuple(raw.get("prohibited_keys", [])))


@cache
def _wildcard(value: str) -> re.Pattern[str]:
    """AWS tag-policy matching: exact and case-sensitive, ``*`` is the only wildcard."""
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)


def _is_blank(value: str) -> bool:
    return value.strip(ASCII_WHITESPACE) == ""


def rule_violation(rule: Rule, tags: Mapping[str, str]) -> str | None:
    """The (at most one) violation of ``rule`` by ``tags``, with the policy's precedence."""
    if rule.key in tags:
        value = tags[rule.key]
        if _is_blank(value):
            return EMPTY
        if rule.allowed_values is not None and not any(
            _wildcard(allowed).fullmatch(value) for allowed in rule.allowed_values
        ):
            return INVALID_VALUE
        if rule.pattern is not None and re.fullmatch(rule.pattern, value) is None:
            return INVALID_FORMAT
        return None
    wanted = rule.key.lower()
    if any(key.lower() == wanted for key in tags):
        return WRONG_CASE
    return MISSING


def is_prohibited(key: str, globs: Iterable[str]) -> bool:
    if key.startswith("aws:"):
        return False
    return any(fnmatch.fnmatchcase(key.lower(), glob.lower()) for glob in globs)


def expected_violations(
    resource_type: str, tags: Mapping[str, str], policy: Policy | None = None
) -> tuple[tuple[str, str], ...]:
    """Every (tag_key, violation_type) the pipeline must report for this resource, sorted."""
    policy = policy or load_policy()
    found = [
        (rule.key, violation)
        for rule in policy.rules_for(resource_type)
        if (violation := rule_violation(rule, tags)) is not None
    ]
    found += [(key, PROHIBITED) for key in tags if is_prohibited(key, policy.prohibited_keys)]
    return tuple(sorted(found))


@cache
def _services() -> dict[str, str]:
    from tag_compliance.aws.collectors import all_collectors

    return {collector.resource_type: collector.service for collector in all_collectors()}


def service_of(resource_type: str) -> str:
    """The lake's ``service`` of a type: its collector's, or the Tagging API breadth collector's."""
    return _services().get(resource_type, "tagging")


# --------------------------------------------------------------------------- plan


@dataclass
class PlannedResource:
    """A resource the seeder will create. ``name`` is what we choose; ids the API assigns come later."""

    account_id: str
    region: str  # "global" for S3, as the lake has it
    resource_type: str
    name: str  # bucket / function / DB identifier, "<cluster>/<service>" for ECS, Name-ish for EC2
    tags: dict[str, str]
    expected: tuple[tuple[str, str], ...]
    state: str = "active"  # EC2: running | stopped | terminated
    reservation: int = 0  # EC2: instances of one reservation share it (and their tags)
    api_region: str = ""  # the region to call; us-east-1 for every bucket
    resource_id: str = ""  # filled in by the seeder, exactly as the API returns it
    arn: str = ""

    @property
    def service(self) -> str:
        return service_of(self.resource_type)

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """The planned identity (account, API region, type, name): unique, and known before seeding."""
        return (self.account_id, self.api_region, self.resource_type, self.name)

    @property
    def inventoried(self) -> bool:
        """Terminated instances are still described by EC2 for a while but are not inventory."""
        return self.state != "terminated"


@dataclass
class Estate:
    seed: int
    scale: float
    resources: list[PlannedResource] = field(default_factory=list)
    accounts: tuple[str, ...] = ACCOUNTS
    regions: tuple[str, ...] = REGIONS

    def of(self, account_id: str, api_region: str, resource_type: str) -> list[PlannedResource]:
        return [
            r
            for r in self.resources
            if r.account_id == account_id and r.api_region == api_region and r.resource_type == resource_type
        ]

    @property
    def inventory(self) -> list[PlannedResource]:
        return [r for r in self.resources if r.inventoried]


def plan_resource(
    account: str,
    api_region: str,
    rtype: str,
    name: str,
    tags: dict[str, str],
    policy: Policy,
    **extra: object,
) -> PlannedResource:
    """A planned resource with its lake region and the violations its tags must produce."""
    return PlannedResource(
        account_id=account,
        region="global" if rtype == S3 else api_region,
        resource_type=rtype,
        name=name,
        tags=tags,
        expected=expected_violations(rtype, tags, policy),
        api_region=api_region,
        **extra,  # type: ignore[arg-type]
    )


def resource_name(rng: random.Random, seed: int, account: str, rtype: str, app: str, index: int) -> str:
    """The name a bucket, DB or function gets (S3 names are globally unique across seeds)."""
    if rtype == S3:
        return f"tc{seed}-{account}-{app}-{index:04d}"  # lowercase, 3..63 chars
    if rtype == RDS:
        return f"{app}-{rng.choice(('pg', 'mysql', 'maria'))}-{index:03d}"
    return f"{app}-{rng.choice(('api', 'worker', 'cron', 'handler'))}-{index:03d}"


def scaled(base: int, scale: float) -> int:
    return max(1, math.ceil(base * scale))


def build_estate(seed: int = 42, scale: float = 1.0, policy: Policy | None = None) -> Estate:
    """Plan the whole organisation for ``seed`` (deterministic; ``scale`` shrinks it for tests)."""
    if scale <= 0:
        raise ValueError("scale must be > 0")
    policy = policy or load_policy()
    estate = Estate(seed=seed, scale=scale)
    for account in ACCOUNTS:
        for region in REGIONS:
            estate.resources += _plan_ec2(seed, scale, account, region, policy)
            estate.resources += _plan_named(seed, scale, account, region, RDS, policy)
            estate.resources += _plan_named(seed, scale, account, region, LAMBDA, policy)
            estate.resources += _plan_ecs(seed, scale, account, region, policy)
        estate.resources += _plan_named(seed, scale, account, S3_HOME_REGION, S3, policy)
    return estate


def _rng(seed: int, *parts: str) -> random.Random:
    # str seeds go through sha512: stable across processes, unaffected by PYTHONHASHSEED
    return random.Random(":".join([str(seed), *parts]))


APPS = (
    "checkout",
    "search",
    "billing",
    "catalog",
    "ledger",
    "auth",
    "reports",
    "ingest",
    "mailer",
    "pricing",
)
OWNERS = (
    "platform@example.com",
    "data.eng@example.com",
    "finops@example.com",
    "web-team@example.com",
    "ml_ops@example.com",
    "sre@example.com",
)


def _plan_named(
    seed: int, scale: float, account: str, region: str, rtype: str, policy: Policy
) -> list[PlannedResource]:
    rng = _rng(seed, account, region, rtype)
    count = scaled(BASE_SIZES[rtype], scale)
    tagsets = _tag_sets(rng, rtype, count, policy)
    planned = []
    for i, tags in enumerate(tagsets):
        name = resource_name(rng, seed, account, rtype, rng.choice(APPS), i)
        planned.append(plan_resource(account, region, rtype, name, tags, policy))
    return planned


def _plan_ecs(seed: int, scale: float, account: str, region: str, policy: Policy) -> list[PlannedResource]:
    rng = _rng(seed, account, region, ECS)
    per_cluster = scaled(BASE_SIZES[ECS], scale)
    tagsets = _tag_sets(rng, ECS, per_cluster * len(ECS_CLUSTERS), policy)
    planned = []
    for i, tags in enumerate(tagsets):
        cluster = ECS_CLUSTERS[i // per_cluster]
        name = f"{cluster}/{rng.choice(APPS)}-svc-{i % per_cluster:03d}"
        planned.append(plan_resource(account, region, ECS, name, tags, policy))
    return planned


def _plan_ec2(seed: int, scale: float, account: str, region: str, policy: Policy) -> list[PlannedResource]:
    """Reservations of 1-3 instances sharing tags (moto pages DescribeInstances by reservation)."""
    rng = _rng(seed, account, region, EC2)
    target = scaled(BASE_SIZES[EC2], scale)
    sizes: list[int] = []
    while sum(sizes) < target:
        sizes.append(min(rng.choices((1, 2, 3), weights=(80, 14, 6))[0], target - sum(sizes)))
    terminated = scaled(EC2_TERMINATED, scale)
    sizes += [1] * terminated
    tagsets = _tag_sets(rng, EC2, len(sizes), policy)
    planned: list[PlannedResource] = []
    index = 0
    for reservation, (size, tags) in enumerate(zip(sizes, tagsets, strict=True)):
        if reservation >= len(sizes) - terminated:
            state = "terminated"
        else:
            # reservation 1 is always stopped, so even a tiny scale has one
            state = "stopped" if rng.random() < 0.12 or reservation == 1 else "running"
        for _ in range(size):
            planned.append(
                plan_resource(
                    account,
                    region,
                    EC2,
                    f"vm-{index:04d}",
                    dict(tags),
                    policy,
                    state=state,
                    reservation=reservation,
                )
            )
            index += 1
    return planned


# --------------------------------------------------------------------------- tag generation

OUTCOMES = ("ok", MISSING, WRONG_CASE, EMPTY, "whitespace", "invalid")
OUTCOME_WEIGHTS = (68, 8, 6, 5, 3, 10)  # ~60-70% ok per rule once specials are counted

SPECIAL_SHARES = {"untagged": 0.06, "prohibited": 0.08, "unicode": 0.05, "long_key": 0.03, "long_value": 0.03}

PROHIBITED_KEYS = ("Password", "password", "secret_token", "passwordHint", "SECRET", "Secret-Key")
PROHIBITED_VALUES = ("hunter2", "changeme", "s3cr3t", "p@ss:word")
# Extras that look dangerous but do not match "password*" / "secret*": must NOT be reported.
DECOY_KEYS = ("db_password", "ApiSecretRef", "has-password")
EXTRA_KEYS = ("Team", "Project", "ManagedBy", "CreatedBy", "Repository", "Release")
UNICODE_TAGS = (
    ("Équipe", "données-π"),
    ("チーム", "データ基盤"),
    ("Propriétaire", "équipe-ß"),
    ("Ünit", "Ωmega"),
)
LONG_KEY = ("annotation-" + "abcdefghij" * 13)[:128]
LONG_VALUE = ("lorem.ipsum-" * 22)[:255] + "z"

INVALID = {
    "Environment": ("Prod", "production", "prød", "PROD", "qa", "Staging", "develop"),
    "DataClassification": ("Public", "secret", "pii", "INTERNAL", "confidentiel", "top-secret"),
    "CostCenter": (
        "cc-1234",
        "CC-12",
        "CC-12345",
        "CC 1234",
        "1234",
        "CC-12a4",
        "CC-١٢٣٤",
        "CC-" + "9" * 253,
    ),
    "Owner": ("alice", "Alice@example.com", "team@example.org", "ops@example.com.au", "x" * 256),
}
# Surrounding whitespace is stripped by moto's S3 XML parsing, so only the other services get these.
INVALID_PADDED = {
    "Environment": ("prod ", " dev"),
    "DataClassification": ("internal ",),
    "CostCenter": ("CC-1234 ", " CC-0001"),
    "Owner": (" sre@example.com",),
}
# Real AWS allows only Unicode letters/digits/spaces and _.:/=+-@ outside EC2: tabs only on EC2.
WHITESPACE = {EC2: ("  ", "\t", " \t ", " "), "default": ("  ", " ", "   ")}


def _valid_value(rng: random.Random, rule: Rule) -> str:
    if rule.key == "CostCenter":
        return f"CC-{rng.randrange(10000):04d}"
    if rule.key == "Owner":
        # now and then a valid value at the 256-character limit
        return rng.choice(OWNERS) if rng.random() > 0.02 else "a" * 244 + "@example.com"
    if rule.allowed_values:
        return rng.choice([v for v in rule.allowed_values if "*" not in v] or ["x"])
    return rng.choice((*APPS, "Payments API", "data-lake"))


def _invalid_value(rng: random.Random, rule: Rule, rtype: str) -> str | None:
    pool = list(INVALID.get(rule.key, ()))
    if rtype != S3:
        pool += INVALID_PADDED.get(rule.key, ())
    return rng.choice(pool) if pool else None


def _case_variant(rng: random.Random, key: str) -> str:
    variants = {key.lower(), key.upper(), key.swapcase(), key.capitalize(), key[0].swapcase() + key[1:]}
    variants.discard(key)
    return rng.choice(sorted(variants))


def _tag_sets(rng: random.Random, rtype: str, count: int, policy: Policy) -> list[dict[str, str]]:
    """``count`` tag sets for one slice; specials are spread so every slice has each at least once."""
    specials: dict[int, set[str]] = {i: set() for i in range(count)}
    order = list(range(count))
    rng.shuffle(order)
    untagged = set(order[: max(1, round(SPECIAL_SHARES["untagged"] * count))]) if count > 1 else set()
    taggable = [i for i in order if i not in untagged] or order
    for name, share in SPECIAL_SHARES.items():
        if name == "untagged":
            continue
        for i in rng.sample(taggable, min(len(taggable), max(1, round(share * count)))):
            specials[i].add(name)
    return [{} if i in untagged else _tags(rng, rtype, policy, specials[i]) for i in range(count)]


def _tags(rng: random.Random, rtype: str, policy: Policy, specials: set[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    required_keys: list[str] = []  # keys standing in for a required rule (exact or wrong case)
    for rule in policy.rules_for(rtype):
        outcome = rng.choices(OUTCOMES, weights=OUTCOME_WEIGHTS)[0]
        if (rtype == S3 and outcome in (EMPTY, "whitespace")) or (
            rtype in NO_EMPTY_VALUES and outcome == EMPTY
        ):
            # moto drops/strips blank S3 values (see seed.py), CloudTrail takes no empty value:
            # use another violation instead
            outcome = rng.choice((MISSING, WRONG_CASE, "invalid"))
        value: str | None
        if outcome == "invalid":
            value = _invalid_value(rng, rule, rtype)
            if value is None:  # nothing is invalid for a free-text rule
                outcome, value = "ok", _valid_value(rng, rule)
        elif outcome == EMPTY:
            value = ""
        elif outcome == "whitespace":
            value = rng.choice(WHITESPACE.get(rtype, WHITESPACE["default"]))
        else:
            value = _valid_value(rng, rule)
        if outcome == MISSING:
            continue
        key = _case_variant(rng, rule.key) if outcome == WRONG_CASE else rule.key
        tags[key] = value
        required_keys.append(key)

    extras: dict[str, str] = {}
    if "prohibited" in specials:
        extras[rng.choice(PROHIBITED_KEYS)] = rng.choice(PROHIBITED_VALUES)
    if "unicode" in specials:
        key, value = rng.choice(UNICODE_TAGS)
        extras[key] = value
    if "long_key" in specials:
        extras[LONG_KEY] = rng.choice(OWNERS)
    if "long_value" in specials:
        extras["Description"] = LONG_VALUE
    if max_tags(rtype) > len(policy.rules_for(rtype)):
        if rtype == EC2 and rng.random() < 0.9:
            extras["Name"] = f"{rng.choice(APPS)}-{rng.randrange(1000):03d}"
        for key in rng.sample(EXTRA_KEYS, rng.randint(0, 3)):
            extras[key] = rng.choice(APPS)
        if rng.random() < 0.05:
            extras[rng.choice(DECOY_KEYS)] = "stored-in-secrets-manager"
    tags.update(extras)
    # Capped types: extras take the place of required keys (those rules become missing).
    while len(tags) > max_tags(rtype) and required_keys:
        tags.pop(required_keys.pop(rng.randrange(len(required_keys))))
    return tags


def check_estate(estate: Estate, policy: Policy | None = None) -> list[str]:
    """Problems with a plan (empty list = fine): the invariants the seeder and moto rely on."""
    policy = policy or load_policy()
    problems: list[str] = []
    seen: set[tuple[str, str, str, str]] = set()
    for r in estate.resources:
        ident = (r.account_id, r.api_region, r.resource_type, r.name)
        if ident in seen and r.resource_type != EC2:
            problems.append(f"duplicate {ident}")
        seen.add(ident)
        if len(r.tags) > max_tags(r.resource_type):
            problems.append(f"{ident}: {len(r.tags)} tags")
        for key, value in r.tags.items():
            if not 1 <= len(key) <= 128 or len(value) > 256 or key.lower().startswith("aws:"):
                problems.append(f"{ident}: tag {key!r} out of AWS limits")
            if r.resource_type == S3 and (
                _is_blank(value) or key != key.strip() or value != value.strip(ASCII_WHITESPACE)
            ):
                problems.append(f"{ident}: blank or padded S3 tag {key!r}={value!r}")
        if expected_violations(r.resource_type, r.tags, policy) != r.expected:
            problems.append(f"{ident}: expected violations out of date")
    return problems
