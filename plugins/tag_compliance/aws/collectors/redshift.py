"""Redshift provisioned clusters: tags inline; the answer has no cluster ARN, so it is built."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

CLUSTER = DescribedType(
    resource_type="redshift:cluster",
    cost_explorer_service="Amazon Redshift",
    operation="describe_clusters",
    items="Clusters",
    id="ClusterIdentifier",
    arn_format="arn:{partition}:redshift:{region}:{account}:cluster:{id}",
    state="ClusterStatus",
    created="ClusterCreateTime",
    gone_states=frozenset({"deleting", "final-snapshot"}),
    page_size=100,
    tags=InlineTags(),
)
