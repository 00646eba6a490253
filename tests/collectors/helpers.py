"""Running one collector against moto, with its API accounting."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord
from tag_compliance.aws.hook import TagComplianceAwsHook


@dataclass
class CollectorRun:
    records: dict[str, ResourceRecord]
    recorder: ApiCallRecorder

    def pages(self, operation: str) -> int:
        return self.recorder.totals(operation).pages


def run_collector(
    collector: Collector,
    account_id: str,
    region: str,
    *,
    page_size: int | None = None,
    client_region: str | None = None,
    regions: tuple[str, ...] = ("us-east-1",),
) -> CollectorRun:
    recorder = ApiCallRecorder(task="test")
    hook = TagComplianceAwsHook("aws_default", recorder=recorder)
    ctx = CollectionContext(
        hook=hook,
        account_id=account_id,
        region=region,
        client_region=client_region or region,
        page_size=page_size,
        regions=regions,
    )
    records = list(collector.collect(ctx))
    by_id = {record.resource_id: record for record in records}
    assert len(by_id) == len(records), "a resource was yielded twice"
    return CollectorRun(by_id, recorder)


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return None\n")
    return buffer.getvalue()
