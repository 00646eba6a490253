"""ECS clusters: ListClusters names them, DescribeClusters describes 100 at a time with their tags.
A deleted cluster stays listed as INACTIVE for a while."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import BatchDetails, DescribedType, InlineTags

CLUSTER = DescribedType(
    resource_type="ecs:cluster",
    operation="list_clusters",
    items="clusterArns",
    details=BatchDetails(
        operation="describe_clusters",
        param="clusters",
        batch=100,
        results="clusters",
        params={"include": ["TAGS"]},
    ),
    id="clusterName",
    arn="clusterArn",
    state="status",
    gone_states=frozenset({"inactive"}),
    page_size=100,
    tags=InlineTags("tags", key="key", value="value"),
)
