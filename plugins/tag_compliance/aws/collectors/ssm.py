"""SSM Parameter Store parameters (AWS's public ``/aws/...`` ones aside): no tags in
DescribeParameters; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

PARAMETER = DescribedType(
    resource_type="ssm:parameter",
    operation="describe_parameters",
    items="Parameters",
    id="Name",
    arn_format="arn:{partition}:ssm:{region}:{account}:parameter/{bare_id}",
    name="Name",
    skip="starts_with(Name, '/aws/')",
    page_size=50,
    tags=TaggingApiTags("ssm:parameter"),
)
