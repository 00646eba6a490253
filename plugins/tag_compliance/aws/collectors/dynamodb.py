"""DynamoDB tables: ListTables names them; tags from the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

TABLE = DescribedType(
    resource_type="dynamodb:table",
    cost_explorer_service="Amazon DynamoDB",
    operation="list_tables",
    items="TableNames",
    id="@",
    arn_format="arn:{partition}:dynamodb:{region}:{account}:table/{id}",
    name="@",
    page_size=100,
    tags=TaggingApiTags("dynamodb:table"),
)
