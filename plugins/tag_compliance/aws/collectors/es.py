"""OpenSearch Service (and Elasticsearch) domains: one ListDomainNames answers all; tags from the
Tagging API in bulk (ListTags takes one domain, DescribeDomains five and no tags)."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

DOMAIN = DescribedType(
    resource_type="es:domain",
    cost_explorer_service="Amazon OpenSearch Service",
    client="opensearch",
    operation="list_domain_names",
    paginated=False,
    items="DomainNames",
    id="DomainName",
    arn_format="arn:{partition}:es:{region}:{account}:domain/{id}",
    name="DomainName",
    tags=TaggingApiTags("es:domain"),
)
