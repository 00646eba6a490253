"""ACM certificates of every key type (ListCertificates shows RSA-2048 ones only unless asked);
tags from the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

KEY_TYPES = (
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
)

CERTIFICATE = DescribedType(
    resource_type="acm:certificate",
    operation="list_certificates",
    params={"Includes": {"keyTypes": list(KEY_TYPES)}},
    items="CertificateSummaryList",
    id="CertificateArn",
    id_after="/",
    arn="CertificateArn",
    name="DomainName",
    state="Status",
    created="CreatedAt",
    page_size=1000,
    tags=TaggingApiTags("acm:certificate"),
)
