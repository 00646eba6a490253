"""The published IAM policies grant exactly what the pipeline calls: no action missing, none unused.

Every collector runs against moto in a member account (through the assumed role, as in
production) with every code path that makes a call taken, and Cost Explorer extraction runs with
resource-level costs against the emulator. The operations the hook's ``ApiCallRecorder`` counted,
named as IAM names them, must equal the actions of the policy documents in ``include/iam``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tag_compliance import clock, collect
from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.collectors import all_collectors
from tag_compliance.aws.collectors.base import GLOBAL_REGION, CollectionContext
from tag_compliance.aws.hook import TagComplianceAwsHook, forget_process_cache
from tag_compliance.aws.organization import discover_accounts
from tag_compliance.aws.regions import regions_not_enabled
from tag_compliance.config import Settings
from tag_compliance.costs.extract import extract_costs
from tag_compliance.sandbox.cost_explorer import CostExplorerEmulator
from tag_compliance.sandbox.estate import ROLE_NAME, Estate
from tag_compliance.sandbox.recipes import RECIPES, Prerequisites
from tag_compliance.sandbox.seed import Seeder
from tests.collectors.helpers import lambda_zip
from tests.conftest import MEMBER_ACCOUNT, OWN_ACCOUNT, REPO_ROOT, connection_json
from tests.costs.test_extract import ledger_table

MEMBER_POLICY = REPO_ROOT / "include" / "iam" / "member-read-only-policy.json"
CALLER_POLICY = REPO_ROOT / "include" / "iam" / "caller-policy.json"
TODAY = datetime.now(UTC).date()
REGION = "us-east-1"

# Where IAM's name differs from the API's: the service prefix, or the action itself.
IAM_PREFIX = {
    "resourcegroupstaggingapi": "tag",
    "stepfunctions": "states",
    "opensearch": "es",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "emr": "elasticmapreduce",
    "apigatewayv2": "apigateway",
    "efs": "elasticfilesystem",
}
IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    # API Gateway's management API is authorised by HTTP method
    ("apigateway", "GetRestApis"): "apigateway:GET",
    ("apigatewayv2", "GetApis"): "apigateway:GET",
}
# AWS answers it whatever the policies say, even under an explicit Deny (STS API reference).
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}


def iam_action(service: str, operation: str) -> str:
    return IAM_ACTION.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")


def load(path) -> dict[str, Any]:
    return json.loads(path.read_text())


def statements_actions(statements: Iterable[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    return actions


def calls(recorder: ApiCallRecorder) -> set[tuple[str, str]]:
    return {(row["service"], row["operation"]) for row in recorder.to_table().to_pylist()}


@pytest.fixture
def member_estate(aws):
    """The sandbox's member account (its read-only role and policy), holding one of every type.

    An S3 bucket lives outside the configured regions, so its region takes GetBucketLocation.
    """
    Seeder(
        aws.endpoint_url, Estate(seed=0, scale=1.0, accounts=(OWN_ACCOUNT, MEMBER_ACCOUNT))
    ).prepare_accounts()
    client = lambda service, region=REGION: aws.client(service, region, MEMBER_ACCOUNT)  # noqa: E731
    client("ec2").run_instances(
        ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    client("rds").create_db_instance(
        DBInstanceIdentifier="db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    client("s3").create_bucket(Bucket="tc-home")
    client("s3").create_bucket(
        Bucket="tc-away", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    role = client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("lambda").create_function(
        FunctionName="fn",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": lambda_zip()},
        Tags={"Owner": "ops@example.com"},
    )
    ecs = client("ecs")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_cluster(clusterName="core")
    ecs.create_service(cluster="core", serviceName="web", taskDefinition="web", desiredCount=0)
    # one tagged resource of every other type, so that every tag lookup runs
    prerequisites = Prerequisites(client, MEMBER_ACCOUNT, REGION)
    for recipe in RECIPES.values():
        prerequisites.make(recipe.needs)
        recipe.create(prerequisites, 0, {"Owner": "ops@example.com"})
    return aws


def collector_calls(collector) -> set[tuple[str, str]]:
    """Every (service, operation) one collector's run in the member account made, STS included
    (as in a task process of its own: nothing remembered from an earlier hook)."""
    forget_process_cache()
    recorder = ApiCallRecorder(task="iam")
    ctx = CollectionContext(
        hook=TagComplianceAwsHook("aws_default", recorder=recorder),
        account_id=MEMBER_ACCOUNT,
        region=GLOBAL_REGION if collector.is_global else REGION,
        client_region=REGION,
        regions=(REGION,),
    )
    assert list(collector.collect(ctx)), (
        f"{collector.resource_type}: nothing collected, so not every call ran"
    )
    return calls(recorder)


def cost_explorer_calls(moto_endpoint: str, settings: Settings, monkeypatch) -> set[tuple[str, str]]:
    """Every (service, operation) a Cost Explorer extraction with resource-level costs made (in a
    task process of its own)."""
    forget_process_cache()
    recorders: list[ApiCallRecorder] = []
    make_hook = collect.make_hook

    def recording(
        settings: Settings, recorder: ApiCallRecorder, caller_account: str | None = None
    ) -> TagComplianceAwsHook:
        recorders.append(recorder)
        return make_hook(settings, recorder, caller_account)

    monkeypatch.setattr(collect, "make_hook", recording)
    with CostExplorerEmulator(ledger_table(days=5), TODAY) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_DEFAULT",
            connection_json(moto_endpoint, service_config={"ce": {"endpoint_url": emulator.endpoint_url}}),
        )
        settings = settings.model_copy(
            update={"cost_resource_level": True, "cost_request_budget": 500, "cost_requests_per_second": 50}
        )
        extract_costs(TODAY - timedelta(days=1), ["CostCenter"], settings, today=TODAY)
    return set().union(*(calls(recorder) for recorder in recorders))


def organisation_calls(aws) -> set[tuple[str, str]]:
    """Every (service, operation) discovering the organisation's accounts (whole and by unit) and
    their enabled regions made."""
    forget_process_cache()
    organizations = aws.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    organizations.create_organizational_unit(ParentId=root, Name="workloads")
    recorder = ApiCallRecorder(task="iam")
    hook = TagComplianceAwsHook("aws_default", recorder=recorder)
    assert discover_accounts(hook) == [OWN_ACCOUNT]  # the management account, alone in it
    assert discover_accounts(hook, org_units=[root]) == [OWN_ACCOUNT]
    # the regions each account has enabled: its own, and another account's by AccountId
    assert regions_not_enabled(hook, [OWN_ACCOUNT, MEMBER_ACCOUNT], ["us-east-1", "eu-south-1"]) == {
        OWN_ACCOUNT: {"eu-south-1": "DISABLED"},
        MEMBER_ACCOUNT: {"eu-south-1": "DISABLED"},
    }
    return calls(recorder)


def test_the_policies_grant_exactly_the_actions_of_the_operations_called(
    member_estate, settings, monkeypatch
):
    by_collector = {collector.resource_type: collector_calls(collector) for collector in all_collectors()}
    member_calls = set().union(*by_collector.values())
    # the hook's own STS calls: the caller's identity, then the member role (both by the caller)
    assert {call for call in member_calls if call[0] == "sts"} == {
        ("sts", "GetCallerIdentity"),
        ("sts", "AssumeRole"),
    }
    for collector in all_collectors():
        services = {service for service, _ in by_collector[collector.resource_type]} - {"sts"}
        assert services == set(collector.client_services), collector.resource_type

    cost_calls = cost_explorer_calls(member_estate.endpoint_url, settings, monkeypatch)
    assert {service for service, _ in cost_calls} == {"sts", "ce"}

    # the member role: every operation a collector made with its credentials, nothing else
    member_actions = {iam_action(*call) for call in member_calls if call[0] != "sts"}
    member_policy = load(MEMBER_POLICY)
    assert statements_actions(member_policy["Statement"]) == member_actions
    assert all(statement["Resource"] == "*" for statement in member_policy["Statement"])

    # the connection's own identity: the same in its own account, the member roles, the
    # organisation's accounts, Cost Explorer
    org_calls = organisation_calls(member_estate)
    assert {service for service, _ in org_calls} == {"sts", "organizations", "account"}
    caller_actions = {
        iam_action(*call) for call in member_calls | cost_calls | org_calls
    } - NEEDS_NO_PERMISSION
    assert {iam_action(*call) for call in cost_calls if call[0] == "ce"} == {
        "ce:GetCostAndUsage",
        "ce:GetCostAndUsageWithResources",
    }
    caller_policy = load(CALLER_POLICY)
    assert statements_actions(caller_policy["Statement"]) == caller_actions
    assert "sts:GetCallerIdentity" not in caller_actions
    for statement in caller_policy["Statement"]:
        if statement["Action"] == "sts:AssumeRole":
            assert (
                statement["Resource"] == f"arn:aws:iam::*:role/{Settings.model_fields['role_name'].default}"
            )
        else:
            assert "sts:AssumeRole" not in statement["Action"] and statement["Resource"] == "*"

    # the sandbox's member role carries the published document
    iam = member_estate.client("iam", account_id=MEMBER_ACCOUNT)
    document = iam.get_role_policy(RoleName=ROLE_NAME, PolicyName="TagComplianceRead")["PolicyDocument"]
    assert (json.loads(document) if isinstance(document, str) else document) == member_policy

    # and the sandbox clock guard resolves the endpoint of every service a run calls
    assert set(clock.services_called()) == {service for service, _ in member_calls | cost_calls | org_calls}
