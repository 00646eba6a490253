"""Firehose delivery streams: ListDeliveryStreams has no boto3 paginator (it pages by the last name
seen); tags from the Tagging API in bulk."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord, arn_partition

PAGE_MAXIMUM = 10_000


class DeliveryStreamCollector(Collector):
    resource_type = "firehose:deliverystream"
    cost_explorer_service = "Amazon Kinesis Firehose"
    service = "firehose"
    api_services = ("resourcegroupstaggingapi",)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        names: list[str] = []
        request: dict[str, object] = {"Limit": ctx.page_size_for(PAGE_MAXIMUM)}
        while True:
            page = ctx.call(
                "firehose",
                "list_delivery_streams",
                self.resource_type,
                items_key="DeliveryStreamNames",
                next_page=bool(names),
                **request,
            )
            names += page.get("DeliveryStreamNames", [])
            if not page.get("HasMoreDeliveryStreams") or not names:
                break
            request["ExclusiveStartDeliveryStreamName"] = names[-1]
        if not names:
            return
        tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, "firehose:deliverystream")
        partition = arn_partition(ctx.client_region)
        for name in names:
            arn = f"arn:{partition}:firehose:{ctx.client_region}:{ctx.account_id}:deliverystream/{name}"
            yield ResourceRecord(resource_id=name, arn=arn, name=name, tags=tags_by_arn.get(arn, {}))
