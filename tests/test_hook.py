"""The hook's retries, backoff, rate limiting, role assumption and failure messages."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from tag_compliance import lake
from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.errors import AwsCollectionError
from tag_compliance.aws.hook import Backoff, TagComplianceAwsHook
from tag_compliance.aws.ratelimit import RateLimit, TokenBucket
from tag_compliance.collect import collect_service
from tests.conftest import MEMBER_ACCOUNT, OWN_ACCOUNT, connection_json
from tests.throttling_proxy import Burst, ThrottlingProxy

TWO_BOTOCORE_ATTEMPTS = {"config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": 2}}}


def throttled_hook(
    monkeypatch, endpoint: str, sleeps: list[float], attempts: int = 4
) -> TagComplianceAwsHook:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(endpoint, **TWO_BOTOCORE_ATTEMPTS))
    return TagComplianceAwsHook(
        "aws_default",
        recorder=ApiCallRecorder(task="test"),
        backoff=Backoff(attempts=attempts, base_delay=0.5, max_delay=4),
        sleep=sleeps.append,
    )


def test_throttling_beyond_botocore_retries_is_backed_off_and_counted(aws, monkeypatch):
    aws.client("ec2").run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)
    sleeps: list[float] = []
    with ThrottlingProxy(aws.endpoint_url, [Burst("ec2", 3, operation="DescribeInstances")]) as proxy:
        hook = throttled_hook(monkeypatch, proxy.url, sleeps)
        client = hook.client_for(OWN_ACCOUNT, "us-east-1", "ec2")
        pages = list(hook.paginate(client, "describe_instances", account_id=OWN_ACCOUNT, region="us-east-1"))

    assert sum(len(r["Instances"]) for p in pages for r in p["Reservations"]) == 2
    stats = hook.recorder.totals("DescribeInstances")
    # requests 1-2 throttled (botocore's 2 attempts), our backoff, request 3 throttled, 4 served
    assert proxy.requests["ec2", "DescribeInstances"] == 4
    assert (stats.calls, stats.pages, stats.throttles, stats.retries, stats.errors) == (1, 1, 3, 3, 0)
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_persistent_throttling_fails_clearly_after_the_backoff_attempts(aws, monkeypatch):
    sleeps: list[float] = []
    with ThrottlingProxy(aws.endpoint_url, [Burst("ec2", 10_000)]) as proxy:
        hook = throttled_hook(monkeypatch, proxy.url, sleeps, attempts=3)
        client = hook.client_for(OWN_ACCOUNT, "eu-west-1", "ec2")
        with pytest.raises(AwsCollectionError, match=r"still throttled \(RequestLimitExceeded\) after 3"):
            hook.call(client, "describe_instances", account_id=OWN_ACCOUNT, region="eu-west-1")

    assert proxy.requests["ec2", "DescribeInstances"] == 6  # 3 backoff attempts x 2 botocore attempts
    stats = hook.recorder.totals("DescribeInstances")
    assert (stats.throttles, stats.errors, stats.pages) == (6, 1, 0)
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0  # the jitter's ceiling doubles


def test_throttling_in_the_middle_of_a_pagination_resumes_from_the_throttled_page(aws, monkeypatch):
    ec2 = aws.client("ec2")
    for _ in range(12):  # moto pages by reservation: one each
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    sleeps: list[float] = []
    # Page 2's request is throttled 3 times: botocore's 2 attempts, then once after our backoff.
    burst = Burst("ec2", 3, after=1, operation="DescribeInstances")
    with ThrottlingProxy(aws.endpoint_url, [burst]) as proxy:
        hook = throttled_hook(monkeypatch, proxy.url, sleeps)
        client = hook.client_for(OWN_ACCOUNT, "us-east-1", "ec2")
        pages = list(
            hook.paginate(
                client, "describe_instances", account_id=OWN_ACCOUNT, region="us-east-1", page_size=5
            )
        )

    ids = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert len(ids) == len(set(ids)) == 12  # no page came twice
    assert len(pages) == 3
    assert proxy.requests["ec2", "DescribeInstances"] == 3 + 3  # three pages, three throttled
    stats = hook.recorder.totals("DescribeInstances")
    assert (stats.calls, stats.pages, stats.items, stats.throttles, stats.errors) == (1, 3, 12, 3, 0)


def _paginate(hook: TagComplianceAwsHook, service: str, method: str) -> None:
    client = hook.client_for(OWN_ACCOUNT, "us-east-1", service)
    list(hook.paginate(client, method, account_id=OWN_ACCOUNT, region="us-east-1"))


def _own_account(hook: TagComplianceAwsHook, service: str, method: str) -> None:
    assert hook.own_account_id == OWN_ACCOUNT  # the hook's own STS client, made before any account


# service -> (how the hook calls it, the method, its operation, the throttling code it sends)
EVERY_SERVICE = {
    "resourcegroupstaggingapi": (_paginate, "get_resources", "GetResources", "ThrottledException"),
    "s3": (_paginate, "list_buckets", "ListBuckets", "SlowDown"),
    "lambda": (_paginate, "list_functions", "ListFunctions", "TooManyRequestsException"),
    "ecs": (_paginate, "list_clusters", "ListClusters", "ThrottlingException"),
    "rds": (_paginate, "describe_db_instances", "DescribeDBInstances", "Throttling"),
    "sts": (_own_account, "get_caller_identity", "GetCallerIdentity", "Throttling"),
}


@pytest.mark.parametrize(
    ("service", "call", "method", "operation", "code"), [(s, *v) for s, v in EVERY_SERVICE.items()]
)
def test_every_services_throttling_is_backed_off_and_counted(
    aws, monkeypatch, service, call, method, operation, code
):
    from tests.throttling_proxy import THROTTLED

    assert THROTTLED[service].code == code
    sleeps: list[float] = []
    with ThrottlingProxy(aws.endpoint_url, [Burst(service, 3)]) as proxy:
        hook = throttled_hook(monkeypatch, proxy.url, sleeps)
        call(hook, service, method)

    assert proxy.throttled == {service: 3}
    stats = hook.recorder.totals(operation)
    # 2 throttled botocore attempts, our backoff, 1 throttled and botocore's retry served
    assert (stats.pages, stats.throttles, stats.retries, stats.errors) == (1, 3, 3, 0)
    assert len(sleeps) == 1


def test_member_accounts_are_reached_through_the_assumed_role(aws):
    hook = TagComplianceAwsHook("aws_default")
    member = hook.client_for(MEMBER_ACCOUNT, "us-east-1", "sts")
    assert member.get_caller_identity()["Account"] == MEMBER_ACCOUNT
    assert hook.own_account_id == OWN_ACCOUNT
    assert hook.recorder.totals("AssumeRole").pages == 1


def test_hooks_of_one_process_ask_sts_once_however_many_threads_start_together(aws):
    hooks = [TagComplianceAwsHook("aws_default", recorder=ApiCallRecorder(task=f"t{n}")) for n in range(8)]
    start = threading.Barrier(len(hooks))

    def reach_member(hook: TagComplianceAwsHook) -> str:
        start.wait()
        return hook.client_for(MEMBER_ACCOUNT, "us-east-1", "sts").get_caller_identity()["Account"]

    with ThreadPoolExecutor(len(hooks)) as pool:
        assert list(pool.map(reach_member, hooks)) == [MEMBER_ACCOUNT] * len(hooks)
    for operation in ("GetCallerIdentity", "AssumeRole"):
        assert sum(hook.recorder.totals(operation).pages for hook in hooks) == 1, operation


def test_credentials_about_to_expire_are_not_reused(aws, monkeypatch):
    from tag_compliance.aws import hook as hook_module

    first = TagComplianceAwsHook("aws_default")
    first.client_for(MEMBER_ACCOUNT, "us-east-1", "sts")
    again = TagComplianceAwsHook("aws_default")
    again.client_for(MEMBER_ACCOUNT, "us-east-1", "sts")
    assert again.recorder.totals("AssumeRole").pages == 0  # reused
    # moto's credentials last an hour: with a margin longer than that they are always too old
    monkeypatch.setattr(hook_module, "CREDENTIALS_MARGIN", timedelta(hours=2))
    late = TagComplianceAwsHook("aws_default")
    late.client_for(MEMBER_ACCOUNT, "us-east-1", "sts")
    assert late.recorder.totals("AssumeRole").pages == 1


def test_unreachable_endpoint_fails_the_collection_and_writes_no_partition(monkeypatch, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        connection_json(f"http://127.0.0.1:{closed_port}", **TWO_BOTOCORE_ATTEMPTS),
    )
    settings = settings.model_copy(update={"accounts": [OWN_ACCOUNT]})
    with pytest.raises(
        AwsCollectionError, match=rf"cannot reach AWS endpoint http://127.0.0.1:{closed_port}"
    ):
        collect_service("ec2", OWN_ACCOUNT, "us-east-1", date(2026, 11, 20), settings)
    assert not lake.has_files(settings.lake, lake.RESOURCES)
    assert lake.has_files(settings.lake, lake.API_CALLS)  # the failed attempt is accounted for


def test_token_bucket_allows_the_burst_then_paces_at_the_rate():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(RateLimit(rate=10, burst=3), clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.1, 0.1])
    assert now[0] == pytest.approx(0.3)
