"""Step Functions state machines: no tags in the listing; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

STATE_MACHINE = DescribedType(
    resource_type="states:stateMachine",
    cost_explorer_service="AWS Step Functions",
    client="stepfunctions",
    operation="list_state_machines",
    items="stateMachines",
    id="name",
    arn="stateMachineArn",
    created="creationDate",
    page_size=1000,
    tags=TaggingApiTags("states:stateMachine"),
)
