"""Resource types read from ARNs, as the Tagging API's breadth collector stores them."""

from __future__ import annotations

import pytest

from tag_compliance.aws.collectors.tagging import arn_resource


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:dynamodb:us-east-1:111111111111:table/orders", ("dynamodb:table", "orders")),
        ("arn:aws:ecs:us-east-1:111111111111:task-definition/web:3", ("ecs:task-definition", "web:3")),
        ("arn:aws:logs:eu-west-1:111111111111:log-group:/app/api", ("logs:log-group", "/app/api")),
        ("arn:aws:rds:us-east-1:111111111111:db:orders-pg", ("rds:db", "orders-pg")),
        ("arn:aws:events:us-east-1:111111111111:event-bus/custom", ("events:event-bus", "custom")),
        # no type in the ARN
        ("arn:aws:sqs:us-east-1:111111111111:jobs", ("sqs:queue", "jobs")),
        ("arn:aws:sns:us-east-1:111111111111:alerts", ("sns:topic", "alerts")),
        ("arn:aws:sns:us-east-1:111111111111:alerts:0f1e", ("sns:subscription", "alerts:0f1e")),
        ("arn:aws:s3:::a-bucket", ("s3:bucket", "a-bucket")),
        # ARN types named otherwise here
        ("arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-1", ("efs:file-system", "fs-1")),
        ("arn:aws:apigateway:us-east-1::/restapis/a1b2", ("apigateway:restapi", "a1b2")),
        ("arn:aws:kafka:us-east-1:111111111111:serverless-cluster/k/1", ("kafka:cluster", "k/1")),
        ("arn:aws-cn:cloudfront::111111111111:distribution/E1", ("cloudfront:distribution", "E1")),
    ],
)
def test_type_and_id_from_the_arn(arn: str, expected: tuple[str, str]) -> None:
    assert arn_resource(arn) == expected


def test_not_an_arn_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="not an ARN: 'vol-123'"):
        arn_resource("vol-123")
