"""Deterministic synthetic lakes for ``make bench``: realistic tag maps at stated rates.

Each resource carries the benchmark policy's five keys in one of these states, drawn per key
with the rates in ``KEY_STATES``: valid, missing, under the key in another case, blank, an
invalid value (not in the allowed list) or a malformed one (fails the pattern), plus 0-6
unrelated tags. Written through the lake's own writer and committed like a collected snapshot,
so scoring reads it exactly as it reads the DAG's output.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from tag_compliance import lake
from tag_compliance.policy import TaggingPolicy

ACCOUNTS = tuple(f"{100000000000 + n:012d}" for n in range(10))
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
TYPES = (  # (service, resource_type, id prefix)
    ("ec2", "ec2:instance", "i-"),
    ("rds", "rds:db", "db-"),
    ("s3", "s3:bucket", "bucket-"),
    ("lambda", "lambda:function", "fn-"),
    ("ecs", "ecs:service", "svc-"),
)
APPLICATIONS = tuple(f"app-{n:02d}" for n in range(20))

# The benchmark policy: three allowed-value lists and two patterns, as in issue 12's measurement.
POLICY_DATA = {
    "version": "bench-1",
    "required_tags": [
        {"key": "Environment", "allowed_values": ["prod", "staging", "dev", "test"]},
        {"key": "CostCenter", "pattern": "CC-[0-9]{4}"},
        {"key": "Owner", "pattern": "[a-z]+(\\.[a-z]+)?@example\\.com"},
        {"key": "Application", "allowed_values": list(APPLICATIONS)},
        {"key": "DataClassification", "allowed_values": ["public", "internal", "confidential"]},
    ],
}

KEY_STATES = {
    "valid": 0.70,
    "missing": 0.10,
    "wrong_case": 0.05,
    "blank": 0.05,
    "invalid": 0.05,
    "malformed": 0.05,
}
"""Per required key; 'invalid' and 'malformed' are the two kinds of bad value."""
EXTRA_TAGS = (0, 6)
OWNERS = tuple(
    f"{first}.{last}@example.com" for first in ("ana", "bo", "cy", "dee") for last in ("x", "yu", "zed")
)


def policy() -> TaggingPolicy:
    return TaggingPolicy.model_validate(POLICY_DATA)


def _valid_value(key: str, rng: random.Random) -> str:
    if key == "Environment":
        return rng.choice(("prod", "staging", "dev", "test"))
    if key == "CostCenter":
        return f"CC-{rng.randrange(10000):04d}"
    if key == "Owner":
        return rng.choice(OWNERS)
    if key == "Application":
        return rng.choice(APPLICATIONS)
    return rng.choice(("public", "internal", "confidential"))


def _bad_value(key: str, rng: random.Random, malformed: bool) -> str:
    if key in ("CostCenter", "Owner"):  # patterns: a near miss either way
        return rng.choice(("cc-12", "CC-123", "CC-12345", "nobody", "Ana@example.com"))
    return rng.choice(("Prod", "production", "misc", "n/a")) if not malformed else f"{key.lower()}?"


def tags_for(rng: random.Random) -> dict[str, str]:
    """One resource's tag map."""
    states, weights = list(KEY_STATES), list(KEY_STATES.values())
    tags: dict[str, str] = {}
    for rule in POLICY_DATA["required_tags"]:
        key = rule["key"]
        state = rng.choices(states, weights)[0]
        if state == "valid":
            tags[key] = _valid_value(key, rng)
        elif state == "wrong_case":
            tags[key.lower()] = _valid_value(key, rng)
        elif state == "blank":
            tags[key] = rng.choice(("", " "))
        elif state in ("invalid", "malformed"):
            tags[key] = _bad_value(key, rng, state == "malformed")
    for n in range(rng.randint(*EXTRA_TAGS)):
        tags[f"extra-{rng.randrange(40)}-{n}"] = f"v{rng.randrange(1000)}"
    return tags


@dataclass(frozen=True)
class Partition:
    account_id: str
    region: str
    service: str
    resource_type: str
    prefix: str


def partitions() -> list[Partition]:
    return [
        Partition(account, region, service, resource_type, prefix)
        for account in ACCOUNTS
        for region in REGIONS
        for service, resource_type, prefix in TYPES
    ]


def _partition_rows(part: Partition, count: int, seed: int, collected_at: datetime) -> pa.Table:
    rng = random.Random(f"{seed}/{part.account_id}/{part.region}/{part.service}")
    ids = [f"{part.prefix}{part.region}-{n:08d}" for n in range(count)]
    maps = [list(tags_for(rng).items()) for _ in range(count)]
    return pa.table(
        {
            "collected_at": pa.array([collected_at] * count, lake.UTC_TIMESTAMP),
            "resource_type": [part.resource_type] * count,
            "resource_id": ids,
            "arn": [f"arn:aws:{part.service}:{part.region}:{part.account_id}:{rid}" for rid in ids],
            "name": ids,
            "state": ["running"] * count,
            "created_at": pa.array([collected_at - timedelta(days=30)] * count, lake.UTC_TIMESTAMP),
            "tags": pa.array(maps, lake.TAGS),
            "source": ["service_api"] * count,
        },
        schema=lake.RESOURCES.schema,
    )


def _counts(total: int, parts: int) -> Iterator[int]:
    base, extra = divmod(total, parts)
    for index in range(parts):
        yield base + (index < extra)


def write_snapshot(root: Path, day: date, resources: int, seed: int = 12) -> int:
    """Write and commit one snapshot of ``resources`` resources; returns the files written."""
    collected_at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=2)
    parts = partitions()
    tables = []
    for part, count in zip(parts, _counts(resources, len(parts)), strict=True):
        partition = {
            "snapshot_date": day,
            "account_id": part.account_id,
            "region": part.region,
            "service": part.service,
        }
        tables.append((lake.RESOURCES, partition, _partition_rows(part, count, seed, collected_at)))
    lake.write_and_commit(root, lake.SNAPSHOT, day, tables)
    return len(tables)


def ensure_snapshot(root: Path, day: date, resources: int, seed: int = 12) -> Path:
    """The lake at ``root`` with that snapshot, generated once and reused (same seed, same rows)."""
    if lake.read_commit(root, lake.SNAPSHOT, day) is None:
        write_snapshot(root, day, resources, seed)
    return root


def write_history(root: Path, first_day: date, days: int, resources: int, seed: int = 12) -> list[date]:
    """``days`` daily snapshots from ``first_day``: the same estate each day, collected that day,
    with one more (account, region, service) partition retagged each day and kept so (about
    0.7% of the resources a day: a team fixing, or breaking, its tags), so drift and episodes
    have something to find. Snapshots already committed are kept; returns the days."""
    parts = partitions()
    counts = list(_counts(resources, len(parts)))
    base: list[pa.Table] | None = None
    retagged: dict[tuple[int, int], pa.Table] = {}
    written = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        written.append(day)
        if lake.read_commit(root, lake.SNAPSHOT, day) is not None:
            continue
        collected_at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=2)
        if base is None:  # generated once; each day restamps it, with the partitions retagged so far
            base = [
                _partition_rows(part, count, seed, collected_at)
                for part, count in zip(parts, counts, strict=True)
            ]
        tables = []
        for index, (part, count) in enumerate(zip(parts, counts, strict=True)):
            # The last day up to this one that retagged this partition (day n retags partition n).
            last_retag = max((n for n in range(1, offset + 1) if n % len(parts) == index), default=0)
            if last_retag and (index, last_retag) not in retagged:
                retagged[index, last_retag] = _partition_rows(part, count, seed + last_retag, collected_at)
            rows = retagged[index, last_retag] if last_retag else base[index]
            rows = rows.set_column(0, "collected_at", pa.array([collected_at] * count, lake.UTC_TIMESTAMP))
            partition = {
                "snapshot_date": day,
                "account_id": part.account_id,
                "region": part.region,
                "service": part.service,
            }
            tables.append((lake.RESOURCES, partition, rows))
        lake.write_and_commit(root, lake.SNAPSHOT, day, tables)
    return written
