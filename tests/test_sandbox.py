"""The sandbox: a deterministic, fully known messy estate, and a moto server that never outlives us."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from tag_compliance.sandbox import Sandbox, load_ledger, load_manifest
from tag_compliance.sandbox.estate import (
    ACCOUNTS,
    EC2,
    ECS,
    EMPTY,
    INVALID_FORMAT,
    INVALID_VALUE,
    LAMBDA,
    LONG_KEY,
    LONG_VALUE,
    MISSING,
    PROHIBITED,
    RDS,
    REGIONS,
    RESOURCE_TYPES,
    S3,
    UNICODE_TAGS,
    VIOLATION_TYPES,
    WRONG_CASE,
    Estate,
    build_estate,
    check_estate,
    expected_violations,
    load_policy,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def estate() -> Estate:
    return build_estate(42)


def _fingerprint(estate: Estate) -> list[tuple[object, ...]]:
    return [
        (r.account_id, r.region, r.resource_type, r.name, tuple(r.tags.items()), r.expected, r.state)
        for r in estate.resources
    ]


def test_same_seed_same_estate_other_seed_other_estate(estate: Estate) -> None:
    assert _fingerprint(build_estate(42)) == _fingerprint(estate)
    assert _fingerprint(build_estate(43)) != _fingerprint(estate)


def test_plan_invariants_hold(estate: Estate) -> None:
    assert check_estate(estate) == []
    assert check_estate(build_estate(7, scale=0.1)) == []


def test_sizes(estate: Estate) -> None:
    inventory = estate.inventory
    assert len(inventory) >= 1500
    for account in ACCOUNTS:
        for region in REGIONS:
            ec2 = estate.of(account, region, EC2)
            states = Counter(r.state for r in ec2)
            assert states["running"] + states["stopped"] >= 80
            assert states["stopped"] > 0 and states["terminated"] > 0
            assert len(estate.of(account, region, RDS)) >= 40
            assert len(estate.of(account, region, LAMBDA)) >= 70
            services = estate.of(account, region, ECS)
            clusters = Counter(r.name.split("/")[0] for r in services)
            assert len(clusters) == 2 and min(clusters.values()) >= 25
        buckets = [r for r in estate.resources if r.account_id == account and r.resource_type == S3]
        assert len(buckets) >= 150
        assert {(r.region, r.api_region) for r in buckets} == {("global", "us-east-1")}
    assert sum(1 for r in estate.resources if not r.inventoried) == sum(
        1 for r in estate.resources if r.state == "terminated"
    )


def test_every_violation_kind_occurs_for_every_type(estate: Estate) -> None:
    for rtype in RESOURCE_TYPES:
        resources = [r for r in estate.inventory if r.resource_type == rtype]
        kinds = Counter(kind for r in resources for _, kind in r.expected)
        wanted = set(VIOLATION_TYPES) - ({EMPTY} if rtype == S3 else set())
        assert {kind for kind in wanted if kinds[kind] >= 5} == wanted, (rtype, kinds)
        assert sum(1 for r in resources if not r.tags) >= 5, rtype
        assert sum(1 for r in resources if not r.expected) >= 10, rtype  # some fully compliant
        all_tags = [(k, v) for r in resources for k, v in r.tags.items()]
        assert any(k == LONG_KEY for k, _ in all_tags), rtype
        assert any(v == LONG_VALUE for _, v in all_tags), rtype
        assert any((k, v) in UNICODE_TAGS for k, v in all_tags), rtype
    whitespace_only = [
        r for r in estate.inventory for v in r.tags.values() if v and not v.strip(" \t\n\v\f\r")
    ]
    assert {r.resource_type for r in whitespace_only} == {EC2, RDS, LAMBDA, ECS}


def test_mostly_ok_per_rule(estate: Estate) -> None:
    policy = load_policy()
    for rtype in RESOURCE_TYPES:
        resources = [r for r in estate.inventory if r.resource_type == rtype]
        for rule in policy.rules_for(rtype):
            ok = sum(1 for r in resources if (rule.key, MISSING) not in r.expected and rule.key in r.tags)
            failing = sum(1 for r in resources if any(key == rule.key for key, _ in r.expected))
            assert ok >= failing, (rtype, rule.key)


def test_s3_and_lambda_stay_within_moto_tagging_page_limits(estate: Estate) -> None:
    policy = load_policy()
    for r in estate.resources:
        if r.resource_type in (S3, LAMBDA):
            assert len(r.tags) <= 4, r
            if not r.expected:  # compliant: exactly the required keys
                assert set(r.tags) == {rule.key for rule in policy.rules_for(r.resource_type)}


def test_no_s3_tag_moto_would_mangle(estate: Estate) -> None:
    for r in estate.resources:
        if r.resource_type == S3:
            for key, value in r.tags.items():
                assert value.strip() == value and value, (r.name, key, value)
                assert key.strip() == key, (r.name, key)


def test_extra_keys_do_not_collide_with_policy_keys(estate: Estate) -> None:
    policy = load_policy()
    rule_keys = {rule.key.lower(): rule for rule in policy.rules}
    for r in estate.resources:
        for key in r.tags:
            rule = rule_keys.get(key.lower())
            assert rule is None or rule.applies(r.resource_type), (r.resource_type, key)


def test_bucket_names_are_valid_and_unique() -> None:
    names = [r.name for seed in (42, 43) for r in build_estate(seed, 0.2).resources if r.resource_type == S3]
    assert len(names) == len(set(names))
    for name in names:
        assert 3 <= len(name) <= 63 and name == name.lower() and name[0].isalnum(), name


@pytest.mark.parametrize(
    ("resource_type", "tags", "expected"),
    [
        (
            RDS,
            {},
            [
                ("CostCenter", MISSING),
                ("DataClassification", MISSING),
                ("Environment", MISSING),
                ("Owner", MISSING),
            ],
        ),
        (
            S3,
            {
                "CostCenter": "CC-0001",
                "Environment": "prod",
                "Owner": "a@example.com",
                "DataClassification": "x",
            },
            [("DataClassification", INVALID_VALUE)],
        ),
        (
            EC2,
            {
                "costcenter": "CC-0001",
                "Environment": " \t",
                "Owner": "A@example.com",
                "Application": "",
                "DataClassification": "nope",  # does not apply to EC2: ignored
            },
            [
                ("Application", EMPTY),
                ("CostCenter", WRONG_CASE),
                ("Environment", EMPTY),
                ("Owner", INVALID_FORMAT),
            ],
        ),
        (
            # exact key wins over a case variant; NBSP is not ASCII whitespace; '*' glob keys
            LAMBDA,
            {"CostCenter": "CC-12", "costcenter": "CC-0001", "Environment": "\u00a0", "PASSWORD_old": "x"},
            [
                ("Application", MISSING),
                ("CostCenter", INVALID_FORMAT),
                ("Environment", INVALID_VALUE),
                ("Owner", MISSING),
                ("PASSWORD_old", PROHIBITED),
            ],
        ),
        (
            ECS,
            {
                "CostCenter": "CC-١٢٣٤",  # not ASCII digits
                "Environment": "prod ",
                "Owner": "x@example.com",
                "Application": "a",
                "Secret": "1",
                "db_password": "1",
                "ApiSecretRef": "1",
            },
            [("CostCenter", INVALID_FORMAT), ("Environment", INVALID_VALUE), ("Secret", PROHIBITED)],
        ),
    ],
)
def test_violation_semantics(
    resource_type: str, tags: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert list(expected_violations(resource_type, tags)) == sorted(expected)


def test_allowed_value_wildcards() -> None:
    from tag_compliance.sandbox.estate import Policy, Rule, rule_violation

    rule = Rule("Environment", allowed_values=("prod-*", "dev"))
    assert rule_violation(rule, {"Environment": "prod-eu"}) is None
    assert rule_violation(rule, {"Environment": "Prod-eu"}) == INVALID_VALUE
    assert rule_violation(rule, {"Environment": "dev.x"}) == INVALID_VALUE
    policy = Policy("t", (Rule("Team", applies_to=("ec2:*",)),), ("secret*",))
    assert expected_violations(S3, {"secret": "x", "aws:secret": "y"}, policy) == (("secret", PROHIBITED),)
    assert expected_violations(EC2, {}, policy) == (("Team", MISSING),)


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_real_sandbox_small_scale(tmp_path: Path) -> None:
    today = date(2026, 3, 15)
    with Sandbox(seed=42, data_dir=tmp_path, scale=0.1, today=today) as sandbox:
        pid = sandbox.pid
        assert pid is not None and sandbox.running
        env = sandbox.env()
        assert env["TAG_COMPLIANCE_ACCOUNTS"] == "123456789012,111111111111,222222222222"
        assert env["TAG_COMPLIANCE_REGIONS"] == "us-east-1,eu-west-1"
        assert env["TAG_COMPLIANCE_PAGE_SIZE"] == "20"
        connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
        assert connection["extra"]["endpoint_url"] == sandbox.endpoint_url
        assert connection["login"] == connection["password"] == env["AWS_ACCESS_KEY_ID"] == "testing"
        ce_url = connection["extra"]["service_config"]["ce"]["endpoint_url"]
        assert sandbox.cost_explorer is not None and ce_url == sandbox.cost_explorer.endpoint_url
        assert env["TAG_COMPLIANCE_COST_RESOURCE_LEVEL"] == "true"
        assert sandbox.today == today

        manifest = load_manifest(sandbox.manifest_path)
        summary = json.loads(sandbox.summary_path.read_text())
        assert manifest.num_rows == summary["resources_total"]
        assert summary["terminated_instances"] > 0
        rows = manifest.to_pylist()
        assert "terminated" not in {row["state"] for row in rows}

        # A member account, reached the way the pipeline does: AssumeRole from the default creds.
        member = "111111111111"
        sts = boto3.client(
            "sts",
            endpoint_url=sandbox.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{member}:role/{env['TAG_COMPLIANCE_ROLE_NAME']}", RoleSessionName="test"
        )["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name="eu-west-1",
        )
        assert (
            session.client("sts", endpoint_url=sandbox.endpoint_url).get_caller_identity()["Account"]
            == member
        )
        ec2 = session.client("ec2", endpoint_url=sandbox.endpoint_url)
        described = {
            instance["InstanceId"]: instance
            for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5})
            for reservation in page["Reservations"]
            for instance in reservation["Instances"]
        }
        live = {i for i, inst in described.items() if inst["State"]["Name"] != "terminated"}
        expected = {
            row["resource_id"]: row
            for row in rows
            if row["account_id"] == member and row["region"] == "eu-west-1" and row["resource_type"] == EC2
        }
        assert live == set(expected)
        for instance_id, row in expected.items():
            got = {t["Key"]: t["Value"] for t in described[instance_id].get("Tags", [])}
            assert got == dict(row["tags"])
        s3 = session.client("s3", endpoint_url=sandbox.endpoint_url)
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert buckets == {
            r["resource_id"] for r in rows if r["account_id"] == member and r["resource_type"] == S3
        }
        functions = session.client("lambda", endpoint_url=sandbox.endpoint_url).list_functions()["Functions"]
        assert {f["FunctionArn"] for f in functions} == {
            r["arn"]
            for r in rows
            if r["account_id"] == member and r["region"] == "eu-west-1" and r["resource_type"] == LAMBDA
        }
        # Cost Explorer: the emulator answers from the ledger of the seeded estate
        ledger = load_ledger(tmp_path)
        assert sandbox.ledger_path == tmp_path / "ledger" / "costs.parquet"
        ledger_rows = ledger.to_pylist()
        live = {
            r["resource_id"] for r in ledger_rows if r["inventoried"] and r["resource_type"] in (EC2, LAMBDA)
        }
        assert live == {r["resource_id"] for r in rows if r["resource_type"] == EC2} | {
            r["arn"] for r in rows if r["resource_type"] == LAMBDA
        }
        day = today - timedelta(days=3)
        ce = boto3.client(
            "ce",
            endpoint_url=ce_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        answer = ce.get_cost_and_usage(
            TimePeriod={"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
        )
        assert Decimal(answer["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"]) == sum(
            r["unblended_cost"] for r in ledger_rows if r["usage_date"] == day
        )
        url = sandbox.endpoint_url

    assert not sandbox.running
    assert sandbox.cost_explorer is not None and not sandbox.cost_explorer.running
    assert not _port_open(ce_url)
    for _ in range(50):
        if _process_gone(pid) and not _port_open(url):
            break
        time.sleep(0.1)
    assert _process_gone(pid)
    assert not _port_open(url)
    sandbox.stop()  # idempotent


def test_cli_prints_exports_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tag_compliance.sandbox",
            "--seed",
            "3",
            "--scale",
            "0.03",
            "--data-dir",
            tmp_path,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        exports: dict[str, str] = {}
        assert process.stdout is not None
        while "AWS_DEFAULT_REGION" not in exports:
            line = process.stdout.readline()
            assert line, "sandbox exited before printing its exports"
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
                exports[key] = shlex.split(value)[0]
        endpoint = json.loads(exports["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["endpoint_url"]
        assert _port_open(endpoint)
        assert (tmp_path / "manifest" / "resources.parquet").is_file()
        assert (tmp_path / "ledger" / "costs.parquet").is_file()
        extra = json.loads(exports["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]
        assert _port_open(extra["service_config"]["ce"]["endpoint_url"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=300) == 128 + signal.SIGTERM  # a guard, not a speed check
        assert not _port_open(endpoint)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(120)  # before the fix this waited for every queued item: forever here
def test_a_stop_while_seeding_drops_the_queued_work(estate: Estate) -> None:
    # SIGTERM while seeding raised SystemExit in the main thread, and the thread pool then ran
    # every queued seeding item against a moto server being stopped: minutes under load.
    import threading

    from tag_compliance.sandbox.seed import Seeder

    release, started = threading.Event(), []

    def seed_one(item: int) -> int:
        if item == 0:
            raise SystemExit(143)
        started.append(item)
        release.wait()
        return item

    seeder = Seeder("http://127.0.0.1:1", estate, workers=2)
    with pytest.raises(SystemExit):
        seeder._parallel(seed_one, list(range(200)))
    release.set()
    assert len(started) <= 2  # only what was already running; the rest was cancelled
