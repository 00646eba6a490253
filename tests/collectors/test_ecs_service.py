from tag_compliance.aws.collectors.ecs_service import EcsServiceCollector
from tests.collectors.helpers import run_collector


def test_services_of_every_cluster_described_ten_at_a_time_with_tags(aws):
    ecs = aws.client("ecs", "eu-west-1")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    for cluster in ("blue", "green"):
        ecs.create_cluster(clusterName=cluster)
        for index in range(12):
            tags = (
                [{"key": "Owner", "value": "ops@example.com"}, {"key": "Environment", "value": " "}]
                if index % 3
                else []
            )
            ecs.create_service(
                cluster=cluster,
                serviceName=f"svc-{index:02d}",
                taskDefinition="web",
                desiredCount=0,
                tags=tags,
            )

    run = run_collector(EcsServiceCollector(), "123456789012", "eu-west-1", page_size=1)

    assert len(run.records) == 24
    # moto 5.2 ignores maxResults on ListClusters and ListServices; DescribeServices batches here
    assert run.recorder.totals("DescribeServices").calls == 4  # 12 services per cluster, 10 per call
    service = run.records["blue/svc-01"]
    assert service.tags == {"Owner": "ops@example.com", "Environment": " "}
    assert service.arn == "arn:aws:ecs:eu-west-1:123456789012:service/blue/svc-01"
    assert run.records["green/svc-00"].tags == {}


def test_a_deleted_service_answered_as_inactive_is_not_inventory(aws):
    ecs = aws.client("ecs")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_cluster(clusterName="core")
    for name in ("kept", "gone"):
        ecs.create_service(cluster="core", serviceName=name, taskDefinition="web", desiredCount=0)
    ecs.delete_service(cluster="core", service="gone", force=True)  # moto still lists it, INACTIVE

    run = run_collector(EcsServiceCollector(), "123456789012", "us-east-1")

    assert set(run.records) == {"core/kept"}
