"""RDS clusters and manual snapshots: every describe call carries ``TagList`` (instances are
``rds_db``). Automated snapshots go with their database and are not listed."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

RDS_TAGS = InlineTags("TagList")

RDS_TYPES = (
    DescribedType(
        resource_type="rds:cluster",
        operation="describe_db_clusters",
        items="DBClusters",
        id="DBClusterIdentifier",
        arn="DBClusterArn",
        state="Status",
        created="ClusterCreateTime",
        gone_states=frozenset({"deleting"}),
        page_size=100,
        tags=RDS_TAGS,
    ),
    DescribedType(
        resource_type="rds:snapshot",
        operation="describe_db_snapshots",
        params={"SnapshotType": "manual"},
        items="DBSnapshots",
        id="DBSnapshotIdentifier",
        arn="DBSnapshotArn",
        state="Status",
        created="SnapshotCreateTime",
        gone_states=frozenset({"deleting", "deleted"}),
        page_size=100,
        tags=RDS_TAGS,
    ),
    DescribedType(
        resource_type="rds:cluster-snapshot",
        operation="describe_db_cluster_snapshots",
        params={"SnapshotType": "manual"},
        items="DBClusterSnapshots",
        id="DBClusterSnapshotIdentifier",
        arn="DBClusterSnapshotArn",
        state="Status",
        created="SnapshotCreateTime",
        gone_states=frozenset({"deleting", "deleted"}),
        page_size=100,
        tags=RDS_TAGS,
    ),
)
