"""A hand-built multi-day lake for the history views (compliance_trend, tag_drift, violation_history).

Four inventories (2026-03-01, 03-02, 03-04, 03-05: no inventory on 03-03) of seven resources in
two accounts, each scored with the same small policy, plus 03-06 scored from the 03-05 inventory
(a backfilled day without an inventory of its own: ``inventory_as_of`` 03-05). 03-05 and 03-06
have service-level costs (split equally over each account's resources of a service).

The story of each resource (E = error violation, W = warning):

- ``i-stable`` (account 1): always compliant; Owner ana -> bob on 03-02; Project added on 03-04.
- ``i-fixed`` (account 1): CostCenter ``cc-2000`` (E invalid_format) fixed to ``CC-2000`` on 03-04;
  no Owner throughout (W missing_required_tag, open).
- ``bucket-case`` (account 1): ``costcenter`` (E wrong_key_case) renamed ``CostCenter`` on 03-02.
- ``i-deleted`` (account 2): no CostCenter (E); deleted on 03-04 (last seen 03-02).
- ``fn-reborn`` (account 2): no CostCenter (E); deleted on 03-02, recreated with the same id on
  03-04 (new Owner value, still no CostCenter): two episodes of the same violation.
- ``bucket-new`` (account 2): created on 03-04 with Environment ``staging`` (E invalid_value, open).
- ``i-env`` (account 2): Environment removed on 03-02 (E missing), added back as ``dev`` on 03-05.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tag_compliance.policy import TaggingPolicy
from tag_compliance.scoring import ScoreResult, latest_snapshot_on_or_before, score_snapshot
from tests.sql_fixtures import (
    ACCOUNT_1,
    ACCOUNT_2,
    CE_EC2,
    CE_LAMBDA,
    CE_S3,
    resource,
    service_cost,
    write_costs,
    write_snapshot,
)

D1, D2, D4, D5, D6 = (date(2026, 3, day) for day in (1, 2, 4, 5, 6))
INVENTORY_DATES = (D1, D2, D4, D5)  # 03-03: no inventory
SCORED_DATES = (D1, D2, D4, D5, D6)  # 03-06: scored from the 03-05 inventory
HISTORY_VERSION = "history-1"

HISTORY_POLICY_DATA: dict[str, Any] = {
    "version": HISTORY_VERSION,
    "required_tags": [
        {"key": "CostCenter", "pattern": "CC-[0-9]{4}"},
        {"key": "Environment", "allowed_values": ["prod", "dev"], "applies_to": ["ec2:*", "s3:*"]},
        {"key": "Owner", "severity": "warning"},
    ],
}

EC2, S3, LAMBDA = "ec2:instance", "s3:bucket", "lambda:function"
US, GLOBAL = "us-east-1", "global"


def history_policy() -> TaggingPolicy:
    return TaggingPolicy.model_validate(HISTORY_POLICY_DATA)


# (account, region, type, id) -> {inventory date: tags}; absent on the dates not listed.
HISTORY: dict[tuple[str, str, str, str], dict[date, dict[str, str]]] = {
    (ACCOUNT_1, US, EC2, "i-stable"): {
        D1: {"CostCenter": "CC-1000", "Environment": "prod", "Owner": "ana"},
        D2: {"CostCenter": "CC-1000", "Environment": "prod", "Owner": "bob"},
        D4: {"CostCenter": "CC-1000", "Environment": "prod", "Owner": "bob", "Project": "apollo"},
        D5: {"CostCenter": "CC-1000", "Environment": "prod", "Owner": "bob", "Project": "apollo"},
    },
    (ACCOUNT_1, US, EC2, "i-fixed"): {
        D1: {"CostCenter": "cc-2000", "Environment": "prod"},
        D2: {"CostCenter": "cc-2000", "Environment": "prod"},
        D4: {"CostCenter": "CC-2000", "Environment": "prod"},
        D5: {"CostCenter": "CC-2000", "Environment": "prod"},
    },
    (ACCOUNT_1, GLOBAL, S3, "bucket-case"): {
        D1: {"costcenter": "CC-3000", "Environment": "dev", "Owner": "cy"},
        D2: {"CostCenter": "CC-3000", "Environment": "dev", "Owner": "cy"},
        D4: {"CostCenter": "CC-3000", "Environment": "dev", "Owner": "cy"},
        D5: {"CostCenter": "CC-3000", "Environment": "dev", "Owner": "cy"},
    },
    (ACCOUNT_2, US, EC2, "i-deleted"): {
        D1: {"Environment": "prod", "Owner": "dan"},
        D2: {"Environment": "prod", "Owner": "dan"},
    },
    (ACCOUNT_2, US, LAMBDA, "fn-reborn"): {
        D1: {"Owner": "eve"},
        D4: {"Owner": "eve2"},
        D5: {"Owner": "eve2"},
    },
    (ACCOUNT_2, GLOBAL, S3, "bucket-new"): {
        D4: {"CostCenter": "CC-6000", "Environment": "staging", "Owner": "fay"},
        D5: {"CostCenter": "CC-6000", "Environment": "staging", "Owner": "fay"},
    },
    (ACCOUNT_2, US, EC2, "i-env"): {
        D1: {"CostCenter": "CC-7000", "Environment": "prod", "Owner": "gus"},
        D2: {"CostCenter": "CC-7000", "Owner": "gus"},
        D4: {"CostCenter": "CC-7000", "Owner": "gus"},
        D5: {"CostCenter": "CC-7000", "Environment": "dev", "Owner": "gus"},
    },
}

# Service totals of the two days with costs. Shares: account 1 EC2 2.00 each to i-stable and
# i-fixed, S3 1.00 to bucket-case; account 2 one resource per service.
HISTORY_COSTS: dict[date, list[dict[str, Any]]] = {
    D5: [
        *service_cost(ACCOUNT_1, CE_EC2, "4.00", "4.00"),
        *service_cost(ACCOUNT_1, CE_S3, "1.00", "1.00"),
        *service_cost(ACCOUNT_2, CE_EC2, "3.00", "3.00"),  # i-env
        *service_cost(ACCOUNT_2, CE_S3, "1.00", "1.00"),  # bucket-new
        *service_cost(ACCOUNT_2, CE_LAMBDA, "0.50", "0.50"),  # fn-reborn
    ],
    D6: [
        *service_cost(ACCOUNT_1, CE_EC2, "4.00", "4.00"),
        *service_cost(ACCOUNT_1, CE_S3, "1.00", "1.00"),
        *service_cost(ACCOUNT_2, CE_EC2, "1.00", "1.00"),
        *service_cost(ACCOUNT_2, CE_S3, "3.00", "3.00"),
        *service_cost(ACCOUNT_2, CE_LAMBDA, "0.50", "0.50"),
    ],
}


def inventory(day: date) -> list[dict[str, Any]]:
    """The resources rows of one inventory date."""
    return [
        resource(account_id, region, resource_type, resource_id, by_day[day])
        for (account_id, region, resource_type, resource_id), by_day in HISTORY.items()
        if day in by_day
    ]


def write_history_lake(root: Path) -> dict[date, ScoreResult]:
    """Write the inventories and costs, score every scored date as the pipeline would (the
    inventory of the day, or the nearest earlier one), and return the results by date."""
    for day in INVENTORY_DATES:
        write_snapshot(root, inventory(day), snapshot_date=day)
    for day, rows in HISTORY_COSTS.items():
        write_costs(root, rows, usage_date=day)
    policy = history_policy()
    return {
        day: score_snapshot(root, day, policy, inventory_as_of=latest_snapshot_on_or_before(root, day))
        for day in SCORED_DATES
    }
