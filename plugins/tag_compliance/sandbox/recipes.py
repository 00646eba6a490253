"""How to make one resource of each type in moto, with given tags (or none): the sandbox's estate,
the collector tests and the IAM policy test all create resources through these recipes.

Each recipe creates the ``index``-th resource of its type in one (account, region) through the
public APIs (boto3), and returns its id and ARN exactly as the type's collector reports them. What a type
needs first (a VPC and subnets, an IAM role, a bucket, a database to snapshot ...) comes from
:class:`Prerequisites`, created once per (account, region) and named in the recipe's ``needs`` so
that a caller can create them before anything it wants to count. Untagged resources are created
without any tag argument, as a never-tagged resource is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Tags = Mapping[str, str]
ClientFactory = Callable[[str], Any]  # boto3 service name -> client of one (account, region)

TRUST_POLICY = json.dumps({"Version": "2012-10-17", "Statement": []})
PASSWORD = "sandbox-Password-1"  # moto's databases need one; nothing real is behind it


def key_values(tags: Tags, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


def tagged(tags: Tags, name: str, value: Any) -> dict[str, Any]:
    """``{name: value}`` when there are tags: a never-tagged resource gets no tag argument at all."""
    return {name: value} if tags else {}


def ec2_tag_spec(resource_type: str, tags: Tags) -> dict[str, Any]:
    return tagged(tags, "TagSpecifications", [{"ResourceType": resource_type, "Tags": key_values(tags)}])


@dataclass
class Prerequisites:
    """What recipes of one (account, region) build on, each made once, on first use."""

    client: ClientFactory
    account_id: str
    region: str
    _made: dict[str, Any] = field(default_factory=dict)

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]

    def vpc(self) -> str:
        return self._once(
            "vpc", lambda: self.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        )

    def subnets(self) -> list[str]:
        def make() -> list[str]:
            ec2 = self.client("ec2")
            return [
                ec2.create_subnet(
                    VpcId=self.vpc(), CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{self.region}{zone}"
                )["Subnet"]["SubnetId"]
                for n, zone in ((1, "a"), (2, "b"))
            ]

        return self._once("subnets", make)

    def security_group(self) -> str:
        return self._once(
            "security_group",
            lambda: self.client("ec2").create_security_group(
                GroupName="tc-sandbox", Description="sandbox", VpcId=self.vpc()
            )["GroupId"],
        )

    def role_arn(self) -> str:
        def make() -> str:
            iam = self.client("iam")
            name = "tag-compliance-sandbox-service"
            try:
                return iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
            except iam.exceptions.EntityAlreadyExistsException:  # IAM is global: another region made it
                return iam.get_role(RoleName=name)["Role"]["Arn"]

        return self._once("role", make)

    def bucket(self) -> str:
        def make() -> str:
            name = f"tc-sandbox-{self.account_id}-{self.region}"
            s3 = self.client("s3")
            config = (
                {}
                if self.region == "us-east-1"
                else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
            )
            s3.create_bucket(Bucket=name, **config)
            return name

        return self._once("bucket", make)

    def instance(self) -> str:
        return self._once(
            "instance",
            lambda: self.client("ec2").run_instances(
                ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, InstanceType="t3.micro"
            )["Instances"][0]["InstanceId"],
        )

    def volume(self) -> str:
        return self._once(
            "volume",
            lambda: self.client("ec2").create_volume(AvailabilityZone=f"{self.region}a", Size=8)["VolumeId"],
        )

    def launch_template(self) -> str:
        return self._once(
            "launch_template",
            lambda: self.client("ec2").create_launch_template(
                LaunchTemplateName="tc-sandbox-asg",
                LaunchTemplateData={"ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro"},
            )["LaunchTemplate"]["LaunchTemplateId"],
        )

    def db_instance(self) -> str:
        def make() -> str:
            self.client("rds").create_db_instance(
                DBInstanceIdentifier="tc-sandbox-db",
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                MasterUsername="sandbox",
                MasterUserPassword=PASSWORD,
                AllocatedStorage=20,
            )
            return "tc-sandbox-db"

        return self._once("db_instance", make)

    def db_cluster(self) -> str:
        def make() -> str:
            self.client("rds").create_db_cluster(
                DBClusterIdentifier="tc-sandbox-cluster",
                Engine="aurora-postgresql",
                MasterUsername="sandbox",
                MasterUserPassword=PASSWORD,
            )
            return "tc-sandbox-cluster"

        return self._once("db_cluster", make)

    def eks_cluster(self) -> str:
        def make() -> str:
            self.client("eks").create_cluster(
                name="tc-sandbox-eks",
                roleArn=self.role_arn(),
                resourcesVpcConfig={"subnetIds": self.subnets()},
            )
            return "tc-sandbox-eks"

        return self._once("eks_cluster", make)

    def endpoint_config(self) -> str:
        def make() -> str:
            sagemaker = self.client("sagemaker")
            image = f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/model:latest"
            sagemaker.create_model(
                ModelName="tc-sandbox-model",
                ExecutionRoleArn=self.role_arn(),
                PrimaryContainer={"Image": image},
            )
            sagemaker.create_endpoint_config(
                EndpointConfigName="tc-sandbox-config",
                ProductionVariants=[
                    {
                        "VariantName": "main",
                        "ModelName": "tc-sandbox-model",
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.t2.medium",
                    }
                ],
            )
            return "tc-sandbox-config"

        return self._once("endpoint_config", make)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def provide(self, **made: Any) -> None:
        """Use resources that exist already as prerequisites (the sandbox's own, say)."""
        self._made.update(made)

    def make(self, needs: tuple[str, ...]) -> None:
        for need in needs:
            getattr(self, need)()


Made = tuple[str, str]  # (resource id, ARN), as the type's collector reports them
Create = Callable[[Prerequisites, int, Tags], Made]


@dataclass(frozen=True)
class Recipe:
    """One resource type's recipe.

    :param create: makes the ``index``-th resource with these tags; returns its (id, ARN).
    :param needs: the :class:`Prerequisites` it builds on.
    :param is_global: created once per account (from us-east-1), like the collector collects it.
    :param test_page_size: the page size the collector test asks for (None: the collector's own,
        where moto answers a page size wrongly).
    :param moto_pages: moto honours that page size, so a test can see more than one page.
    :param tagging_only: no collector lists the type: only the Tagging API's breadth listing sees
        it, tagged resources only.
    """

    resource_type: str
    create: Create
    needs: tuple[str, ...] = ()
    is_global: bool = False
    test_page_size: int | None = 5
    moto_pages: bool = False
    tagging_only: bool = False


# --------------------------------------------------------------------------- EC2


def _volume(api: Prerequisites, index: int, tags: Tags) -> Made:
    volume_id = api.client("ec2").create_volume(
        AvailabilityZone=f"{api.region}a", Size=8, VolumeType="gp3", **ec2_tag_spec("volume", tags)
    )["VolumeId"]
    return volume_id, api.arn("ec2", f"volume/{volume_id}")


def _snapshot(api: Prerequisites, index: int, tags: Tags) -> Made:
    snapshot_id = api.client("ec2").create_snapshot(VolumeId=api.volume(), **ec2_tag_spec("snapshot", tags))[
        "SnapshotId"
    ]
    return snapshot_id, f"arn:aws:ec2:{api.region}::snapshot/{snapshot_id}"


def _image(api: Prerequisites, index: int, tags: Tags) -> Made:
    image_id = api.client("ec2").create_image(
        InstanceId=api.instance(), Name=f"image-{index:03d}", **ec2_tag_spec("image", tags)
    )["ImageId"]
    return image_id, f"arn:aws:ec2:{api.region}::image/{image_id}"


def _elastic_ip(api: Prerequisites, index: int, tags: Tags) -> Made:
    allocation_id = api.client("ec2").allocate_address(Domain="vpc", **ec2_tag_spec("elastic-ip", tags))[
        "AllocationId"
    ]
    return allocation_id, api.arn("ec2", f"elastic-ip/{allocation_id}")


def _nat_gateway(api: Prerequisites, index: int, tags: Tags) -> Made:
    nat_id = api.client("ec2").create_nat_gateway(
        SubnetId=api.subnets()[index % 2], ConnectivityType="private", **ec2_tag_spec("natgateway", tags)
    )["NatGateway"]["NatGatewayId"]
    return nat_id, api.arn("ec2", f"natgateway/{nat_id}")


def _vpc_endpoint(api: Prerequisites, index: int, tags: Tags) -> Made:
    service = ("s3", "dynamodb")[index % 2]
    endpoint_id = api.client("ec2").create_vpc_endpoint(
        VpcId=api.vpc(),
        ServiceName=f"com.amazonaws.{api.region}.{service}",
        VpcEndpointType="Gateway",  # moto's delete fails on an endpoint created without a type
        **ec2_tag_spec("vpc-endpoint", tags),
    )["VpcEndpoint"]["VpcEndpointId"]
    return endpoint_id, api.arn("ec2", f"vpc-endpoint/{endpoint_id}")


def _transit_gateway(api: Prerequisites, index: int, tags: Tags) -> Made:
    gateway = api.client("ec2").create_transit_gateway(
        Description=f"sandbox {index}", **ec2_tag_spec("transit-gateway", tags)
    )["TransitGateway"]
    return gateway["TransitGatewayId"], gateway["TransitGatewayArn"]


def _vpc(api: Prerequisites, index: int, tags: Tags) -> Made:
    vpc_id = api.client("ec2").create_vpc(CidrBlock=f"10.{index}.0.0/16", **ec2_tag_spec("vpc", tags))["Vpc"][
        "VpcId"
    ]
    return vpc_id, api.arn("ec2", f"vpc/{vpc_id}")


def _subnet(api: Prerequisites, index: int, tags: Tags) -> Made:
    subnet = api.client("ec2").create_subnet(
        VpcId=api.vpc(),
        CidrBlock=f"10.0.{10 + index}.0/24",
        AvailabilityZone=f"{api.region}{'ab'[index % 2]}",
        **ec2_tag_spec("subnet", tags),
    )["Subnet"]
    return subnet["SubnetId"], subnet["SubnetArn"]


def _security_group(api: Prerequisites, index: int, tags: Tags) -> Made:
    group_id = api.client("ec2").create_security_group(
        GroupName=f"sg-{index:03d}",
        Description="sandbox",
        VpcId=api.vpc(),
        **ec2_tag_spec("security-group", tags),
    )["GroupId"]
    return group_id, api.arn("ec2", f"security-group/{group_id}")


def _launch_template(api: Prerequisites, index: int, tags: Tags) -> Made:
    template_id = api.client("ec2").create_launch_template(
        LaunchTemplateName=f"template-{index:03d}",
        LaunchTemplateData={"ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro"},
        **ec2_tag_spec("launch-template", tags),
    )["LaunchTemplate"]["LaunchTemplateId"]
    return template_id, api.arn("ec2", f"launch-template/{template_id}")


# --------------------------------------------------------------------------- load balancing, scaling


def _load_balancer(api: Prerequisites, index: int, tags: Tags) -> Made:
    """Even indexes are application load balancers (ELBv2), odd ones classic (ELB)."""
    if index % 2 == 0:
        arn = api.client("elbv2").create_load_balancer(
            Name=f"alb-{index:03d}",
            Subnets=api.subnets(),
            Type="application",
            **tagged(tags, "Tags", key_values(tags)),
        )["LoadBalancers"][0]["LoadBalancerArn"]
        return arn.rsplit("loadbalancer/", 1)[-1], arn
    name = f"clb-{index:03d}"
    api.client("elb").create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        Subnets=api.subnets()[:1],
        SecurityGroups=[api.security_group()],  # else ELB makes a group of its own
        **tagged(tags, "Tags", key_values(tags)),
    )
    return name, api.arn("elasticloadbalancing", f"loadbalancer/{name}")


def _target_group(api: Prerequisites, index: int, tags: Tags) -> Made:
    arn = api.client("elbv2").create_target_group(
        Name=f"tg-{index:03d}",
        Protocol="HTTP",
        Port=80,
        VpcId=api.vpc(),
        **tagged(tags, "Tags", key_values(tags)),
    )["TargetGroups"][0]["TargetGroupArn"]
    return arn.rsplit("targetgroup/", 1)[-1], arn


def _auto_scaling_group(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"asg-{index:03d}"
    asg_tags = [
        {
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
            "Key": k,
            "Value": v,
            "PropagateAtLaunch": False,
        }
        for k, v in tags.items()
    ]
    autoscaling = api.client("autoscaling")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=1,
        LaunchTemplate={"LaunchTemplateId": api.launch_template(), "Version": "$Latest"},
        VPCZoneIdentifier=api.subnets()[0],
        **tagged(tags, "Tags", asg_tags),
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return name, group["AutoScalingGroupARN"]


# --------------------------------------------------------------------------- databases, storage


def _db_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    cluster = api.client("rds").create_db_cluster(
        DBClusterIdentifier=f"cluster-{index:03d}",
        Engine="aurora-postgresql",
        MasterUsername="sandbox",
        MasterUserPassword=PASSWORD,
        **tagged(tags, "Tags", key_values(tags)),
    )["DBCluster"]
    return cluster["DBClusterIdentifier"], cluster["DBClusterArn"]


def _db_snapshot(api: Prerequisites, index: int, tags: Tags) -> Made:
    snapshot = api.client("rds").create_db_snapshot(
        DBSnapshotIdentifier=f"snapshot-{index:03d}",
        DBInstanceIdentifier=api.db_instance(),
        **tagged(tags, "Tags", key_values(tags)),
    )["DBSnapshot"]
    return snapshot["DBSnapshotIdentifier"], snapshot["DBSnapshotArn"]


def _db_cluster_snapshot(api: Prerequisites, index: int, tags: Tags) -> Made:
    snapshot = api.client("rds").create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier=f"cluster-snapshot-{index:03d}",
        DBClusterIdentifier=api.db_cluster(),
        **tagged(tags, "Tags", key_values(tags)),
    )["DBClusterSnapshot"]
    return snapshot["DBClusterSnapshotIdentifier"], snapshot["DBClusterSnapshotArn"]


def _table(api: Prerequisites, index: int, tags: Tags) -> Made:
    table = api.client("dynamodb").create_table(
        TableName=f"table-{index:03d}",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **tagged(tags, "Tags", key_values(tags)),
    )["TableDescription"]
    return table["TableName"], table["TableArn"]


def _cache_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    cluster = api.client("elasticache").create_cache_cluster(
        CacheClusterId=f"cache-{index:03d}",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=1,
        **tagged(tags, "Tags", key_values(tags)),
    )["CacheCluster"]
    return cluster["CacheClusterId"], cluster["ARN"]


def _redshift_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"warehouse-{index:03d}"
    api.client("redshift").create_cluster(
        ClusterIdentifier=name,
        NodeType="dc2.large",
        MasterUsername="sandbox",
        MasterUserPassword="Password1",
        **tagged(tags, "Tags", key_values(tags)),
    )
    return name, api.arn("redshift", f"cluster:{name}")  # the answer has no cluster ARN


def _domain(api: Prerequisites, index: int, tags: Tags) -> Made:
    domain = api.client("opensearch").create_domain(
        DomainName=f"search-{index:03d}", **tagged(tags, "TagList", key_values(tags))
    )["DomainStatus"]
    return domain["DomainName"], domain["ARN"]


def _memorydb_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    cluster = api.client("memorydb").create_cluster(
        ClusterName=f"memory-{index:03d}",
        NodeType="db.t4g.small",
        ACLName="open-access",
        **tagged(tags, "Tags", key_values(tags)),
    )["Cluster"]
    return cluster["Name"], cluster["ARN"]


def _efs(api: Prerequisites, index: int, tags: Tags) -> Made:
    system = api.client("efs").create_file_system(
        CreationToken=f"files-{index:03d}", **tagged(tags, "Tags", key_values(tags))
    )
    return system["FileSystemId"], system["FileSystemArn"]


def _fsx(api: Prerequisites, index: int, tags: Tags) -> Made:
    system = api.client("fsx").create_file_system(
        FileSystemType="LUSTRE",
        StorageCapacity=1200,
        SubnetIds=api.subnets()[:1],
        **tagged(tags, "Tags", key_values(tags)),
    )["FileSystem"]
    return system["FileSystemId"], system["ResourceARN"]


def _backup_vault(api: Prerequisites, index: int, tags: Tags) -> Made:
    vault = api.client("backup").create_backup_vault(
        BackupVaultName=f"vault-{index:03d}", **tagged(tags, "BackupVaultTags", dict(tags))
    )
    return vault["BackupVaultName"], vault["BackupVaultArn"]


# --------------------------------------------------------------------------- containers, compute


def _ecs_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    cluster = api.client("ecs").create_cluster(
        clusterName=f"cluster-{index:03d}", **tagged(tags, "tags", key_values(tags, "key", "value"))
    )["cluster"]
    return cluster["clusterName"], cluster["clusterArn"]


def _eks_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    cluster = api.client("eks").create_cluster(
        name=f"kubernetes-{index:03d}",
        roleArn=api.role_arn(),
        resourcesVpcConfig={"subnetIds": api.subnets()},
        **tagged(tags, "tags", dict(tags)),
    )["cluster"]
    return cluster["name"], cluster["arn"]


def _nodegroup(api: Prerequisites, index: int, tags: Tags) -> Made:
    nodegroup = api.client("eks").create_nodegroup(
        clusterName=api.eks_cluster(),
        nodegroupName=f"nodes-{index:03d}",
        nodeRole=api.role_arn(),
        subnets=api.subnets(),
        **tagged(tags, "tags", dict(tags)),
    )["nodegroup"]
    return f"{nodegroup['clusterName']}/{nodegroup['nodegroupName']}", nodegroup["nodegroupArn"]


def _repository(api: Prerequisites, index: int, tags: Tags) -> Made:
    repository = api.client("ecr").create_repository(
        repositoryName=f"images-{index:03d}", **tagged(tags, "tags", key_values(tags))
    )["repository"]
    return repository["repositoryName"], repository["repositoryArn"]


def _compute_environment(api: Prerequisites, index: int, tags: Tags) -> Made:
    environment = api.client("batch").create_compute_environment(
        computeEnvironmentName=f"batch-{index:03d}",
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=api.role_arn(),
        **tagged(tags, "tags", dict(tags)),
    )
    return environment["computeEnvironmentName"], environment["computeEnvironmentArn"]


# --------------------------------------------------------------------------- messaging, integration


def _queue(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"queue-{index:03d}"
    api.client("sqs").create_queue(QueueName=name, **tagged(tags, "tags", dict(tags)))
    return name, api.arn("sqs", name)


def _topic(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"topic-{index:03d}"
    arn = api.client("sns").create_topic(Name=name, **tagged(tags, "Tags", key_values(tags)))["TopicArn"]
    return name, arn


def _stream(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"stream-{index:03d}"
    kinesis = api.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    if tags:  # moto drops create_stream's Tags
        kinesis.add_tags_to_stream(StreamName=name, Tags=dict(tags))
    return name, api.arn("kinesis", f"stream/{name}")


def _delivery_stream(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"delivery-{index:03d}"
    arn = api.client("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": api.role_arn(),
            "BucketARN": f"arn:aws:s3:::{api.bucket()}",
        },
        **tagged(tags, "Tags", key_values(tags)),
    )["DeliveryStreamARN"]
    return name, arn


def _kafka_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"kafka-{index:03d}"
    arn = api.client("kafka").create_cluster(
        ClusterName=name,
        KafkaVersion="3.6.0",
        NumberOfBrokerNodes=2,
        BrokerNodeGroupInfo={"InstanceType": "kafka.m5.large", "ClientSubnets": api.subnets()},
        **tagged(tags, "Tags", dict(tags)),
    )["ClusterArn"]
    return name, arn


def _broker(api: Prerequisites, index: int, tags: Tags) -> Made:
    broker = api.client("mq").create_broker(
        BrokerName=f"broker-{index:03d}",
        DeploymentMode="SINGLE_INSTANCE",
        EngineType="ACTIVEMQ",
        EngineVersion="5.17.6",
        HostInstanceType="mq.t3.micro",
        PubliclyAccessible=False,
        AutoMinorVersionUpgrade=False,
        Users=[{"Username": "sandbox", "Password": "sandbox-password-1"}],
        **tagged(tags, "Tags", dict(tags)),
    )
    return broker["BrokerId"], broker["BrokerArn"]


def _state_machine(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"workflow-{index:03d}"
    arn = api.client("stepfunctions").create_state_machine(
        name=name,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn=api.role_arn(),
        **tagged(tags, "tags", key_values(tags, "key", "value")),
    )["stateMachineArn"]
    return name, arn


def _rule(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"schedule-{index:03d}"
    arn = api.client("events").put_rule(
        Name=name, ScheduleExpression="rate(1 hour)", **tagged(tags, "Tags", key_values(tags))
    )["RuleArn"]
    return name, arn


# --------------------------------------------------------------------------- edge, identity, management


def _rest_api(api: Prerequisites, index: int, tags: Tags) -> Made:
    api_id = api.client("apigateway").create_rest_api(
        name=f"rest-{index:03d}", **tagged(tags, "tags", dict(tags))
    )["id"]
    return api_id, f"arn:aws:apigateway:{api.region}::/restapis/{api_id}"


def _http_api(api: Prerequisites, index: int, tags: Tags) -> Made:
    api_id = api.client("apigatewayv2").create_api(
        Name=f"http-{index:03d}", ProtocolType="HTTP", **tagged(tags, "Tags", dict(tags))
    )["ApiId"]
    return api_id, f"arn:aws:apigateway:{api.region}::/apis/{api_id}"


def _distribution(api: Prerequisites, index: int, tags: Tags) -> Made:
    config = {
        "CallerReference": f"sandbox-{index}",
        "Comment": "",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "origin",
                    "DomainName": "sandbox-origin.s3.amazonaws.com",  # moto checks for an S3 name
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "origin",
            "ViewerProtocolPolicy": "allow-all",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    cloudfront = api.client("cloudfront")
    if tags:
        created = cloudfront.create_distribution_with_tags(
            DistributionConfigWithTags={"DistributionConfig": config, "Tags": {"Items": key_values(tags)}}
        )
    else:
        created = cloudfront.create_distribution(DistributionConfig=config)
    return created["Distribution"]["Id"], created["Distribution"]["ARN"]


def _hosted_zone(api: Prerequisites, index: int, tags: Tags) -> Made:
    route53 = api.client("route53")
    zone = route53.create_hosted_zone(Name=f"zone{index:03d}.example.com", CallerReference=f"sandbox-{index}")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    if tags:  # CreateHostedZone takes no tags
        route53.change_tags_for_resource(
            ResourceType="hostedzone", ResourceId=zone_id, AddTags=key_values(tags)
        )
    return zone_id, f"arn:aws:route53:::hostedzone/{zone_id}"


def _certificate(api: Prerequisites, index: int, tags: Tags) -> Made:
    arn = api.client("acm").request_certificate(
        DomainName=f"site{index:03d}.example.com",
        ValidationMethod="DNS",
        **tagged(tags, "Tags", key_values(tags)),
    )["CertificateArn"]
    return arn.rsplit("/", 1)[-1], arn


def _key(api: Prerequisites, index: int, tags: Tags) -> Made:
    key = api.client("kms").create_key(
        Description=f"sandbox key {index}", **tagged(tags, "Tags", key_values(tags, "TagKey", "TagValue"))
    )["KeyMetadata"]
    return key["KeyId"], key["Arn"]


def _secret(api: Prerequisites, index: int, tags: Tags) -> Made:
    secret = api.client("secretsmanager").create_secret(
        Name=f"secret-{index:03d}", SecretString="not-a-secret", **tagged(tags, "Tags", key_values(tags))
    )
    return secret["Name"], secret["ARN"]


def _log_group(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"/sandbox/logs-{index:03d}"
    api.client("logs").create_log_group(logGroupName=name, **tagged(tags, "tags", dict(tags)))
    return name, api.arn("logs", f"log-group:{name}")


def _alarm(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"alarm-{index:03d}"
    api.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="CPUUtilization",
        Namespace="AWS/EC2",
        Statistic="Average",
        Period=300,
        EvaluationPeriods=1,
        Threshold=80.0,
        ComparisonOperator="GreaterThanThreshold",
        **tagged(tags, "Tags", key_values(tags)),
    )
    return name, api.arn("cloudwatch", f"alarm:{name}")


def _endpoint(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"endpoint-{index:03d}"
    arn = api.client("sagemaker").create_endpoint(
        EndpointName=name, EndpointConfigName=api.endpoint_config(), **tagged(tags, "Tags", key_values(tags))
    )["EndpointArn"]
    return name, arn


def _notebook(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"notebook-{index:03d}"
    arn = api.client("sagemaker").create_notebook_instance(
        NotebookInstanceName=name,
        InstanceType="ml.t2.medium",
        RoleArn=api.role_arn(),
        **tagged(tags, "Tags", key_values(tags)),
    )["NotebookInstanceArn"]
    return name, arn


def _glue_job(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"etl-{index:03d}"
    api.client("glue").create_job(
        Name=name,
        Role=api.role_arn(),
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{api.bucket()}/etl.py"},
        **tagged(tags, "Tags", dict(tags)),
    )
    return name, api.arn("glue", f"job/{name}")


def _emr_cluster(api: Prerequisites, index: int, tags: Tags) -> Made:
    flow = api.client("emr").run_job_flow(
        Name=f"spark-{index:03d}",
        ReleaseLabel="emr-6.15.0",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 3,
            "KeepJobFlowAliveWhenNoSteps": True,  # else moto ends it at once
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        **tagged(tags, "Tags", key_values(tags)),
    )
    return flow["JobFlowId"], flow["ClusterArn"]


def _project(api: Prerequisites, index: int, tags: Tags) -> Made:
    project = api.client("codebuild").create_project(
        name=f"build-{index:03d}",
        source={"type": "S3", "location": f"{api.bucket()}/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=api.role_arn(),
        **tagged(tags, "tags", key_values(tags, "key", "value")),
    )["project"]
    return project["name"], project["arn"]


def _trail(api: Prerequisites, index: int, tags: Tags) -> Made:
    trail = api.client("cloudtrail").create_trail(
        Name=f"trail-{index:03d}", S3BucketName=api.bucket(), **tagged(tags, "TagsList", key_values(tags))
    )
    return trail["Name"], trail["TrailARN"]


def _parameter(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"/sandbox/parameter-{index:03d}"
    api.client("ssm").put_parameter(
        Name=name, Value="value", Type="String", **tagged(tags, "Tags", key_values(tags))
    )
    return name, api.arn("ssm", f"parameter{name}")


# --------------------------------------------------------------------------- seen by the Tagging API only


def _event_bus(api: Prerequisites, index: int, tags: Tags) -> Made:
    name = f"bus-{index:03d}"
    arn = api.client("events").create_event_bus(Name=name, **tagged(tags, "Tags", key_values(tags)))[
        "EventBusArn"
    ]
    return name, arn


def _task_definition(api: Prerequisites, index: int, tags: Tags) -> Made:
    definition = api.client("ecs").register_task_definition(
        family=f"task-{index:03d}",
        containerDefinitions=[{"name": "app", "image": "public.ecr.aws/nginx/nginx", "memory": 128}],
        **tagged(tags, "tags", key_values(tags, "key", "value")),
    )["taskDefinition"]
    arn = definition["taskDefinitionArn"]
    return arn.rsplit("task-definition/", 1)[-1], arn


RECIPES: dict[str, Recipe] = {
    recipe.resource_type: recipe
    for recipe in (
        Recipe("ec2:volume", _volume),
        Recipe("ec2:snapshot", _snapshot, needs=("volume",)),
        Recipe("ec2:image", _image, needs=("instance",)),
        Recipe("ec2:elastic-ip", _elastic_ip),
        Recipe("ec2:natgateway", _nat_gateway, needs=("subnets",)),
        Recipe("ec2:vpc-endpoint", _vpc_endpoint, needs=("vpc",)),
        Recipe("ec2:transit-gateway", _transit_gateway),
        Recipe("ec2:vpc", _vpc),
        Recipe("ec2:subnet", _subnet, needs=("vpc",)),
        Recipe("ec2:security-group", _security_group, needs=("vpc",)),
        # moto answers at most MaxResults launch templates and never a next token
        Recipe("ec2:launch-template", _launch_template, test_page_size=None),
        Recipe(
            "elasticloadbalancing:loadbalancer",
            _load_balancer,
            needs=("subnets", "security_group"),
            moto_pages=True,
        ),
        Recipe("elasticloadbalancing:targetgroup", _target_group, needs=("vpc",)),
        Recipe(
            "autoscaling:autoScalingGroup",
            _auto_scaling_group,
            needs=("subnets", "launch_template"),
            moto_pages=True,
        ),
        Recipe("rds:cluster", _db_cluster),
        Recipe("rds:snapshot", _db_snapshot, needs=("db_instance",)),
        Recipe("rds:cluster-snapshot", _db_cluster_snapshot, needs=("db_cluster",)),
        Recipe("dynamodb:table", _table, moto_pages=True),
        Recipe("elasticache:cluster", _cache_cluster, moto_pages=True),
        Recipe("redshift:cluster", _redshift_cluster),
        Recipe("es:domain", _domain),
        Recipe("memorydb:cluster", _memorydb_cluster),
        Recipe("efs:file-system", _efs, moto_pages=True),
        Recipe("fsx:file-system", _fsx, needs=("subnets",)),
        Recipe("backup:backup-vault", _backup_vault),
        Recipe("ecs:cluster", _ecs_cluster),
        Recipe("eks:cluster", _eks_cluster, needs=("subnets", "role_arn"), moto_pages=True),
        Recipe("eks:nodegroup", _nodegroup, needs=("eks_cluster",), moto_pages=True),
        Recipe("ecr:repository", _repository),
        Recipe("batch:compute-environment", _compute_environment, needs=("role_arn",)),
        Recipe("sqs:queue", _queue, moto_pages=True),
        Recipe("sns:topic", _topic),
        Recipe("kinesis:stream", _stream),
        Recipe("firehose:deliverystream", _delivery_stream, needs=("role_arn", "bucket"), moto_pages=True),
        Recipe("kafka:cluster", _kafka_cluster, needs=("subnets",)),
        Recipe("mq:broker", _broker),
        Recipe("states:stateMachine", _state_machine, needs=("role_arn",), moto_pages=True),
        Recipe("events:rule", _rule, moto_pages=True),
        Recipe("apigateway:restapi", _rest_api),
        Recipe("apigateway:api", _http_api),
        Recipe("cloudfront:distribution", _distribution, is_global=True),
        Recipe("route53:hostedzone", _hosted_zone, is_global=True),
        Recipe("acm:certificate", _certificate),
        Recipe("kms:key", _key),
        Recipe("secretsmanager:secret", _secret, moto_pages=True),
        Recipe("logs:log-group", _log_group, moto_pages=True),
        Recipe("cloudwatch:alarm", _alarm),
        Recipe("sagemaker:endpoint", _endpoint, needs=("endpoint_config",), moto_pages=True),
        Recipe("sagemaker:notebook-instance", _notebook, needs=("role_arn",), moto_pages=True),
        Recipe("glue:job", _glue_job, needs=("role_arn", "bucket"), moto_pages=True),
        Recipe("elasticmapreduce:cluster", _emr_cluster),
        Recipe("codebuild:project", _project, needs=("role_arn", "bucket")),
        Recipe("cloudtrail:trail", _trail, needs=("bucket",)),
        # moto pages DescribeParameters at 10 whatever the page size asked
        Recipe("ssm:parameter", _parameter, moto_pages=True),
        Recipe("events:event-bus", _event_bus, tagging_only=True),
        Recipe("ecs:task-definition", _task_definition, tagging_only=True),
    )
}
