"""The sandbox with history: a deterministic timeline, moto following it day by day, a ledger that agrees."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest

from tag_compliance.sandbox import Sandbox, load_changes, load_ledger, load_manifest
from tag_compliance.sandbox.estate import (
    ACCOUNTS,
    EC2,
    ECS,
    LAMBDA,
    MANAGEMENT_ACCOUNT,
    RDS,
    REGIONS,
    RESOURCE_TYPES,
    ROLE_NAME,
    S3,
    S3_HOME_REGION,
    build_estate,
    check_estate,
    expected_violations,
)
from tag_compliance.sandbox.ledger import build_ledger
from tag_compliance.sandbox.timeline import (
    BREAKS,
    BROKEN,
    CHANGE_KINDS,
    CREATED,
    DELETED,
    FIXED,
    FIXES,
    RATES,
    Timeline,
    build_timeline,
    predicted_ids,
)

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 3, 15)
LEDGER_DAYS = 45
WEEK = [TODAY - timedelta(days=n) for n in range(7, 0, -1)]
SCALE = 0.1


def window() -> list[date]:
    return [TODAY - timedelta(days=n) for n in range(LEDGER_DAYS - 1, -1, -1)]


def fingerprint(timeline: Timeline) -> list[Any]:
    """Everything about a timeline except its calendar dates (changes by day position)."""
    return [
        [
            (c.kind, c.detail, c.ident, c.tag_key, c.tags_before, c.tags_after, c.violations_after)
            for c in timeline.changes_on(day)
        ]
        for day in timeline.days
    ] + [[(r.ident, tuple(r.tags.items()), r.state) for r in timeline.estate_on(timeline.days[-1]).resources]]


@pytest.fixture(scope="module")
def week() -> Timeline:
    return build_timeline(42, SCALE, WEEK)


# --------------------------------------------------------------------------- the timeline (no moto)


def test_timeline_is_deterministic_and_prefix_stable(week: Timeline) -> None:
    assert fingerprint(build_timeline(42, SCALE, WEEK)) == fingerprint(week)
    assert fingerprint(build_timeline(43, SCALE, WEEK)) != fingerprint(week)
    # the calendar does not matter, only the day's position
    shifted = build_timeline(42, SCALE, [day - timedelta(days=100) for day in WEEK])
    assert fingerprint(shifted) == fingerprint(week)
    # a shorter history is the start of a longer one
    short = build_timeline(42, SCALE, WEEK[:3])
    for day in WEEK[:3]:
        assert short.changes_on(day) == week.changes_on(day)
    # the first day is the static estate
    first = week.estate_on(WEEK[0])
    assert [(r.ident, r.tags, r.state) for r in first.resources] == [
        (r.ident, r.tags, r.state) for r in build_estate(42, SCALE).resources
    ]
    assert week.changes_on(WEEK[0]) == []


def kinds_of(changes: list[Any]) -> set[tuple[str, str]]:
    """(kind, resource type) for created / deleted, (kind, detail) for fixed / broken."""
    return {
        (c.kind, c.resource_type) if c.kind in (CREATED, DELETED) else (c.kind, c.detail) for c in changes
    }


EVERY_KIND = (
    {(kind, rtype) for kind in (CREATED, DELETED) for rtype in RESOURCE_TYPES}
    | {(FIXED, detail) for detail in FIXES}
    | {(BROKEN, detail) for detail in BREAKS}
)


def test_every_kind_of_change_happens_within_any_two_days_even_at_small_scale(week: Timeline) -> None:
    assert kinds_of([c for day in WEEK for c in week.changes_on(day)]) == EVERY_KIND
    for first, second in itertools.pairwise(WEEK[1:]):
        assert kinds_of(week.changes_on(first) + week.changes_on(second)) == EVERY_KIND, first


def test_daily_change_rates_at_full_scale() -> None:
    timeline = build_timeline(42, 1.0, WEEK[:3])
    for before, day in itertools.pairwise(WEEK[:3]):
        inventory = len(timeline.estate_on(before).inventory)
        counts = Counter(c.kind for c in timeline.changes_on(day))
        assert set(counts) == set(CHANGE_KINDS)
        for kind, rate in RATES.items():
            assert abs(counts[kind] - rate * inventory) <= 2, (day, kind, counts[kind], inventory)
        after = len(timeline.estate_on(day).inventory)
        assert after == inventory + counts[CREATED] - counts[DELETED]


def test_every_day_keeps_the_estate_invariants_and_the_changes_replay(week: Timeline) -> None:
    seen_names: set[tuple[str, ...]] = set()
    for before_day, day in itertools.pairwise(WEEK):
        before = {r.ident: r for r in week.estate_on(before_day).resources}
        after = {r.ident: r for r in week.estate_on(day).resources}
        seen_names |= set(before)
        assert check_estate(week.estate_on(day)) == [], day
        for r in after.values():
            assert r.expected == expected_violations(r.resource_type, r.tags)
        changed = {c.ident: c for c in week.changes_on(day)}
        assert len(changed) == len(week.changes_on(day))  # at most one change per resource a day
        for ident, r in after.items():
            if ident not in changed:  # untouched: exactly as the day before
                old = before[ident]
                assert (r.tags, r.state) == (old.tags, old.state), ident
        for ident, change in changed.items():
            if change.kind == CREATED:
                assert ident not in seen_names and ident in after  # new names only
                assert change.tags_before is None and change.tags_after == after[ident].tags
            elif change.kind == DELETED:
                assert before[ident].inventoried
                assert ident not in after or (ident[2] == EC2 and after[ident].state == "terminated")
                assert change.tags_after is None
            else:
                assert change.tags_before == before[ident].tags and change.tags_after == after[ident].tags
                had = {key for key, _ in change.violations_before}
                has = {key for key, _ in change.violations_after}
                if change.kind == FIXED:
                    assert change.tag_key in had and change.tag_key not in has, change
                    assert len(change.violations_after) < len(change.violations_before)
                else:
                    assert change.tag_key not in had and change.tag_key in has, change


def test_deleted_resources_never_come_back(week: Timeline) -> None:
    for r in week.resources:
        born, gone = week.lifespan(r)
        days = [day for day in WEEK if week.exists_on(r, day)]
        if r.state == "terminated":
            assert days == []
            continue
        assert days == [day for day in WEEK if (born is None or born <= day) and (gone is None or day < gone)]
        assert days, r.ident  # nothing is created and deleted on the same day


# --------------------------------------------------------------------------- the ledger (no moto)


def ce_id(timeline: Timeline, r: Any) -> str:
    resource_id, arn = timeline.ids_of(r)
    return resource_id if r.resource_type in (EC2, S3) else arn


def clamp(day: date) -> date:
    """The history day whose estate a ledger day has."""
    return min(max(day, WEEK[0]), WEEK[-1])


@pytest.fixture(scope="module")
def week_ledger(week: Timeline) -> pa.Table:
    return build_ledger(build_estate(42, SCALE), TODAY, days=LEDGER_DAYS, timeline=week)


def test_ledger_costs_resources_only_on_days_they_exist_with_that_days_tags(
    week: Timeline, week_ledger: pa.Table
) -> None:
    rows: dict[str, list[dict]] = defaultdict(list)
    for row in week_ledger.to_pylist():
        if row["resource_id"]:
            rows[row["resource_id"]].append(row)
    changing = 0
    for r in week.resources:
        if r.state == "terminated":
            continue  # the estate's own terminated instances: see test_ledger.py
        mine = rows.pop(ce_id(week, r))
        expected_days = [day for day in window() if week.exists_on(r, clamp(day))]
        assert [row["usage_date"] for row in mine] == expected_days, r.ident
        assert all(row["inventoried"] for row in mine)
        for row in mine:
            assert dict(row["tags"]) == week.tags_on(r, clamp(row["usage_date"])), (
                r.ident,
                row["usage_date"],
            )
        changing += len({tuple(row["tags"]) for row in mine}) > 1
    assert changing >= 10  # fixed / broken resources change tags in the ledger
    # what remains: the estate's terminated instances and the invented deleted resources
    assert not any(row["inventoried"] for remaining in rows.values() for row in remaining)


def test_ledger_inventory_of_each_day_is_that_days_estate(week: Timeline, week_ledger: pa.Table) -> None:
    by_day: dict[date, dict[str, dict[str, str]]] = defaultdict(dict)
    for row in week_ledger.to_pylist():
        if row["inventoried"]:
            by_day[row["usage_date"]][row["resource_id"]] = dict(row["tags"])
    for day in window():
        estate = week.estate_on(clamp(day))
        assert by_day[day] == {ce_id(week, r): r.tags for r in estate.inventory}, day


def test_ledger_with_a_one_day_history_is_the_static_ledger() -> None:
    estate = build_estate(42, 0.05)
    timeline = build_timeline(42, 0.05, [TODAY - timedelta(days=1)])
    for r in estate.resources:
        r.resource_id, r.arn = predicted_ids(42, r)
    assert build_ledger(estate, TODAY, days=LEDGER_DAYS, timeline=timeline).equals(
        build_ledger(estate, TODAY, days=LEDGER_DAYS)
    )


# --------------------------------------------------------------------------- a real sandbox


class ReadBack:
    """Lists the estate the way the collectors do, with plain boto3 (clients kept: they are slow to make)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.session = boto3.session.Session()
        self.clients: dict[tuple[str, str, str], Any] = {}
        fake = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.credentials: dict[str, dict[str, str]] = {MANAGEMENT_ACCOUNT: fake}
        sts = self.session.client("sts", endpoint_url=endpoint, region_name="us-east-1", **fake)
        for account in ACCOUNTS[1:]:
            assumed = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{ROLE_NAME}", RoleSessionName="history-test"
            )["Credentials"]
            self.credentials[account] = {
                "aws_access_key_id": assumed["AccessKeyId"],
                "aws_secret_access_key": assumed["SecretAccessKey"],
                "aws_session_token": assumed["SessionToken"],
            }

    def client(self, account: str, service: str, region: str) -> Any:
        key = (account, service, region)
        if key not in self.clients:
            self.clients[key] = self.session.client(
                service, endpoint_url=self.endpoint, region_name=region, **self.credentials[account]
            )
        return self.clients[key]

    def tagging(self, account: str, region: str, rtype: str) -> dict[str, dict[str, str]]:
        pages = self.client(account, "resourcegroupstaggingapi", region).get_paginator("get_resources")
        return {
            item["ResourceARN"]: {t["Key"]: t.get("Value", "") for t in item["Tags"]}
            for page in pages.paginate(ResourceTypeFilters=[rtype])
            for item in page["ResourceTagMappingList"]
        }

    def __call__(self) -> dict[tuple[str, str, str, str], dict[str, str]]:
        """(account, region, type, resource_id) -> tags."""
        found: dict[tuple[str, str, str, str], dict[str, str]] = {}
        live = ["pending", "running", "shutting-down", "stopping", "stopped"]
        for account in ACCOUNTS:
            for region in REGIONS:
                pages = self.client(account, "ec2", region).get_paginator("describe_instances")
                for page in pages.paginate(Filters=[{"Name": "instance-state-name", "Values": live}]):
                    for reservation in page["Reservations"]:
                        for instance in reservation["Instances"]:
                            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                            found[(account, region, EC2, instance["InstanceId"])] = tags
                pages = self.client(account, "rds", region).get_paginator("describe_db_instances")
                for page in pages.paginate():
                    for db in page["DBInstances"]:
                        tags = {t["Key"]: t["Value"] for t in db.get("TagList", [])}
                        found[(account, region, RDS, db["DBInstanceIdentifier"])] = tags
                function_tags = self.tagging(account, region, "lambda:function")
                pages = self.client(account, "lambda", region).get_paginator("list_functions")
                for page in pages.paginate():
                    for fn in page["Functions"]:
                        tags = function_tags.get(fn["FunctionArn"], {})
                        found[(account, region, LAMBDA, fn["FunctionName"])] = tags
                ecs = self.client(account, "ecs", region)
                for cluster_arn in ecs.list_clusters()["clusterArns"]:
                    cluster = cluster_arn.rsplit("/", 1)[1]
                    arns = ecs.list_services(cluster=cluster_arn)["serviceArns"]
                    for start in range(0, len(arns), 10):
                        batch = arns[start : start + 10]
                        answer = ecs.describe_services(cluster=cluster_arn, services=batch, include=["TAGS"])
                        assert not answer["failures"]
                        for service in answer["services"]:
                            tags = {t["key"]: t.get("value", "") for t in service.get("tags", [])}
                            found[(account, region, ECS, f"{cluster}/{service['serviceName']}")] = tags
            bucket_tags = self.tagging(account, S3_HOME_REGION, "s3:bucket")
            for bucket in self.client(account, "s3", S3_HOME_REGION).list_buckets()["Buckets"]:
                tags = bucket_tags.get(f"arn:aws:s3:::{bucket['Name']}", {})
                found[(account, "global", S3, bucket["Name"])] = tags
        return found


def manifest_view(table: pa.Table) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """The truth of the estate that changes from day to day (the five types of RESOURCE_TYPES; the
    sandbox's breadth is made once and never changes)."""
    return {
        (row["account_id"], row["region"], row["resource_type"], row["resource_id"]): dict(row["tags"])
        for row in table.to_pylist()
        if row["resource_type"] in RESOURCE_TYPES
    }


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("history")
    (data_dir / "manifest" / "days" / "2000-01-01").mkdir(parents=True)  # left by an earlier run
    with Sandbox(seed=42, data_dir=data_dir, scale=SCALE, today=TODAY, history_days=3) as running:
        yield running


def test_moto_follows_the_timeline_day_by_day(sandbox: Sandbox) -> None:
    history = [TODAY - timedelta(days=n) for n in (3, 2, 1)]
    assert sandbox.history == history and sandbox.day == history[0]
    assert sandbox.timeline is not None
    read_back = ReadBack(sandbox.endpoint_url)
    seen_kinds: list[Any] = []
    previous: dict[tuple[str, str, str, str], dict[str, str]] | None = None
    for day in history:
        sandbox.advance_to(day)
        assert sandbox.day == day
        manifest = load_manifest(sandbox.manifest_path)
        truth = manifest_view(manifest)
        assert read_back() == truth, day
        assert load_manifest(sandbox.data_dir, day=day).equals(manifest)
        assert sandbox.day_manifest_path(day).is_file()
        summary = json.loads(sandbox.summary_path.read_text())
        assert summary["day"] == day.isoformat() and summary["resources_total"] == manifest.num_rows
        changes = load_changes(sandbox.data_dir, day)
        assert changes == json.loads(sandbox.changes_path(day).read_text())
        if previous is None:
            assert changes == []
        else:
            # the changes explain the whole difference between two days' truths
            ids = {(c["account_id"], c["region"], c["resource_type"], c["resource_id"]): c for c in changes}
            for key in previous.keys() | truth.keys():
                if previous.get(key) != truth.get(key):
                    change = ids[key]
                    assert previous.get(key) == change["tags_before"], key
                    assert truth.get(key) == change["tags_after"], key
        seen_kinds += sandbox.timeline.changes_on(day)
        previous = truth
    assert kinds_of(seen_kinds) == EVERY_KIND
    days_dir = sandbox.data_dir / "manifest" / "days"
    assert sorted(path.name for path in days_dir.iterdir()) == [day.isoformat() for day in history]
    history_file = json.loads((sandbox.data_dir / "manifest" / "history.json").read_text())
    assert history_file["current"] == history[-1].isoformat()
    assert history_file["days"] == [day.isoformat() for day in history]

    # idempotent for the same day, only forward, only history days
    sandbox.advance_to(history[-1])
    assert manifest_view(load_manifest(sandbox.manifest_path)) == previous
    with pytest.raises(ValueError, match="only moves forward"):
        sandbox.advance_to(history[0])
    with pytest.raises(ValueError, match="not a history day"):
        sandbox.advance_to(TODAY)


def test_ledger_and_cost_explorer_follow_the_timeline(sandbox: Sandbox) -> None:
    sandbox.advance_to(sandbox.history[-1])
    timeline = sandbox.timeline
    assert timeline is not None
    ledger = load_ledger(sandbox.ledger_path)
    # built once at start, with the placeholder ids renamed since: as if built from scratch now
    assert ledger.equals(
        build_ledger(
            build_estate(42, SCALE), TODAY, days=LEDGER_DAYS, timeline=timeline, breadth=sandbox.breadth
        )
    )
    by_day: dict[date, dict[str, dict[str, str]]] = defaultdict(dict)
    for row in ledger.to_pylist():
        # the changing estate (the breadth costs every day alike: tests/test_ledger.py)
        if row["inventoried"] and row["resource_type"] in RESOURCE_TYPES:
            by_day[row["usage_date"]][row["resource_id"]] = dict(row["tags"])
    for day in sandbox.history:
        # every day reconciles with that day's manifest: ids as Cost Explorer reports them, and tags
        expected = {
            row["resource_id"] if row["resource_type"] in (EC2, S3) else row["arn"]: dict(row["tags"])
            for row in load_manifest(sandbox.data_dir, day=day).to_pylist()
            if row["resource_type"] in RESOURCE_TYPES  # the ledger costs the changing estate
        }
        assert by_day[day] == expected, day
    assert by_day[TODAY] == by_day[sandbox.history[-1]]
    assert by_day[TODAY - timedelta(days=30)] == by_day[sandbox.history[0]]

    # the emulator serves the refreshed ledger: instances created on the last day have their real ids
    created = [
        c
        for c in timeline.changes_on(sandbox.history[-1]) + timeline.changes_on(sandbox.history[-2])
        if c.kind == CREATED and c.resource_type == EC2
    ]
    assert created
    day = sandbox.history[-1]
    ce = boto3.client(
        "ce",
        endpoint_url=sandbox.cost_explorer_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    answer = ce.get_cost_and_usage_with_resources(
        TimePeriod={"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        Granularity="DAILY",
        Metrics=["UnblendedCost"],
        Filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}},
        GroupBy=[{"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
    )
    served = {group["Keys"][0] for result in answer["ResultsByTime"] for group in result["Groups"]}
    planned = {r.ident: r for r in timeline.estate_on(day).resources}
    for change in created:
        instance_id = timeline.ids_of(change.ident)[0]
        assert instance_id in served
        assert instance_id != predicted_ids(42, planned[change.ident])[0]  # not the placeholder


def test_cli_prints_the_history_dates_first(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tag_compliance.sandbox", "--today", "2026-03-15", "--history-days", "2"]
    process = subprocess.Popen(
        [*command, "--scale", "0.03", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "# history: 2026-03-13 2026-03-14\n"  # a comment: eval-safe
        process.send_signal(signal.SIGTERM)  # while starting: stops cleanly too
        assert process.wait(timeout=300) == 128 + signal.SIGTERM  # a guard, not a speed check
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    bad = subprocess.run([*command, "--day", "2026-03-15"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "not one of the --history-days dates" in bad.stderr
