"""Accounting of every AWS operation a task makes, for the ``api_calls`` dataset."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from tag_compliance import lake

# What AWS charges per request (every page is a request); APIs not listed are free.
REQUEST_PRICES_USD: dict[str, Decimal] = {"ce": Decimal("0.01")}


def request_cost_usd(service: str, requests: int) -> Decimal:
    return REQUEST_PRICES_USD.get(service, Decimal(0)) * requests


@dataclass
class OperationStats:
    calls: int = 0  # logical invocations (a whole pagination counts once)
    pages: int = 0  # responses received: every page is one billed request
    items: int = 0  # resources or records returned
    retries: int = 0  # extra attempts, by botocore and by our own backoff
    throttles: int = 0  # throttled responses, as botocore's detector classifies them
    errors: int = 0  # invocations that finally failed


@dataclass(frozen=True, order=True)
class OperationKey:
    account_id: str
    region: str
    service: str
    resource_type: str
    operation: str


class ApiCallRecorder:
    """Thread-safe counters per (account, region, service, resource type, operation)."""

    def __init__(self, task: str) -> None:
        self.task = task
        self._stats: dict[OperationKey, OperationStats] = defaultdict(OperationStats)
        self._lock = threading.Lock()

    def add(self, key: OperationKey, **increments: int) -> None:
        with self._lock:
            stats = self._stats[key]
            for name, value in increments.items():
                setattr(stats, name, getattr(stats, name) + value)

    def stats(self, key: OperationKey) -> OperationStats:
        with self._lock:
            return OperationStats(**vars(self._stats[key])) if key in self._stats else OperationStats()

    def totals(self, operation: str) -> OperationStats:
        """Counts of one operation (API name, e.g. ``GetResources``) summed over every key."""
        total = OperationStats()
        with self._lock:
            for key, stats in self._stats.items():
                if key.operation == operation:
                    for name, value in vars(stats).items():
                        setattr(total, name, getattr(total, name) + value)
        return total

    def write(self, lake_root: Path, snapshot_date: date, part: str) -> None:
        """Store the counts as the day's ``api_calls`` file ``part`` (a rerun replaces it)."""
        lake.write_partition(
            lake_root, lake.API_CALLS, {"snapshot_date": snapshot_date}, self.to_table(), part=part
        )

    def to_table(self) -> pa.Table:
        with self._lock:
            items = sorted(self._stats.items())
        rows = [
            {
                "task": self.task,
                **vars(key),
                **vars(stats),
                "request_cost_usd": request_cost_usd(key.service, stats.pages),
            }
            for key, stats in items
        ]
        if not rows:
            return lake.API_CALLS.empty_table()
        return pa.Table.from_pylist(rows, schema=lake.API_CALLS.schema)
