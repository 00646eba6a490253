"""The cost ledger: what the synthetic organisation spent, per day, resource and service.

The ledger is the ground truth behind the sandbox's Cost Explorer emulator (:mod:`.cost_explorer`):
every answer the emulator gives is a sum over ledger rows, so tests can reconcile the pipeline's
cost figures against it to the last decimal. Like the estate it is pure and deterministic: the same
seeded estate (seed, scale) and ``today`` always give the same table, whatever ids moto assigned,
because every random draw comes from a ``random.Random`` seeded with a string naming the planned
resource (account, region, type, name) and, for day-to-day variation, the day.

With a :class:`.timeline.Timeline` (a sandbox with history), the estate's resources follow it: a
resource costs only on the days it exists (from its creation day, until the day before its deletion),
and each row carries the resource's tags as of that day. Days before the timeline's first day have the
first day's estate, days after its last day (``today``) the last day's. A resource the timeline creates
later whose EC2 instance id is not known yet carries a placeholder id (:func:`.timeline.predicted_ids`)
until the sandbox has created it; amounts never depend on ids. Without a timeline every resource of the
estate exists on every day with its one set of tags.

One row per usage day and cost line, for the ``days`` days ending with ``today``:

* every inventoried resource of the estate, every day it exists (``inventoried`` true: it is in
  that day's inventory);
* resources that no longer exist (``inventoried`` false): the estate's terminated EC2 instances,
  which cost until a deletion day in [today-10, today], and a few invented, deleted resources per
  account (RDS, Lambda, S3, ECS) whose deletion days are spread over the window; one of them per
  account was deleted ``today``, so every earlier day of the window has such spend;
* the breadth's resources (every other costed type, :mod:`.breadth`), every day, at a list price
  per type (:data:`BREADTH_PRICES`), under their type's Cost Explorer service and a usage type of
  theirs (the split of a service several types share is by usage type);
* spend that belongs to no resource (``resource_type``/``resource_id`` NULL, ``tags`` empty):
  "AWS Support (Business)" in the management account, "Tax" per account, "AWS Data Transfer"
  per account *and region*, and per account and region services we do not inventory (AWS Config,
  GuardDuty) and usage types of shared services that are no resource's (CloudWatch metrics,
  EC2's regional data transfer).

Every row has a ``usage_type`` as Cost Explorer names it: the region code first outside us-east-1
(``EU-BoxUsage:m5.large``).

Key: (usage_date, account_id, service, region, resource_id) is unique, NULL counting as a value.
For rows with a resource_id, (usage_date, account_id, service, resource_id) alone is unique; for
NULL-resource rows only Data Transfer has several rows per (day, account, service), one per region.

Amounts are ``decimal128(38, 10)`` quantized to exactly 10 fractional digits (ROUND_HALF_EVEN),
never negative. ``amortized_cost`` differs from ``unblended_cost`` for ~30% of EC2 instances and RDS
databases (reservations / savings plans); ``estimated_*`` are what Cost Explorer shows while the day
is still Estimated: 0.90-0.99 x the final figure for ~98% of rows, equal to it otherwise.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from tag_compliance.aws.collectors import cost_mapping_of, cost_mappings
from tag_compliance.lake import MONEY, TAGS
from tag_compliance.sandbox.estate import (
    APPS,
    EC2,
    ECS,
    ECS_CLUSTERS,
    LAMBDA,
    MANAGEMENT_ACCOUNT,
    RDS,
    S3,
    S3_HOME_REGION,
    Estate,
    PlannedResource,
    _tag_sets,
    load_policy,
)

if TYPE_CHECKING:
    from tag_compliance.sandbox.timeline import Timeline

LEDGER_FILE = "costs.parquet"
LEDGER_DIR = "ledger"  # under the sandbox data dir
DEFAULT_DAYS = 45
LEDGER_SCHEMA = pa.schema(
    [
        ("usage_date", pa.date32()),
        ("account_id", pa.string()),
        ("service", pa.string()),
        ("region", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("usage_type", pa.string()),
        ("inventoried", pa.bool_()),
        ("tags", TAGS),
        ("amortized_cost", MONEY),
        ("unblended_cost", MONEY),
        ("estimated_amortized_cost", MONEY),
        ("estimated_unblended_cost", MONEY),
    ]
)
AMOUNT_COLUMNS = ("amortized_cost", "unblended_cost", "estimated_amortized_cost", "estimated_unblended_cost")

# Cost Explorer SERVICE values of spend that belongs to no resource.
SUPPORT = "AWS Support (Business)"
TAX = "Tax"
DATA_TRANSFER = "AWS Data Transfer"
NON_RESOURCE_SERVICES = (SUPPORT, TAX, DATA_TRANSFER)

TERMINATED_LAST_DAYS = 10  # terminated instances stop costing on a day in [today-10, today]
RESERVED_SHARE = 0.3  # EC2 / RDS covered by reservations or savings plans
ESTIMATE_EXACT_SHARE = 0.02  # rows whose estimate already equals the final figure

_TEN_PLACES = Decimal("1E-10")
_ZERO = Decimal(0)


def q(amount: Decimal) -> Decimal:
    """Quantize to exactly 10 fractional digits, as Cost Explorer reports amounts."""
    return amount.quantize(_TEN_PLACES, rounding=ROUND_HALF_EVEN)


def _d(value: str | int) -> Decimal:
    return Decimal(value)


def _rng(seed: int, *parts: object) -> random.Random:
    # str seeds go through sha512: stable across processes, unaffected by PYTHONHASHSEED
    return random.Random(":".join([str(seed), "ledger", *map(str, parts)]))


def _ratio(rng: random.Random, low: int, high: int, scale: int = 10000) -> Decimal:
    """A uniform draw in [low/scale, high/scale] as an exact Decimal."""
    return Decimal(rng.randint(low, high)) / scale


# --------------------------------------------------------------------------- prices (USD, public list)

REGION_FACTOR = {"us-east-1": _d(1), "eu-west-1": _d("1.1")}
EC2_INSTANCE_TYPES = ("t3.micro", "m5.large", "c6g.xlarge")  # seed.py: by reservation % 3
EC2_HOURLY = {"t3.micro": _d("0.0104"), "m5.large": _d("0.096"), "c6g.xlarge": _d("0.136")}
EBS_GB_MONTH = _d("0.08")
RDS_HOURLY = {"pg": _d("0.018"), "mysql": _d("0.017"), "maria": _d("0.017")}  # db.t3.micro
RDS_STORAGE_GB_MONTH = _d("0.115")
RDS_BACKUP_GB_MONTH = _d("0.095")
RDS_STORAGE_GB = 20  # seed.py: AllocatedStorage
S3_GB_MONTH = _d("0.023")
S3_PUT_PER_1000 = _d("0.005")
S3_GET_PER_1000 = _d("0.0004")
LAMBDA_PER_REQUEST = _d("0.0000002")
LAMBDA_GB_SECOND = _d("0.0000166667")
FARGATE_VCPU_HOUR = _d("0.04048")
FARGATE_GB_HOUR = _d("0.004445")
DATA_TRANSFER_GB = _d("0.09")
SUPPORT_SHARE = _d("0.07")
SUPPORT_MINIMUM_DAY = _d(100) / 30


def _region_factor(region: str | None) -> Decimal:
    return REGION_FACTOR.get(region or "", _d("1.05"))


# Daily list price ranges (USD; a resource draws its own, then +-10% a day) of the breadth's costed
# types, and the usage type each is billed under (one of its type's own for a shared service).
BREADTH_PRICES: dict[str, tuple[str, str, str]] = {
    "ec2:volume": ("EBS:VolumeUsage.gp3", "0.02", "1.3"),  # 8 .. 500 GB at $0.08 per GB-month
    "ec2:snapshot": ("EBS:SnapshotUsage", "0.005", "0.5"),
    "ec2:natgateway": ("NatGateway-Hours", "1.08", "1.6"),  # $0.045 an hour, plus bytes
    "ec2:elastic-ip": ("ElasticIP:IdleAddress", "0.12", "0.12"),  # $0.005 an hour
    "ec2:vpc-endpoint": ("VpcEndpoint-Hours", "0.24", "0.48"),
    "ec2:transit-gateway": ("TransitGateway-Hours", "1.2", "1.6"),
    "elasticloadbalancing:loadbalancer": ("LoadBalancerUsage", "0.54", "1.2"),
    "dynamodb:table": ("TimedStorage-ByteHrs", "0.01", "3"),
    "elasticache:cluster": ("NodeUsage:cache.t3.micro", "0.41", "1.6"),
    "redshift:cluster": ("Node:dc2.large", "6", "7"),
    "es:domain": ("ESInstance:t3.small.search", "0.86", "3"),
    "memorydb:cluster": ("NodeUsage:db.t4g.small", "0.9", "1.2"),
    "efs:file-system": ("TimedStorage-ByteHrs", "0.01", "2"),
    "fsx:file-system": ("Storage-SSD", "1", "5"),
    "backup:backup-vault": ("WarmStorage-ByteHrs-EBS", "0.05", "2"),
    "eks:cluster": ("AmazonEKS-Hours:perCluster", "2.4", "2.4"),  # $0.10 an hour
    "ecr:repository": ("TimedStorage-ByteHrs", "0.001", "0.3"),
    "sqs:queue": ("Requests-Tier1", "0.001", "0.5"),
    "sns:topic": ("Requests-Tier1", "0.001", "0.2"),
    "kinesis:stream": ("Storage-ShardHour", "0.36", "0.72"),
    "firehose:deliverystream": ("BilledBytes", "0.01", "1"),
    "kafka:cluster": ("Kafka.t3.small", "1", "2"),
    "mq:broker": ("ActiveMQ.mq.t3.micro", "0.6", "0.8"),
    "states:stateMachine": ("StateTransition", "0.001", "0.5"),
    "events:rule": ("Event-64K-Chunks", "0.001", "0.1"),
    "apigateway:restapi": ("ApiGatewayRequest", "0.01", "1"),
    "apigateway:api": ("ApiGatewayHttpRequest", "0.01", "0.5"),
    "cloudfront:distribution": ("US-DataTransfer-Out-Bytes", "0.1", "5"),
    "route53:hostedzone": ("HostedZone", "0.0166", "0.05"),  # $0.50 a month, plus queries
    "kms:key": ("KMS-Keys", "0.0333", "0.0333"),  # $1 a month
    "secretsmanager:secret": ("AWSSecretsManager-Secrets", "0.0133", "0.0133"),  # $0.40 a month
    "logs:log-group": ("TimedStorage-ByteHrs", "0.001", "0.5"),
    "cloudwatch:alarm": ("CW:AlarmMonitorUsage", "0.0033", "0.0033"),  # $0.10 a month
    "sagemaker:endpoint": ("Host:ml.t2.medium", "1.3", "2.5"),
    "sagemaker:notebook-instance": ("Notebk:ml.t3.medium", "1", "1.2"),
    "glue:job": ("ETL-DPU-Hour", "0.01", "3"),
    "elasticmapreduce:cluster": ("BoxUsage:m5.xlarge", "1.15", "2.3"),
    "codebuild:project": ("Build-Min:Linux:g1.small", "0.01", "0.5"),
    "cloudtrail:trail": ("PaidEventsRecorded", "0.001", "0.3"),
}

# Per account and region: spend on services we inventory nothing of, and usage types of a shared
# service that are no resource type's. (service, usage type, daily low, daily high)
UNINVENTORIED: tuple[tuple[str, str, str, str], ...] = (
    ("AWS Config", "ConfigurationItemRecorded", "0.3", "1.5"),
    ("Amazon GuardDuty", "PaidEventsAnalyzed", "0.2", "2"),
    ("AmazonCloudWatch", "CW:MetricMonitorUsage", "0.1", "1"),
    ("EC2 - Other", "DataTransfer-Regional-Bytes", "0.05", "0.5"),
)

# The code before a usage type outside us-east-1, as Cost Explorer shows it.
REGION_USAGE_PREFIX = {
    "us-east-1": "",
    "us-east-2": "USE2-",
    "us-west-1": "USW1-",
    "us-west-2": "USW2-",
    "eu-west-1": "EU-",
    "eu-west-2": "EUW2-",
    "eu-central-1": "EUC1-",
    "ap-southeast-1": "APS1-",
    "ap-northeast-1": "APN1-",
}


def usage_type(region: str | None, usage: str) -> str:
    """``usage`` as Cost Explorer names it in ``region`` (global and us-east-1: no code)."""
    return REGION_USAGE_PREFIX.get(region or "", "") + usage


# --------------------------------------------------------------------------- cost lines


@dataclass
class _Line:
    """One cost line of the ledger: a resource (live or gone) or a non-resource charge."""

    key: str  # seeds its random draws: planned identity, never an API-assigned id
    account_id: str
    service: str
    region: str | None
    resource_type: str | None
    resource_id: str | None
    inventoried: bool
    tags: dict[str, str]
    kind: str  # cost model: "ec2", "ec2_stopped", "rds", "s3", "lambda", "ecs", "flat", "none"
    usage_type: str = ""
    first_day: date | None = None  # None: existed before the window
    last_day: date | None = None  # None: still exists; else the last day it costs (deletion - 1)
    params: dict[str, Any] | None = None
    amortized_factor: Decimal | None = None  # None: amortized == unblended
    # retags: (first day, tags from that day on), in day order; before the first one: ``tags``
    tag_versions: list[tuple[date, dict[str, str]]] = field(default_factory=list)

    def tags_on(self, day: date) -> dict[str, str]:
        tags = self.tags
        for since, version in self.tag_versions:
            if since > day:
                break
            tags = version
        return tags


def _ce_resource_id(resource: PlannedResource) -> str:
    """RESOURCE_ID as Cost Explorer reports it for each type."""
    if resource.resource_type in (EC2, S3) or resource.resource_type.startswith("ec2:"):
        return resource.resource_id  # instance, volume, NAT gateway ... ids, bucket names
    return resource.arn  # RDS DB, Lambda function, ECS service and the others' ARNs


def _service_of_type() -> dict[str, str]:
    return {mapping.resource_type: mapping.cost_explorer_service for mapping in cost_mappings()}


# The usage type of each dynamic type's cost line (before the region code).
ESTATE_USAGE = {
    "rds": "InstanceUsage:db.t3.micro",
    "s3": "TimedStorage-ByteHrs",
    "lambda": "Lambda-GB-Second",
    "ecs": "Fargate-vCPU-Hours:perCPU",
}


def _estate_usage(line: _Line) -> str:
    if line.kind in ("ec2", "ec2_stopped"):
        return usage_type(line.region, f"BoxUsage:{(line.params or {})['instance_type']}")
    return usage_type(line.region, ESTATE_USAGE[line.kind])


def _params(line: _Line, seed: int) -> dict[str, Any]:
    """Per-resource constants of its cost model (drawn once, from the planned identity)."""
    rng = _rng(seed, "params", line.key)
    kind = line.kind
    if kind in ("ec2", "ec2_stopped"):
        return {"volume_gb": rng.choice((8, 20, 30, 50, 100, 200))}
    if kind == "rds":
        return {"backup_mgb": rng.randint(500, 20000)}  # backup GB in thousandths
    if kind == "s3":
        # storage in MB, log-uniform 1 MB .. 5 TB; requests per day
        return {
            "storage_mb": int(10 ** rng.uniform(0, 6.7)),
            "puts": int(10 ** rng.uniform(0, 5)),
            "gets": int(10 ** rng.uniform(0, 6)),
        }
    if kind == "lambda":
        return {
            "memory_mb": rng.choice((128, 256, 512, 1024, 1536)),
            "invocations": int(10 ** rng.uniform(1, 6)),
            "duration_ms": rng.randint(5, 1500),
        }
    if kind == "ecs":
        vcpu_quarters = rng.choices((1, 2, 4, 8, 16), weights=(30, 30, 25, 10, 5))[0]  # 0.25 .. 4 vCPU
        return {
            "tasks": rng.choices((1, 2, 3, 4), weights=(50, 30, 12, 8))[0],
            "vcpu_quarters": vcpu_quarters,
            "memory_gb": max(1, vcpu_quarters // 2) * rng.choice((1, 2, 4)),
        }
    if kind == "flat":
        _, low, high = BREADTH_PRICES[line.resource_type or ""]
        return {"daily": Decimal(low) + (Decimal(high) - Decimal(low)) * _ratio(rng, 0, 10000)}
    if kind == "none":
        return {}
    raise AssertionError(kind)


def _daily_unblended(line: _Line, day: date, rng: random.Random) -> Decimal:
    """Unblended cost of one resource for one day (before quantization)."""
    p = line.params or {}
    factor = _region_factor(line.region)
    kind = line.kind
    if kind in ("ec2", "ec2_stopped"):
        ebs = p["volume_gb"] * EBS_GB_MONTH / 30 * (1 + _ratio(rng, 0, 300))  # + IOPS / snapshots
        if kind == "ec2_stopped":
            return ebs
        hours = 24 if rng.random() > 0.04 else rng.randint(18, 23)  # now and then a reboot window
        return EC2_HOURLY[p["instance_type"]] * factor * hours + ebs
    if kind == "rds":
        instance = RDS_HOURLY[p["engine"]] * factor * 24
        storage = RDS_STORAGE_GB * RDS_STORAGE_GB_MONTH * factor / 30
        backup = Decimal(p["backup_mgb"]) / 1000 * _ratio(rng, 9000, 11000) * RDS_BACKUP_GB_MONTH / 30
        return instance + storage + backup
    if kind == "s3":
        storage_gb = Decimal(p["storage_mb"]) / 1024 * _ratio(rng, 9900, 10100)
        puts = int(p["puts"] * rng.uniform(0.3, 1.7))
        gets = int(p["gets"] * rng.uniform(0.3, 1.7))
        return (
            storage_gb * S3_GB_MONTH / 30
            + Decimal(puts) * S3_PUT_PER_1000 / 1000
            + Decimal(gets) * S3_GET_PER_1000 / 1000
        )
    if kind == "lambda":
        weekend = 0.4 if day.weekday() >= 5 else 1.0
        invocations = max(1, int(p["invocations"] * weekend * rng.uniform(0.6, 1.4)))
        duration_ms = max(1, int(p["duration_ms"] * rng.uniform(0.8, 1.2)))
        gb_seconds = Decimal(invocations * duration_ms * p["memory_mb"]) / (1000 * 1024)
        return Decimal(invocations) * LAMBDA_PER_REQUEST + gb_seconds * LAMBDA_GB_SECOND
    if kind == "ecs":
        task_hours = p["tasks"] * 24 * _ratio(rng, 9000, 12500)  # autoscaling
        vcpu = Decimal(p["vcpu_quarters"]) / 4
        per_hour = (vcpu * FARGATE_VCPU_HOUR + p["memory_gb"] * FARGATE_GB_HOUR) * factor
        return task_hours * per_hour
    if kind == "flat":
        return p["daily"] * _ratio(rng, 9000, 11000)
    raise AssertionError(kind)


def _estate_lines(
    seed: int, resources: Iterable[PlannedResource], services: dict[str, str], today: date
) -> Iterator[_Line]:
    for r in resources:
        if not r.resource_id or not r.arn:
            raise ValueError(
                "the estate has not been seeded: resource ids are missing "
                f"(e.g. {r.resource_type} {r.name!r} in {r.account_id}/{r.api_region}); "
                "build the ledger after Seeder.run()"
            )
        if r.resource_type not in services:
            raise ValueError(f"no collector declares a Cost Explorer service for {r.resource_type!r}")
        key = ":".join((r.account_id, r.api_region, r.resource_type, r.name))
        kind = {EC2: "ec2", RDS: "rds", S3: "s3", LAMBDA: "lambda", ECS: "ecs"}[r.resource_type]
        if r.resource_type == EC2 and r.state == "stopped":
            kind = "ec2_stopped"
        line = _Line(
            key=key,
            account_id=r.account_id,
            service=services[r.resource_type],
            region=r.api_region,
            resource_type=r.resource_type,
            resource_id=_ce_resource_id(r),
            inventoried=r.inventoried,
            tags=dict(r.tags),
            kind=kind,
        )
        line.params = _params(line, seed)
        if r.resource_type == EC2:
            line.params["instance_type"] = EC2_INSTANCE_TYPES[r.reservation % 3]
        elif r.resource_type == RDS:
            line.params["engine"] = r.name.split("-")[1]
        line.usage_type = _estate_usage(line)
        if r.resource_type == EC2 and r.state == "terminated":
            deletion = today - timedelta(days=_rng(seed, "deleted", key).randint(0, TERMINATED_LAST_DAYS))
            line.last_day = deletion - timedelta(days=1)
        _maybe_reserved(line, seed)
        yield line


def _maybe_reserved(line: _Line, seed: int) -> None:
    if line.resource_type not in (EC2, RDS):
        return
    rng = _rng(seed, "reserved", line.key)
    if rng.random() < RESERVED_SHARE:
        line.amortized_factor = _ratio(rng, 5500, 7500)


# Invented resources that were deleted (they never exist in moto): per account.
GONE_PER_ACCOUNT = ((RDS, 2), (LAMBDA, 3), (S3, 3), (ECS, 1))


def _gone_lines(estate: Estate, services: dict[str, str], today: date, days: int) -> Iterator[_Line]:
    seed = estate.seed
    policy = load_policy()
    regions = estate.regions
    window_start = today - timedelta(days=days - 1)
    for a, account in enumerate(estate.accounts):
        rng = _rng(seed, "gone", account)
        planned = [rtype for rtype, count in GONE_PER_ACCOUNT for _ in range(count)]
        # deletion offsets (days before today) spread over the window; one is 0 (deleted today), so
        # every earlier day of the window has spend of a resource that no longer exists
        offsets = [0] + [
            1 + (k * (days - 1)) // (len(planned) - 1) + rng.randint(0, 2) for k in range(len(planned) - 1)
        ]
        rng.shuffle(offsets)
        tagsets = {rtype: _tag_sets(rng, rtype, count, policy) for rtype, count in GONE_PER_ACCOUNT}
        for k, rtype in enumerate(planned):
            region = S3_HOME_REGION if rtype == S3 else regions[(a + k) % len(regions)]
            app = rng.choice(APPS)
            index = sum(1 for other in planned[:k] if other == rtype)
            params_extra: dict[str, Any] = {}
            if rtype == RDS:
                engine = rng.choice(("pg", "mysql", "maria"))
                name = f"{app}-{engine}-gone-{index:02d}"
                resource_id = f"arn:aws:rds:{region}:{account}:db:{name}"
                params_extra["engine"] = engine
            elif rtype == LAMBDA:
                name = f"{app}-gone-{index:02d}"
                resource_id = f"arn:aws:lambda:{region}:{account}:function:{name}"
            elif rtype == S3:
                name = f"tc{seed}-{account}-gone-{index:02d}"
                resource_id = name
            else:
                cluster = ECS_CLUSTERS[index % len(ECS_CLUSTERS)]
                name = f"{cluster}/{app}-svc-gone-{index:02d}"
                resource_id = f"arn:aws:ecs:{region}:{account}:service/{name}"
            # at most days-2: every deleted resource costs on at least one day of the window
            deletion = today - timedelta(days=min(offsets[k], max(0, days - 2)))
            first_day = None
            if offsets[k] > 0 and rng.random() < 0.35:  # short-lived: created inside the window
                span = (deletion - window_start).days
                first_day = window_start + timedelta(days=rng.randint(0, max(0, span - 1)))
            line = _Line(
                key=":".join((account, region, rtype, name)),
                account_id=account,
                service=services[rtype],
                region=region,
                resource_type=rtype,
                resource_id=resource_id,
                inventoried=False,
                tags=tagsets[rtype][index],
                kind=rtype.split(":")[0],
                first_day=first_day,
                last_day=deletion - timedelta(days=1),
            )
            line.params = _params(line, seed) | params_extra
            line.usage_type = _estate_usage(line)
            _maybe_reserved(line, seed)
            yield line


def _breadth_lines(
    seed: int, resources: Iterable[PlannedResource], services: dict[str, str]
) -> Iterator[_Line]:
    """The breadth's costed resources: each costs every day of the window, at its type's price."""
    for r in resources:
        if r.resource_type not in services:
            continue  # free, or billed within another type's usage (a cluster's instances)
        if r.resource_type not in BREADTH_PRICES:
            raise ValueError(f"no list price for {r.resource_type!r}: add it to BREADTH_PRICES")
        mapping = cost_mapping_of(r.resource_type)
        usage = BREADTH_PRICES[r.resource_type][0]
        if mapping is not None and mapping.usage_types and not usage.startswith(mapping.usage_types):
            raise ValueError(
                f"{r.resource_type}: usage type {usage!r} is none of its own {mapping.usage_types}"
            )
        region = r.region if r.region == "global" else r.api_region
        line = _Line(
            key=":".join((r.account_id, r.api_region, r.resource_type, r.name)),
            account_id=r.account_id,
            service=services[r.resource_type],
            region=region,
            resource_type=r.resource_type,
            resource_id=_ce_resource_id(r),
            inventoried=r.inventoried,
            tags=dict(r.tags),
            kind="flat",
            usage_type=usage_type(region, usage),
        )
        line.params = _params(line, seed)
        yield line


# --------------------------------------------------------------------------- build


def _timeline_lines(timeline: Timeline, services: dict[str, str], today: date) -> Iterator[_Line]:
    """Every resource of every day of the timeline, costing only while it exists, with its tags per day."""
    resources = timeline.resources
    for r in resources:
        r.resource_id, r.arn = timeline.ids_of(r)
    for r, line in zip(resources, _estate_lines(timeline.seed, resources, services, today), strict=True):
        born, gone = timeline.lifespan(r)
        if born is not None:
            line.first_day = born
        if gone is not None and r.state != "terminated":
            line.last_day = gone - timedelta(days=1)
        line.tag_versions = [(day, timeline.tags_on(r, day)) for day in timeline.retag_days(r)]
        yield line


def build_ledger(
    estate: Estate,
    today: date,
    days: int = DEFAULT_DAYS,
    timeline: Timeline | None = None,
    breadth: Iterable[PlannedResource] = (),
) -> pa.Table:
    """The daily cost ledger of a seeded estate for the ``days`` days ending with ``today``.

    With ``timeline`` (of the same seed and scale), the resources are the timeline's instead of the
    estate's: each costs only on the days it exists, with its tags of that day. ``breadth``: the
    seeded resources of every other type, which exist every day.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    services = _service_of_type()
    if timeline is None:
        lines = list(_estate_lines(estate.seed, estate.resources, services, today))
    else:
        if (timeline.seed, timeline.scale) != (estate.seed, estate.scale):
            raise ValueError("the timeline is not the estate's (seed, scale)")
        lines = list(_timeline_lines(timeline, services, today))
    lines += _gone_lines(estate, services, today, days)
    lines += _breadth_lines(estate.seed, breadth, services)
    seed = estate.seed
    window = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]

    rows: list[tuple[Any, ...]] = []

    def add(line: _Line, day: date, unblended: Decimal, amortized: Decimal, rng: random.Random) -> None:
        unblended, amortized = q(unblended), q(amortized)
        estimate = Decimal(1) if rng.random() < ESTIMATE_EXACT_SHARE else _ratio(rng, 9000, 9900)
        rows.append(
            (
                day,
                line.account_id,
                line.service,
                line.region,
                line.resource_type,
                line.resource_id,
                line.usage_type,
                line.inventoried,
                line.tags_on(day),
                amortized,
                unblended,
                q(amortized * estimate),
                q(unblended * estimate),
            )
        )

    for day in window:
        iso = day.isoformat()
        usage_by_account: dict[str, Decimal] = defaultdict(Decimal)
        for line in lines:
            if (line.first_day is not None and day < line.first_day) or (
                line.last_day is not None and day > line.last_day
            ):
                continue
            rng = _rng(seed, "day", line.key, iso)
            unblended = q(_daily_unblended(line, day, rng))
            amortized = unblended if line.amortized_factor is None else unblended * line.amortized_factor
            add(line, day, unblended, amortized, rng)
            usage_by_account[line.account_id] += unblended
        for account in estate.accounts:
            for region in estate.regions:
                for service, usage, low, high in UNINVENTORIED:
                    line = _nonresource(account, service, region, usage)
                    params = _rng(seed, "params", line.key)
                    daily = Decimal(low) + (Decimal(high) - Decimal(low)) * _ratio(params, 0, 10000)
                    rng = _rng(seed, "day", line.key, iso)
                    cost = daily * _ratio(rng, 9000, 11000)
                    add(line, day, cost, cost, rng)
                    usage_by_account[account] += q(cost)
                line = _nonresource(account, DATA_TRANSFER, region, "DataTransfer-Out-Bytes")
                base_gb = Decimal(int(10 ** _rng(seed, "params", line.key).uniform(3.5, 5.5))) / 1000
                rng = _rng(seed, "day", line.key, iso)
                cost = base_gb * _ratio(rng, 6000, 14000) * DATA_TRANSFER_GB * _region_factor(region)
                add(line, day, cost, cost, rng)
                usage_by_account[account] += q(cost)
        org_usage = sum(usage_by_account.values(), _ZERO)
        if MANAGEMENT_ACCOUNT in estate.accounts:
            line = _nonresource(MANAGEMENT_ACCOUNT, SUPPORT, None, "Dollar")
            rng = _rng(seed, "day", line.key, iso)
            cost = max(SUPPORT_MINIMUM_DAY, org_usage * SUPPORT_SHARE)
            add(line, day, cost, cost, rng)
        for account in estate.accounts:
            line = _nonresource(account, TAX, None, "Tax")
            rate = _ratio(_rng(seed, "tax", account), 500, 2000)  # 5% .. 20%
            rng = _rng(seed, "day", line.key, iso)
            cost = usage_by_account[account] * rate
            add(line, day, cost, cost, rng)

    rows.sort(key=lambda row: (row[0], row[1], row[2], row[3] or "", row[5] or ""))
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in LEDGER_SCHEMA.names]
    data = {name: list(values) for name, values in zip(LEDGER_SCHEMA.names, columns, strict=True)}
    data["tags"] = [list(tags.items()) for tags in data["tags"]]
    return pa.Table.from_pydict(data, schema=LEDGER_SCHEMA)


def rename_resources(table: pa.Table, renamed: Mapping[str, str]) -> pa.Table:
    """The ledger with resource ids renamed (placeholder -> real id), in the ledger's row order.

    The same table :func:`build_ledger` gives once the ids are known: amounts never depend on ids.
    """
    if not renamed:
        return table
    ids = [
        renamed.get(value, value) if value is not None else None for value in table["resource_id"].to_pylist()
    ]
    index = table.schema.get_field_index("resource_id")
    table = table.set_column(index, LEDGER_SCHEMA.field("resource_id"), pa.array(ids, pa.string()))
    # build_ledger's order: (day, account, service, region, resource_id), NULL first (as "")
    keys = ["usage_date", "account_id", "service", "region", "resource_id"]
    return table.sort_by([(key, "ascending", "at_start") for key in keys])


def _nonresource(account: str, service: str, region: str | None, usage: str) -> _Line:
    return _Line(
        key=":".join((account, region or "-", service)),
        account_id=account,
        service=service,
        region=region,
        resource_type=None,
        resource_id=None,
        inventoried=False,
        tags={},
        kind="none",
        usage_type=usage_type(region, usage),
    )


# --------------------------------------------------------------------------- files


def write_ledger(table: pa.Table, directory: Path | str) -> Path:
    """Write ``<directory>/costs.parquet`` atomically (zstd); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LEDGER_FILE
    tmp = directory / f".{LEDGER_FILE}.{os.getpid()}.tmp"
    try:
        pq.write_table(table.cast(LEDGER_SCHEMA), tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_ledger(path: Path | str) -> pa.Table:
    """The ledger table; ``path`` is the Parquet file, its directory, or the sandbox data dir."""
    path = Path(path)
    for candidate in (path, path / LEDGER_FILE, path / LEDGER_DIR / LEDGER_FILE):
        if candidate.is_file():
            return pq.read_table(candidate, schema=LEDGER_SCHEMA)
    raise FileNotFoundError(f"no sandbox cost ledger at {path}")
