"""The DAG's task callables: time semantics and failing fast on a bad policy."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pendulum
import pyarrow.parquet as pq
import pytest

from tag_compliance import pipeline
from tag_compliance.policy import PolicyError
from tests.sql_fixtures import (
    COSTS_SERVICE_ONLY,
    COSTS_WITH_RESOURCES,
    POLICY_DATA,
    SNAPSHOT,
    write_costs,
    write_snapshot,
)


def test_the_snapshot_is_the_data_interval_day():
    start = pendulum.datetime(2026, 11, 20, tz="UTC")
    assert pipeline.snapshot_date_for({"data_interval_start": start}) == date(2026, 11, 20)


def test_a_run_without_data_interval_scores_the_current_utc_day():
    assert pipeline.snapshot_date_for({"data_interval_start": None}) == datetime.now(UTC).date()


def test_a_malformed_policy_fails_the_first_task_naming_file_and_field(tmp_path, settings):
    policy = tmp_path / "team-policy.yaml"
    policy.write_text('version: "1"\nrequired_tags:\n  - key: CostCenter\n    severity: critical\n')
    with pytest.raises(PolicyError, match=r"team-policy\.yaml: required_tags\[0\]\.severity.*'critical'"):
        pipeline.plan({}, settings.model_copy(update={"policy": policy}))


def test_an_exemption_expiry_that_is_not_a_date_fails_the_first_task(tmp_path, settings):
    policy = tmp_path / "team-policy.yaml"
    policy.write_text(
        'version: "1"\nrequired_tags:\n  - key: CostCenter\nexemptions:\n'
        "  - resources: [i-1]\n    reason: legacy\n    expires: 2027-02-30\n"
    )
    with pytest.raises(
        PolicyError,
        match=r"team-policy\.yaml: exemptions\[0\]\.expires: .*'2027-02-30'.*\[date_from_datetime_parsing\]",
    ):
        pipeline.plan({}, settings.model_copy(update={"policy": policy}))


def test_scoring_also_rescores_earlier_snapshots_whose_costs_were_re_extracted(settings):
    day_before = SNAPSHOT - timedelta(days=1)
    for day in (day_before, SNAPSHOT):
        write_snapshot(settings.lake, snapshot_date=day)
    write_costs(settings.lake, COSTS_SERVICE_ONLY, usage_date=day_before)
    policy = settings.model_copy(update={"policy": write_fixture_policy(settings.lake.parent)})
    pipeline.score(day_before.isoformat(), {"days": []}, policy)
    assert resource_costs_of(settings.lake, day_before) == {"service_average", None}  # None: ssm, uncosted

    # final figures for the day before arrive with the next run, with resource-level data
    write_costs(settings.lake, COSTS_WITH_RESOURCES, usage_date=day_before)
    costs = {"days": [day_before.isoformat(), SNAPSHOT.isoformat(), "2026-03-12"]}  # 12th: no snapshot
    result = pipeline.score(SNAPSHOT.isoformat(), costs, policy)

    assert result["rescored"] == [day_before.isoformat()]
    assert resource_costs_of(settings.lake, day_before) == {"resource", None}
    assert resource_costs_of(settings.lake, SNAPSHOT) == {None}  # no costs stored for that day


def write_fixture_policy(directory: Path) -> Path:
    path = directory / "fixture-policy.json"
    path.write_text(json.dumps(POLICY_DATA), encoding="utf-8")
    return path


def resource_costs_of(lake_root: Path, day: date) -> set[str | None]:
    table = pq.read_table(lake_root / "resource_compliance" / f"snapshot_date={day.isoformat()}")
    return set(table["cost_basis"].to_pylist())


def test_backfilling_past_days_under_a_new_policy_rescores_them_with_its_version(settings):
    write_snapshot(settings.lake, snapshot_date=SNAPSHOT)
    past_days = [SNAPSHOT + timedelta(days=offset) for offset in (1, 2)]  # no inventory of their own
    first = settings.model_copy(update={"policy": write_fixture_policy(settings.lake.parent)})
    stricter_policy = {
        **POLICY_DATA,
        "version": "test-2026.2",
        "required_tags": [*POLICY_DATA["required_tags"], {"key": "Owner"}],
    }
    second_path = settings.lake.parent / "stricter.json"
    second_path.write_text(json.dumps(stricter_policy), encoding="utf-8")
    second = settings.model_copy(update={"policy": second_path})

    before = {day: pipeline.score(day.isoformat(), None, first) for day in past_days}
    after = {day: pipeline.score(day.isoformat(), None, second) for day in past_days}

    for day in past_days:
        assert before[day]["inventory_as_of"] == after[day]["inventory_as_of"] == SNAPSHOT.isoformat()
        assert after[day]["violations"] > before[day]["violations"]  # every resource now lacks Owner
        for dataset in ("violations", "resource_compliance", "compliance_summary"):
            table = pq.read_table(settings.lake / dataset / f"snapshot_date={day.isoformat()}")
            assert set(table["policy_version"].to_pylist()) == {"test-2026.2"}, dataset


def test_a_day_before_any_snapshot_fails_saying_why_nothing_was_scored(settings):
    from airflow.sdk.exceptions import AirflowFailException

    write_snapshot(settings.lake, snapshot_date=SNAPSHOT)
    policy = settings.model_copy(update={"policy": write_fixture_policy(settings.lake.parent)})
    with pytest.raises(
        AirflowFailException, match=r"nothing scored for 2026-03-13: .* no inventory snapshot on"
    ):
        pipeline.score("2026-03-13", None, policy)
    assert not (settings.lake / "violations" / "snapshot_date=2026-03-13").exists()


def test_collection_fans_out_to_a_bounded_number_of_task_instances(settings):
    from tag_compliance.aws.collectors import is_global_service, services
    from tag_compliance.collect import plan_collection

    accounts = [f"{100000000000 + n:012d}" for n in range(300)]
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
    chunked = plan_collection(
        settings.model_copy(
            update={
                "accounts": accounts,
                "regions": regions,
                "collect_task_instances": 16,
                "collect_threads": 8,
            }
        )
    )
    assert set(chunked) == set(services())
    for service, service_chunks in chunked.items():
        # 900 targets (300 for a global service), far past max_map_length's 1024 across services
        assert len(service_chunks) == 16
        assert all(service_chunks), service
        targets = [(t["account_id"], t["region"]) for chunk in service_chunks for t in chunk]
        per_account = 1 if is_global_service(service) else 3
        assert len(targets) == len(set(targets)) == 300 * per_account
        # evenly dealt, an account's regions together (its role assumed by one task instance)
        assert max(map(len, service_chunks)) - min(map(len, service_chunks)) <= per_account
        owners = [{t["account_id"] for t in chunk} for chunk in service_chunks]
        assert sum(map(len, owners)) == 300


def test_a_small_organisation_gets_one_task_instance_per_target_at_most(settings):
    from tag_compliance.collect import plan_collection

    chunked = plan_collection(
        settings.model_copy(update={"accounts": ["111111111111"], "regions": ["us-east-1"]})
    )
    assert chunked["ec2"] == [[{"account_id": "111111111111", "region": "us-east-1"}]]


def test_only_the_services_chosen_are_planned_and_an_unknown_one_is_named(settings, monkeypatch):
    from tag_compliance.collect import plan_targets
    from tag_compliance.config import SettingsError, get_settings

    chosen = settings.model_copy(
        update={
            "accounts": ["111111111111"],
            "regions": ["us-east-1", "eu-west-1"],
            "services": ["sqs", "s3"],
        }
    )
    planned = {service: targets for service, targets in plan_targets(chosen).items() if targets}
    assert planned == {
        "s3": [{"account_id": "111111111111", "region": "global"}],
        "sqs": [
            {"account_id": "111111111111", "region": "us-east-1"},
            {"account_id": "111111111111", "region": "eu-west-1"},
        ],
    }
    monkeypatch.setenv("TAG_COMPLIANCE_SERVICES", "sqs,ec3")
    with pytest.raises(
        SettingsError, match=r"TAG_COMPLIANCE_SERVICES='sqs,ec3': 'ec3' not among the services"
    ):
        get_settings()


def test_the_ui_names_a_collection_task_instance_by_what_it_covers():
    assert pipeline.describe_targets([{"account_id": "111111111111", "region": "eu-west-1"}]) == (
        "111111111111/eu-west-1"
    )
    chunk = [{"account_id": f"11111111111{n}", "region": "us-east-1"} for n in range(3)]
    assert pipeline.describe_targets(chunk) == "111111111110/us-east-1 and 2 more"
