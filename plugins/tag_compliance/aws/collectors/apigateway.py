"""API Gateway REST APIs (v1) and HTTP/WebSocket APIs (v2): tags inline as objects. Neither answer
has an ARN; API Gateway's ARNs name no account."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

APIGATEWAY_TYPES = (
    DescribedType(
        resource_type="apigateway:restapi",
        cost_explorer_service="Amazon API Gateway",
        cost_usage_types=("ApiGatewayRequest", "ApiGatewayCacheUsage"),
        operation="get_rest_apis",
        items="items",
        id="id",
        arn_format="arn:{partition}:apigateway:{region}::/restapis/{id}",
        name="name",
        created="createdDate",
        page_size=500,
        tags=InlineTags("tags", key=None),
    ),
    DescribedType(
        resource_type="apigateway:api",
        cost_explorer_service="Amazon API Gateway",
        cost_usage_types=("ApiGatewayHttpRequest", "ApiGatewayMessage", "ApiGatewayMinute"),
        client="apigatewayv2",
        operation="get_apis",  # its page size is a string: left to the service
        items="Items",
        id="ApiId",
        arn_format="arn:{partition}:apigateway:{region}::/apis/{id}",
        name="Name",
        created="CreatedDate",
        tags=InlineTags(key=None),
    ),
)
