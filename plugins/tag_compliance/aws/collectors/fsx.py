"""FSx file systems (Windows, Lustre, ONTAP, OpenZFS): tags inline. FSx pages at its own maximum."""

from __future__ import annotations

from tag_compliance.aws.collectors.described import DescribedType, InlineTags

FILE_SYSTEM = DescribedType(
    resource_type="fsx:file-system",
    cost_explorer_service="Amazon FSx",
    operation="describe_file_systems",
    items="FileSystems",
    id="FileSystemId",
    arn="ResourceARN",
    state="Lifecycle",
    created="CreationTime",
    gone_states=frozenset({"deleting"}),
    tags=InlineTags(),
)
