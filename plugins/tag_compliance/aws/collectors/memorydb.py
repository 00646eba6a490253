"""MemoryDB clusters: no tags in DescribeClusters; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

CLUSTER = DescribedType(
    resource_type="memorydb:cluster",
    cost_explorer_service="Amazon MemoryDB",
    operation="describe_clusters",
    items="Clusters",
    id="Name",
    arn="ARN",
    state="Status",
    gone_states=frozenset({"deleting"}),
    page_size=100,
    tags=TaggingApiTags("memorydb:cluster"),
)
