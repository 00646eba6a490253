"""An HTTP proxy on 127.0.0.1 that answers bursts of throttled responses, as each AWS service does.

It sits between the pipeline and the sandbox (moto, the Cost Explorer emulator) and speaks every
protocol our clients use: EC2 and query (RDS, STS), REST-XML (S3), REST-JSON (Lambda) and JSON
(ECS, the Tagging API, Cost Explorer). The service of a request is the one its SigV4 credential
scope names (``.../us-east-1/ec2/aws4_request``), so no parsing of bodies is needed to route it.
A :class:`Burst` throttles ``length`` consecutive requests of one service (or one operation)
after ``after`` of them were served; the proxy counts what it throttled, per service, for the
tests to compare with ``api_calls.throttles``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

# The signing name in the credential scope, to the boto3 service name api_calls records.
SERVICE_OF_SIGNING_NAME = {"tagging": "resourcegroupstaggingapi"}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "content-length", "content-encoding", "transfer-encoding", "keep-alive"}


@dataclass(frozen=True)
class ThrottledResponse:
    code: str  # the error code the service sends
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _query_error(code: str, status: int = 400) -> ThrottledResponse:
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message>"
        "</Error><RequestId>throttled</RequestId></ErrorResponse>"
    )
    return ThrottledResponse(code, status, body.encode(), (("Content-Type", "text/xml"),))


def _json_error(code: str, content_type: str = "application/x-amz-json-1.1") -> ThrottledResponse:
    body = json.dumps({"__type": code, "message": "Rate exceeded"})
    return ThrottledResponse(code, 400, body.encode(), (("Content-Type", content_type),))


# What each service really answers when it throttles (code, status and envelope).
THROTTLED = {
    "ec2": ThrottledResponse(
        "RequestLimitExceeded",
        503,
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>'
        b"<Message>Request limit exceeded.</Message></Error></Errors>"
        b"<RequestID>throttled</RequestID></Response>",
        (("Content-Type", "text/xml"),),
    ),
    "rds": _query_error("Throttling"),
    "sts": _query_error("Throttling"),
    "s3": ThrottledResponse(
        "SlowDown",
        503,
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message><RequestId>throttled</RequestId></Error>",
        (("Content-Type", "application/xml"),),
    ),
    "lambda": ThrottledResponse(
        "TooManyRequestsException",
        429,
        b'{"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"}',
        (("Content-Type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException")),
    ),
    "ecs": _json_error("ThrottlingException"),
    "resourcegroupstaggingapi": _json_error("ThrottledException"),
    "ce": _json_error("LimitExceededException"),
}


@dataclass
class Burst:
    """``length`` consecutive throttled responses to ``service`` (one ``operation`` if given),
    once ``after`` of its requests were served."""

    service: str
    length: int
    after: int = 0
    operation: str | None = None
    served: int = 0
    throttled: int = 0

    def matches(self, service: str, operation: str | None) -> bool:
        return service == self.service and self.operation in (None, operation)

    def throttles_next(self) -> bool:
        """Decide for one matching request: throttle it, or count it as served."""
        if self.served < self.after or self.throttled >= self.length:
            self.served += 1
            return False
        self.throttled += 1
        return True


def operation_of(path: str, headers: dict[str, str], body: bytes) -> str | None:
    """The operation of a query or JSON request (None for REST protocols)."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(urlsplit(path).query)
    if "Action" in query:
        return query["Action"][0]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return parse_qs(body.decode(errors="replace")).get("Action", [None])[0]
    return None


class ThrottlingProxy:
    """``with ThrottlingProxy(moto_url, [Burst("ec2", 3)]) as proxy:`` then use ``proxy.url``."""

    def __init__(self, target_url: str, bursts: list[Burst], upstreams: dict[str, str] | None = None) -> None:
        self.target_url = target_url.rstrip("/")
        self.upstreams = {service: url.rstrip("/") for service, url in (upstreams or {}).items()}
        self.bursts = bursts
        self.requests: Counter[tuple[str, str | None]] = Counter()  # (service, operation) -> received
        self.throttled: Counter[str] = Counter()  # service -> throttled responses we made up
        # service -> throttled responses passed on from upstream (the Cost Explorer emulator
        # enforces the real API's rate limit), so the total sent is known exactly either way
        self.passed_on: Counter[str] = Counter()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                scope = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
                signing_name = scope.group(1) if scope else "unsigned"
                service = SERVICE_OF_SIGNING_NAME.get(signing_name, signing_name)
                throttled = proxy._decide(service, operation_of(self.path, headers, body))
                if throttled is not None:
                    self._reply(throttled.status, throttled.body, throttled.headers)
                    return
                upstream = requests.request(
                    self.command,
                    proxy.upstreams.get(service, proxy.target_url) + self.path,
                    data=body,
                    headers={name: value for name, value in self.headers.items() if name.lower() != "host"},
                    allow_redirects=False,
                    timeout=60,
                )
                forwarded = tuple(
                    (name, value)
                    for name, value in upstream.headers.items()
                    if name.lower() not in _HOP_BY_HOP
                )
                known = THROTTLED.get(service)
                if upstream.status_code >= 400 and known and known.code.encode() in upstream.content:
                    with proxy._lock:
                        proxy.passed_on[service] += 1
                self._reply(upstream.status_code, upstream.content, forwarded)

            def _reply(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _decide(self, service: str, operation: str | None) -> ThrottledResponse | None:
        with self._lock:
            self.requests[service, operation] += 1
            for burst in self.bursts:
                if burst.matches(service, operation) and burst.throttles_next():
                    self.throttled[service] += 1
                    return THROTTLED[service]
            return None

    def sent(self) -> Counter[str]:
        """Throttled responses sent, per service: made up here or passed on from upstream."""
        return self.throttled + self.passed_on

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
