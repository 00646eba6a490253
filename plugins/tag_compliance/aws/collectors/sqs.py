"""SQS queues: ListQueues gives URLs (the name is the URL's last part); tags from the Tagging API
in bulk. A page size must be given for ListQueues to page at all."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

QUEUE = DescribedType(
    resource_type="sqs:queue",
    cost_explorer_service="Amazon Simple Queue Service",
    operation="list_queues",
    items="QueueUrls",
    id="@",
    id_after="/",
    arn_format="arn:{partition}:sqs:{region}:{account}:{id}",
    page_size=1000,
    tags=TaggingApiTags("sqs:queue"),
)
