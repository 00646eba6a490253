"""CloudTrail trails of the region (a multi-region trail is listed in every region: only its home
region's answer counts); ListTags answers 20 trails at a time."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import BatchTags, DescribedType, InlineTags

TRAIL = DescribedType(
    resource_type="cloudtrail:trail",
    cost_explorer_service="AWS CloudTrail",
    operation="describe_trails",
    paginated=False,
    params={"includeShadowTrails": False},
    items="trailList",
    id="Name",
    arn="TrailARN",
    tags=BatchTags(
        operation="list_tags",
        param="ResourceIdList",
        batch=20,
        results="ResourceTagList",
        result_id="ResourceId",
        tags=InlineTags("TagsList"),
    ),
)
