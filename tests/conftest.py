"""Shared test setup: an isolated Airflow home, fake AWS credentials and a moto server.

Environment variables are set before anything imports Airflow or moto, as both read
them at import time.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="tag-compliance-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "MOTO_ACM_VALIDATION_WAIT": "0",  # as the sandbox's moto: certificates issued at once
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
for _name in [name for name in os.environ if name.startswith("TAG_COMPLIANCE_")]:
    os.environ.pop(_name)

import boto3  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

from tag_compliance.sandbox import moto_main  # noqa: E402

# The in-process moto server answers as AWS does where the sandbox's does (its Tagging API, EMR's
# regions: moto_main.AWS_ANSWERS); installed before moto is first imported.
moto_main.install(moto_main.AWS_ANSWERS)

OWN_ACCOUNT = "123456789012"  # moto's default account: the connection's own
MEMBER_ACCOUNT = "111111111111"


def connection_json(endpoint_url: str, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1", **extra},
        }
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server on 127.0.0.1 (in a thread of the test process)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Aws:
    """Seeding access to the moto server, in any account."""

    endpoint_url: str

    def client(self, service: str, region: str = "us-east-1", account_id: str = OWN_ACCOUNT):
        credentials: dict[str, str] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        if account_id != OWN_ACCOUNT:
            sts = boto3.client("sts", endpoint_url=self.endpoint_url, region_name=region, **credentials)
            assumed = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/TagComplianceReadOnly", RoleSessionName="seed"
            )["Credentials"]
            credentials = {
                "aws_access_key_id": assumed["AccessKeyId"],
                "aws_secret_access_key": assumed["SecretAccessKey"],
                "aws_session_token": assumed["SessionToken"],
            }
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=region, **credentials)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """A freshly reset moto estate and the Airflow connection ``aws_default`` pointing at it."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    from tag_compliance.aws.hook import forget_process_cache

    forget_process_cache()  # the reset forgot the roles hooks assumed
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(moto_endpoint))
    return Aws(moto_endpoint)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tag_compliance.config import Settings

    monkeypatch.setenv("TAG_COMPLIANCE_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("TAG_COMPLIANCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    return Settings()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once (dag.test() needs it), with our pools."""
    import subprocess
    import sys

    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], check=True, capture_output=True)
    subprocess.run(
        [*airflow, "pools", "import", str(REPO_ROOT / "include" / "airflow" / "pools.json")],
        check=True,
        capture_output=True,
    )
    return _AIRFLOW_HOME


LAKE_BUCKET = "tag-compliance-lake"
LAKE_CONN_ID = "lake_storage"


@dataclass
class ObjectStore:
    """An S3 endpoint for lakes alone (a moto server of its own: an estate's S3 holds the buckets
    the pipeline inventories) and the Airflow connection that reaches it."""

    endpoint_url: str

    @property
    def env(self) -> dict[str, str]:
        """TAG_COMPLIANCE_LAKE_CONN_ID and its connection (a lake's s3:// root is given apart)."""
        connection = {
            "conn_type": "aws",
            "login": "lake-key",
            "password": "lake-secret",
            "extra": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }
        return {
            "TAG_COMPLIANCE_LAKE_CONN_ID": LAKE_CONN_ID,
            f"AIRFLOW_CONN_{LAKE_CONN_ID.upper()}": json.dumps(connection),
        }

    def root(self, prefix: str) -> str:
        return f"s3://{LAKE_BUCKET}/{prefix}"

    def arrow(self):
        """pyarrow's filesystem of the store, for tests that copy or list objects themselves."""
        from pyarrow.fs import S3FileSystem

        host = self.endpoint_url.removeprefix("http://")
        return S3FileSystem(
            access_key="lake-key", secret_key="lake-secret", endpoint_override=host, scheme="http"
        )


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    from tag_compliance.sandbox.server import MotoServer

    server = MotoServer(log_path=tmp_path_factory.mktemp("object-store") / "moto.log")
    endpoint = server.start()
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    ).create_bucket(Bucket=LAKE_BUCKET)
    yield ObjectStore(endpoint)
    server.stop()
