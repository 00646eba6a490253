"""Glue jobs: GetJobs has no ARN and no tags; the ARN is built, tags come from the Tagging API."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

JOB = DescribedType(
    resource_type="glue:job",
    cost_explorer_service="AWS Glue",
    operation="get_jobs",
    items="Jobs",
    id="Name",
    arn_format="arn:{partition}:glue:{region}:{account}:job/{id}",
    created="CreatedOn",
    page_size=1000,
    tags=TaggingApiTags("glue:job"),
)
