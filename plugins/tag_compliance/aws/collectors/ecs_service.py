"""ECS services: listed per cluster, described 10 at a time with their tags."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord, tags_to_dict
from tag_compliance.aws.errors import AwsCollectionError

DESCRIBE_BATCH = 10  # DescribeServices takes at most 10 services per call


class EcsServiceCollector(Collector):
    resource_type = "ecs:service"
    service = "ecs"
    cost_explorer_service = "Amazon Elastic Container Service"

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        page_size = ctx.page_size_for(100)
        cluster_arns = [
            arn
            for page in ctx.paginate("ecs", "list_clusters", self.resource_type, page_size=page_size)
            for arn in page.get("clusterArns", [])
        ]
        for cluster_arn in cluster_arns:
            cluster_name = cluster_arn.rsplit("/", 1)[-1]
            service_arns = [
                arn
                for page in ctx.paginate(
                    "ecs", "list_services", self.resource_type, page_size=page_size, cluster=cluster_arn
                )
                for arn in page.get("serviceArns", [])
            ]
            for start in range(0, len(service_arns), DESCRIBE_BATCH):
                batch = service_arns[start : start + DESCRIBE_BATCH]
                response = ctx.call(
                    "ecs",
                    "describe_services",
                    self.resource_type,
                    items_key="services",
                    cluster=cluster_arn,
                    services=batch,
                    include=["TAGS"],
                )
                # A service deleted between list and describe is gone: "MISSING" is expected.
                failures = [f for f in response.get("failures", []) if f.get("reason") != "MISSING"]
                if failures:
                    raise AwsCollectionError(
                        f"ecs:DescribeServices in account {ctx.account_id}, region {ctx.region}, "
                        f"cluster {cluster_name}: {failures}"
                    )
                for service in response.get("services", []):
                    if service.get("status") == "INACTIVE":
                        continue  # deleted between list and describe: AWS answers it as INACTIVE
                    yield ResourceRecord(
                        resource_id=f"{cluster_name}/{service['serviceName']}",
                        arn=service["serviceArn"],
                        name=service["serviceName"],
                        state=service.get("status"),
                        created_at=service.get("createdAt"),
                        tags=tags_to_dict(service.get("tags"), key="key", value="value"),
                    )
