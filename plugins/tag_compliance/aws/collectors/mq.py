"""Amazon MQ brokers: no tags in ListBrokers' summaries; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

BROKER = DescribedType(
    resource_type="mq:broker",
    cost_explorer_service="Amazon MQ",
    operation="list_brokers",
    items="BrokerSummaries",
    id="BrokerId",
    arn="BrokerArn",
    name="BrokerName",
    state="BrokerState",
    created="Created",
    gone_states=frozenset({"deletion_in_progress"}),
    page_size=100,
    tags=TaggingApiTags("mq:broker"),
)
