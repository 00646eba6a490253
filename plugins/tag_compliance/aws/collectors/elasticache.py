"""ElastiCache cache clusters (a replication group's nodes are clusters too, each billed): no tags
in the describe call; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

CACHE_CLUSTER = DescribedType(
    resource_type="elasticache:cluster",
    cost_explorer_service="Amazon ElastiCache",
    operation="describe_cache_clusters",
    items="CacheClusters",
    id="CacheClusterId",
    arn="ARN",
    state="CacheClusterStatus",
    created="CacheClusterCreateTime",
    gone_states=frozenset({"deleting", "deleted"}),
    page_size=100,
    tags=TaggingApiTags("elasticache:cluster"),
)
