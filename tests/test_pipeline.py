"""The DAG's task callables: time semantics and failing fast on a bad policy."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pendulum
import pytest

from tag_compliance import pipeline
from tag_compliance.policy import PolicyError


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
