"""The small interface every collector implements, and what collectors share.

A collector turns one AWS resource type in one (account, region) into ``ResourceRecord``s.
Adding a resource type means adding one module in this package with one ``Collector``
subclass (and its test); the registry finds it, the DAG maps it, the lake stores it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from tag_compliance.aws.hook import TagComplianceAwsHook

GLOBAL_REGION = "global"
TAGGING_API = "resourcegroupstaggingapi"  # the Resource Groups Tagging API's boto3 name
# GetResources accepts at most 100 resources per page; 500 tags per page is its maximum too.
TAGGING_RESOURCES_PER_PAGE = 100
TAGGING_TAGS_PER_PAGE = 500


@dataclass(frozen=True)
class ResourceRecord:
    """One resource as the lake's ``resources`` dataset stores it."""

    resource_id: str
    arn: str
    name: str | None = None
    state: str | None = None
    created_at: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "service_api"
    resource_type: str | None = None  # None: the collector's own type (only the Tagging API's vary)


def tags_to_dict(
    tags: Iterable[Mapping[str, Any]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    """AWS tag lists as a dict; a missing value (S3 drops empty ones) reads as ""."""
    return {tag[key]: tag.get(value) or "" for tag in tags or ()}


def arn_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass
class CollectionContext:
    """What a collector may use: clients and calls bound to one (account, region)."""

    hook: TagComplianceAwsHook
    account_id: str
    region: str  # the lake's region: "global" for account-wide services
    client_region: str  # where API calls go (the home region for global services)
    page_size: int | None = None
    regions: tuple[str, ...] = ()  # every configured region, for account-wide collectors

    def client(self, service: str, region: str | None = None) -> BaseClient:
        return self.hook.client_for(self.account_id, region or self.client_region, service)

    def page_size_for(self, api_maximum: int) -> int:
        """The configured page size, within what the API accepts (its maximum by default)."""
        return min(self.page_size, api_maximum) if self.page_size else api_maximum

    def paginate(
        self,
        service: str,
        operation: str,
        resource_type: str,
        *,
        page_size: int | None = None,
        region: str | None = None,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        return self.hook.paginate(
            self.client(service, region),
            operation,
            account_id=self.account_id,
            region=region or self.client_region,
            resource_type=resource_type,
            page_size=page_size,
            **kwargs,
        )

    def call(
        self,
        service: str,
        operation: str,
        resource_type: str,
        *,
        items_key: str | None = None,
        count_items: Callable[[Mapping[str, Any]], int] | None = None,
        next_page: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request (see the hook's ``call``); ``next_page`` marks a later page of a listing
        the collector pages itself."""
        return self.hook.call(
            self.client(service),
            operation,
            account_id=self.account_id,
            region=self.client_region,
            resource_type=resource_type,
            items_key=items_key,
            count_items=count_items,
            next_page=next_page,
            **kwargs,
        )

    def tags_from_tagging_api(
        self, resource_type: str, type_filter: str, region: str | None = None
    ) -> dict[str, dict[str, str]]:
        """Tags of every tagged resource of a type, 100 per request, keyed by ARN.

        One bulk listing per region instead of one call per resource. Resources the
        Tagging API does not return have never been tagged: the caller gives them {}.
        """
        tags: dict[str, dict[str, str]] = {}
        for page in self.paginate(
            TAGGING_API,
            "get_resources",
            resource_type,
            region=region,
            ResourceTypeFilters=[type_filter],
            ResourcesPerPage=TAGGING_RESOURCES_PER_PAGE,
            TagsPerPage=TAGGING_TAGS_PER_PAGE,
        ):
            for mapping in page.get("ResourceTagMappingList", []):
                tags[mapping["ResourceARN"]] = tags_to_dict(mapping.get("Tags"))
        return tags


class Collector(ABC):
    """Inventory of one resource type."""

    resource_type: ClassVar[str]  # "service:type", e.g. "ec2:instance"
    service: ClassVar[str]  # lake partition and Airflow pool family ("ec2" -> pool aws_ec2)
    is_global: ClassVar[bool] = False  # collected once per account, region "global"
    # boto3 services called besides ``service`` (the Tagging API for tags): the sandbox clock
    # guard resolves their endpoints too, and tests/test_iam_policy.py checks the list is complete.
    api_services: ClassVar[tuple[str, ...]] = ()
    # The SERVICE dimension value Cost Explorer bills this type under; None: not costed.
    cost_explorer_service: ClassVar[str | None] = None
    # When types share that SERVICE: the usage types (prefixes, without the region code) that
    # are this type's, e.g. ("EBS:VolumeUsage",) for volumes in "EC2 - Other".
    cost_usage_types: ClassVar[tuple[str, ...]] = ()

    @property
    def client_services(self) -> tuple[str, ...]:
        """Every boto3 service this collector sends requests to (the sandbox clock's guard resolves
        their endpoints; tests/test_iam_policy.py checks the list against the requests made)."""
        return (self.service, *self.api_services)

    @abstractmethod
    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        """Yield every resource of this type that exists now (terminated ones excluded)."""
