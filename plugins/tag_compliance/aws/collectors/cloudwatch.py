"""CloudWatch alarms, metric and composite: no tags in DescribeAlarms; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

ALARM = DescribedType(
    resource_type="cloudwatch:alarm",
    cost_explorer_service="AmazonCloudWatch",
    cost_usage_types=("CW:AlarmMonitorUsage",),
    operation="describe_alarms",
    params={"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
    items="[MetricAlarms, CompositeAlarms][] | [?AlarmArn]",
    id="AlarmName",
    arn="AlarmArn",
    state="StateValue",
    page_size=100,
    tags=TaggingApiTags("cloudwatch:alarm"),
)
