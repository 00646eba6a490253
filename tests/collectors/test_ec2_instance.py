from tag_compliance.aws.collectors.ec2_instance import Ec2InstanceCollector
from tests.collectors.helpers import run_collector

NAMED = [
    {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}, {"Key": "Owner", "Value": ""}]}
]


def test_collects_every_live_instance_over_several_pages(aws):
    ec2 = aws.client("ec2", "eu-west-1")
    # one reservation each: moto pages DescribeInstances by reservation, AWS by instance
    tagged = [
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=NAMED)[
            "Instances"
        ][0]
        for _ in range(7)
    ]
    untagged = [
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0] for _ in range(5)
    ]
    stopped = untagged[0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])
    terminated = tagged[0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[terminated])

    run = run_collector(Ec2InstanceCollector(), "123456789012", "eu-west-1", page_size=5)

    expected_ids = {i["InstanceId"] for i in tagged + untagged} - {terminated}
    assert set(run.records) == expected_ids
    assert run.pages("DescribeInstances") >= 3
    web = run.records[tagged[1]["InstanceId"]]
    assert web.tags == {"Name": "web", "Owner": ""}
    assert web.name == "web"
    assert web.arn == f"arn:aws:ec2:eu-west-1:123456789012:instance/{web.resource_id}"
    assert run.records[untagged[1]["InstanceId"]].tags == {}
    assert run.records[stopped].state == "stopped"
