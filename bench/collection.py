"""make bench, collection side: the AWS requests one inventory of the sandbox demo estate makes,
per operation, against the fewest that operation allows at its maximum page size.

The inventory runs as the DAG's collection tasks do (plan, one ``collect_chunk`` per service,
``commit_snapshot``) against the sandbox's moto server, but with no page size configured, so
every list call asks for the API's maximum (the sandbox's demo settings use small pages on
purpose, to exercise pagination). Requests are the pages ``api_calls`` records.
"""

from __future__ import annotations

import math
import tempfile
from datetime import date
from pathlib import Path

from tag_compliance.aws.pages import page_maxima
from tag_compliance.config import environment


def measure_collection(day: date, scale: float = 1.0) -> list[dict[str, object]]:
    """One inventory of the demo estate (``scale`` 1: as ``make demo`` seeds it); per (service,
    operation): calls, requests, items, and the fewest requests its items need at the API's
    maximum page size, added up per (account, region, type). moto may return more per page than
    AWS allows (ListFunctions: every function), which shows as fewer requests than the fewest."""

    from tag_compliance.collect import collect_chunk, commit_snapshot, plan_targets
    from tag_compliance.collection_status import COLLECTED, describe_failure
    from tag_compliance.config import Settings
    from tag_compliance.demo import DEMO_SEED
    from tag_compliance.sandbox import Sandbox

    with (
        tempfile.TemporaryDirectory(prefix="bench-collection-") as scratch,
        Sandbox(seed=DEMO_SEED, data_dir=Path(scratch) / "sandbox", scale=scale, today=day) as sandbox,
    ):
        env = {name: value for name, value in sandbox.env().items() if name != "TAG_COMPLIANCE_PAGE_SIZE"}
        lake_root = Path(scratch) / "lake"
        with environment(env):
            settings = Settings(lake=lake_root, page_size=None)
            planned = plan_targets(settings)
            collected = [
                result
                for service, targets in planned.items()
                for result in collect_chunk(service, targets, day, settings)
            ]
            failed = [describe_failure(result) for result in collected if result["status"] != COLLECTED]
            if failed:  # requests against the fewest mean nothing for an inventory with holes
                raise SystemExit(f"bench: collection failed for {', '.join(failed)}")
            commit_snapshot(day, planned, collected, settings)
        return requests_against_fewest(lake_root)


def requests_against_fewest(lake_root: Path) -> list[dict[str, object]]:
    """Per (service, operation) of every ``api_calls`` row of the lake: calls, requests (pages),
    items, and the fewest requests those items need at the API's maximum page size."""
    import duckdb

    from tag_compliance import lake

    with duckdb.connect() as con:
        rows = con.execute(  # one row per task and (account, region, type, operation)
            "SELECT service, operation, calls, pages, items FROM read_parquet($files)",
            {"files": lake.dataset_glob(lake_root, lake.API_CALLS)},
        ).fetchall()
    maxima = page_maxima()
    by_operation: dict[tuple[str, str], dict[str, object]] = {}
    for service, operation, calls, pages, items in sorted(rows):
        maximum = maxima.get((service, operation))
        # A bound per row (its calls share its items), so the sum is exact when a row is one call.
        fewest = max(calls, math.ceil(items / maximum)) if maximum else calls
        row = by_operation.setdefault(
            (service, operation),
            {
                "service": service,
                "operation": operation,
                "calls": 0,
                "requests": 0,
                "items": 0,
                "maximum_page": maximum,
                "fewest_requests": 0,
                "listings": 0,  # (account, region, type) rows: where a page may end early
            },
        )
        for key, value in (
            ("calls", calls),
            ("requests", pages),
            ("items", items),
            ("fewest_requests", fewest),
            ("listings", 1),
        ):
            row[key] = int(row[key]) + int(value)
    measured = list(by_operation.values())
    return measured


def collection_table(
    measured: list[dict[str, object]],
    title: str = "Collection: one inventory of the sandbox demo estate, no page size set",
):
    from rich.table import Table

    table = Table(title=title)
    columns = ("service", "operation", "calls", "requests", "items", "max per page", "fewest", "x fewest")
    for column in columns:
        table.add_column(column, justify="left" if column in ("service", "operation") else "right")
    for row in measured:
        requests, fewest = int(row["requests"]), int(row["fewest_requests"])
        table.add_row(
            str(row["service"]),
            str(row["operation"]),
            f"{row['calls']:,}",
            f"{requests:,}",
            f"{row['items']:,}",
            f"{row['maximum_page']:,}" if row["maximum_page"] else "one per call",
            f"{fewest:,}",
            f"{requests / fewest:.2f}" if fewest else "",
        )
    total, fewest_total = (sum(int(row[key]) for row in measured) for key in ("requests", "fewest_requests"))
    ratio = f"{total / fewest_total:.2f}" if fewest_total else ""
    table.add_row("all", "", "", f"{total:,}", "", "", f"{fewest_total:,}", ratio)
    return table
