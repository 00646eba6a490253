"""Customer-managed KMS keys. ListKeys lists AWS-managed keys too; those are the targets of the
``alias/aws/...`` aliases AWS gives them, found in one bulk ListAliases listing rather than one
DescribeKey per key (so a key's state is not known here). Tags from the Tagging API in bulk."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord

AWS_MANAGED_ALIAS = "alias/aws/"


class CustomerKeyCollector(Collector):
    resource_type = "kms:key"
    cost_explorer_service = "AWS Key Management Service"
    service = "kms"
    api_services = ("resourcegroupstaggingapi",)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        keys = [
            key
            for page in ctx.paginate(
                "kms", "list_keys", self.resource_type, page_size=ctx.page_size_for(1000)
            )
            for key in page.get("Keys", [])
        ]
        if not keys:
            return
        aws_managed = {
            alias["TargetKeyId"]
            for page in ctx.paginate(
                "kms", "list_aliases", self.resource_type, page_size=ctx.page_size_for(100)
            )
            for alias in page.get("Aliases", [])
            if alias["AliasName"].startswith(AWS_MANAGED_ALIAS) and alias.get("TargetKeyId")
        }
        customer = [key for key in keys if key["KeyId"] not in aws_managed]
        if not customer:
            return
        tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, "kms:key")
        for key in customer:
            yield ResourceRecord(
                resource_id=key["KeyId"], arn=key["KeyArn"], tags=tags_by_arn.get(key["KeyArn"], {})
            )
