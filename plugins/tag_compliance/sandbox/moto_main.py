"""``python moto_main.py -H HOST -p PORT``: moto's server, answering as AWS does where it does not.

Run as a script by :mod:`.server` (not ``-m``: that would import the sandbox package, pyarrow and
all, into the moto process). These fixes make moto answer as AWS does (the collector tests'
in-process moto server gets all but the first, ``AWS_ANSWERS``, through ``tests/conftest.py``):

* moto 5.2 keeps a deleted ECS service forever, status ``INACTIVE``, in ``ListServices`` and in the
  Resource Groups Tagging API. AWS drops a deleted service from ``ListServices`` at once (it only
  stays visible to ``DescribeServices`` by name for a while), so the ECS collector, which lists
  then describes, no longer sees it. Here both listings skip ``INACTIVE`` services;
  ``DescribeServices`` still returns them when asked by name, as AWS does.
* moto's Resource Groups Tagging API (``GetResources``) sees only the backends that implement its
  taggable-resources mixin, and names some types otherwise than AWS. On AWS it covers nearly every
  type, which is what the collectors rely on for bulk tags: here it also sees Kinesis streams,
  OpenSearch domains, MemoryDB clusters, MQ brokers, EventBridge rules, ECR repositories, EKS
  clusters and EMR clusters (their tags read from each backend), and answers ``elasticache:cluster``,
  ``elasticache:replicationgroup``, ``logs:log-group`` and ``elasticloadbalancing:loadbalancer``
  (classic) where moto says ``elasticache:cache_clusters``, ``elasticache:replication-group``,
  ``logs:loggroup`` and ``elb:loadbalancer`` (:func:`patch_tagging_api`).
* moto's EMR takes the region from AWS host names only: behind an endpoint URL every cluster lands
  in us-east-1. Here it reads the region from the request's signature, as its other services do
  (:func:`patch_emr`).
* moto's STS hands out credentials for any role ARN. AWS refuses ``AssumeRole`` (``AccessDenied``)
  when the role does not exist, which is how an account with a missing or broken role looks to the
  pipeline; here too, except for ``OrganizationAccountAccessRole``, the role Organizations creates
  in its new accounts, through which the sandbox creates the member accounts' roles
  (:func:`patch_sts`; the collector tests' moto keeps moto's answer).
* moto 5.2's Account Management API has no Regions: here ``ListRegions``, ``GetRegionOptStatus``,
  ``EnableRegion`` and ``DisableRegion`` answer as AWS documents them (:func:`patch_account`):
  opt-in Regions start ``DISABLED``, the others are ``ENABLED_BY_DEFAULT`` and cannot be switched,
  ``MaxResults`` is 1-50, and the management account may not name itself in ``AccountId``. An
  enabled Region is ``ENABLED`` at once (AWS takes minutes, through ``ENABLING``), and any
  ``AccountId`` is taken as a member of the caller's organisation.

Each patch is applied when moto first imports the module it changes (importing them up front would
add a second to every start). Everything else is moto unchanged, and resources are still created,
changed and deleted through the public APIs (boto3), never through moto internals.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

# Running a file puts its directory first on sys.path: this package's modules must not shadow
# top-level ones (``server``, ``seed``...) inside moto's process.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

ECS_MODELS = "moto.ecs.models"
STS_MODELS = "moto.sts.models"
TAGGING_API_MODELS = "moto.resourcegroupstaggingapi.models"
EMR_RESPONSES = "moto.emr.responses"
ACCOUNT_URLS = "moto.account.urls"


def patch_ecs(backend: Any) -> None:
    """Make ``backend`` (moto's ECS backend class) leave INACTIVE services out of its listings."""
    list_services = backend.list_services
    iter_tagged_resources = backend.iter_tagged_resources

    def inactive(self: Any) -> set[str]:
        return {service.arn for service in self.services.values() if service.status == "INACTIVE"}

    def list_active_services(self: Any, *args: Any, **kwargs: Any) -> list[str]:
        gone = inactive(self)
        return [arn for arn in list_services(self, *args, **kwargs) if arn not in gone]

    def iter_active_tagged_resources(self: Any) -> Iterator[Any]:
        gone = inactive(self)
        for resource in iter_tagged_resources(self):
            if not (resource.resource_type == "ecs:service" and resource.arn in gone):
                yield resource

    backend.list_services = list_active_services
    backend.iter_tagged_resources = iter_active_tagged_resources


# moto's type names that AWS spells otherwise.
AWS_TYPE_NAMES = {
    "elasticache:cache_clusters": "elasticache:cluster",
    "elasticache:replication-group": "elasticache:replicationgroup",
    "logs:loggroup": "logs:log-group",
    "elb:loadbalancer": "elasticloadbalancing:loadbalancer",
}


def _tag_list(tags: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {tag[key]: tag[value] for tag in tags or ()}


# Backends moto's Tagging API does not see: (module, backends attribute, type, their resources as
# (ARN, tags) pairs). Read from each backend the way its own list-tags call reads them.
EXTRA_TAGGABLE: tuple[tuple[str, str, str, Callable[[Any], Iterator[tuple[str, dict[str, str]]]]], ...] = (
    (
        "moto.kinesis.models",
        "kinesis_backends",
        "kinesis:stream",
        lambda backend: ((stream.arn, dict(stream.tags)) for stream in backend.streams.values()),
    ),
    (
        "moto.opensearch.models",
        "opensearch_backends",
        "es:domain",
        lambda backend: (
            (domain.arn, _tag_list(backend.list_tags(domain.arn))) for domain in backend.domains.values()
        ),
    ),
    (
        "moto.memorydb.models",
        "memorydb_backends",
        "memorydb:cluster",
        lambda backend: (
            (cluster.arn, _tag_list(backend.tagger.list_tags_for_resource(cluster.arn)["Tags"]))
            for cluster in backend.clusters.values()
        ),
    ),
    (
        "moto.mq.models",
        "mq_backends",
        "mq:broker",
        lambda backend: (
            (broker.arn, dict(backend.list_tags(broker.arn))) for broker in backend.brokers.values()
        ),
    ),
    (
        "moto.events.models",
        "events_backends",
        "events:rule",
        lambda backend: (
            (rule.arn, _tag_list(backend.tagger.list_tags_for_resource(rule.arn)["Tags"]))
            for bus in backend.event_buses.values()
            for rule in bus.rules.values()
        ),
    ),
    (
        "moto.ecr.models",
        "ecr_backends",
        "ecr:repository",
        lambda backend: (
            (repository.arn, _tag_list(backend.tagger.list_tags_for_resource(repository.arn)["tags"]))
            for repository in backend.repositories.values()
        ),
    ),
    (
        "moto.eks.models",
        "eks_backends",
        "eks:cluster",
        lambda backend: ((cluster.arn, dict(cluster.tags or {})) for cluster in backend.clusters.values()),
    ),
    (
        "moto.emr.models",
        "emr_backends",
        "elasticmapreduce:cluster",
        lambda backend: ((cluster.arn, _tag_list(cluster.tags)) for cluster in backend.clusters.values()),
    ),
)


class _Renamed:
    """A taggable backend whose resources carry AWS's type names."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def iter_tagged_resources(self) -> Iterator[Any]:
        for resource in self._backend.iter_tagged_resources():
            yield dataclasses.replace(
                resource, resource_type=AWS_TYPE_NAMES.get(resource.resource_type, resource.resource_type)
            )


class _ExtraTaggable:
    """One region's backend of a service moto's Tagging API does not see, seen through it."""

    def __init__(self, backend: Any, resource_type: str, resources: Callable[[Any], Iterator[Any]]) -> None:
        self._backend, self._type, self._resources = backend, resource_type, resources

    def iter_tagged_resources(self) -> Iterator[Any]:
        from moto.core.resource_tagging import TaggedResource

        for arn, tags in self._resources(self._backend):
            yield TaggedResource(arn=arn, tags=tags, resource_type=self._type)

    def owns_arn(self, arn: str) -> bool:  # TagResources/UntagResources stay the services' own
        return False


def _extra_backends(account_id: str, region: str) -> Iterator[_ExtraTaggable]:
    for module_name, attribute, resource_type, resources in EXTRA_TAGGABLE:
        module = sys.modules.get(module_name)
        if module is None:  # never imported: the service was never called, it holds nothing
            continue
        backends = getattr(module, attribute)
        if account_id not in backends or region not in backends[account_id]:
            continue
        yield _ExtraTaggable(backends[account_id][region], resource_type, resources)


def patch_tagging_api(module: ModuleType) -> None:
    """Make ``moto.resourcegroupstaggingapi.models`` see the extra backends, with AWS's names."""
    original = module.iter_taggable_backends

    def iter_taggable_backends(account_id: str, region_name: str) -> Iterator[Any]:
        for backend in original(account_id, region_name):
            yield _Renamed(backend)
        yield from _extra_backends(account_id, region_name)

    module.iter_taggable_backends = iter_taggable_backends


def patch_emr(module: ModuleType) -> None:
    """moto's EMR reads the region from an AWS host name only, so behind an endpoint URL every
    request lands in us-east-1 (clusters of every region listed everywhere, with us-east-1 ARNs);
    without such a host name, read it from the request's signature as moto's other services do."""
    from moto.core.responses import BaseResponse

    response = module.ElasticMapReduceResponse
    from_host = response.get_region_from_url

    def get_region_from_url(self: Any, request: Any, full_url: str) -> str:
        if any(regex.search(self.parsed_url.netloc) for regex in response.emr_region_regex):
            return from_host(self, request, full_url)
        return BaseResponse.get_region_from_url(self, request, full_url)

    response.get_region_from_url = get_region_from_url


# The role AWS Organizations creates in every account it creates, trusted by the management
# account: AWS lets it be assumed in a new account, before anything else exists there.
ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"


def patch_sts(module: ModuleType) -> None:
    """Make ``AssumeRole`` of a role that does not exist fail with ``AccessDenied``, as AWS does
    (moto hands out credentials for any role ARN), but for Organizations' access role, which the
    sandbox uses to create the roles of a new member account, as one does on AWS."""
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError

    assume_role = module.STSBackend.assume_role

    def assume_existing_role(
        self: Any, region_name: str, role_session_name: str, role_arn: str, *args: Any, **kwargs: Any
    ) -> Any:
        account_id, role_path = role_arn.split(":", 5)[4:]
        role_name = role_path.rsplit("/", 1)[-1]
        if role_name != ORGANIZATION_ACCESS_ROLE:
            known = {role.name for role in iam_backends[account_id][self.partition].get_roles()}
            if role_name not in known:
                raise STSClientError(
                    "AccessDenied",
                    f"User: arn:aws:iam::{self.account_id}:user/moto is not authorized to perform: "
                    f"sts:AssumeRole on resource: {role_arn}",
                )
        return assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs)

    module.STSBackend.assume_role = assume_existing_role


# Regions a new AWS account has not enabled: they must be opted into (AWS General Reference,
# "Enable or disable AWS Regions in your account"). Every other commercial Region is enabled by default.
OPT_IN_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-west-1",
        "eu-central-2",
        "eu-south-1",
        "eu-south-2",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
    }
)
ENABLED, ENABLED_BY_DEFAULT, DISABLED = "ENABLED", "ENABLED_BY_DEFAULT", "DISABLED"
REGION_OPT_STATUSES = frozenset({ENABLED, "ENABLING", "DISABLING", DISABLED, ENABLED_BY_DEFAULT})


def patch_account(module: ModuleType) -> None:
    """Give moto's Account Management API the Region opt-in operations (``module``: its urls)."""
    import boto3
    from moto.account.models import AccountBackend, account_backends
    from moto.account.responses import AccountResponse
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult, EmptyResult

    regions = sorted(set(boto3.session.Session().get_available_regions("ec2")) | OPT_IN_REGIONS)

    def invalid(message: str) -> JsonRESTError:
        return JsonRESTError(error_type="ValidationException", message=message)

    def opt_statuses(self: AccountBackend) -> dict[str, str]:
        if not hasattr(self, "region_opt_statuses"):
            self.region_opt_statuses = {
                name: DISABLED if name in OPT_IN_REGIONS else ENABLED_BY_DEFAULT for name in regions
            }
        return self.region_opt_statuses

    def switchable(self: AccountBackend, region: str | None) -> dict[str, str]:
        statuses = opt_statuses(self)
        if region not in statuses:
            raise invalid(f"{region} is not a valid Region name")
        if statuses[region] == ENABLED_BY_DEFAULT:
            raise invalid(f"{region} is enabled by default and cannot be enabled or disabled")
        return statuses

    def backend(response: AccountResponse) -> AccountBackend:
        account_id = response._get_param("AccountId")
        if account_id is None:
            return account_backends[response.current_account][response.partition]
        if not (isinstance(account_id, str) and len(account_id) == 12 and account_id.isdigit()):
            raise invalid(f"AccountId {account_id!r} must be 12 digits")
        if account_id == response.current_account:
            raise invalid("the management account cannot specify its own AccountId: omit it")
        return account_backends[account_id][response.partition]

    def list_regions(self: AccountResponse) -> ActionResult:
        max_results = self._get_param("MaxResults", 20)
        wanted = self._get_param("RegionOptStatusContains") or sorted(REGION_OPT_STATUSES)
        if not 1 <= int(max_results) <= 50:
            raise invalid(f"MaxResults {max_results} is not between 1 and 50")
        if set(wanted) - REGION_OPT_STATUSES:
            raise invalid(f"RegionOptStatusContains {wanted} holds an unknown status")
        listed = [
            {"RegionName": name, "RegionOptStatus": status}
            for name, status in sorted(opt_statuses(backend(self)).items())
            if status in wanted
        ]
        start = int(self._get_param("NextToken") or 0)
        page, rest = listed[start : start + int(max_results)], listed[start + int(max_results) :]
        return ActionResult({"Regions": page, **({"NextToken": str(start + len(page))} if rest else {})})

    def get_region_opt_status(self: AccountResponse) -> ActionResult:
        region = self._get_param("RegionName")
        statuses = opt_statuses(backend(self))
        if region not in statuses:
            raise invalid(f"{region} is not a valid Region name")
        return ActionResult({"RegionName": region, "RegionOptStatus": statuses[region]})

    def set_region(status: str) -> Callable[[AccountResponse], EmptyResult]:
        def answer(self: AccountResponse) -> EmptyResult:
            region = self._get_param("RegionName")
            switchable(backend(self), region)[region] = status
            return EmptyResult()

        return answer

    AccountResponse.list_regions = list_regions
    AccountResponse.get_region_opt_status = get_region_opt_status
    AccountResponse.enable_region = set_region(ENABLED)
    AccountResponse.disable_region = set_region(DISABLED)
    for operation in ("listRegions", "getRegionOptStatus", "enableRegion", "disableRegion"):
        module.url_paths["{0}/" + operation + "$"] = AccountResponse.dispatch


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    ACCOUNT_URLS: patch_account,
    STS_MODELS: patch_sts,
    ECS_MODELS: lambda module: patch_ecs(module.EC2ContainerServiceBackend),
    TAGGING_API_MODELS: patch_tagging_api,
    EMR_RESPONSES: patch_emr,
}
# What the collector tests' in-process moto gets too (the ECS fix would hide the INACTIVE services
# the ECS collector's own test makes on purpose; their accounts are reached through roles nobody
# created, as moto allows).
AWS_ANSWERS = {name: patch for name, patch in PATCHES.items() if name not in (ECS_MODELS, STS_MODELS)}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules of ``patches`` like the other finders would, and patches each once executed."""

    def __init__(self, patches: Mapping[str, Callable[[ModuleType], None]]) -> None:
        self.patches = dict(patches)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install(patches: Mapping[str, Callable[[ModuleType], None]] = PATCHES) -> None:
    """Patch each module of ``patches`` when it is first imported (it must not be imported yet)."""
    already = [name for name in patches if name in sys.modules]
    if already:
        raise RuntimeError(f"already imported, cannot be patched on import: {already}")
    sys.meta_path.insert(0, _PatchOnImport(patches))


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
