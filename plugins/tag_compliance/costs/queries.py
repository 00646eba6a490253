"""The Cost Explorer queries the pipeline makes, and how their answers become ``costs`` rows.

Pure: no I/O, so the request shapes and the parsing of every answer can be tested alone.
Cost Explorer allows at most two GroupBy keys per request, so each query pairs
LINKED_ACCOUNT with one other key: SERVICE, one TAG key, RESOURCE_ID (per service), or
USAGE_TYPE (per service that several resource types share, to tell their spend apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

METRICS: tuple[str, ...] = ("AmortizedCost", "UnblendedCost")
AMOUNT_QUANTUM = Decimal("1e-10")  # the lake's MONEY scale

SERVICE_SOURCE, TAG_SOURCE, RESOURCE_SOURCE, USAGE_SOURCE = "service", "tag", "resource", "usage_type"
SOURCES: tuple[str, ...] = (SERVICE_SOURCE, TAG_SOURCE, RESOURCE_SOURCE, USAGE_SOURCE)
# Sources asked per Cost Explorer service (a Filter on SERVICE): the others cover every service.
PER_SERVICE_SOURCES = frozenset({RESOURCE_SOURCE, USAGE_SOURCE})


class CostExplorerAnswerError(ValueError):
    """An answer we cannot store without guessing; the message names the day, group and field."""


@dataclass(frozen=True)
class CostQuery:
    """One logical Cost Explorer query over consecutive days (its pages are separate requests)."""

    source: str  # one of SOURCES
    start: date
    end: date  # exclusive, as Cost Explorer has it
    tag_key: str | None = None  # TAG_SOURCE only
    service: str | None = None  # PER_SERVICE_SOURCES only: the Cost Explorer SERVICE value

    @property
    def per_service(self) -> bool:
        """Asked only for a service the day's totals show spend in (no request for the others)."""
        return self.source in PER_SERVICE_SOURCES

    @property
    def operation(self) -> str:
        if self.source == RESOURCE_SOURCE:
            return "get_cost_and_usage_with_resources"
        return "get_cost_and_usage"

    @property
    def group_by(self) -> list[dict[str, str]]:
        second = {
            SERVICE_SOURCE: {"Type": "DIMENSION", "Key": "SERVICE"},
            TAG_SOURCE: {"Type": "TAG", "Key": self.tag_key or ""},
            RESOURCE_SOURCE: {"Type": "DIMENSION", "Key": "RESOURCE_ID"},
            USAGE_SOURCE: {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        }[self.source]
        return [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, second]

    def request(self, next_page_token: str | None = None) -> dict[str, Any]:
        """Keyword arguments of the boto3 call for one page."""
        kwargs: dict[str, Any] = {
            "TimePeriod": {"Start": self.start.isoformat(), "End": self.end.isoformat()},
            "Granularity": "DAILY",
            "Metrics": list(METRICS),
            "GroupBy": self.group_by,
        }
        if self.per_service:
            kwargs["Filter"] = {"Dimensions": {"Key": "SERVICE", "Values": [self.service]}}
        if next_page_token:
            kwargs["NextPageToken"] = next_page_token
        return kwargs

    @property
    def label(self) -> str:
        """What ``api_calls.resource_type`` says this query was for (e.g. ``tag:CostCenter``)."""
        detail = f":{self.tag_key}" if self.source == TAG_SOURCE else ""
        if self.per_service:
            detail = f":{self.service}"
        return f"{self.source}{detail}"

    def days(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range((self.end - self.start).days)]


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as [start, end) ranges of consecutive days: one query per range."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def plan_queries(
    days: Sequence[date],
    required_tag_keys: Sequence[str],
    resource_services: Sequence[str],
    resource_days: Sequence[date] = (),
    split_services: Sequence[str] = (),
) -> list[CostQuery]:
    """Every query for ``days``: service totals, one per required tag key, per-resource costs per
    service for ``resource_days`` (the subset Cost Explorer keeps resource data for), and for the
    other days, usage types of ``split_services`` (shared by several resource types, whose spend
    the service average must split by type; a resource-level day needs no split)."""
    queries: list[CostQuery] = []
    for start, end in contiguous_ranges(days):
        queries.append(CostQuery(SERVICE_SOURCE, start, end))
        queries += [CostQuery(TAG_SOURCE, start, end, tag_key=key) for key in required_tag_keys]
    for start, end in contiguous_ranges(resource_days):
        queries += [CostQuery(RESOURCE_SOURCE, start, end, service=service) for service in resource_services]
    for start, end in contiguous_ranges(set(days) - set(resource_days)):
        queries += [CostQuery(USAGE_SOURCE, start, end, service=service) for service in split_services]
    return queries


@dataclass
class ParsedPage:
    rows: list[dict[str, Any]] = field(default_factory=list)
    groups: int = 0


def _amount(raw: Mapping[str, Any] | None, where: str) -> tuple[Decimal, str]:
    if not isinstance(raw, Mapping) or "Amount" not in raw:
        raise CostExplorerAnswerError(f"{where}: no Amount in {raw!r}")
    try:
        amount = Decimal(str(raw["Amount"]))
    except InvalidOperation as exc:
        raise CostExplorerAnswerError(f"{where}: Amount {raw['Amount']!r} is not a number") from exc
    if not amount.is_finite():
        raise CostExplorerAnswerError(f"{where}: Amount {raw['Amount']!r} is not a finite number")
    return amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN), str(raw.get("Unit") or "")


def _group_fields(query: CostQuery, keys: Sequence[str], where: str) -> dict[str, Any]:
    if len(keys) != 2:
        raise CostExplorerAnswerError(f"{where}: expected 2 group keys (LINKED_ACCOUNT, ...), got {keys!r}")
    account_id, second = keys
    fields: dict[str, Any] = {
        "account_id": account_id,
        "service": None,
        "tag_key": None,
        "tag_value": None,
        "resource_id": None,
        "usage_type": None,
    }
    if query.source == SERVICE_SOURCE:
        fields.update(service=second, group_type="SERVICE")
    elif query.source == TAG_SOURCE:
        prefix = f"{query.tag_key}$"
        if not second.startswith(prefix):
            raise CostExplorerAnswerError(
                f"{where}: tag group {second!r} is not of the form {prefix!r}<value>"
            )
        # "Key$" is Cost Explorer's group for spend without the tag: stored as the empty value.
        fields.update(tag_key=query.tag_key, tag_value=second[len(prefix) :], group_type="TAG")
    elif query.source == USAGE_SOURCE:
        fields.update(service=query.service, usage_type=second, group_type="USAGE_TYPE")
    else:
        fields.update(service=query.service, resource_id=second, group_type="RESOURCE_ID")
    return fields


def parse_page(query: CostQuery, page: Mapping[str, Any], extracted_at: datetime) -> ParsedPage:
    """``costs`` rows (without partition keys; ``usage_date`` and ``source`` added) of one page."""
    parsed = ParsedPage()
    wanted_days = set(query.days())
    for result in page.get("ResultsByTime", []):
        start = result.get("TimePeriod", {}).get("Start", "")
        try:
            usage_date = date.fromisoformat(start)
        except ValueError as exc:
            raise CostExplorerAnswerError(f"{query.label}: TimePeriod.Start {start!r} is not a date") from exc
        if usage_date not in wanted_days:
            raise CostExplorerAnswerError(
                f"{query.label}: answer for {usage_date} outside the requested {query.start}..{query.end}"
            )
        estimated = bool(result.get("Estimated", False))
        for group in result.get("Groups", []):
            parsed.groups += 1
            keys = group.get("Keys", [])
            where = f"{query.label} on {usage_date}, group {keys!r}"
            fields = _group_fields(query, keys, where)
            metrics = group.get("Metrics", {})
            for metric in METRICS:
                amount, unit = _amount(metrics.get(metric), f"{where}, metric {metric}")
                parsed.rows.append(
                    {
                        "usage_date": usage_date,
                        "source": query.source,
                        "extracted_at": extracted_at,
                        **fields,
                        "metric": metric,
                        "amount": amount,
                        "unit": unit,
                        "estimated": estimated,
                    }
                )
    return parsed


def count_groups(page: Mapping[str, Any]) -> int:
    """Groups in one answer: the ``items`` of its ``api_calls`` row."""
    return sum(len(result.get("Groups", [])) for result in page.get("ResultsByTime", []))
