"""EKS clusters and managed node groups.

Clusters: ListClusters names them (the ARN follows from the name); tags from the Tagging API in
bulk. Node groups: listed per cluster, and a node group's ARN ends in an id only DescribeNodegroup
tells, so each is described on its own (tags inline): one request per node group, where AWS
offers no bulk call (one of the exceptions the README names).
"""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord
from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

CLUSTER = DescribedType(
    resource_type="eks:cluster",
    cost_explorer_service="Amazon Elastic Container Service for Kubernetes",
    operation="list_clusters",
    items="clusters",
    id="@",
    arn_format="arn:{partition}:eks:{region}:{account}:cluster/{id}",
    name="@",
    page_size=100,
    tags=TaggingApiTags("eks:cluster"),
)
GONE = frozenset({"DELETING"})


class NodegroupCollector(Collector):
    resource_type = "eks:nodegroup"
    service = "eks"

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        page_size = ctx.page_size_for(100)
        clusters = [
            name
            for page in ctx.paginate("eks", "list_clusters", self.resource_type, page_size=page_size)
            for name in page.get("clusters", [])
        ]
        for cluster in clusters:
            names = [
                name
                for page in ctx.paginate(
                    "eks", "list_nodegroups", self.resource_type, page_size=page_size, clusterName=cluster
                )
                for name in page.get("nodegroups", [])
            ]
            for name in names:
                nodegroup = ctx.call(
                    "eks", "describe_nodegroup", self.resource_type, clusterName=cluster, nodegroupName=name
                )["nodegroup"]
                if nodegroup.get("status") in GONE:
                    continue
                yield ResourceRecord(
                    resource_id=f"{cluster}/{name}",
                    arn=nodegroup["nodegroupArn"],
                    name=name,
                    state=nodegroup.get("status"),
                    created_at=nodegroup.get("createdAt"),
                    tags=dict(nodegroup.get("tags") or {}),
                )
