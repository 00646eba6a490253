"""Runtime settings, read from ``TAG_COMPLIANCE_*`` environment variables.

Everything that differs between the local sandbox and a real AWS estate lives here, so
pointing the pipeline somewhere else never means editing code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tag_compliance import storage

# The package's data (SQL, policies, pools, IAM documents), wherever the package is installed; the
# repository's top-level include/ is a link to it.
INCLUDE_DIR = Path(str(resources.files("tag_compliance").joinpath("include")))
_CHECKOUT = Path(__file__).resolve().parents[2]
# Where generated data (data/lake, data/warehouse.duckdb) goes by default: the repository in a
# checkout, else the directory the command runs in, never the installed package's directory.
_IN_CHECKOUT = (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "dags").is_dir()
REPO_ROOT = _CHECKOUT if _IN_CHECKOUT else Path.cwd()
SQL_DIR = INCLUDE_DIR / "sql"
DEFAULT_POLICY = INCLUDE_DIR / "policies" / "default.yaml"
POOLS_FILE = INCLUDE_DIR / "airflow" / "pools.json"
# Least-privilege IAM policies: the role assumed in member accounts, the connection's own identity.
MEMBER_POLICY_FILE = INCLUDE_DIR / "iam" / "member-read-only-policy.json"
CALLER_POLICY_FILE = INCLUDE_DIR / "iam" / "caller-policy.json"


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` laid over the process environment (where settings and the AWS connection are
    read from) for the block, and the environment as it was restored after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


ENV_PREFIX = "TAG_COMPLIANCE_"
# AWS region names: a partition-ish prefix, a geography, a number (us-east-1, us-gov-west-1,
# ap-southeast-2, cn-north-1, il-central-1). A typo never reaches botocore's endpoint resolver.
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
# Organizations ids: a root, r-<4-32>, or an organisational unit, ou-<root part>-<8-32> (its API pattern).
ORG_UNIT_ID = re.compile(r"r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")


class SettingsError(ValueError):
    """A ``TAG_COMPLIANCE_*`` variable has a value the pipeline cannot use; the message names it."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Where the pipeline reads from and writes to."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    lake: Path | str = Field(
        default=REPO_ROOT / "data" / "lake",
        description="Root of the Parquet lake: a local directory, or s3://bucket/prefix on any S3-compatible "
        "endpoint (reached through the lake_conn_id connection).",
    )
    lake_conn_id: str | None = Field(
        default=None,
        description="Airflow AWS connection whose credentials and endpoint (endpoint_url, or "
        "service_config.s3.endpoint_url) reach an s3:// lake; unset means aws_conn_id.",
    )
    warehouse: Path = Field(
        default=REPO_ROOT / "data" / "warehouse.duckdb", description="DuckDB file holding the views."
    )
    policy: Path = Field(default=DEFAULT_POLICY, description="Tagging policy file (YAML or JSON).")
    aws_conn_id: str = Field(default="aws_default", description="Airflow AWS connection to use.")
    accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Account ids to inventory; empty means the ACTIVE accounts of the connection's "
        "organisation (AWS Organizations), or its own account alone when it is in none.",
    )
    org_units: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Without accounts: only the accounts under these organisational units or roots "
        "(ou-..., r-...), recursively.",
    )
    exclude_accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Without accounts: accounts of the organisation never inventoried."
    )
    regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["us-east-1"], description="Regions to inventory."
    )
    services: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Services to inventory (the collection tasks' names, e.g. ec2,s3); empty means every "
        "service the pipeline knows. The others' collection tasks expand to nothing.",
    )
    region_discovery: bool = Field(
        default=True,
        description="Ask each account which of the regions it has enabled (AWS Account Management) "
        "and never call the others; off, every region is planned in every account.",
    )
    role_name: str = Field(
        default="TagComplianceReadOnly",
        description="Role assumed in every member account (not in the connection's own account).",
    )
    page_size: int | None = Field(
        default=None,
        ge=1,
        description="Cap on every list call's page size; unset means each API's maximum.",
    )
    collect_task_instances: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Most task instances one service's mapped collection task expands to, whatever the "
        "number of (account, region) targets (Airflow's max_map_length is 1024); each collects its share.",
    )
    collect_threads: int = Field(
        default=8,
        ge=1,
        description="Targets one collection task instance collects at once, a thread each, under the "
        "shared rate limits; a service gets one task instance per this many targets (up to the cap).",
    )
    min_coverage_pct: float = Field(
        default=100.0,
        ge=0,
        le=100,
        description="Share of planned (service, account, region) targets a run must collect: below it the "
        "run ends failed, after scoring and publishing what was collected.",
    )

    cost_explorer: bool = Field(
        default=True, description="Extract Cost Explorer data (set false to score tags only)."
    )
    cost_resource_level: bool = Field(
        default=False,
        description="Also call GetCostAndUsageWithResources for days within the last 14 days "
        "(needs resource-level data enabled in the payer account's Cost Explorer settings).",
    )
    cost_reextract_days: int = Field(
        default=3,
        ge=1,
        description="Days up to the run's date whose stored costs are re-extracted while "
        "Cost Explorer still marks them Estimated (or they are missing).",
    )
    cost_request_budget: int = Field(
        default=100,
        ge=1,
        description="Most Cost Explorer requests (pages) one run may make ($0.01 each); "
        "the task fails before exceeding it.",
    )

    cost_requests_per_second: float = Field(
        default=1.0,
        gt=0,
        description="Client-side rate limit of Cost Explorer requests (burst of 5 on top).",
    )

    publish_allow_missing_days: bool = Field(
        default=False,
        description="Let publish replace a warehouse with one lacking days the old one shows (after "
        "removing days from the lake on purpose); off, publish refuses and says which days.",
    )

    duckdb_memory_limit: str = Field(
        default="768MiB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use while scoring (e.g. 1GiB, 500MB); a larger day spills "
        "to a temporary directory instead of failing.",
    )
    duckdb_threads: int | None = Field(
        default=None, ge=1, description="Threads DuckDB may use while scoring; unset means every core."
    )

    sandbox_clock: datetime | None = Field(
        default=None,
        description="Demo/test only: the pipeline's 'now' (ISO datetime, UTC), honoured only when every "
        "endpoint of the AWS connection is on 127.0.0.1; see tag_compliance.clock.",
    )

    _split_accounts = field_validator(
        "accounts", "regions", "org_units", "exclude_accounts", "services", mode="before"
    )(_split_csv)

    @field_validator("services")
    @classmethod
    def _services_are_known(cls, chosen: list[str]) -> list[str]:
        from tag_compliance.aws.collectors import services

        known = services()
        unknown = [service for service in chosen if service not in known]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))} not among the services: {', '.join(known)}")
        return chosen

    @field_validator("org_units")
    @classmethod
    def _org_units_are_ids(cls, units: list[str]) -> list[str]:
        for unit in units:
            if not ORG_UNIT_ID.fullmatch(unit):
                raise ValueError(
                    f"{unit!r} is not an organisational unit id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)"
                )
        return units

    @field_validator("accounts", "exclude_accounts")
    @classmethod
    def _account_ids_are_12_digits(cls, accounts: list[str]) -> list[str]:
        for account in accounts:
            if not (len(account) == 12 and account.isdigit()):
                raise ValueError(f"{account!r} is not a 12-digit AWS account id")
        return accounts

    @field_validator("regions")
    @classmethod
    def _regions_are_region_names(cls, regions: list[str]) -> list[str]:
        if not regions:
            raise ValueError("name at least one region, e.g. us-east-1 (the first is the home region)")
        for region in regions:
            if not REGION_NAME.fullmatch(region):
                raise ValueError(f"{region!r} is not an AWS region name like us-east-1 or eu-west-2")
        return regions

    @field_validator("lake", mode="before")
    @classmethod
    def _lake_is_a_directory(cls, lake: object) -> Path | str:
        if storage.is_remote(str(lake)):
            bucket, prefix = storage.parse_s3_root(str(lake))
            return f"{storage.S3_SCHEME}{bucket}" + (f"/{prefix}" if prefix else "")
        lake = Path(str(lake)) if not isinstance(lake, Path) else lake
        if lake.exists() and not lake.is_dir():
            raise ValueError(f"{str(lake)!r} is a file; the lake is a directory (it is created if missing)")
        return lake

    @field_validator("warehouse", "policy")
    @classmethod
    def _not_a_directory(cls, path: Path) -> Path:
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a directory; a file path is needed")
        return path

    @cached_property
    def home_region(self) -> str:
        """Region used for account-wide services (S3 listing, STS)."""
        return self.regions[0]


def get_settings() -> Settings:
    """Settings as the environment has them now (never cached: tests and the demo change them).

    Raises ``SettingsError`` naming every variable whose value cannot be used.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(settings_error_text(exc)) from None


def settings_error_text(exc: ValidationError) -> str:
    """One line per bad variable: its name, the value it has, what is wrong."""
    lines = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = f"{ENV_PREFIX}{field.upper()}"
        value = os.environ.get(variable, os.environ.get(variable.lower(), error.get("input")))
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{variable}={value!r}: {message}")
    return "invalid settings:\n  " + "\n  ".join(lines)
