"""Kinesis data streams: ListStreams' summaries carry ARN, status and creation time; tags from the
Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

STREAM = DescribedType(
    resource_type="kinesis:stream",
    cost_explorer_service="Amazon Kinesis",
    operation="list_streams",
    items="StreamSummaries",
    id="StreamName",
    arn="StreamARN",
    state="StreamStatus",
    created="StreamCreationTimestamp",
    gone_states=frozenset({"deleting"}),
    page_size=100,
    tags=TaggingApiTags("kinesis:stream"),
)
