"""CodeBuild projects: ListProjects names them; BatchGetProjects describes 100 at a time, tags
included."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import BatchDetails, DescribedType, InlineTags

PROJECT = DescribedType(
    resource_type="codebuild:project",
    cost_explorer_service="CodeBuild",
    operation="list_projects",
    items="projects",
    details=BatchDetails(operation="batch_get_projects", param="names", batch=100, results="projects"),
    id="name",
    arn="arn",
    created="created",
    tags=InlineTags("tags", key="key", value="value"),
)
