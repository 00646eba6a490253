"""Create a planned estate in a running moto server, over HTTP with boto3, then read it back.

Everything goes through the public APIs (no moto internals), with the same cross-account path the
pipeline uses: STS AssumeRole into ``TagComplianceReadOnly`` for member accounts. After creating,
the seeder reads the estate back (service APIs, and the Resource Groups Tagging API for every type)
and fails if anything differs from the plan: the manifest must describe what the API returns, not
what we meant to send. Credentials are always passed explicitly, so ambient AWS credentials are
never used.

``Seeder.apply`` moves a seeded estate on by one day of a :class:`.timeline.Timeline`: it deletes
(EC2 TerminateInstances, RDS DeleteDBInstance, S3 DeleteBucket, Lambda DeleteFunction, ECS
DeleteService), creates and retags (each service's own tag / untag calls; S3 PutBucketTagging with
the whole set, DeleteBucketTagging when it becomes empty) through the same public APIs, then reads
everything back against that day's estate, exactly as after seeding.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from itertools import groupby
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tag_compliance.aws.collectors import all_collectors
from tag_compliance.aws.collectors.base import TAGGING_API
from tag_compliance.aws.collectors.described import TaggingApiTags
from tag_compliance.config import MEMBER_POLICY_FILE
from tag_compliance.sandbox.breadth import BreadthSeeder, plan_breadth
from tag_compliance.sandbox.estate import (
    EC2,
    ECS,
    ECS_CLUSTERS,
    LAMBDA,
    MANAGEMENT_ACCOUNT,
    RDS,
    ROLE_NAME,
    S3,
    S3_HOME_REGION,
    Estate,
    PlannedResource,
    load_policy,
)
from tag_compliance.sandbox.moto_main import ORGANIZATION_ACCESS_ROLE
from tag_compliance.sandbox.recipes import RECIPES
from tag_compliance.sandbox.server import SandboxError
from tag_compliance.sandbox.timeline import CREATED, DELETED, Change

MEMBER_POLICY_NAME = "TagComplianceRead"
FAKE_KEY = "testing"  # moto's fake credentials; never real ones
LAMBDA_ROLE = "tag-compliance-sandbox-lambda"
IMAGE_ID = "ami-0123456789abcdef0"  # moto does not validate AMIs unless MOTO_ENABLE_AMI_VALIDATION is set
WORKERS = 4  # moto is one process (GIL): more threads do not help on 2 cores
S3_CHUNK = 40  # buckets per seeding / verification job
T = TypeVar("T")
CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=WORKERS * 2,
    s3={"addressing_style": "path"},
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class Seeder:
    """Seeds one estate into one moto endpoint."""

    def __init__(self, endpoint_url: str, estate: Estate, workers: int = WORKERS) -> None:
        self.endpoint_url = endpoint_url
        self.estate = estate
        self.workers = workers
        self._credentials: dict[str, Credentials] = {MANAGEMENT_ACCOUNT: Credentials(FAKE_KEY, FAKE_KEY)}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._session = boto3.session.Session()
        self._lock = threading.Lock()
        self._lambda_roles: dict[str, str] = {}
        self._task_definitions: dict[tuple[str, str, str], str] = {}  # (account, region, cluster)
        # every other collected type, made once (see .breadth), and what moto made by itself
        self.breadth: list[PlannedResource] = []
        self.implied: list[PlannedResource] = []

    # ------------------------------------------------------------------ clients

    def client(self, account_id: str, service: str, region: str) -> Any:
        """A cached client: creating one costs ~50 ms of CPU that moto's process needs more."""
        key = (account_id, service, region)
        with self._lock:  # botocore sessions are not thread-safe; the clients they make are
            if key not in self._clients:
                creds = self._credentials[account_id]
                self._clients[key] = self._session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    aws_access_key_id=creds.access_key_id,
                    aws_secret_access_key=creds.secret_access_key,
                    aws_session_token=creds.session_token,
                    config=CONFIG,
                )
            return self._clients[key]

    def _assume(self, account_id: str, role_name: str = ROLE_NAME) -> Credentials:
        answer = self.client(MANAGEMENT_ACCOUNT, "sts", S3_HOME_REGION).assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role_name}", RoleSessionName="tag-compliance-sandbox"
        )["Credentials"]
        return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def _set_credentials(self, account_id: str, credentials: Credentials) -> None:
        with self._lock:
            self._credentials[account_id] = credentials
            for key in [key for key in self._clients if key[0] == account_id]:
                del self._clients[key]

    # ------------------------------------------------------------------ accounts

    def prepare_accounts(self) -> None:
        """Management account: moto's default. Members: role TagComplianceReadOnly, reached by STS.

        As on AWS, the role is created through ``OrganizationAccountAccessRole`` (the role
        Organizations makes in the accounts it creates); we then assume the new role and check
        that the credentials really land in that account.
        """
        for account in self.estate.accounts:
            if account != MANAGEMENT_ACCOUNT:
                self.create_member_role(account)
        for account in self.estate.accounts:
            iam = self.client(account, "iam", S3_HOME_REGION)
            self._lambda_roles[account] = _create_role(iam, LAMBDA_ROLE, {"Service": "lambda.amazonaws.com"})

    def create_member_role(self, account: str) -> None:
        """The pipeline's read-only role in a member account, made through Organizations' access
        role; the seeder then works in the account as that role."""
        self._set_credentials(account, self._assume(account, ORGANIZATION_ACCESS_ROLE))
        install_member_role(self.client(account, "iam", S3_HOME_REGION), MANAGEMENT_ACCOUNT)
        self._set_credentials(account, self._assume(account))
        identity = self.client(account, "sts", S3_HOME_REGION).get_caller_identity()
        if identity["Account"] != account:
            raise SandboxError(f"assume-role into {account} landed in {identity['Account']}")
        self.client(account, "iam", S3_HOME_REGION).get_role(RoleName=ROLE_NAME)

    def delete_member_role(self, account: str) -> None:
        """Break a member account as a deleted (or never deployed) role does: AssumeRole into it
        is then refused with AccessDenied. ``create_member_role`` mends it."""
        if account == MANAGEMENT_ACCOUNT:
            raise SandboxError("the management account has no member role to delete")
        self._set_credentials(account, self._assume(account, ORGANIZATION_ACCESS_ROLE))
        iam = self.client(account, "iam", S3_HOME_REGION)
        iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName=MEMBER_POLICY_NAME)
        iam.delete_role(RoleName=ROLE_NAME)

    def set_region_enabled(self, account: str, region: str, enabled: bool) -> None:
        """Opt an account into an opt-in region or out of it, from the management account (Account
        Management; the management account names no AccountId for itself)."""
        named = {} if account == MANAGEMENT_ACCOUNT else {"AccountId": account}
        client = self.client(MANAGEMENT_ACCOUNT, "account", S3_HOME_REGION)
        (client.enable_region if enabled else client.disable_region)(RegionName=region, **named)

    # ------------------------------------------------------------------ seeding

    def run(self) -> None:
        """Create everything (in parallel slices), then verify it against the plan."""
        self.prepare_accounts()
        creators = {
            EC2: self._seed_ec2,
            RDS: self._seed_rds,
            LAMBDA: self._seed_lambda,
            ECS: self._seed_ecs,
            S3: self._seed_s3,
        }
        jobs: list[tuple[str, str, str, list[PlannedResource]]] = []
        for account in self.estate.accounts:
            for region in self.estate.regions:
                for rtype in (EC2, RDS, LAMBDA, ECS):
                    jobs.append((rtype, account, region, self.estate.of(account, region, rtype)))
            # moto handles S3 calls slowest, and buckets are independent: several jobs per account
            for chunk in _chunks(self.estate.of(account, S3_HOME_REGION, S3), S3_CHUNK):
                jobs.append((S3, account, S3_HOME_REGION, chunk))
        jobs.sort(key=lambda job: -len(job[3]))  # biggest first, so the pool drains evenly
        self._parallel(lambda job: creators[job[0]](job[1], job[2], job[3]), jobs)
        self._seed_breadth()
        self.verify()

    def truth(self, estate: Estate | None = None) -> Estate:
        """The whole seeded organisation: ``estate`` (default: the current one), the breadth and
        what moto made along."""
        estate = estate or self.estate
        resources = [*estate.resources, *self.breadth, *self.implied]
        return Estate(estate.seed, estate.scale, resources, estate.accounts, estate.regions)

    def _seed_breadth(self) -> None:
        breadth = BreadthSeeder(self.client, load_policy())
        self.breadth = plan_breadth(
            self.estate.seed, self.estate.scale, breadth.policy, self.estate.accounts, self.estate.regions
        )
        slices: dict[tuple[str, str], list[PlannedResource]] = {}
        for resource in self.breadth:
            slices.setdefault((resource.account_id, resource.api_region), []).append(resource)
        self._parallel(lambda item: breadth.seed_slice(self.estate, *item[0], item[1]), list(slices.items()))

    def _find_implied(self) -> None:
        breadth = BreadthSeeder(self.client, load_policy())
        slices = [(account, region) for account in self.estate.accounts for region in self.estate.regions]
        found = self._parallel(lambda item: breadth.implied_resources(*item), slices)
        self.implied = [resource for resources in found for resource in resources]

    def _parallel(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox-seed")
        try:
            results = list(pool.map(fn, items))
        except BaseException:
            # A SIGTERM (SystemExit) or a failed item: drop the queued work instead of waiting
            # for all of it to run against a moto server that is being stopped.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results

    def _seed_ec2(self, account: str, region: str, planned: list[PlannedResource]) -> None:
        ec2 = self.client(account, "ec2", region)
        stop, terminate = [], []
        for reservation, group in groupby(planned, key=lambda r: r.reservation):
            instances = list(group)
            first = instances[0]
            kwargs: dict = {
                "ImageId": IMAGE_ID,
                "MinCount": len(instances),
                "MaxCount": len(instances),
                "InstanceType": ("t3.micro", "m5.large", "c6g.xlarge")[reservation % 3],
            }
            if first.tags:
                kwargs["TagSpecifications"] = [{"ResourceType": "instance", "Tags": _tag_list(first.tags)}]
            answer = ec2.run_instances(**kwargs)
            for resource, instance in zip(instances, answer["Instances"], strict=True):
                resource.resource_id = instance["InstanceId"]
                resource.arn = f"arn:aws:ec2:{region}:{account}:instance/{resource.resource_id}"
                if resource.state == "stopped":
                    stop.append(resource.resource_id)
                elif resource.state == "terminated":
                    terminate.append(resource.resource_id)
        if stop:
            ec2.stop_instances(InstanceIds=stop)
        if terminate:
            ec2.terminate_instances(InstanceIds=terminate)

    def _seed_rds(self, account: str, region: str, planned: list[PlannedResource]) -> None:
        rds = self.client(account, "rds", region)
        # explicit versions: moto has no default version for mariadb
        engines = {"pg": ("postgres", "16.4"), "mysql": ("mysql", "8.0.39"), "maria": ("mariadb", "10.11.9")}
        for resource in planned:
            engine, version = engines[resource.name.split("-")[1]]
            answer = rds.create_db_instance(
                DBInstanceIdentifier=resource.name,
                DBInstanceClass="db.t3.micro",
                Engine=engine,
                EngineVersion=version,
                AllocatedStorage=20,
                MasterUsername="sandboxadmin",
                MasterUserPassword="sandbox-only-not-a-secret",
                Tags=_tag_list(resource.tags),
            )["DBInstance"]
            resource.resource_id = answer["DBInstanceIdentifier"]
            resource.arn = answer["DBInstanceArn"]

    def _seed_lambda(self, account: str, region: str, planned: list[PlannedResource]) -> None:
        lam = self.client(account, "lambda", region)
        code = _lambda_zip()
        for resource in planned:
            kwargs: dict = {
                "FunctionName": resource.name,
                "Runtime": "python3.12",
                "Role": self._lambda_roles[account],
                "Handler": "index.handler",
                "Code": {"ZipFile": code},
                "Description": "tag compliance sandbox function",
            }
            if resource.tags:
                kwargs["Tags"] = dict(resource.tags)
            answer = lam.create_function(**kwargs)
            resource.resource_id = answer["FunctionName"]
            resource.arn = answer["FunctionArn"]

    def _task_definition(self, account: str, region: str, cluster: str, create_cluster: bool) -> str:
        key = (account, region, cluster)
        if key not in self._task_definitions:
            ecs = self.client(account, "ecs", region)
            if create_cluster:
                ecs.create_cluster(clusterName=cluster)
            self._task_definitions[key] = ecs.register_task_definition(
                family=f"{cluster}-app",
                containerDefinitions=[{"name": "app", "image": "public.ecr.aws/nginx/nginx", "memory": 128}],
            )["taskDefinition"]["taskDefinitionArn"]
        return self._task_definitions[key]

    def _seed_ecs(
        self, account: str, region: str, planned: list[PlannedResource], create_clusters: bool = True
    ) -> None:
        ecs = self.client(account, "ecs", region)
        # clusters are created when seeding only: moto's CreateCluster replaces an existing one
        task_definitions = {
            cluster: self._task_definition(account, region, cluster, create_clusters)
            for cluster in ECS_CLUSTERS
        }
        for resource in planned:
            cluster, service = resource.name.split("/", 1)
            kwargs: dict = {
                "cluster": cluster,
                "serviceName": service,
                "taskDefinition": task_definitions[cluster],
                "desiredCount": 1,
            }
            if resource.tags:
                kwargs["tags"] = [{"key": k, "value": v} for k, v in resource.tags.items()]
            answer = ecs.create_service(**kwargs)["service"]
            resource.resource_id = f"{cluster}/{answer['serviceName']}"
            resource.arn = answer["serviceArn"]

    def _seed_s3(self, account: str, region: str, planned: list[PlannedResource]) -> None:
        # All buckets live in us-east-1: moto's Resource Groups Tagging API returns every bucket of
        # the account in every region, so buckets spread over several regions would make the
        # per-region tag lookups see each bucket twice. The S3 collector still looks tags up in
        # each bucket's own region, as real AWS needs.
        s3 = self.client(account, "s3", region)
        for resource in planned:
            s3.create_bucket(Bucket=resource.name)
            if resource.tags:
                s3.put_bucket_tagging(Bucket=resource.name, Tagging={"TagSet": _tag_list(resource.tags)})
            resource.resource_id = resource.name
            resource.arn = f"arn:aws:s3:::{resource.name}"

    # ------------------------------------------------------------------ one day of a timeline

    def apply(self, changes: list[Change], estate: Estate) -> None:
        """Turn the seeded estate of the day before into ``estate``: apply ``changes``, then verify.

        ``estate`` is the day's estate (:meth:`.timeline.Timeline.estate_on`): the resources it
        already had carry their ids; the ones created here get theirs filled in.
        """
        by_ident = {r.ident: r for r in estate.resources}
        groups: dict[tuple[str, str, str, str], list[tuple[Change, PlannedResource | None]]] = {}
        for change in changes:
            resource = by_ident.get(change.ident)  # None: deleted (an instance stays, terminated)
            if change.kind != DELETED or change.resource_type == EC2:
                if resource is None:
                    raise SandboxError(f"{change.kind} {change.ident}: not in the day's estate")
                if change.kind != CREATED and not resource.resource_id:
                    raise SandboxError(f"{change.kind} {change.ident}: the resource has no id")
            group = (change.kind, change.account_id, change.api_region, change.resource_type)
            groups.setdefault(group, []).append((change, resource))
        # deletions, then creations, then retags; a resource changes at most once a day
        phase = {DELETED: 0, CREATED: 1}
        for current in (0, 1, 2):
            jobs = [(key, items) for key, items in sorted(groups.items()) if phase.get(key[0], 2) == current]
            self._parallel(lambda job: self._apply_group(*job[0], job[1]), jobs)
        self.estate = estate
        self.verify()

    def _apply_group(
        self,
        kind: str,
        account: str,
        region: str,
        rtype: str,
        items: list[tuple[Change, PlannedResource | None]],
    ) -> None:
        if kind == CREATED:
            planned = [resource for _, resource in items if resource is not None]
            if rtype == ECS:
                self._seed_ecs(account, region, planned, create_clusters=False)
            else:
                creators = {
                    EC2: self._seed_ec2,
                    RDS: self._seed_rds,
                    LAMBDA: self._seed_lambda,
                    S3: self._seed_s3,
                }
                creators[rtype](account, region, planned)
        elif kind == DELETED:
            self._delete(account, region, rtype, items)
        else:
            for change, resource in items:
                if resource is None or change.tags_before is None or change.tags_after is None:
                    raise AssertionError(change)
                self._retag(resource, change.tags_before, change.tags_after)

    def _delete(
        self, account: str, region: str, rtype: str, items: list[tuple[Change, PlannedResource | None]]
    ) -> None:
        client = self.client(account, SERVICE_NAMES[rtype], region)
        if rtype == EC2:
            ids = [resource.resource_id for _, resource in items if resource is not None]
            client.terminate_instances(InstanceIds=ids)
            return
        for change, _ in items:
            if rtype == RDS:
                client.delete_db_instance(
                    DBInstanceIdentifier=change.name, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
                )
            elif rtype == S3:
                client.delete_bucket(Bucket=change.name)  # holds no objects; its tags go with it
            elif rtype == LAMBDA:
                client.delete_function(FunctionName=change.name)
            else:
                cluster, service = change.name.split("/", 1)
                client.delete_service(cluster=cluster, service=service, force=True)

    def _retag(self, resource: PlannedResource, before: dict[str, str], after: dict[str, str]) -> None:
        """Take the resource's tags from ``before`` to ``after`` with the service's own calls."""
        removed = [key for key in before if key not in after]
        changed = {key: value for key, value in after.items() if before.get(key) != value}
        rtype = resource.resource_type
        client = self.client(resource.account_id, SERVICE_NAMES[rtype], resource.api_region)
        if rtype == S3:  # the tag set is replaced as a whole
            if after:
                client.put_bucket_tagging(Bucket=resource.name, Tagging={"TagSet": _tag_list(after)})
            else:
                client.delete_bucket_tagging(Bucket=resource.name)
            return
        if removed:
            if rtype == EC2:
                client.delete_tags(Resources=[resource.resource_id], Tags=[{"Key": key} for key in removed])
            elif rtype == RDS:
                client.remove_tags_from_resource(ResourceName=resource.arn, TagKeys=removed)
            elif rtype == LAMBDA:
                client.untag_resource(Resource=resource.arn, TagKeys=removed)
            else:
                client.untag_resource(resourceArn=resource.arn, tagKeys=removed)
        if changed:
            if rtype == EC2:
                client.create_tags(Resources=[resource.resource_id], Tags=_tag_list(changed))
            elif rtype == RDS:
                client.add_tags_to_resource(ResourceName=resource.arn, Tags=_tag_list(changed))
            elif rtype == LAMBDA:
                client.tag_resource(Resource=resource.arn, Tags=changed)
            else:
                ecs_tags = [{"key": key, "value": value} for key, value in changed.items()]
                client.tag_resource(resourceArn=resource.arn, tags=ecs_tags)

    # ------------------------------------------------------------------ verification

    def verify(self) -> None:
        """Read the estate back and fail on any difference from the plan.

        EC2, RDS and ECS return tags inline, so they are checked through their own APIs; S3 and
        Lambda (one call per resource there) are checked through the Resource Groups Tagging API,
        which also proves that bulk tag lookups agree with the plan for every type.
        """
        self._find_implied()
        jobs: list[Callable[[], list[Observed]]] = []
        for account in self.estate.accounts:
            for region in self.estate.regions:
                readers = [
                    self._read_ec2,
                    self._read_rds,
                    self._read_ecs,
                    self._read_lambda,
                    self._read_tagging,
                ]
                jobs += [partial(reader, account, region) for reader in readers]
            jobs.append(partial(self._read_buckets, account))
        seen: dict[str, Observed] = {}
        tagging: dict[str, dict[str, str]] = {}
        for observed in self._parallel(lambda job: job(), jobs):
            for item in observed:
                if item.source == "tagging":
                    tagging[item.arn] = item.tags or {}
                else:
                    seen[item.arn] = item

        problems = []
        for resource in self.estate.resources:
            got = seen.get(resource.arn)
            if got is None:
                problems.append(f"{resource.arn or resource.name}: not found")
                continue
            if got.tags is not None and got.tags != resource.tags:
                problems.append(f"{resource.arn}: planned {resource.tags!r}, API returns {got.tags!r}")
            if (bulk := tagging.get(resource.arn, {})) != resource.tags:
                problems.append(f"{resource.arn}: planned {resource.tags!r}, GetResources returns {bulk!r}")
            if resource.resource_type == EC2 and got.state != resource.state:
                problems.append(f"{resource.arn}: state {got.state!r}, planned {resource.state!r}")
        planned = {r.arn for r in self.estate.resources}
        problems += [f"{arn}: exists but was not planned" for arn in sorted(set(seen) - planned)]
        problems += self._breadth_problems()
        if problems:
            raise SandboxError(
                f"{len(problems)} resources differ from the plan:\n" + "\n".join(problems[:20])
            )

    def _breadth_problems(self) -> list[str]:
        """The breadth's tags as the Tagging API returns them (for the types whose collectors read
        them there) must be the plan's; no other resource of those types may carry tags."""
        types = sorted(
            collector.resource_type
            for collector in all_collectors()
            if isinstance(getattr(collector, "tags", None), TaggingApiTags)
            or TAGGING_API in collector.api_services
        )
        types = [resource_type for resource_type in types if resource_type in RECIPES]
        slices = [(account, region) for account in self.estate.accounts for region in self.estate.regions]
        found = self._parallel(lambda item: self._read_tagging(*item, types=types), slices)
        tagging = {item.arn: item.tags or {} for observed in found for item in observed}
        truth = {r.arn: r for r in (*self.breadth, *self.implied) if r.resource_type in types}
        problems = [
            f"{arn}: planned {resource.tags!r}, GetResources returns {tagging.get(arn, {})!r}"
            for arn, resource in truth.items()
            if tagging.get(arn, {}) != resource.tags
        ]
        return problems + [f"{arn}: tagged but not planned" for arn in sorted(set(tagging) - set(truth))]

    def _read_tagging(self, account: str, region: str, types: list[str] | None = None) -> list[Observed]:
        if types is None:
            types = ["ec2:instance", "rds:db", "lambda:function", "ecs:service"]
            if region == S3_HOME_REGION:
                types.append("s3:bucket")  # moto returns every bucket in every region: ask once
        elif region != S3_HOME_REGION:  # global types answer from us-east-1 only
            types = [t for t in types if not RECIPES[t].is_global]
        tagging = self.client(account, "resourcegroupstaggingapi", region)
        pages = tagging.get_paginator("get_resources").paginate(
            ResourceTypeFilters=types, ResourcesPerPage=100, TagsPerPage=500
        )
        return [
            Observed(item["ResourceARN"], _tag_dict(item.get("Tags", [])), source="tagging")
            for page in pages
            for item in page["ResourceTagMappingList"]
        ]

    def _read_ec2(self, account: str, region: str) -> list[Observed]:
        ec2 = self.client(account, "ec2", region)
        return [
            Observed(
                f"arn:aws:ec2:{region}:{account}:instance/{instance['InstanceId']}",
                _tag_dict(instance.get("Tags", [])),
                instance["State"]["Name"],
            )
            for page in ec2.get_paginator("describe_instances").paginate()
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        ]

    def _read_rds(self, account: str, region: str) -> list[Observed]:
        rds = self.client(account, "rds", region)
        return [
            Observed(db["DBInstanceArn"], _tag_dict(db.get("TagList", [])))
            for page in rds.get_paginator("describe_db_instances").paginate()
            for db in page["DBInstances"]
        ]

    def _read_lambda(self, account: str, region: str) -> list[Observed]:
        lam = self.client(account, "lambda", region)
        return [
            Observed(fn["FunctionArn"], None)  # tags: checked through the Tagging API
            for page in lam.get_paginator("list_functions").paginate()
            for fn in page["Functions"]
        ]

    def _read_ecs(self, account: str, region: str) -> list[Observed]:
        ecs = self.client(account, "ecs", region)
        found = []
        for cluster_arn in ecs.list_clusters()["clusterArns"]:
            pages = ecs.get_paginator("list_services").paginate(cluster=cluster_arn)
            arns = [arn for page in pages for arn in page["serviceArns"]]
            for chunk in _chunks(arns, 10):  # DescribeServices takes at most 10
                answer = ecs.describe_services(cluster=cluster_arn, services=chunk, include=["TAGS"])
                found += [
                    Observed(svc["serviceArn"], {t["key"]: t.get("value", "") for t in svc.get("tags", [])})
                    for svc in answer["services"]
                ]
        return found

    def _read_buckets(self, account: str) -> list[Observed]:
        s3 = self.client(account, "s3", S3_HOME_REGION)
        # tags: checked through the Tagging API (no MaxBuckets: moto truncates without a token)
        return [Observed(f"arn:aws:s3:::{b['Name']}", None) for b in s3.list_buckets()["Buckets"]]


@dataclass(frozen=True)
class Observed:
    """A resource as the API describes it."""

    arn: str
    tags: dict[str, str] | None  # None: not returned by this API
    state: str | None = None
    source: str = "service"


SERVICE_NAMES = {EC2: "ec2", RDS: "rds", S3: "s3", LAMBDA: "lambda", ECS: "ecs"}  # boto3 client names


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tag_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    # moto's S3 drops the Value element of an empty value: read it as ""
    return {tag["Key"]: tag.get("Value", "") for tag in tags}


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def install_member_role(iam: Any, management_account: str) -> None:
    """The pipeline's read-only role in the account ``iam`` works in, trusting the management
    account, with the published member policy (as in production)."""
    _create_role(iam, ROLE_NAME, {"AWS": f"arn:aws:iam::{management_account}:root"})
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName=MEMBER_POLICY_NAME, PolicyDocument=MEMBER_POLICY_FILE.read_text()
    )


def _create_role(iam: Any, name: str, principal: dict[str, str]) -> str:
    """Create (or find) a role trusting ``principal``; returns its ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }
    try:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        return iam.get_role(RoleName=name)["Role"]["Arn"]


@cache
def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def seed(endpoint_url: str, estate: Estate, workers: int = WORKERS) -> Estate:
    """Create ``estate`` in moto; fills in each resource's ``resource_id`` and ``arn``."""
    Seeder(endpoint_url, estate, workers).run()
    return estate
