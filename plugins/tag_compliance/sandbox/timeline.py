"""The estate's history: how the synthetic organisation changes from one day to the next.

``build_timeline(seed, scale, days)`` starts from :func:`.estate.build_estate` on the first day and
plans, for every later day, a deterministic set of changes (pure: no I/O, no moto; the same seed,
scale and number of days always give the same timeline, whatever the calendar dates). Each day's
changes are drawn from a ``random.Random`` seeded with the seed and the day's *position*, and
depend only on the days before it, so a longer history starts with the same days as a shorter one.

Changes of a day, in the order the sandbox applies them (at most one change per resource a day):

* ``deleted`` (~1.5% of the inventory, at least 3): EC2 TerminateInstances, RDS DeleteDBInstance,
  S3 DeleteBucket, Lambda DeleteFunction, ECS DeleteService. A terminated instance is still
  described by EC2 (state ``terminated``: not inventory, as the collectors see it); the others are
  gone. A slice (account, region, type) is never emptied.
* ``created`` (~2%, at least 3): resources with new names, tagged like the rest of the estate.
* ``fixed`` (~3%, at least 4): one violation of a resource fixed: ``tag_added`` (missing key),
  ``value_corrected`` (empty, invalid value or format), ``key_case_corrected``,
  ``prohibited_tag_removed``.
* ``broken`` (~2%, at least 3): one satisfied rule of a resource broken: ``tag_removed``,
  ``value_invalid`` (invalid value or format, or blank where the value is free text),
  ``key_case_changed``.

The first picks of each kind rotate through the resource types (created, deleted) and the details
(fixed, broken), so any two consecutive changing days create and delete every type and show every
detail, even at scale 0.1. Every day's estate satisfies :func:`.estate.check_estate` (S3 / Lambda tag
caps, no blank or padded S3 values) and its expected violations come from
:func:`.estate.expected_violations`.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from tag_compliance.sandbox.estate import (
    APPS,
    EC2,
    ECS,
    ECS_CLUSTERS,
    EMPTY,
    INVALID,
    INVALID_FORMAT,
    INVALID_VALUE,
    LAMBDA,
    MAX_TAGS,
    MISSING,
    PROHIBITED,
    RDS,
    RESOURCE_TYPES,
    S3,
    S3_HOME_REGION,
    SPECIAL_SHARES,
    WHITESPACE,
    WRONG_CASE,
    Estate,
    PlannedResource,
    Policy,
    Rule,
    _case_variant,
    _invalid_value,
    _tags,
    _valid_value,
    build_estate,
    check_estate,
    expected_violations,
    is_prohibited,
    load_policy,
    plan_resource,
    resource_name,
    rule_violation,
)

Ident = tuple[str, str, str, str]  # PlannedResource.ident: (account, API region, type, name)
Tags = dict[str, str]

CREATED, DELETED, FIXED, BROKEN = "created", "deleted", "fixed", "broken"
CHANGE_KINDS = (CREATED, DELETED, FIXED, BROKEN)
RATES = {CREATED: 0.02, DELETED: 0.015, FIXED: 0.03, BROKEN: 0.02}  # share of the day's inventory
MIN_PER_DAY = {CREATED: 3, DELETED: 3, FIXED: 4, BROKEN: 3}

TAG_ADDED, VALUE_CORRECTED, KEY_CASE_CORRECTED, PROHIBITED_REMOVED = (
    "tag_added",
    "value_corrected",
    "key_case_corrected",
    "prohibited_tag_removed",
)
FIXES = (TAG_ADDED, VALUE_CORRECTED, KEY_CASE_CORRECTED, PROHIBITED_REMOVED)
FIX_OF = {
    MISSING: TAG_ADDED,
    EMPTY: VALUE_CORRECTED,
    INVALID_VALUE: VALUE_CORRECTED,
    INVALID_FORMAT: VALUE_CORRECTED,
    WRONG_CASE: KEY_CASE_CORRECTED,
    PROHIBITED: PROHIBITED_REMOVED,
}
TAG_REMOVED, VALUE_INVALID, KEY_CASE_CHANGED = "tag_removed", "value_invalid", "key_case_changed"
BREAKS = (TAG_REMOVED, VALUE_INVALID, KEY_CASE_CHANGED)
# The API call that creates / deletes each type (the ``detail`` of created / deleted changes).
CREATE_ACTIONS = {
    EC2: "ec2:RunInstances",
    RDS: "rds:CreateDBInstance",
    S3: "s3:CreateBucket",
    LAMBDA: "lambda:CreateFunction",
    ECS: "ecs:CreateService",
}
DELETE_ACTIONS = {
    EC2: "ec2:TerminateInstances",
    RDS: "rds:DeleteDBInstance",
    S3: "s3:DeleteBucket",
    LAMBDA: "lambda:DeleteFunction",
    ECS: "ecs:DeleteService",
}
STOPPED_SHARE = 0.12  # of created instances, as in the estate


@dataclass(frozen=True)
class Change:
    """One change of one resource on one day (``tags_*``: None where the resource does not exist)."""

    day: date
    kind: str  # created | deleted | fixed | broken
    detail: str  # API action (created / deleted) or what was fixed / broken
    account_id: str
    region: str  # as the lake has it: "global" for S3
    api_region: str
    resource_type: str
    name: str
    tag_key: str | None = None  # the policy key (or prohibited key) that was fixed / broken
    tags_before: Tags | None = None
    tags_after: Tags | None = None
    violations_before: tuple[tuple[str, str], ...] = ()
    violations_after: tuple[tuple[str, str], ...] = ()

    @property
    def ident(self) -> Ident:
        return (self.account_id, self.api_region, self.resource_type, self.name)

    def to_json(self, resource_id: str, arn: str) -> dict[str, Any]:
        def violations(found: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
            return [{"tag_key": key, "violation_type": kind} for key, kind in found]

        return {
            "day": self.day.isoformat(),
            "kind": self.kind,
            "detail": self.detail,
            "account_id": self.account_id,
            "region": self.region,
            "resource_type": self.resource_type,
            "resource_id": resource_id,
            "arn": arn,
            "name": self.name,
            "tag_key": self.tag_key,
            "tags_before": self.tags_before,
            "tags_after": self.tags_after,
            "violations_before": violations(self.violations_before),
            "violations_after": violations(self.violations_after),
        }


@dataclass
class _Life:
    """One resource over the timeline."""

    first: PlannedResource  # as on its first day (never mutated)
    born: date | None = None  # None: part of the first day's estate
    gone: date | None = None  # first day it no longer exists (EC2: terminated from that day)
    # (day, tags, expected) from that day on, after a fix / break; the first version is ``first``
    versions: list[tuple[date, Tags, tuple[tuple[str, str], ...]]] = field(default_factory=list)


@dataclass
class Timeline:
    """Every resource that exists on any day of ``days``, with its tags and lifespan per day."""

    seed: int
    scale: float
    days: tuple[date, ...]
    changes: dict[date, list[Change]]
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    _lives: dict[Ident, _Life]
    # (resource_id, arn) as the APIs returned them, recorded after seeding (see record_ids)
    ids: dict[Ident, tuple[str, str]] = field(default_factory=dict)

    @property
    def resources(self) -> list[PlannedResource]:
        """Every resource of every day, as on its first day (ids as recorded so far)."""
        return [self._with_ids(life.first) for life in self._lives.values()]

    def lifespan(self, resource: PlannedResource | Ident) -> tuple[date | None, date | None]:
        """(created on, deleted on): None = before the first day / never."""
        life = self._life(resource)
        return life.born, life.gone

    def exists_on(self, resource: PlannedResource | Ident, day: date) -> bool:
        """Whether the resource exists on ``day`` (a terminated instance does not, though EC2 shows it)."""
        life = self._life(resource)
        if life.first.state == "terminated":
            return False
        return (life.born is None or life.born <= day) and (life.gone is None or day < life.gone)

    def tags_on(self, resource: PlannedResource | Ident, day: date) -> Tags:
        """Its tags on ``day`` (before the first day: the first day's; after the last: the last's)."""
        return dict(self._version(self._life(resource), day)[0])

    def retag_days(self, resource: PlannedResource | Ident) -> list[date]:
        """The days its tags changed (fixed / broken), in order."""
        return [since for since, _, _ in self._life(resource).versions]

    def changes_on(self, day: date) -> list[Change]:
        return list(self.changes.get(day, []))

    def estate_on(self, day: date) -> Estate:
        """The estate as it is on ``day``: what moto must hold once the sandbox has advanced to it."""
        resources = []
        for life in self._lives.values():
            if life.born is not None and day < life.born:
                continue
            state = life.first.state
            if life.gone is not None and day >= life.gone:
                if life.first.resource_type != EC2:
                    continue
                state = "terminated"  # still described by EC2, never inventoried again
            tags, expected = self._version(life, day)
            resources.append(
                self._with_ids(replace(life.first, tags=dict(tags), expected=expected, state=state))
            )
        return Estate(self.seed, self.scale, resources, self.accounts, self.regions)

    def record_ids(self, estate: Estate) -> None:
        """Remember the ids the APIs assigned (after seeding / advancing)."""
        for r in estate.resources:
            if r.resource_id and r.arn:
                self.ids[r.ident] = (r.resource_id, r.arn)

    def ids_of(self, resource: PlannedResource | Ident) -> tuple[str, str]:
        """(resource_id, arn): as recorded, else as the API will assign them.

        Names make every id predictable except an EC2 instance id, which moto draws at random: an
        instance that is not created yet gets a placeholder ``i-`` id, replaced once it exists.
        """
        life = self._life(resource)
        if (known := self.ids.get(life.first.ident)) is not None:
            return known
        return predicted_ids(self.seed, life.first)

    # ------------------------------------------------------------------ internals

    def _life(self, resource: PlannedResource | Ident) -> _Life:
        key = resource.ident if isinstance(resource, PlannedResource) else resource
        return self._lives[key]

    @staticmethod
    def _version(life: _Life, day: date) -> tuple[Tags, tuple[tuple[str, str], ...]]:
        tags, expected = life.first.tags, life.first.expected
        for since, version_tags, version_expected in life.versions:
            if since > day:
                break
            tags, expected = version_tags, version_expected
        return tags, expected

    def _with_ids(self, resource: PlannedResource) -> PlannedResource:
        resource_id, arn = self.ids.get(resource.ident, ("", ""))
        return replace(resource, tags=dict(resource.tags), resource_id=resource_id, arn=arn)


def predicted_ids(seed: int, r: PlannedResource) -> tuple[str, str]:
    """The ids a resource gets from the API, from its name (EC2: a deterministic placeholder)."""
    account, region, name = r.account_id, r.api_region, r.name
    if r.resource_type == EC2:
        digest = hashlib.sha256(f"{seed}:{':'.join(r.ident)}".encode()).hexdigest()
        instance_id = "i-" + digest[:17]
        return instance_id, f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"
    if r.resource_type == S3:
        return name, f"arn:aws:s3:::{name}"
    if r.resource_type == RDS:
        return name, f"arn:aws:rds:{region}:{account}:db:{name}"
    if r.resource_type == LAMBDA:
        return name, f"arn:aws:lambda:{region}:{account}:function:{name}"
    return name, f"arn:aws:ecs:{region}:{account}:service/{name}"


# --------------------------------------------------------------------------- planning


def _rng(seed: int, *parts: object) -> random.Random:
    # str seeds go through sha512: stable across processes, unaffected by PYTHONHASHSEED
    return random.Random(":".join([str(seed), "timeline", *map(str, parts)]))


def daily_count(kind: str, inventory: int) -> int:
    """How many changes of ``kind`` a day with ``inventory`` inventoried resources gets."""
    return max(MIN_PER_DAY[kind], round(RATES[kind] * inventory))


def build_timeline(
    seed: int = 42, scale: float = 1.0, days: Sequence[date] = (), policy: Policy | None = None
) -> Timeline:
    """The estate of ``seed``/``scale`` on ``days[0]``, then one set of changes on each later day."""
    days = tuple(days)
    if not days:
        raise ValueError("a timeline needs at least one day")
    if list(days) != sorted(set(days)):
        raise ValueError("days must be distinct and in order")
    policy = policy or load_policy()
    estate = build_estate(seed, scale, policy)
    planner = _Planner(seed, estate, policy)
    changes: dict[date, list[Change]] = {days[0]: []}
    for position, day in enumerate(days[1:], start=1):
        changes[day] = planner.plan_day(position, day)
        problems = check_estate(planner.estate(), policy)
        if problems:  # a bug in the planner, never an input error
            raise AssertionError(f"timeline day {day}: " + "; ".join(problems[:5]))
    return Timeline(
        seed=seed,
        scale=scale,
        days=days,
        changes=changes,
        accounts=estate.accounts,
        regions=estate.regions,
        _lives=planner.lives,
    )


class _Planner:
    """Walks the estate forward one day at a time (working copies; ``lives`` is the result)."""

    def __init__(self, seed: int, estate: Estate, policy: Policy) -> None:
        self.seed = seed
        self.policy = policy
        self.accounts = estate.accounts
        self.regions = estate.regions
        self.scale = estate.scale
        self._rules_of: dict[str, dict[str, Rule]] = {}
        self._options_today: dict[tuple[str, str], list[tuple[PlannedResource, str]]] = {}
        self.lives: dict[Ident, _Life] = {r.ident: _Life(first=_copy(r)) for r in estate.resources}
        self.current: dict[Ident, PlannedResource] = {r.ident: _copy(r) for r in estate.resources}
        # next free name index per slice (and per ECS cluster), next EC2 reservation per slice
        self.next_index: Counter[tuple[str, ...]] = Counter()
        self.next_reservation: Counter[tuple[str, str]] = Counter()
        for r in estate.resources:
            if r.resource_type == EC2:
                index = int(r.name.removeprefix("vm-"))
                slot = (r.account_id, r.api_region, EC2)
                self.next_index[slot] = max(self.next_index[slot], index + 1)
                reservation = (r.account_id, r.api_region)
                self.next_reservation[reservation] = max(
                    self.next_reservation[reservation], r.reservation + 1
                )
            elif r.resource_type == ECS:
                cluster, service = r.name.split("/", 1)
                slot = (r.account_id, r.api_region, ECS, cluster)
                self.next_index[slot] = max(self.next_index[slot], int(service.rsplit("-", 1)[1]) + 1)
            else:
                slot = (r.account_id, r.api_region, r.resource_type)
                self.next_index[slot] = max(self.next_index[slot], int(r.name.rsplit("-", 1)[1]) + 1)

    def estate(self) -> Estate:
        return Estate(self.seed, self.scale, list(self.current.values()), self.accounts, self.regions)

    # ------------------------------------------------------------------ one day

    def plan_day(self, position: int, day: date) -> list[Change]:
        rng = _rng(self.seed, "day", position)
        inventory = [r for r in self.current.values() if r.inventoried]
        touched: set[Ident] = set()
        changes: list[Change] = []
        self._options_today = {}  # a new day: options are recomputed (see _retag)
        weights = Counter(r.resource_type for r in inventory)

        for rtype in _type_sequence(rng, position, daily_count(DELETED, len(inventory)), weights):
            change = self._delete(rng, day, rtype, touched)
            if change is not None:
                changes.append(change)
        for rtype in _type_sequence(rng, position, daily_count(CREATED, len(inventory)), weights):
            changes.append(self._create(rng, day, rtype, touched))
        for detail in _detail_sequence(rng, position, daily_count(FIXED, len(inventory)), FIXES):
            change = self._retag(rng, day, FIXED, detail, FIXES, touched)
            if change is not None:
                changes.append(change)
        for detail in _detail_sequence(rng, position, daily_count(BROKEN, len(inventory)), BREAKS):
            change = self._retag(rng, day, BROKEN, detail, BREAKS, touched)
            if change is not None:
                changes.append(change)
        return changes

    def _live(self, touched: set[Ident]) -> list[PlannedResource]:
        return [r for r in self.current.values() if r.inventoried and r.ident not in touched]

    def _delete(self, rng: random.Random, day: date, rtype: str, touched: set[Ident]) -> Change | None:
        live = [r for r in self.current.values() if r.inventoried]
        per_slice = Counter((r.account_id, r.api_region, r.resource_type) for r in live)
        candidates = [
            r
            for r in self._live(touched)
            if r.resource_type == rtype and per_slice[(r.account_id, r.api_region, rtype)] > 1
        ]
        if not candidates:
            return None
        victim = rng.choice(candidates)
        touched.add(victim.ident)
        self.lives[victim.ident].gone = day
        if rtype == EC2:
            victim.state = "terminated"
        else:
            del self.current[victim.ident]
        return _change(day, DELETED, DELETE_ACTIONS[rtype], victim, before=victim, after=None)

    def _create(self, rng: random.Random, day: date, rtype: str, touched: set[Ident]) -> Change:
        account = rng.choice(self.accounts)
        region = S3_HOME_REGION if rtype == S3 else rng.choice(self.regions)
        app = rng.choice(APPS)
        reservation = 0
        state = "active"
        if rtype == EC2:
            slot: tuple[str, ...] = (account, region, EC2)
            name = f"vm-{self.next_index[slot]:04d}"
            reservation = self.next_reservation[(account, region)]
            self.next_reservation[(account, region)] += 1
            state = "stopped" if rng.random() < STOPPED_SHARE else "running"
        elif rtype == ECS:
            cluster = rng.choice(ECS_CLUSTERS)
            slot = (account, region, ECS, cluster)
            name = f"{cluster}/{app}-svc-{self.next_index[slot]:03d}"
        else:
            slot = (account, region, rtype)
            index = self.next_index[slot]
            name = resource_name(rng, self.seed, account, rtype, app, index)
        self.next_index[slot] += 1
        if rng.random() < SPECIAL_SHARES["untagged"]:
            tags: Tags = {}
        else:
            specials = {
                special
                for special, share in SPECIAL_SHARES.items()
                if special != "untagged" and rng.random() < share
            }
            tags = _tags(rng, rtype, self.policy, specials)
        resource = plan_resource(
            account, region, rtype, name, tags, self.policy, state=state, reservation=reservation
        )
        self.current[resource.ident] = resource
        self.lives[resource.ident] = _Life(first=_copy(resource), born=day)
        touched.add(resource.ident)
        return _change(day, CREATED, CREATE_ACTIONS[rtype], resource, before=None, after=resource)

    def _retag(
        self,
        rng: random.Random,
        day: date,
        kind: str,
        detail: str,
        details: tuple[str, ...],
        touched: set[Ident],
    ) -> Change | None:
        """One fix / break of ``detail``, else of the next detail that has a candidate."""
        start = details.index(detail)
        for attempt in details[start:] + details[:start]:
            if (kind, attempt) not in self._options_today:
                # computed once a day: a resource changes at most once a day, so the options of
                # the untouched ones stay valid
                self._options_today[(kind, attempt)] = [
                    (r, key) for r in self._live(touched) for key in self._options(kind, attempt, r)
                ]
            options = [(r, key) for r, key in self._options_today[(kind, attempt)] if r.ident not in touched]
            if not options:
                continue
            resource, key = rng.choice(options)
            before = _copy(resource)
            if kind == FIXED:
                tags = self._fixed(rng, attempt, resource, key)
            else:
                tags = self._broken(rng, attempt, resource, key)
            resource.tags = tags
            resource.expected = expected_violations(resource.resource_type, tags, self.policy)
            self._check_effect(kind, attempt, before, resource, key)
            self.lives[resource.ident].versions.append((day, dict(tags), resource.expected))
            touched.add(resource.ident)
            return _change(day, kind, attempt, resource, before=before, after=resource, tag_key=key)
        return None

    # ------------------------------------------------------------------ fixes and breaks

    def _rules(self, rtype: str) -> dict[str, Rule]:
        if rtype not in self._rules_of:
            self._rules_of[rtype] = {rule.key: rule for rule in self.policy.rules_for(rtype)}
        return self._rules_of[rtype]

    def _options(self, kind: str, detail: str, r: PlannedResource) -> list[str]:
        """Keys of ``r`` that ``detail`` can fix / break (policy keys; prohibited: the key itself)."""
        rules = self._rules(r.resource_type)
        if kind == FIXED:
            keys = [key for key, violation in r.expected if FIX_OF[violation] == detail]
            if detail == TAG_ADDED and len(r.tags) >= MAX_TAGS[r.resource_type]:
                keys = keys if self._removable(r) else []
            return keys
        satisfied = [
            key for key, rule in rules.items() if key in r.tags and rule_violation(rule, r.tags) is None
        ]
        if detail == VALUE_INVALID and r.resource_type == S3:
            # no blank S3 values (moto drops them): only keys with a list of invalid values
            satisfied = [key for key in satisfied if INVALID.get(key)]
        return satisfied

    def _removable(self, r: PlannedResource) -> list[str]:
        """Keys that stand for no policy rule of this type (extras, prohibited keys)."""
        wanted = {key.lower() for key in self._rules(r.resource_type)}
        return sorted(key for key in r.tags if key.lower() not in wanted)

    def _fixed(self, rng: random.Random, detail: str, r: PlannedResource, key: str) -> Tags:
        tags = dict(r.tags)
        if detail == PROHIBITED_REMOVED:
            del tags[key]
            return tags
        rule = self._rules(r.resource_type)[key]
        value = _valid_value(rng, rule)
        if detail == TAG_ADDED:
            if len(tags) >= MAX_TAGS[r.resource_type]:
                removable = self._removable(r)
                prohibited = [k for k in removable if is_prohibited(k, self.policy.prohibited_keys)]
                del tags[rng.choice(prohibited or removable)]
        elif detail == KEY_CASE_CORRECTED:
            for variant in [k for k in tags if k.lower() == key.lower()]:
                del tags[variant]
        tags[key] = value
        return tags

    def _broken(self, rng: random.Random, detail: str, r: PlannedResource, key: str) -> Tags:
        tags = dict(r.tags)
        rule = self._rules(r.resource_type)[key]
        if detail == TAG_REMOVED:
            del tags[key]
        elif detail == VALUE_INVALID:
            value = _invalid_value(rng, rule, r.resource_type)
            if value is None:  # free text: only a blank value is wrong (never on S3: moto drops it)
                value = rng.choice(("", *WHITESPACE.get(r.resource_type, WHITESPACE["default"])))
            tags[key] = value
        else:
            variant = _case_variant(rng, key)
            if variant in tags:
                variant = key.lower() if key.lower() not in tags else key.upper()
            value = tags.pop(key)
            tags[variant] = value
        return tags

    def _check_effect(
        self, kind: str, detail: str, before: PlannedResource, after: PlannedResource, key: str
    ) -> None:
        """A fix removes the violation it targets; a break adds one on the rule it targets."""
        had = any(k == key for k, _ in before.expected)
        has = any(k == key for k, _ in after.expected)
        ok = (had and not has) if kind == FIXED else (has and not had)
        if not ok or len(after.tags) > MAX_TAGS[after.resource_type]:
            raise AssertionError(
                f"{kind} {detail} of {key!r} on {after.ident}: {before.tags} -> {after.tags}"
            )


def _copy(r: PlannedResource) -> PlannedResource:
    return replace(r, tags=dict(r.tags))


def _change(
    day: date,
    kind: str,
    detail: str,
    r: PlannedResource,
    *,
    before: PlannedResource | None,
    after: PlannedResource | None,
    tag_key: str | None = None,
) -> Change:
    return Change(
        day=day,
        kind=kind,
        detail=detail,
        account_id=r.account_id,
        region=r.region,
        api_region=r.api_region,
        resource_type=r.resource_type,
        name=r.name,
        tag_key=tag_key,
        tags_before=dict(before.tags) if before is not None else None,
        tags_after=dict(after.tags) if after is not None else None,
        violations_before=before.expected if before is not None else (),
        violations_after=after.expected if after is not None else (),
    )


def _type_sequence(rng: random.Random, position: int, count: int, weights: Counter[str]) -> list[str]:
    """``count`` resource types: the first (up to 5) rotate with the day, the rest follow the inventory."""
    n = len(RESOURCE_TYPES)
    rotation = MIN_PER_DAY[CREATED]  # two consecutive days of >= 3 picks cover all five types
    sequence = [RESOURCE_TYPES[(position * rotation + j) % n] for j in range(min(count, n))]
    sequence += rng.choices(
        RESOURCE_TYPES, weights=[weights[t] or 1 for t in RESOURCE_TYPES], k=count - len(sequence)
    )
    return sequence


def _detail_sequence(rng: random.Random, position: int, count: int, details: Iterable[str]) -> list[str]:
    """``count`` details: every detail first (rotating with the day), then random ones."""
    details = tuple(details)
    n = len(details)
    sequence = [details[(position + j) % n] for j in range(min(count, n))]
    sequence += rng.choices(details, k=count - len(sequence))
    return sequence
