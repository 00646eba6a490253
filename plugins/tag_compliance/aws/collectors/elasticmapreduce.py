"""EMR clusters that still run (terminated ones stay listed for two months); ListClusters pages at
50 by itself; tags from the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

ALIVE = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]

CLUSTER = DescribedType(
    resource_type="elasticmapreduce:cluster",
    cost_explorer_service="Amazon Elastic MapReduce",
    client="emr",
    operation="list_clusters",
    params={"ClusterStates": ALIVE},
    items="Clusters",
    id="Id",
    arn="ClusterArn",
    name="Name",
    state="Status.State",
    created="Status.Timeline.CreationDateTime",
    tags=TaggingApiTags("elasticmapreduce:cluster"),
)
