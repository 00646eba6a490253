import math

from tag_compliance.aws.collectors.s3_bucket import S3BucketCollector
from tests.collectors.helpers import run_collector


def test_buckets_once_per_account_with_bulk_tag_lookups_per_bucket_region(aws):
    s3 = aws.client("s3")
    tagged = 0
    for index in range(120):
        name = f"tc-bucket-{index:03d}"
        s3.create_bucket(Bucket=name)
        if index % 4:
            tagged += 1
            s3.put_bucket_tagging(
                Bucket=name,
                Tagging={"TagSet": [{"Key": "Environment", "Value": "prod"}, {"Key": "Empty", "Value": ""}]},
            )
    s3.create_bucket(Bucket="tc-europe", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    run = run_collector(
        S3BucketCollector(),
        "123456789012",
        "global",
        client_region="us-east-1",
        regions=("us-east-1", "eu-west-1"),
    )

    assert len(run.records) == 121
    # a blank value comes back without a Value element: it reads as ""
    assert run.records["tc-bucket-001"].tags == {"Environment": "prod", "Empty": ""}
    assert run.records["tc-bucket-000"].tags == {}
    assert run.records["tc-europe"].tags == {}
    assert run.records["tc-europe"].arn == "arn:aws:s3:::tc-europe"
    # one Tagging API listing per bucket region, 100 resources a page (moto lists every
    # bucket of the account in every region, so the eu-west-1 listing sees them all too)
    assert run.pages("GetResources") == 2 * math.ceil(tagged / 100)
    assert run.pages("GetBucketLocation") == 0
