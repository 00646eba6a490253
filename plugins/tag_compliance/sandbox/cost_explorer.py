"""A Cost Explorer emulator over the sandbox's cost ledger (see :mod:`.ledger`).

moto only returns canned Cost Explorer answers, so the sandbox serves ``GetCostAndUsage`` and
``GetCostAndUsageWithResources`` itself: a small HTTP server on 127.0.0.1 speaking the AWS JSON 1.1
protocol the boto3 ``ce`` client uses (``POST /``, ``X-Amz-Target: AWSInsightsIndexService.<Op>``),
so the pipeline reaches it through ``endpoint_url`` exactly as it would reach AWS. Signatures are not
checked. Every answer is an exact (Decimal) sum over ledger rows, and the real API's limits are
enforced, with the offending field named in the error:

* DAILY granularity only; ``TimePeriod`` End exclusive; at most two ``GroupBy`` keys;
* RESOURCE_ID only in ``GetCostAndUsageWithResources``, which also needs a ``Filter`` on SERVICE
  and a start within the last ``resource_window_days`` (14) days;
* days after ``today - estimated_days`` are ``Estimated`` and show the ledger's ``estimated_*``
  amounts; days after ``today`` (or outside the ledger) have no data;
* pagination: ``page_size`` (day, group) entries per page (a day without groups counts as one),
  an opaque ``NextPageToken`` bound to the request it came from;
* ``throttle_next(n)`` makes the next n requests fail with ``LimitExceededException``;
* ``replace_ledger(table)`` swaps the ledger while serving, ``rename_resources(mapping)`` renames
  resource ids in it (the sandbox does when its estate advances: new instances get their real ids).

    with CostExplorerEmulator(load_ledger(data_dir), today) as emulator:
        ce = boto3.client("ce", endpoint_url=emulator.endpoint_url, ...)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pyarrow as pa

HOST = "127.0.0.1"
TARGET_PREFIX = "AWSInsightsIndexService."
GET_COST_AND_USAGE = "GetCostAndUsage"
WITH_RESOURCES = "GetCostAndUsageWithResources"
OPERATIONS = (GET_COST_AND_USAGE, WITH_RESOURCES)
CONTENT_TYPE = "application/x-amz-json-1.1"
UNIT = "USD"
NO_REGION = "NoRegion"
NO_RESOURCE_ID = "NoResourceId"
MAX_GROUP_BY = 2

# metric -> which ledger amount it shows (no blended rates or credits in the sandbox's organisation)
METRICS = {
    "AmortizedCost": "amortized",
    "NetAmortizedCost": "amortized",
    "UnblendedCost": "unblended",
    "BlendedCost": "unblended",
    "NetUnblendedCost": "unblended",
}
DIMENSIONS = ("LINKED_ACCOUNT", "SERVICE", "REGION", "USAGE_TYPE")
RESOURCE_DIMENSIONS = (*DIMENSIONS, "RESOURCE_ID")
_ZERO = Decimal(0)


class CostExplorerError(Exception):
    """An error answer: HTTP 400 with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _invalid(message: str) -> CostExplorerError:
    return CostExplorerError("ValidationException", message)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered."""

    operation: str  # the X-Amz-Target operation ("" when missing)
    body: dict[str, Any]  # the parsed JSON body ({} when it was not a JSON object)
    status: int  # HTTP status returned
    error: str | None = None  # error code when status != 200


@dataclass(frozen=True)
class _Row:
    account_id: str
    service: str
    region: str | None
    resource_id: str | None
    usage_type: str
    tags: dict[str, str]
    final: dict[str, Decimal]  # "amortized" / "unblended"
    estimated: dict[str, Decimal]

    def dimension(self, key: str) -> str:
        if key == "LINKED_ACCOUNT":
            return self.account_id
        if key == "SERVICE":
            return self.service
        if key == "REGION":
            return self.region or NO_REGION
        if key == "RESOURCE_ID":
            return self.resource_id or NO_RESOURCE_ID
        if key == "USAGE_TYPE":
            return self.usage_type
        raise AssertionError(key)


Predicate = Callable[[_Row], bool]


@dataclass(frozen=True)
class _Query:
    operation: str
    start: date
    end: date  # exclusive
    metrics: tuple[str, ...]
    group_by: tuple[tuple[str, str], ...]  # (DIMENSION | TAG, key)
    predicate: Predicate
    fingerprint: str
    offset: int


@dataclass(frozen=True)
class _Entry:
    """One unit of pagination: a (day, group), a day's total, or an empty day's placeholder."""

    day: date
    estimated: bool
    keys: tuple[str, ...] | None  # None: total (no GroupBy) or placeholder
    sums: dict[str, Decimal] | None  # None: placeholder of a day without groups


def _rows_by_day(ledger: pa.Table) -> dict[date, list[_Row]]:
    columns = {name: ledger.column(name).to_pylist() for name in ledger.column_names}
    by_day: dict[date, list[_Row]] = {}
    for i, day in enumerate(columns["usage_date"]):
        by_day.setdefault(day, []).append(
            _Row(
                account_id=columns["account_id"][i],
                service=columns["service"][i],
                region=columns["region"][i],
                resource_id=columns["resource_id"][i],
                usage_type=columns["usage_type"][i],
                tags=dict(columns["tags"][i] or ()),
                final={
                    "amortized": columns["amortized_cost"][i],
                    "unblended": columns["unblended_cost"][i],
                },
                estimated={
                    "amortized": columns["estimated_amortized_cost"][i],
                    "unblended": columns["estimated_unblended_cost"][i],
                },
            )
        )
    return by_day


class CostExplorerEmulator:
    """Cost Explorer over a ledger, on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(
        self,
        ledger: pa.Table,
        today: date,
        *,
        page_size: int = 25,
        estimated_days: int = 2,
        resource_window_days: int = 14,
    ) -> None:
        self._by_day = _rows_by_day(ledger)
        self._generation = 0  # bumped by replace_ledger: cached answers of an older ledger are stale
        self.first_day = min(self._by_day) if self._by_day else None
        self.last_day = max(self._by_day) if self._by_day else None
        self.today = today
        self.page_size = page_size
        self.estimated_days = estimated_days
        self.resource_window_days = resource_window_days
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._throttle: tuple[int, str] = (0, "LimitExceededException")
        self._cache: OrderedDict[tuple[Any, ...], list[_Entry]] = OrderedDict()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._endpoint_url: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Start serving (idempotent); returns the endpoint URL."""
        if self._server is not None:
            return self.endpoint_url
        server = _Server((HOST, 0), _Handler)
        server.emulator = self
        self._server = server
        self._endpoint_url = f"http://{HOST}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="cost-explorer", daemon=True
        )
        self._thread.start()
        return self._endpoint_url

    def stop(self) -> None:
        """Stop serving and close open connections (idempotent)."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the Cost Explorer emulator has not been started")
        return self._endpoint_url

    def __enter__(self) -> CostExplorerEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def throttle_next(self, n: int, code: str = "LimitExceededException") -> None:
        """The next ``n`` requests fail with HTTP 400 ``code`` ("Rate exceeded")."""
        with self._lock:
            self._throttle = (max(0, n), code)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def rename_resources(self, renamed: dict[str, str]) -> None:
        """Rename resource ids (placeholder -> real id) in the ledger being served."""
        if not renamed:
            return
        with self._lock:
            self._by_day = {
                day: [
                    replace(row, resource_id=renamed[row.resource_id]) if row.resource_id in renamed else row
                    for row in rows
                ]
                for day, rows in self._by_day.items()
            }
            self._generation += 1
            self._cache.clear()

    def replace_ledger(self, ledger: pa.Table) -> None:
        """Answer from ``ledger`` from now on (requests already being answered finish on the old one)."""
        by_day = _rows_by_day(ledger)
        with self._lock:
            self._by_day = by_day
            self._generation += 1
            self._cache.clear()
            self.first_day = min(by_day) if by_day else None
            self.last_day = max(by_day) if by_day else None

    # ------------------------------------------------------------------ protocol

    def handle(self, target: str | None, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON payload). Records it."""
        operation = (target or "").removeprefix(TARGET_PREFIX)
        body: dict[str, Any] = {}
        try:
            try:
                parsed = json.loads(raw_body or b"{}")
            except ValueError as exc:
                raise CostExplorerError("SerializationException", f"request body is not JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise CostExplorerError("SerializationException", "request body must be a JSON object")
            body = parsed
            with self._lock:
                remaining, code = self._throttle
                if remaining > 0:
                    self._throttle = (remaining - 1, code)
                    raise CostExplorerError(code, "Rate exceeded")
            if not target or not target.startswith(TARGET_PREFIX) or operation not in OPERATIONS:
                raise CostExplorerError(
                    "UnknownOperationException",
                    f"unknown operation {target!r}: the emulator serves "
                    + ", ".join(TARGET_PREFIX + op for op in OPERATIONS),
                )
            status, payload = 200, self._answer(operation, body)
        except CostExplorerError as exc:
            status, payload = 400, {"__type": exc.code, "message": exc.message}
        with self._lock:
            self._requests.append(
                RecordedRequest(operation, body, status, payload.get("__type") if status != 200 else None)
            )
        return status, payload

    def _answer(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        today, estimated_days, page_size = self.today, self.estimated_days, max(1, int(self.page_size))
        query = self._parse(operation, body, today)
        with self._lock:
            by_day = self._by_day
            cache_key = (query.fingerprint, today, estimated_days, self._generation)
            entries = self._cache.get(cache_key)
            if entries is not None:
                self._cache.move_to_end(cache_key)
        if entries is None:
            entries = self._entries(query, today, estimated_days, by_day)
            with self._lock:
                self._cache[cache_key] = entries
                while len(self._cache) > 32:
                    self._cache.popitem(last=False)
        if query.offset > len(entries):
            raise _invalid(f"NextPageToken is out of range for this request (offset {query.offset})")
        page = entries[query.offset : query.offset + page_size]
        results: list[dict[str, Any]] = []
        for entry in page:
            if not results or results[-1]["TimePeriod"]["Start"] != entry.day.isoformat():
                results.append(
                    {
                        "TimePeriod": {
                            "Start": entry.day.isoformat(),
                            "End": (entry.day + timedelta(days=1)).isoformat(),
                        },
                        "Total": {},
                        "Groups": [],
                        "Estimated": entry.estimated,
                    }
                )
            if entry.sums is None:
                continue
            metrics = {m: {"Amount": _amount(entry.sums[m]), "Unit": UNIT} for m in query.metrics}
            if entry.keys is None:
                results[-1]["Total"] = metrics
            else:
                results[-1]["Groups"].append({"Keys": list(entry.keys), "Metrics": metrics})
        answer: dict[str, Any] = {
            "GroupDefinitions": [{"Type": kind, "Key": key} for kind, key in query.group_by],
            "ResultsByTime": results,
            "DimensionValueAttributes": [],
        }
        end = query.offset + len(page)
        if end < len(entries):
            answer["NextPageToken"] = _token(end, query.fingerprint)
        return answer

    # ------------------------------------------------------------------ request parsing

    def _parse(self, operation: str, body: dict[str, Any], today: date) -> _Query:
        with_resources = operation == WITH_RESOURCES
        period = body.get("TimePeriod")
        if not isinstance(period, dict):
            raise _invalid("TimePeriod is required: {'Start': 'YYYY-MM-DD', 'End': 'YYYY-MM-DD'}")
        start = _parse_date(period.get("Start"), "TimePeriod.Start")
        end = _parse_date(period.get("End"), "TimePeriod.End")
        if start >= end:
            raise _invalid(
                f"TimePeriod.Start ({start.isoformat()}) must be before TimePeriod.End "
                f"({end.isoformat()}, exclusive)"
            )
        granularity = body.get("Granularity")
        if granularity != "DAILY":
            raise _invalid(f"Granularity {granularity!r} is not supported: the emulator supports DAILY only")
        metrics = body.get("Metrics")
        if not isinstance(metrics, list) or not metrics:
            raise _invalid(f"Metrics must be a non-empty list of {sorted(METRICS)}")
        for metric in metrics:
            if metric not in METRICS:
                raise _invalid(f"Metrics: {metric!r} is not supported; supported: {sorted(METRICS)}")
        group_by = _parse_group_by(body.get("GroupBy"), with_resources)
        expression = body.get("Filter")
        if with_resources:
            if expression is None:
                raise _invalid(f"{WITH_RESOURCES} requires a Filter on the SERVICE dimension")
            window_start = today - timedelta(days=self.resource_window_days)
            if start < window_start:
                raise _invalid(
                    f"TimePeriod.Start {start.isoformat()} is too early: resource-level data is only "
                    f"available for the last {self.resource_window_days} days "
                    f"(from {window_start.isoformat()})"
                )
        predicate = _compile(expression, "Filter", with_resources) if expression is not None else None
        if with_resources and not _restricts_service(expression):
            raise _invalid(
                f"{WITH_RESOURCES} requires the Filter to restrict the SERVICE dimension "
                "(Dimensions Key SERVICE, alone or in an And)"
            )
        fingerprint = _fingerprint(operation, body)
        offset = 0
        if (token := body.get("NextPageToken")) is not None:
            offset = _parse_token(token, fingerprint)
        return _Query(
            operation=operation,
            start=start,
            end=end,
            metrics=tuple(dict.fromkeys(metrics)),
            group_by=group_by,
            predicate=predicate or (lambda row: True),
            fingerprint=fingerprint,
            offset=offset,
        )

    # ------------------------------------------------------------------ evaluation

    def _entries(
        self, query: _Query, today: date, estimated_days: int, by_day: dict[date, list[_Row]]
    ) -> list[_Entry]:
        entries: list[_Entry] = []
        estimated_after = today - timedelta(days=estimated_days)
        columns = {metric: METRICS[metric] for metric in query.metrics}
        day = query.start
        while day < query.end:
            rows = by_day.get(day, []) if day <= today else []
            visible = day <= today and day in by_day
            estimated = visible and day > estimated_after
            groups: dict[tuple[str, ...], dict[str, Decimal]] = {}
            for row in rows:
                if not query.predicate(row):
                    continue
                keys = tuple(_group_key(row, kind, key) for kind, key in query.group_by)
                amounts = row.estimated if estimated else row.final
                sums = groups.get(keys)
                if sums is None:
                    sums = groups[keys] = dict.fromkeys(query.metrics, _ZERO)
                for metric, column in columns.items():
                    sums[metric] += amounts[column]
            if not query.group_by:
                total = groups.get((), dict.fromkeys(query.metrics, _ZERO))
                entries.append(_Entry(day, estimated, None, total))
            elif groups:
                entries += [_Entry(day, estimated, keys, groups[keys]) for keys in sorted(groups)]
            else:
                entries.append(_Entry(day, estimated, None, None))
            day += timedelta(days=1)
        return entries


# --------------------------------------------------------------------------- helpers


def _amount(value: Decimal) -> str:
    """Fixed-point, never an exponent (Decimal("0E-10") -> "0.0000000000")."""
    return format(value, "f")


def _group_key(row: _Row, kind: str, key: str) -> str:
    if kind == "DIMENSION":
        return row.dimension(key)
    return f"{key}${row.tags.get(key, '')}"  # exact, case-sensitive key; untagged -> "Key$"


def _parse_date(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise _invalid(f"{field} is required, as YYYY-MM-DD (got {value!r})")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{field} {value!r} is not a date in YYYY-MM-DD format") from None


def _parse_group_by(group_by: Any, with_resources: bool) -> tuple[tuple[str, str], ...]:
    if group_by is None:
        return ()
    if not isinstance(group_by, list):
        raise _invalid("GroupBy must be a list of {'Type': 'DIMENSION'|'TAG', 'Key': ...}")
    if len(group_by) > MAX_GROUP_BY:
        raise _invalid(f"GroupBy has {len(group_by)} entries: at most {MAX_GROUP_BY} are allowed")
    allowed = RESOURCE_DIMENSIONS if with_resources else DIMENSIONS
    parsed = []
    for i, item in enumerate(group_by):
        kind = item.get("Type") if isinstance(item, dict) else None
        key = item.get("Key") if isinstance(item, dict) else None
        if kind not in ("DIMENSION", "TAG"):
            raise _invalid(f"GroupBy[{i}].Type {kind!r} is not supported: use DIMENSION or TAG")
        if not isinstance(key, str) or not key:
            raise _invalid(f"GroupBy[{i}].Key is required (got {key!r})")
        if kind == "DIMENSION" and key not in allowed:
            hint = f" (RESOURCE_ID needs {WITH_RESOURCES})" if key == "RESOURCE_ID" else ""
            raise _invalid(
                f"GroupBy[{i}].Key {key!r} is not a supported dimension for this operation: "
                f"{list(allowed)}{hint}"
            )
        parsed.append((kind, key))
    return tuple(parsed)


_EXPRESSION_KEYS = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories")


def _compile(expression: Any, path: str, with_resources: bool) -> Predicate:
    """A Cost Explorer ``Expression`` as a predicate over ledger rows (validated on the way)."""
    if not isinstance(expression, dict):
        raise _invalid(f"{path} must be an Expression object (got {expression!r})")
    present = [key for key in expression if expression[key] is not None]
    if len(present) != 1 or present[0] not in _EXPRESSION_KEYS:
        raise _invalid(
            f"{path} must have exactly one of And, Or, Not, Dimensions, Tags (got {sorted(expression)})"
        )
    (operator,) = present
    operand = expression[operator]
    if operator in ("And", "Or"):
        if not isinstance(operand, list) or not operand:
            raise _invalid(f"{path}.{operator} must be a non-empty list of Expressions")
        parts = [_compile(item, f"{path}.{operator}[{i}]", with_resources) for i, item in enumerate(operand)]
        if operator == "And":
            return lambda row: all(part(row) for part in parts)
        return lambda row: any(part(row) for part in parts)
    if operator == "Not":
        inner = _compile(operand, f"{path}.Not", with_resources)
        return lambda row: not inner(row)
    if operator == "CostCategories":
        raise _invalid(f"{path}.CostCategories is not supported by the emulator")
    if not isinstance(operand, dict):
        raise _invalid(f"{path}.{operator} must be an object with Key and Values")
    key = operand.get("Key")
    values = operand.get("Values")
    options = operand.get("MatchOptions") or ["EQUALS"]
    where = f"{path}.{operator}"
    if not isinstance(key, str) or not key:
        raise _invalid(f"{where}.Key is required (got {key!r})")
    if not isinstance(options, list) or len(options) != 1:
        raise _invalid(f"{where}.MatchOptions {options!r} is not supported: use ['EQUALS']")
    option = options[0]
    if operator == "Dimensions":
        allowed = RESOURCE_DIMENSIONS if with_resources else DIMENSIONS
        if key not in allowed:
            raise _invalid(f"{where}.Key {key!r} is not a supported filter dimension: {list(allowed)}")
        if option != "EQUALS":
            raise _invalid(f"{where}.MatchOptions {options!r} is not supported: use ['EQUALS']")
        wanted = _values(values, where)
        return lambda row: row.dimension(key) in wanted
    # Tags: a missing key and an empty value are the same group ("Key$"), and so match alike
    if option == "ABSENT":
        return lambda row: row.tags.get(key, "") == ""
    if option != "EQUALS":
        raise _invalid(f"{where}.MatchOptions {options!r} is not supported: use ['EQUALS'] or ['ABSENT']")
    wanted = _values(values, where)
    return lambda row: row.tags.get(key, "") in wanted


def _values(values: Any, where: str) -> frozenset[str]:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _invalid(f"{where}.Values must be a non-empty list of strings (got {values!r})")
    return frozenset(values)


def _restricts_service(expression: Any) -> bool:
    """Whether every row the expression admits is in an explicitly listed SERVICE."""
    if not isinstance(expression, dict):
        return False
    dimensions = expression.get("Dimensions")
    if isinstance(dimensions, dict):
        return dimensions.get("Key") == "SERVICE"
    if isinstance(expression.get("And"), list):
        return any(_restricts_service(item) for item in expression["And"])
    if isinstance(expression.get("Or"), list):
        return all(_restricts_service(item) for item in expression["Or"])
    return False


def _fingerprint(operation: str, body: dict[str, Any]) -> str:
    request = {key: value for key, value in body.items() if key != "NextPageToken"}
    canonical = json.dumps([operation, request], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "r": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_token(token: Any, fingerprint: str) -> int:
    try:
        if not isinstance(token, str):
            raise ValueError(token)
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, bound_to = decoded["o"], decoded["r"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _invalid(f"NextPageToken {token!r} is not valid") from None
    if bound_to != fingerprint:
        raise _invalid(
            "NextPageToken does not belong to this request: it must be sent with the same "
            "parameters as the request that returned it"
        )
    return offset


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: CostExplorerEmulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Keep-alive connections would otherwise keep being served after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore pools connections
    server: _Server
    timeout = 60  # idle keep-alive connections

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        status, payload = self.server.emulator.handle(self.headers.get("X-Amz-Target"), raw)
        self._send(status, payload)

    def do_GET(self) -> None:
        self._send(
            400, {"__type": "UnknownOperationException", "message": "Cost Explorer takes POST requests only"}
        )

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the pipeline's logs are what matter
