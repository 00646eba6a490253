"""Every other tagged resource type, through the Resource Groups Tagging API's breadth listing.

One ``GetResources`` listing per (account, region), 100 resources a request, with no type filter:
the tagged (or once-tagged) resources of every type the Tagging API supports. Those of a type some
service collector inventories are left to it (it also sees the never-tagged ones); the rest are
stored with ``source = 'tagging_api'`` and their type read from the ARN, so the policy covers them
too. Never-tagged resources of these types stay invisible: the ``coverage`` view says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from tag_compliance.aws.collectors.base import (
    TAGGING_API,
    TAGGING_RESOURCES_PER_PAGE,
    TAGGING_TAGS_PER_PAGE,
    CollectionContext,
    Collector,
    ResourceRecord,
    tags_to_dict,
)

BREADTH_TYPE = "tagging:*"  # the collector's own name; each record carries its type from the ARN
SOURCE = "tagging_api"
# ARNs with no resource-type part, and ARN types that name a type we call otherwise.
UNTYPED_ARN_SERVICES = {"sqs": "queue", "sns": "topic", "s3": "bucket"}
ARN_TYPE_ALIASES = {
    "elasticfilesystem:file-system": "efs:file-system",
    "kafka:serverless-cluster": "kafka:cluster",
    "apigateway:restapis": "apigateway:restapi",
    "apigateway:apis": "apigateway:api",
}


def arn_resource(arn: str) -> tuple[str, str]:
    """(resource type as ``service:type``, resource id) read from an ARN.

    ``arn:aws:dynamodb:r:a:table/orders`` -> ``("dynamodb:table", "orders")``; the type is the
    resource part up to its first ``/`` or ``:`` (a leading ``/`` skipped: API Gateway), except for
    services whose ARNs name no type (SQS queues, SNS topics, S3 buckets).
    """
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    service, resource = parts[2], parts[5]
    if service == "sns" and ":" in resource:  # topic:subscription-id
        return "sns:subscription", resource
    if service in UNTYPED_ARN_SERVICES and "/" not in resource:
        return f"{service}:{UNTYPED_ARN_SERVICES[service]}", resource
    stripped = resource.lstrip("/")
    cut = min((i for i in (stripped.find("/"), stripped.find(":")) if i >= 0), default=len(stripped))
    kind, resource_id = stripped[:cut], stripped[cut + 1 :] or stripped
    resource_type = f"{service}:{kind}"
    return ARN_TYPE_ALIASES.get(resource_type, resource_type), resource_id


@cache
def _service_api_types() -> frozenset[str]:
    from tag_compliance.aws.collectors import resource_types

    return frozenset(resource_types())


class TaggingApiBreadthCollector(Collector):
    resource_type = BREADTH_TYPE
    service = "tagging"

    @property
    def client_services(self) -> tuple[str, ...]:
        return (TAGGING_API,)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        inventoried = _service_api_types()
        for page in ctx.paginate(
            TAGGING_API,
            "get_resources",
            self.resource_type,
            ResourcesPerPage=TAGGING_RESOURCES_PER_PAGE,
            TagsPerPage=TAGGING_TAGS_PER_PAGE,
        ):
            for mapping in page.get("ResourceTagMappingList", []):
                arn = mapping["ResourceARN"]
                resource_type, resource_id = arn_resource(arn)
                if resource_type in inventoried:
                    continue  # its service collector sees it, never-tagged ones too
                yield ResourceRecord(
                    resource_id=resource_id,
                    arn=arn,
                    tags=tags_to_dict(mapping.get("Tags")),
                    source=SOURCE,
                    resource_type=resource_type,
                )
