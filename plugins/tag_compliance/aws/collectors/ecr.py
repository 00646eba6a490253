"""ECR repositories: no tags in DescribeRepositories; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

REPOSITORY = DescribedType(
    resource_type="ecr:repository",
    cost_explorer_service="Amazon EC2 Container Registry (ECR)",
    operation="describe_repositories",
    items="repositories",
    id="repositoryName",
    arn="repositoryArn",
    created="createdAt",
    page_size=1000,
    tags=TaggingApiTags("ecr:repository"),
)
