"""AWS Backup vaults: no tags in the listing; the Tagging API in bulk."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, TaggingApiTags

BACKUP_VAULT = DescribedType(
    resource_type="backup:backup-vault",
    cost_explorer_service="AWS Backup",
    operation="list_backup_vaults",
    items="BackupVaultList",
    id="BackupVaultName",
    arn="BackupVaultArn",
    created="CreationDate",
    page_size=1000,
    tags=TaggingApiTags("backup:backup-vault"),
)
