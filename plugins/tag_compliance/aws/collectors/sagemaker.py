"""SageMaker real-time endpoints and notebook instances: no tags in the listings; the Tagging API
in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

SAGEMAKER_TYPES = (
    DescribedType(
        resource_type="sagemaker:endpoint",
        cost_explorer_service="Amazon SageMaker",
        cost_usage_types=("Host:",),
        operation="list_endpoints",
        items="Endpoints",
        id="EndpointName",
        arn="EndpointArn",
        state="EndpointStatus",
        created="CreationTime",
        gone_states=frozenset({"deleting"}),
        page_size=100,
        tags=TaggingApiTags("sagemaker:endpoint"),
    ),
    DescribedType(
        resource_type="sagemaker:notebook-instance",
        cost_explorer_service="Amazon SageMaker",
        cost_usage_types=("Notebk:",),
        operation="list_notebook_instances",
        items="NotebookInstances",
        id="NotebookInstanceName",
        arn="NotebookInstanceArn",
        state="NotebookInstanceStatus",
        created="CreationTime",
        gone_states=frozenset({"deleting"}),
        page_size=100,
        tags=TaggingApiTags("sagemaker:notebook-instance"),
    ),
)
