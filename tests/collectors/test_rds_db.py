from tag_compliance.aws.collectors.rds_db import RdsDbCollector
from tests.collectors.helpers import run_collector


def test_collects_db_instances_over_pages_with_and_without_tags(aws):
    rds = aws.client("rds")
    for index in range(23):
        tags = [{"Key": "CostCenter", "Value": f"CC-{index:04d}"}] if index % 2 else []
        rds.create_db_instance(
            DBInstanceIdentifier=f"db-{index:02d}",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="admin",
            MasterUserPassword="not-a-secret-1",
            AllocatedStorage=20,
            Tags=tags,
        )

    run = run_collector(RdsDbCollector(), "123456789012", "us-east-1", page_size=5)

    assert len(run.records) == 23
    assert run.pages("DescribeDBInstances") == 2  # MaxRecords is raised to RDS's minimum of 20
    assert run.records["db-03"].tags == {"CostCenter": "CC-0003"}
    assert run.records["db-04"].tags == {}
    assert run.records["db-04"].arn.endswith(":db:db-04")
