"""CloudFront distributions: global, listed once per account from the home region; tags from the
Tagging API in bulk (which answers for CloudFront in us-east-1)."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

DISTRIBUTION = DescribedType(
    resource_type="cloudfront:distribution",
    cost_explorer_service="Amazon CloudFront",
    operation="list_distributions",  # its page size is a string: left to the service (100)
    items="DistributionList.Items",
    id="Id",
    arn="ARN",
    name="DomainName",
    state="Status",
    is_global=True,
    tags=TaggingApiTags("cloudfront:distribution"),
)
