"""S3 buckets: listed once per account; tags from bulk Tagging API listings per bucket region."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from tag_compliance.aws.collectors.base import (
    TAGGING_API,
    CollectionContext,
    Collector,
    ResourceRecord,
    arn_partition,
)


class S3BucketCollector(Collector):
    resource_type = "s3:bucket"
    service = "s3"
    cost_explorer_service = "Amazon Simple Storage Service"
    is_global = True
    api_services = (TAGGING_API,)  # tags come from tags_from_tagging_api

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        # No MaxBuckets: without it ListBuckets returns every bucket (moto even truncates
        # silently at MaxBuckets without a continuation token); tokens are still followed.
        buckets = [
            bucket
            for page in ctx.paginate("s3", "list_buckets", self.resource_type)
            for bucket in page.get("Buckets", [])
        ]
        partition = arn_partition(ctx.client_region)
        by_region: dict[str, list[dict[str, Any]]] = defaultdict(list)
        regions = self._bucket_regions(ctx, buckets)
        for bucket in buckets:
            by_region[regions[bucket["Name"]]].append(bucket)
        for region, regional_buckets in sorted(by_region.items()):
            # The Tagging API is regional: it lists the buckets that live in the region asked.
            tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, "s3", region=region)
            for bucket in regional_buckets:
                arn = f"arn:{partition}:s3:::{bucket['Name']}"
                yield ResourceRecord(
                    resource_id=bucket["Name"],
                    arn=arn,
                    name=bucket["Name"],
                    created_at=bucket.get("CreationDate"),
                    tags=tags_by_arn.get(arn, {}),
                )

    def _bucket_regions(self, ctx: CollectionContext, buckets: list[dict[str, Any]]) -> dict[str, str]:
        """Each bucket's region, in as few calls as the endpoint allows.

        AWS names the region in every ListBuckets entry. Endpoints that do not (moto) are
        asked once per configured region with the ``BucketRegion`` filter, and only the
        buckets still unplaced cost one GetBucketLocation each.
        """
        regions = {bucket["Name"]: bucket["BucketRegion"] for bucket in buckets if bucket.get("BucketRegion")}
        unplaced = {bucket["Name"] for bucket in buckets} - regions.keys()
        for region in ctx.regions if unplaced else ():
            for page in ctx.paginate("s3", "list_buckets", self.resource_type, BucketRegion=region):
                for bucket in page.get("Buckets", []):
                    if bucket["Name"] in unplaced:
                        regions[bucket["Name"]] = region
                        unplaced.discard(bucket["Name"])
        for name in sorted(unplaced):
            location = ctx.call("s3", "get_bucket_location", self.resource_type, Bucket=name)
            regions[name] = location.get("LocationConstraint") or "us-east-1"
        return regions
