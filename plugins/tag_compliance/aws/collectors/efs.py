"""EFS file systems: tags inline. Their ARNs (and the Tagging API) say ``elasticfilesystem``."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

FILE_SYSTEM = DescribedType(
    resource_type="efs:file-system",
    cost_explorer_service="Amazon Elastic File System",
    operation="describe_file_systems",
    items="FileSystems",
    id="FileSystemId",
    arn="FileSystemArn",
    name="Name",
    state="LifeCycleState",
    created="CreationTime",
    gone_states=frozenset({"deleting", "deleted"}),
    page_size=100,
    tags=InlineTags(),
)
