"""Secrets Manager secrets: tags inline (absent when none). Secrets scheduled for deletion are not
listed by default."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

SECRET = DescribedType(
    resource_type="secretsmanager:secret",
    cost_explorer_service="AWS Secrets Manager",
    operation="list_secrets",
    items="SecretList",
    id="Name",
    arn="ARN",
    name="Name",
    created="CreatedDate",
    page_size=100,
    tags=InlineTags(),
)
