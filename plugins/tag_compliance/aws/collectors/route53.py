"""Route 53 hosted zones: global; ListTagsForResources answers 10 zones at a time."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import BatchTags, DescribedType

HOSTED_ZONE = DescribedType(
    resource_type="route53:hostedzone",
    cost_explorer_service="Amazon Route 53",
    operation="list_hosted_zones",  # its page size is a string: left to the service (100)
    items="HostedZones",
    id="Id",
    id_after="/",  # "/hostedzone/Z123" -> "Z123"
    arn_format="arn:{partition}:route53:::hostedzone/{id}",
    name="Name",
    is_global=True,
    tags=BatchTags(
        operation="list_tags_for_resources",
        param="ResourceIds",
        batch=10,
        results="ResourceTagSets",
        result_id="ResourceId",
        send="id",
        params={"ResourceType": "hostedzone"},
    ),
)
