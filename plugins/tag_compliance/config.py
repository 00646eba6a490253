"""Runtime settings, read from ``TAG_COMPLIANCE_*`` environment variables.

Everything that differs between the local sandbox and a real AWS estate lives here, so
pointing the pipeline somewhere else never means editing code.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = REPO_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
DEFAULT_POLICY = INCLUDE_DIR / "policies" / "default.yaml"
POOLS_FILE = INCLUDE_DIR / "airflow" / "pools.json"
# Least-privilege IAM policies: the role assumed in member accounts, the connection's own identity.
MEMBER_POLICY_FILE = INCLUDE_DIR / "iam" / "member-read-only-policy.json"
CALLER_POLICY_FILE = INCLUDE_DIR / "iam" / "caller-policy.json"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Where the pipeline reads from and writes to."""

    model_config = SettingsConfigDict(env_prefix="TAG_COMPLIANCE_", extra="ignore")

    lake: Path = Field(default=REPO_ROOT / "data" / "lake", description="Root of the Parquet lake.")
    warehouse: Path = Field(
        default=REPO_ROOT / "data" / "warehouse.duckdb", description="DuckDB file holding the views."
    )
    policy: Path = Field(default=DEFAULT_POLICY, description="Tagging policy file (YAML or JSON).")
    aws_conn_id: str = Field(default="aws_default", description="Airflow AWS connection to use.")
    accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Account ids to inventory; empty means only the connection's own account.",
    )
    regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["us-east-1"], description="Regions to inventory."
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

    sandbox_clock: datetime | None = Field(
        default=None,
        description="Demo/test only: the pipeline's 'now' (ISO datetime, UTC), honoured only when every "
        "endpoint of the AWS connection is on 127.0.0.1; see tag_compliance.clock.",
    )

    _split_accounts = field_validator("accounts", "regions", mode="before")(_split_csv)

    @field_validator("accounts")
    @classmethod
    def _account_ids_are_12_digits(cls, accounts: list[str]) -> list[str]:
        for account in accounts:
            if not (len(account) == 12 and account.isdigit()):
                raise ValueError(f"TAG_COMPLIANCE_ACCOUNTS: {account!r} is not a 12-digit AWS account id")
        return accounts

    @cached_property
    def home_region(self) -> str:
        """Region used for account-wide services (S3 listing, STS)."""
        return self.regions[0]


def get_settings() -> Settings:
    """Settings as the environment has them now (never cached: tests and the demo change them)."""
    return Settings()
