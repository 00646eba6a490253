"""CloudWatch Logs log groups: no tags in DescribeLogGroups; the Tagging API in bulk. Its
``logGroupArn`` is the ARN the Tagging API uses (``arn`` ends in ``:*``)."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

LOG_GROUP = DescribedType(
    resource_type="logs:log-group",
    cost_explorer_service="AmazonCloudWatch",
    cost_usage_types=("TimedStorage-ByteHrs", "DataProcessing-Bytes", "VendedLog-Bytes"),
    operation="describe_log_groups",
    items="logGroups",
    id="logGroupName",
    arn="logGroupArn",
    created="creationTime",
    created_in_ms=True,
    page_size=50,
    tags=TaggingApiTags("logs:log-group"),
)
