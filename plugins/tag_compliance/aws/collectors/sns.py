"""SNS topics: ListTopics pages at 100 by itself; tags from the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

TOPIC = DescribedType(
    resource_type="sns:topic",
    cost_explorer_service="Amazon Simple Notification Service",
    operation="list_topics",
    items="Topics",
    id="TopicArn",
    id_after=":",
    arn="TopicArn",
    tags=TaggingApiTags("sns:topic"),
)
