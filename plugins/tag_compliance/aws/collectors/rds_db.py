"""RDS DB instances: DescribeDBInstances returns tags inline as TagList."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord, tags_to_dict


class RdsDbCollector(Collector):
    resource_type = "rds:db"
    service = "rds"
    cost_explorer_service = "Amazon Relational Database Service"

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        # MaxRecords must lie between 20 and 100.
        page_size = max(20, ctx.page_size_for(100))
        for page in ctx.paginate("rds", "describe_db_instances", self.resource_type, page_size=page_size):
            for db in page.get("DBInstances", []):
                yield ResourceRecord(
                    resource_id=db["DBInstanceIdentifier"],
                    arn=db["DBInstanceArn"],
                    name=db["DBInstanceIdentifier"],
                    state=db.get("DBInstanceStatus"),
                    created_at=db.get("InstanceCreateTime"),
                    tags=tags_to_dict(db.get("TagList")),
                )
