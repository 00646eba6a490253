"""AWS Batch compute environments: tags inline, as an object."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

COMPUTE_ENVIRONMENT = DescribedType(
    resource_type="batch:compute-environment",
    operation="describe_compute_environments",
    items="computeEnvironments",
    id="computeEnvironmentName",
    arn="computeEnvironmentArn",
    state="status",
    gone_states=frozenset({"deleting", "deleted"}),
    page_size=100,
    tags=InlineTags("tags", key=None),
)
