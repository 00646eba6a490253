"""Auto Scaling groups: tags inline (each with the group's name and PropagateAtLaunch)."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

AUTO_SCALING_GROUP = DescribedType(
    resource_type="autoscaling:autoScalingGroup",
    operation="describe_auto_scaling_groups",
    items="AutoScalingGroups",
    id="AutoScalingGroupName",
    arn="AutoScalingGroupARN",
    name="AutoScalingGroupName",
    state="Status",  # only set while the group is being deleted
    created="CreatedTime",
    gone_states=frozenset({"delete in progress"}),
    page_size=100,
    tags=InlineTags(),
)
