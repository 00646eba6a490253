"""Time semantics: which days get live inventory, and the sandbox-only clock."""

from __future__ import annotations

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
    assert live == [{"account_id": "111111111111", "region": "us-east-1"}]
