"""MSK clusters (provisioned and serverless): ListClustersV2 carries the tags, as an object."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

CLUSTER = DescribedType(
    resource_type="kafka:cluster",
    cost_explorer_service="Amazon Managed Streaming for Apache Kafka",
    operation="list_clusters_v2",
    items="ClusterInfoList",
    id="ClusterName",
    arn="ClusterArn",
    state="State",
    created="CreationTime",
    gone_states=frozenset({"deleting"}),
    page_size=100,
    tags=InlineTags(key=None),
)
