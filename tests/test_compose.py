"""docker-compose.yml is valid (Compose renders it: Debian's docker-compose, which .ci/run installs;
no Docker engine runs here to start it) and says what a deployment needs: the package built into
an image once, a persistent database, the host's user id, services that wait for airflow-init, and
the lake chosen by one variable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker")


def rendered(**env: str) -> dict[str, Any]:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is not installed: `apt-get install docker-compose` (.ci/run does it)"
    variables = {name: value for name, value in os.environ.items() if not name.startswith("TAG_COMPLIANCE_")}
    done = subprocess.run(
        [
            compose,
            "--project-directory",
            str(REPO_ROOT),
            "-f",
            str(REPO_ROOT / "docker-compose.yml"),
            "config",
        ],
        env={**variables, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(source, target) of a service's volumes, in either of the forms Compose renders."""
    found = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found.add((source, target))
    return found


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return rendered(AIRFLOW_UID="1234")


def test_every_airflow_service_runs_the_built_image_as_the_hosts_user(config) -> None:
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = config["services"][name]
        assert service["image"] == "tag-compliance-airflow:latest", name
        assert service["build"]["context"] == str(REPO_ROOT), name
        assert service["user"] == "1234:0", name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in service["environment"], (
            name
        )  # nothing installed at start
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r"^apache-airflow==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert f"apache/airflow:{pinned.group(1)}-python3.11" in dockerfile  # the Airflow the constraints pin
    assert re.search(
        r'pip install .*tag_compliance-\*\.whl\)\[airflow\]" -c /tmp/constraints\.txt', dockerfile
    )


def test_services_wait_for_airflow_init_and_the_database_persists(config) -> None:
    for name in AIRFLOW_SERVICES:
        depends = config["services"][name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
    assert "airflow-init" not in config["services"]["airflow-init"]["depends_on"]
    assert "pools import" in " ".join(config["services"]["airflow-init"]["command"])
    assert ("postgres-db", "/var/lib/postgresql/data") in mounts(config["services"]["postgres"])
    assert "postgres-db" in config["volumes"]  # a named volume: it outlives the container


def test_the_lake_is_a_shared_volume_or_object_storage_by_one_variable(config) -> None:
    for name in AIRFLOW_SERVICES:
        service = config["services"][name]
        assert service["environment"]["TAG_COMPLIANCE_LAKE"] == "/opt/airflow/data/lake"
        assert ("tag-compliance-data", "/opt/airflow/data") in mounts(service)
    on_s3 = rendered(AIRFLOW_UID="1234", TAG_COMPLIANCE_LAKE="s3://finops-lake/tag-compliance")
    for name in AIRFLOW_SERVICES:
        assert (
            on_s3["services"][name]["environment"]["TAG_COMPLIANCE_LAKE"] == "s3://finops-lake/tag-compliance"
        )
