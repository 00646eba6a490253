"""Throttling through a real proxy: the DAG's output equals a clean run's, every throttle counted.

One sandbox, two dag.test() runs of the same day into two lakes: one straight to the sandbox,
one through :class:`ThrottlingProxy`, which answers every service (EC2, RDS, S3, Lambda, ECS,
the Tagging API, STS, Cost Explorer) with bursts of throttled responses longer than botocore's
attempts, in the service's own error format, early in the run and again in the middle of
paginations. Resources and violations must be equal row for row, and ``api_calls.throttles``
must equal the throttled responses the proxy sent, per service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tag_compliance.config import environment
from tag_compliance.sandbox import Sandbox
from tests.test_end_to_end import RUN_DAY, lake_env, run_at, run_dag
from tests.throttling_proxy import THROTTLED, Burst, ThrottlingProxy

pytestmark = pytest.mark.e2e

BOTOCORE_ATTEMPTS = 3
BURST = BOTOCORE_ATTEMPTS + 1  # outlives botocore's retries: the hook's own backoff must save it
SERVICES = sorted(THROTTLED)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(seed=11, data_dir=tmp_path_factory.mktemp("sandbox"), scale=0.2) as running:
        yield running


def run_into(root: Path, env: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """One daily run (live inventory, as the morning after RUN_DAY) into ``root``'s lake."""
    with environment(lake_env(env, root)):
        assert run_dag(run_at(RUN_DAY), sandbox_clock=run_at(RUN_DAY)).state == "success"
    return duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)


def through(proxy: ThrottlingProxy, env: dict[str, str]) -> dict[str, str]:
    """The sandbox's environment with every endpoint (Cost Explorer's too) on the proxy."""
    connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    extra = connection["extra"]
    extra["endpoint_url"] = proxy.url
    extra["service_config"] = {"ce": {"endpoint_url": proxy.url}}
    extra["config_kwargs"] = {"retries": {"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS}}
    return {**env, "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}


@pytest.fixture(scope="module")
def runs(airflow_db, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory):
    clean = run_into(tmp_path_factory.mktemp("clean"), sandbox.env())
    # Per service: a burst on its first requests, and one after a few were served (for the
    # list calls, that is a later page of a pagination: PAGE_SIZE makes every list paginate).
    # STS answers a run twice (the caller's identity, then the member role, each remembered for
    # the process): its second burst falls on the second.
    bursts = [
        Burst(service, BURST, after=after)
        for service in SERVICES
        for after in (0, 1 if service == "sts" else 3)
    ]
    with ThrottlingProxy(sandbox.endpoint_url, bursts, upstreams={"ce": sandbox.cost_explorer_url}) as proxy:
        throttled = run_into(tmp_path_factory.mktemp("throttled"), through(proxy, sandbox.env()))
    return clean, throttled, proxy


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """Rows in a canonical order, maps as sorted items (so the comparison is exact and total)."""

    def canonical(value: object) -> object:
        return tuple(sorted(value.items())) if isinstance(value, dict) else value

    return sorted((tuple(canonical(value) for value in row) for row in con.sql(sql).fetchall()), key=repr)


def test_every_service_was_throttled_beyond_botocores_attempts(runs):
    _, _, proxy = runs
    assert proxy.throttled == dict.fromkeys(SERVICES, 2 * BURST)


def test_resources_and_violations_equal_a_clean_runs_exactly(runs):
    clean, throttled, _ = runs
    resources = "select * exclude (collected_at) from resources"
    assert rows(throttled, resources) == rows(clean, resources)
    assert len(rows(clean, resources)) > 100
    violations = "select * from violations"
    assert rows(throttled, violations) == rows(clean, violations)
    costs = "select * exclude (extracted_at) from costs"
    assert rows(throttled, costs) == rows(clean, costs)


def test_api_calls_count_every_throttled_response_per_service(runs):
    clean, throttled, proxy = runs
    counted = dict(throttled.sql("select service, sum(throttles) from api_calls group by all").fetchall())
    assert {service: n for service, n in counted.items() if n} == dict(proxy.sent())
    # the clean run: nothing throttled but, perhaps, by Cost Explorer's own rate limit
    clean_counted = dict(clean.sql("select service, sum(throttles) from api_calls group by all").fetchall())
    assert {service for service, n in clean_counted.items() if n} <= {"ce"}


def test_no_collection_saw_a_page_twice(runs):
    _, throttled, _ = runs
    pages = dict(throttled.sql("select operation, sum(pages) from api_calls group by all").fetchall())
    clean, _, _ = runs
    assert pages == dict(clean.sql("select operation, sum(pages) from api_calls group by all").fetchall())
