"""Extract one run's Cost Explorer data into the lake: the run's day plus a rolling window.

Cost Explorer is global (us-east-1), paid per request ($0.01, every page) and throttled, so:

* one task in a one-slot pool does all of it, through the hook (botocore retries, a token
  bucket, backoff on ``LimitExceededException``) and every page is counted in ``api_calls``;
* a request budget is checked before every page, so a run fails before spending more;
* earlier days of the window are asked again only while their stored figures are
  ``Estimated`` (or missing), so final figures replace estimates without repeat requests;
* rows are written only once every query has finished, and each day's files become visible
  in one commit: a failed or killed run leaves the lake's earlier costs as they were, never
  half a day.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tag_compliance import lake, storage
from tag_compliance.aws.accounting import ApiCallRecorder, request_cost_usd
from tag_compliance.aws.collectors import cost_explorer_services, split_cost_explorer_services
from tag_compliance.config import Settings, get_settings
from tag_compliance.costs.queries import (
    RESOURCE_SOURCE,
    SERVICE_SOURCE,
    SOURCES,
    TAG_SOURCE,
    USAGE_SOURCE,
    CostQuery,
    count_groups,
    parse_page,
    plan_queries,
)

log = logging.getLogger(__name__)

COST_EXPLORER_SERVICE = "ce"
COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer has one endpoint, whatever regions we inventory
RESOURCE_DATA_DAYS = 14  # GetCostAndUsageWithResources only covers the last 14 days


class CostExplorerBudgetError(RuntimeError):
    """The run would make more Cost Explorer requests than its configured budget."""


class RequestBudget:
    """Counts billed requests (pages) and refuses the one that would exceed the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def check_plan(self, queries: Sequence[CostQuery]) -> None:
        """Fail before the first request when even one page per query that is asked whatever the
        totals show would not fit."""
        needed = sum(1 for query in queries if not query.per_service)
        if needed > self.limit:
            raise CostExplorerBudgetError(
                f"Cost Explorer request budget exceeded before any request: the run needs at least "
                f"{needed} requests ({_usd(needed)}) but TAG_COMPLIANCE_COST_REQUEST_BUDGET is "
                f"{self.limit}; raise it or shorten TAG_COMPLIANCE_COST_REEXTRACT_DAYS"
            )

    def spend(self, query: CostQuery) -> None:
        if self.spent >= self.limit:
            raise CostExplorerBudgetError(
                f"Cost Explorer request budget of {self.limit} requests ({_usd(self.limit)}) reached "
                f"after {self.spent} requests, before the next page of {query.label} "
                f"{query.start}..{query.end}; nothing was written. Raise "
                "TAG_COMPLIANCE_COST_REQUEST_BUDGET to let the run finish"
            )
        self.spent += 1


def _usd(requests: int) -> str:
    return f"${request_cost_usd('ce', requests):.2f}"


@dataclass(frozen=True)
class ExtractionPlan:
    days: list[date]  # every day whose costs are (re-)extracted
    resource_days: list[date]  # the subset that also gets per-resource costs
    queries: list[CostQuery]


def stored_day_is_final(lake_root: Path, day: date, want_resource_data: bool) -> bool:
    """Whether the lake already holds final (not Estimated) figures for every source of ``day``."""
    from tag_compliance.scoring import cost_files

    sources = [SERVICE_SOURCE, TAG_SOURCE, RESOURCE_SOURCE if want_resource_data else USAGE_SOURCE]
    stored = cost_files(lake_root, day)
    if not all(source in stored for source in sources):
        return False
    with storage.locate(lake_root).register(duckdb.connect(":memory:", config=storage.DUCKDB_CONFIG)) as con:
        estimated = con.execute(
            "SELECT count(*) FROM read_parquet($files, hive_partitioning = false) WHERE estimated",
            {"files": [path for paths in stored.values() for path in paths]},
        ).fetchall()[0][0]
    return estimated == 0


def plan_extraction(
    run_date: date,
    settings: Settings,
    required_tag_keys: Sequence[str],
    today: date | None = None,
) -> ExtractionPlan:
    """The run's day always; earlier days of the window only while not final in the lake."""
    today = today or datetime.now(UTC).date()
    oldest_resource_day = today - timedelta(days=RESOURCE_DATA_DAYS)
    days = [run_date]
    for back in range(1, settings.cost_reextract_days):
        day = run_date - timedelta(days=back)
        wants_resources = settings.cost_resource_level and day >= oldest_resource_day
        if not stored_day_is_final(settings.lake, day, wants_resources):
            days.append(day)
    days = sorted(day for day in days if day <= today)  # Cost Explorer has nothing for the future
    resource_days = [day for day in days if settings.cost_resource_level and day >= oldest_resource_day]
    queries = plan_queries(
        days, required_tag_keys, cost_explorer_services(), resource_days, split_cost_explorer_services()
    )
    return ExtractionPlan(days, resource_days, queries)


def _run_query(
    hook: Any, client: Any, account_id: str, query: CostQuery, budget: RequestBudget
) -> list[dict[str, Any]]:
    """Every page of one query (Cost Explorer has no boto3 paginator: loop on NextPageToken)."""
    rows: list[dict] = []
    extracted_at = datetime.now(UTC)
    token: str | None = None
    while True:
        budget.spend(query)
        page = hook.call(
            client,
            query.operation,
            account_id=account_id,
            region=COST_EXPLORER_REGION,
            resource_type=query.label,
            count_items=count_groups,
            next_page=token is not None,
            **query.request(token),
        )
        parsed = parse_page(query, page, extracted_at)
        rows += parsed.rows
        token = page.get("NextPageToken")
        if not token:
            return rows


def _write(lake_root: Path, plan: ExtractionPlan, rows: list[dict]) -> dict[str, int]:
    """One file per (day, source) extracted, empty ones included ("extracted, nothing there"),
    committed per day: a day's sources become visible together. A day has either per-resource
    rows or, without them, usage-type rows of the services several types share.

    A day re-extracted without per-resource costs (too old by now) loses its stored ones: they
    were Estimated (else the day would not be re-extracted) and can no longer be made final;
    the day's final service totals, split by service_average, replace them.
    """
    by_partition: dict[tuple[date, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_partition[(row["usage_date"], row["source"])].append(row)
    written: dict[str, int] = {}
    for day in plan.days:
        tables, removed = [], []
        # A day's spend is split per resource from its own rows, or else by usage type.
        split_by = RESOURCE_SOURCE if day in plan.resource_days else USAGE_SOURCE
        for source in SOURCES:
            partition = {"usage_date": day, "source": source}
            if source in (RESOURCE_SOURCE, USAGE_SOURCE) and source != split_by:
                removed.append((lake.COSTS, partition))
                continue
            partition_rows = by_partition.get((day, source), [])
            tables.append(
                (lake.COSTS, partition, pa.Table.from_pylist(partition_rows, schema=lake.COSTS.schema))
            )
            written[f"{day.isoformat()}/{source}"] = len(partition_rows)
        before = lake.read_commit(lake_root, lake.DAY_COSTS, day)
        lake.write_and_commit(lake_root, lake.DAY_COSTS, day, tables, removed_partitions=removed)
        if removed and before and RESOURCE_SOURCE in _sources(before):
            log.info("dropped the Estimated per-resource costs of %s: too old to be re-extracted", day)
    return written


def _sources(day: lake.Commit) -> set[str]:
    return {file.partition.rsplit("/", 1)[-1].removeprefix("source=") for file in day.files}


def extract_costs(
    run_date: date,
    required_tag_keys: Sequence[str],
    settings: Settings | None = None,
    today: date | None = None,
    caller_account: str | None = None,
) -> dict[str, Any]:
    """Extract the run's costs into the lake; returns what was done (for XCom and logs)."""
    from tag_compliance.collect import make_hook

    settings = settings or get_settings()
    recorder = ApiCallRecorder(task="extract_costs")
    plan = plan_extraction(run_date, settings, required_tag_keys, today)
    budget = RequestBudget(settings.cost_request_budget)
    try:
        budget.check_plan(plan.queries)
        hook = make_hook(settings, recorder, caller_account)
        account_id = hook.own_account_id  # Cost Explorer answers for the payer account
        client = hook.client_for(account_id, COST_EXPLORER_REGION, COST_EXPLORER_SERVICE)
        rows: list[dict] = []
        # The totals first: a per-service query (resources, usage types) is only asked for a
        # service with spend in them, so an organisation pays for no request about a service
        # it does not use.
        with_spend: set[str] | None = None  # known once every total is in
        for query in sorted(plan.queries, key=lambda query: query.per_service):
            if query.per_service:
                if with_spend is None:
                    with_spend = {row["service"] for row in rows if row["source"] == SERVICE_SOURCE}
                if query.service not in with_spend:
                    continue
            rows += _run_query(hook, client, account_id, query, budget)
        written = _write(settings.lake, plan, rows)
    finally:
        recorder.write(settings.lake, run_date, "extract-costs")
    cost = request_cost_usd("ce", budget.spent)
    log.info(
        "Cost Explorer: %d requests (%s) for days %s; resource-level for %s",
        budget.spent,
        f"${cost:.2f}",
        [day.isoformat() for day in plan.days],
        [day.isoformat() for day in plan.resource_days],
    )
    return {
        "days": [day.isoformat() for day in plan.days],
        "resource_days": [day.isoformat() for day in plan.resource_days],
        "requests": budget.spent,
        "request_cost_usd": str(cost.quantize(Decimal("0.01"))),
        "rows": written,
    }
