"""Where Cost Explorer bills each type: a SERVICE, split by usage types where types share one."""

from __future__ import annotations

import pytest

from tag_compliance.aws import collectors
from tag_compliance.aws.collectors import CostMapping, cost_mappings, resource_types
from tag_compliance.aws.collectors.described import DescribedType, InlineTags

# Free, or billed within another type's usage: never given a share of some service's spend.
UNCOSTED = {
    "acm:certificate",
    "autoscaling:autoScalingGroup",
    "batch:compute-environment",
    "ec2:image",
    "ec2:launch-template",
    "ec2:security-group",
    "ec2:subnet",
    "ec2:vpc",
    "ecs:cluster",
    "eks:nodegroup",
    "elasticloadbalancing:targetgroup",
    "rds:cluster",
    "rds:cluster-snapshot",
    "rds:snapshot",
    "ssm:parameter",
}


def test_every_type_that_costs_money_maps_to_a_cost_explorer_service():
    mapped = {mapping.resource_type for mapping in cost_mappings()}
    assert mapped == set(resource_types()) - UNCOSTED
    assert len(mapped) >= 44


def test_types_sharing_a_service_name_their_own_usage_types():
    shared: dict[str, list[CostMapping]] = {}
    for mapping in cost_mappings():
        shared.setdefault(mapping.cost_explorer_service, []).append(mapping)
    shared = {service: types for service, types in shared.items() if len(types) > 1}
    assert {service: sorted(m.resource_type for m in types) for service, types in shared.items()} == {
        "Amazon API Gateway": ["apigateway:api", "apigateway:restapi"],
        "Amazon SageMaker": ["sagemaker:endpoint", "sagemaker:notebook-instance"],
        "Amazon Virtual Private Cloud": ["ec2:transit-gateway", "ec2:vpc-endpoint"],
        "AmazonCloudWatch": ["cloudwatch:alarm", "logs:log-group"],
        "EC2 - Other": ["ec2:elastic-ip", "ec2:natgateway", "ec2:snapshot", "ec2:volume"],
    }
    assert all(mapping.usage_types for types in shared.values() for mapping in types)


def _with(monkeypatch: pytest.MonkeyPatch, *extra: DescribedType) -> None:
    found = collectors.all_collectors()
    monkeypatch.setattr(collectors, "all_collectors", lambda: (*found, *extra))
    collectors.cost_mappings.cache_clear()


def _type(resource_type: str, usage_types: tuple[str, ...]) -> DescribedType:
    return DescribedType(
        resource_type=resource_type,
        operation="describe_things",
        items="Things",
        id="Id",
        arn="Arn",
        tags=InlineTags(),
        cost_explorer_service="EC2 - Other",
        cost_usage_types=usage_types,
    )


@pytest.mark.parametrize(
    ("usage_types", "message"),
    [
        ((), r"ec2:thing must name their usage types"),
        (
            ("EBS:Volume",),
            r"usage type 'EBS:Volume' of ec2:thing also matches 'EBS:VolumeUsage' of ec2:volume",
        ),
    ],
)
def test_a_shared_service_without_usage_types_or_with_overlapping_ones_is_refused(
    monkeypatch, usage_types, message
):
    _with(monkeypatch, _type("ec2:thing", usage_types))
    try:
        with pytest.raises(RuntimeError, match=message):
            cost_mappings()
    finally:
        collectors.cost_mappings.cache_clear()
