"""The sandbox's breadth: a few resources of every other collected type, and what moto makes itself.

The estate of :mod:`.estate` (EC2 instances, RDS databases, S3 buckets, Lambda functions, ECS
services) is the one that changes from day to day (:mod:`.timeline`). Besides it, every (account,
region) holds a few resources of each type with a recipe (:mod:`.recipes`; the global ones once
per account), with tags drawn like the estate's (every violation kind, never-tagged ones, unicode,
prohibited keys), created once and never changed: ``plan_breadth``.

Creating resources makes others, in AWS as in moto: a region's default VPC with its default
subnets and security group, a VPC's default security group, an instance's root volume, an image's
snapshot, an ECS cluster per Batch compute environment (and the ECS estate's own clusters). They
exist, so they are inventory: ``implied_resources`` finds them (never tagged) after every change of
the estate, through plain describe calls, and they join the truth.

Prerequisites come from the estate where it has them (a running instance to image, a database to
snapshot, a bucket for trails) and from the breadth itself, seeded in dependency order (the first
VPC, its subnets and security group, a volume, a launch template, a DB cluster, an EKS cluster):
nothing is created that the truth does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tag_compliance.sandbox.estate import (
    EC2,
    ECS_CLUSTERS,
    RDS,
    S3,
    S3_HOME_REGION,
    Estate,
    PlannedResource,
    Policy,
    _rng,
    _tag_sets,
    expected_violations,
    scaled,
)
from tag_compliance.sandbox.recipes import RECIPES, Prerequisites

GLOBAL = "global"
BREADTH_BASE = 3  # resources per (account, region) and type at scale 1.0
# Types whose resources are prerequisites of others: seeded first, in this order.
SEED_FIRST = (
    "ec2:vpc",
    "ec2:subnet",
    "ec2:security-group",
    "ec2:volume",
    "ec2:launch-template",
    "rds:cluster",
    "eks:cluster",
)
SEED_ORDER = (*SEED_FIRST, *sorted(set(RECIPES) - set(SEED_FIRST)))
MINIMUM = {"ec2:subnet": 2}  # load balancers and node groups want two subnets
# Where a prerequisite comes from: (type, how many of its first planned resources).
FROM_BREADTH = {
    "vpc": ("ec2:vpc", 1),
    "subnets": ("ec2:subnet", 2),
    "security_group": ("ec2:security-group", 1),
    "volume": ("ec2:volume", 1),
    "launch_template": ("ec2:launch-template", 1),
    "db_cluster": ("rds:cluster", 1),
    "eks_cluster": ("eks:cluster", 1),
}
IMPLIED = "implied"  # PlannedResource.name prefix of a resource moto made itself


def plan_breadth(
    seed: int, scale: float, policy: Policy, accounts: Iterable[str], regions: Iterable[str]
) -> list[PlannedResource]:
    """Every breadth resource of the organisation, with its tags and expected violations."""
    planned: list[PlannedResource] = []
    for account in accounts:
        for resource_type in SEED_ORDER:
            recipe = RECIPES[resource_type]
            for region in (S3_HOME_REGION,) if recipe.is_global else tuple(regions):
                rng = _rng(seed, "breadth", account, region, resource_type)
                count = max(MINIMUM.get(resource_type, 1), scaled(BREADTH_BASE, scale))
                for index, tags in enumerate(_tag_sets(rng, resource_type, count, policy)):
                    if recipe.tagging_only and not tags:
                        continue  # invisible to the only listing that sees the type: not inventory
                    planned.append(
                        PlannedResource(
                            account_id=account,
                            region=GLOBAL if recipe.is_global else region,
                            resource_type=resource_type,
                            name=str(index),
                            tags=tags,
                            expected=expected_violations(resource_type, tags, policy),
                            api_region=region,
                        )
                    )
    return planned


@dataclass
class BreadthSeeder:
    """Seeds the breadth of one organisation and finds what moto made along; ``client(account,
    service, region)`` is the seeder's client factory."""

    client: Callable[[str, str, str], Any]
    policy: Policy

    def seed_slice(self, estate: Estate, account: str, region: str, planned: list[PlannedResource]) -> None:
        """Create one (account, region)'s breadth, prerequisites first; fills in ids and ARNs."""
        api = Prerequisites(lambda service: self.client(account, service, region), account, region)
        api.provide(**_from_estate(estate, account, region))
        by_type: dict[str, list[PlannedResource]] = {}
        for resource in planned:
            by_type.setdefault(resource.resource_type, []).append(resource)
        for resource_type in SEED_ORDER:
            for resource in by_type.get(resource_type, []):
                resource.resource_id, resource.arn = RECIPES[resource_type].create(
                    api, int(resource.name), resource.tags
                )
            for need, (source, count) in FROM_BREADTH.items():
                if source == resource_type and resource_type in by_type:
                    ids = [resource.resource_id for resource in by_type[resource_type][:count]]
                    api.provide(**{need: ids if count > 1 else ids[0]})

    def implied_resources(self, account: str, region: str) -> list[PlannedResource]:
        """What moto made by itself in one (account, region), as inventory (never tagged)."""
        ec2 = self.client(account, "ec2", region)
        found: list[tuple[str, str, str]] = []  # (type, id, ARN)
        found += [
            ("ec2:vpc", vpc["VpcId"], f"arn:aws:ec2:{region}:{account}:vpc/{vpc['VpcId']}")
            for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        ]
        found += [
            ("ec2:subnet", subnet["SubnetId"], subnet["SubnetArn"])
            for subnet in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
                "Subnets"
            ]
        ]
        found += [
            ("ec2:security-group", group["GroupId"], group["SecurityGroupArn"])
            for group in ec2.describe_security_groups(
                Filters=[{"Name": "group-name", "Values": ["default"]}]
            )["SecurityGroups"]
        ]
        found += [
            ("ec2:volume", volume["VolumeId"], f"arn:aws:ec2:{region}:{account}:volume/{volume['VolumeId']}")
            for volume in ec2.describe_volumes()["Volumes"]
            if volume.get("Attachments")  # an instance's root volume
        ]
        found += [
            (
                "ec2:snapshot",
                mapping["Ebs"]["SnapshotId"],
                f"arn:aws:ec2:{region}::snapshot/{mapping['Ebs']['SnapshotId']}",
            )
            for image in ec2.describe_images(Owners=["self"])["Images"]
            for mapping in image.get("BlockDeviceMappings", [])
            if mapping.get("Ebs", {}).get("SnapshotId")
        ]
        ecs = self.client(account, "ecs", region)
        clusters = ecs.list_clusters()["clusterArns"]
        found += [
            ("ecs:cluster", cluster["clusterName"], cluster["clusterArn"])
            for cluster in (ecs.describe_clusters(clusters=clusters)["clusters"] if clusters else [])
            if cluster["status"] == "ACTIVE"
            and (
                cluster["clusterName"] in ECS_CLUSTERS or cluster["clusterName"].startswith("OnDemand_Batch_")
            )
        ]
        return [
            PlannedResource(
                account_id=account,
                region=region,
                resource_type=resource_type,
                name=f"{IMPLIED}:{resource_id}",
                tags={},
                expected=expected_violations(resource_type, {}, self.policy),
                api_region=region,
                resource_id=resource_id,
                arn=arn,
            )
            for resource_type, resource_id, arn in found
        ]


def _from_estate(estate: Estate, account: str, region: str) -> dict[str, str]:
    """Prerequisites the changing estate has: an instance to image, a database to snapshot, a bucket."""
    given = {}
    running = [r for r in estate.of(account, region, EC2) if r.state == "running"]
    if running:
        given["instance"] = running[0].resource_id
    databases = estate.of(account, region, RDS)
    if databases:
        given["db_instance"] = databases[0].resource_id
    buckets = estate.of(account, S3_HOME_REGION, S3)
    if buckets:
        given["bucket"] = buckets[0].resource_id
    return given
