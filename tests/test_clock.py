"""Time semantics: which days get live inventory, and the sandbox-only clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from tag_compliance import clock, pipeline
from tests.conftest import connection_json

CLOCK = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)


@pytest.fixture
def sandboxed(settings, monkeypatch):
    """Settings with the sandbox clock, and a connection that only reaches 127.0.0.1."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        connection_json(
            "http://127.0.0.1:5000", service_config={"ce": {"endpoint_url": "http://localhost:9"}}
        ),
    )
    return settings.model_copy(update={"sandbox_clock": CLOCK})


def test_without_the_sandbox_clock_now_is_the_wall_clock(settings):
    before = datetime.now(UTC)
    assert before <= clock.now(settings) <= datetime.now(UTC)


def test_the_sandbox_clock_replaces_now_against_a_local_sandbox(sandboxed):
    assert clock.now(sandboxed) == CLOCK
    assert pipeline.snapshot_date_for({"data_interval_start": None}, sandboxed) == date(2026, 3, 15)


@pytest.mark.parametrize(
    ("endpoint", "service_config", "named"),
    [
        ("https://ec2.us-east-1.amazonaws.com", {}, "https://ec2.us-east-1.amazonaws.com"),
        (
            "http://127.0.0.1:5000",
            {"ce": {"endpoint_url": "https://ce.us-east-1.amazonaws.com"}},
            "ce.us-east",
        ),
        ("http://10.0.0.8:5000", {}, "10.0.0.8"),
    ],
)
def test_the_sandbox_clock_is_refused_unless_every_endpoint_is_local(
    settings, monkeypatch, endpoint, service_config, named
):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(endpoint, service_config=service_config))
    with pytest.raises(clock.SandboxClockError, match=rf"TAG_COMPLIANCE_SANDBOX_CLOCK is set.*{named}"):
        clock.now(settings.model_copy(update={"sandbox_clock": CLOCK}))


def test_the_sandbox_clock_is_refused_for_a_connection_without_endpoint(settings, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}'
    )
    with pytest.raises(clock.SandboxClockError, match=r"AWS's own endpoints"):
        pipeline.plan({}, settings.model_copy(update={"sandbox_clock": CLOCK}))


def test_only_the_day_that_just_ended_and_today_get_live_inventory(sandboxed):
    today = CLOCK.date()
    assert clock.inventory_is_live(today, sandboxed)
    assert clock.inventory_is_live(today - timedelta(days=1), sandboxed)
    assert not clock.inventory_is_live(today - timedelta(days=2), sandboxed)


def test_a_past_day_collects_nothing_live(sandboxed):
    sandboxed = sandboxed.model_copy(update={"accounts": ["111111111111"]})
    assert pipeline.targets("ec2", (CLOCK.date() - timedelta(days=2)).isoformat(), sandboxed) == []
    live = pipeline.targets("ec2", (CLOCK.date() - timedelta(days=1)).isoformat(), sandboxed)
    assert live == [[{"account_id": "111111111111", "region": "us-east-1"}]]


LOOPBACK = "http://127.0.0.1:5000"
# Every AWS service a run's clients call: the collectors' own, the Tagging API they read tags from,
# STS (the connection's own account, member roles) and Cost Explorer. tests/test_iam_policy.py checks
# this is what a run really calls.
SERVICES_CALLED = ["ce", "ec2", "ecs", "lambda", "rds", "resourcegroupstaggingapi", "s3", "sts"]


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection attempt, refused and remembered: the guard must not make any."""
    import socket

    attempts: list[object] = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError(f"test: no network for the sandbox clock guard ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def sandbox_clock(settings):
    return settings.model_copy(update={"sandbox_clock": CLOCK})


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"])
def test_every_loopback_form_is_accepted_without_a_network_call(settings, monkeypatch, no_network, endpoint):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(endpoint))
    assert clock.now(sandbox_clock(settings)) == CLOCK
    assert no_network == []


@pytest.mark.parametrize("service", SERVICES_CALLED)
def test_a_null_service_endpoint_sends_that_service_to_aws_and_is_refused(settings, monkeypatch, service):
    # The provider reads service_config.<service>.endpoint_url as given: null means "no custom endpoint",
    # so that service's clients go to AWS even though the connection's own endpoint_url is local.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        connection_json(LOOPBACK, service_config={service: {"endpoint_url": None}}),
    )
    with pytest.raises(
        clock.SandboxClockError, match=rf"AWS's own endpoints: {service} at https://[^ ]*amazonaws"
    ):
        clock.now(sandbox_clock(settings))


def test_a_role_arn_is_assumed_through_aws_sts_whatever_the_connection_endpoint(settings, monkeypatch):
    # The provider's own AssumeRole for role_arn ignores extra.endpoint_url (only
    # service_config.sts.endpoint_url counts): with a local endpoint_url it still asks AWS's STS.
    role = "arn:aws:iam::123456789012:role/Sandbox"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(LOOPBACK, role_arn=role))
    with pytest.raises(
        clock.SandboxClockError,
        match=r"sts \(AssumeRole of the connection's role_arn\) at https://sts\.[^ ]*amazonaws",
    ):
        clock.now(sandbox_clock(settings))


def test_a_role_arn_assumed_through_a_local_sts_is_accepted_without_assuming_it(
    settings, monkeypatch, no_network
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        connection_json(
            LOOPBACK,
            role_arn="arn:aws:iam::123456789012:role/Sandbox",
            service_config={"sts": {"endpoint_url": "http://localhost:5001"}},
        ),
    )
    assert clock.now(sandbox_clock(settings)) == CLOCK
    assert no_network == []  # no AssumeRole, no credential lookup


@pytest.mark.parametrize(
    ("endpoint", "env", "refused"),
    [
        # no endpoint in the connection: botocore's own settings decide, as for the real clients
        (None, {"AWS_ENDPOINT_URL": LOOPBACK}, None),
        (
            None,
            {"AWS_ENDPOINT_URL": LOOPBACK, "AWS_ENDPOINT_URL_EC2": "https://ec2.example.com"},
            "ec2 at https://ec2.example.com",
        ),
        (
            None,
            {"AWS_ENDPOINT_URL": LOOPBACK, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
            "AWS's own endpoints",
        ),
        # the connection's endpoint_url is passed to every client and wins over the environment
        (
            LOOPBACK,
            {"AWS_ENDPOINT_URL_EC2": "https://ec2.example.com", "AWS_USE_FIPS_ENDPOINT": "true"},
            None,
        ),
    ],
)
def test_botocore_endpoint_settings_count_as_the_clients_would_apply_them(
    settings, monkeypatch, tmp_path, no_network, endpoint, env, refused
):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    extra = {"region_name": "us-east-1", **({"endpoint_url": endpoint} if endpoint else {})}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": extra}))
    if refused is None:
        assert clock.now(sandbox_clock(settings)) == CLOCK
    else:
        with pytest.raises(clock.SandboxClockError, match=re.escape(refused)):
            clock.now(sandbox_clock(settings))
    assert no_network == []


def test_the_guard_needs_no_credentials_and_looks_none_up(settings, monkeypatch, tmp_path, no_network):
    """Building a client normally resolves credentials, which may ask the instance metadata service."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    extra = {"endpoint_url": LOOPBACK, "region_name": "us-east-1"}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": extra}))
    assert clock.now(sandbox_clock(settings)) == CLOCK
    assert no_network == []


def test_an_endpoint_botocore_rejects_is_refused_naming_it(settings, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json("127.0.0.1 5000"))
    with pytest.raises(clock.SandboxClockError, match=r"aws_default.*127\.0\.0\.1 5000"):
        clock.now(sandbox_clock(settings))
