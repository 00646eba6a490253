"""EC2 instances: DescribeInstances returns tags inline, up to 1000 instances a page."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import (
    CollectionContext,
    Collector,
    ResourceRecord,
    arn_partition,
    tags_to_dict,
)

# Every state but "terminated": terminated instances linger in the API for about an hour.
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]


class Ec2InstanceCollector(Collector):
    resource_type = "ec2:instance"
    service = "ec2"
    cost_explorer_service = "Amazon Elastic Compute Cloud - Compute"

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        pages = ctx.paginate(
            "ec2",
            "describe_instances",
            self.resource_type,
            page_size=ctx.page_size_for(1000),
            Filters=[{"Name": "instance-state-name", "Values": LIVE_STATES}],
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    state = instance.get("State", {}).get("Name")
                    if state == "terminated":
                        continue
                    tags = tags_to_dict(instance.get("Tags"))
                    instance_id = instance["InstanceId"]
                    yield ResourceRecord(
                        resource_id=instance_id,
                        arn=f"arn:{arn_partition(ctx.region)}:ec2:{ctx.region}:{ctx.account_id}:instance/{instance_id}",
                        name=tags.get("Name"),
                        state=state,
                        created_at=instance.get("LaunchTime"),
                        tags=tags,
                    )
