"""Load balancers (application, network and gateway through ELBv2, classic through ELB) and target
groups. Neither list call carries tags: each API's DescribeTags answers 20 resources at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord
from tag_compliance.aws.collectors.described import BatchTags, DescribedType

SERVICE = "elasticloadbalancing"
LOAD_BALANCER = "elasticloadbalancing:loadbalancer"
ELBV2_TAGS = BatchTags(
    operation="describe_tags",
    param="ResourceArns",
    batch=20,
    results="TagDescriptions",
    result_id="ResourceArn",
)


class LoadBalancerCollector(Collector):
    """One type, two APIs: ``elbv2`` (ids ``app/<name>/<id>``, ``net/...``, ``gwy/...``, as in
    their ARNs) and the classic ``elb`` (ids are names)."""

    resource_type = LOAD_BALANCER
    cost_explorer_service = "Amazon Elastic Load Balancing"
    service = SERVICE

    APIS: ClassVar[tuple[DescribedType, ...]] = (
        DescribedType(
            resource_type=LOAD_BALANCER,
            service=SERVICE,
            client="elbv2",
            operation="describe_load_balancers",
            items="LoadBalancers",
            id="LoadBalancerArn",
            id_after="loadbalancer/",
            arn="LoadBalancerArn",
            name="LoadBalancerName",
            state="State.Code",
            created="CreatedTime",
            page_size=400,
            tags=ELBV2_TAGS,
        ),
        DescribedType(
            resource_type=LOAD_BALANCER,
            service=SERVICE,
            client="elb",
            operation="describe_load_balancers",
            items="LoadBalancerDescriptions",
            id="LoadBalancerName",
            arn_format="arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/{id}",
            name="LoadBalancerName",
            created="CreatedTime",
            page_size=400,
            tags=BatchTags(
                operation="describe_tags",
                param="LoadBalancerNames",
                batch=20,
                results="TagDescriptions",
                result_id="LoadBalancerName",
                send="id",
            ),
        ),
    )

    @property
    def client_services(self) -> tuple[str, ...]:
        return tuple(api.boto_service for api in self.APIS)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        for api in self.APIS:
            yield from api.collect(ctx)


TARGET_GROUP = DescribedType(
    resource_type="elasticloadbalancing:targetgroup",
    client="elbv2",
    operation="describe_target_groups",
    items="TargetGroups",
    id="TargetGroupArn",
    id_after="targetgroup/",
    arn="TargetGroupArn",
    name="TargetGroupName",
    page_size=400,
    tags=ELBV2_TAGS,
)
