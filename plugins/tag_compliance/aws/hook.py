"""The one place that talks to AWS.

``TagComplianceAwsHook`` builds on the Amazon provider's ``AwsBaseHook`` (so credentials,
endpoints, ``service_config`` and botocore settings come from the Airflow connection) and
adds what an estate-wide inventory needs:

* clients per (account, region, service), assuming a read-only role in member accounts;
* botocore ``standard`` retries by default, overridable with the connection extra
  ``config_kwargs: {"retries": {"mode": ..., "total_max_attempts": ...}}``;
* a process-wide token bucket per (account, region, service) in front of every HTTP attempt;
* exponential backoff with full jitter when a throttling error survives botocore's retries,
  throttling being what botocore's standard retries call throttling (its fixed error codes,
  codes the service model marks as throttling, a bare 429);
* pagination driven request by request from botocore's paginator model, so backoff retries the
  one request that was throttled and no page is ever returned twice;
* accounting of calls, pages, items, retries and throttles in an ``ApiCallRecorder``;
* where each of those clients sends its requests, found without a network call
  (:meth:`TagComplianceAwsHook.client_endpoints`, for the sandbox clock's guard).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import jmespath
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import RetryContext, RetryEventAdapter, ThrottlingErrorDetector

from tag_compliance.aws.accounting import ApiCallRecorder, OperationKey
from tag_compliance.aws.errors import AwsCollectionError
from tag_compliance.aws.ratelimit import RATE_LIMITERS, RateLimit

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.loaders import Loader
    from botocore.model import OperationModel

STS = "sts"  # the hook's own calls: the connection's account (GetCallerIdentity), member roles
ROLE_ARN_STS = "sts (AssumeRole of the connection's role_arn)"

OWN_ACCOUNT = "connection"  # the account label of clients made before any account is known
_THROTTLING = ThrottlingErrorDetector(RetryEventAdapter())

DEFAULT_BOTOCORE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},
    connect_timeout=10,
    read_timeout=60,
)


_LOADERS: dict[str | None, Loader] = {}
_LOADERS_LOCK = threading.Lock()


def _share_loader(session: botocore.session.Session) -> botocore.session.Session:
    """Give ``session`` the process's model loader for its data path.

    A botocore session parses every service model (JSON, megabytes for EC2) the first time it
    builds a client of that service, and the collection tasks make a session per target and per
    assumed role: shared, each model is read once per process (at 40 services, seconds a target).
    """
    from botocore.loaders import create_loader

    data_path = session.get_config_variable("data_path")
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            _LOADERS[data_path] = create_loader(data_path)
        session.register_component("data_loader", _LOADERS[data_path])
    return session


def _offline_session(profile: str | None, region: str) -> botocore.session.Session:
    """A botocore session as boto3 makes one, with the process's model loader: building a client
    only to read its endpoint costs milliseconds, however often the sandbox clock is read."""
    session = botocore.session.Session(profile=profile)
    session.set_config_variable("region", region)
    return _share_loader(session)


@dataclass
class _ProcessCache:
    """What every hook of a process may reuse: the connection's own account (asked once per
    process, not once per target) and assumed roles' credentials (until 5 minutes before they
    expire), keyed by connection and role.

    Each answer is fetched once however many threads want it at the same time (one lock per
    key): a chunk's threads start together, and each asking STS would make the count of STS
    requests depend on timing.
    """

    answers: dict[tuple[str, ...], Any] = field(default_factory=dict)
    key_locks: dict[tuple[str, ...], threading.Lock] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(
        self, key: tuple[str, ...], fetch: Callable[[], Any], fresh: Callable[[Any], bool] = lambda _: True
    ) -> Any:
        """The answer for ``key``: the remembered one while ``fresh``, else ``fetch()``'s."""
        with self.lock:
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self.lock:
                known = self.answers.get(key)
            if known is None or not fresh(known):
                known = fetch()
                with self.lock:
                    self.answers[key] = known
            return known

    def forget(self) -> None:
        with self.lock:
            self.answers.clear()


_PROCESS = _ProcessCache()
CREDENTIALS_MARGIN = timedelta(minutes=5)


def forget_process_cache() -> None:
    """Drop what hooks of this process learnt (an emulator reset forgets assumed roles)."""
    _PROCESS.forget()


@cache
def _aws_dns_suffixes() -> frozenset[str]:
    """The DNS suffixes of AWS's partitions, from botocore's partition data (amazonaws.com, api.aws...)."""
    loader = _offline_session(None, "us-east-1").get_component("data_loader")
    return frozenset(
        suffix
        for partition in loader.load_data("partitions")["partitions"]
        for suffix in (partition["outputs"]["dnsSuffix"], partition["outputs"]["dualStackDnsSuffix"])
    )


def _checked_endpoint(url: str) -> str:
    """An endpoint URL given to a client, refused as botocore's client would refuse it."""
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        raise ValueError(f"Invalid endpoint: {url}")
    return url


def is_aws_endpoint(url: str) -> bool:
    """Whether ``url``'s host belongs to one of AWS's partitions."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    return any(host == suffix or host.endswith(f".{suffix}") for suffix in _aws_dns_suffixes())


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, used after botocore's own retries gave up."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_throttling(error: ClientError, operation: OperationModel | None = None) -> bool:
    """Whether botocore's standard retries would call ``error`` throttling.

    The same test botocore applies to every attempt (``ThrottlingErrorDetector``): its list of
    throttling codes (``ThrottledException``, ``SlowDown``, ``RequestThrottled``,
    ``PriorRequestNotComplete``...), errors the service model marks as throttling, and a 429
    the model does not explain. No list of our own to fall behind AWS.
    """
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    context = RetryContext(
        attempt_number=1,
        operation_model=operation,
        parsed_response=error.response,
        http_response=SimpleNamespace(status_code=status) if status is not None else None,
    )
    return _THROTTLING.is_throttling_error_from_context(context)


def _count_items(page: Mapping[str, Any], items_key: str | None) -> int:
    return len(page.get(items_key, ())) if items_key else 0


def _retry_attempts(response: Mapping[str, Any]) -> int:
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


@dataclass
class _ThrottleCounter:
    """Counts throttled responses a client sees, including those botocore retries silently.

    Registered on ``needs-retry``, which botocore emits after every attempt (the last one too),
    and classified as botocore's own retry logic does.
    """

    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, **kwargs: Any) -> None:
        if kwargs.get("response") is not None and _THROTTLING.is_throttling_error(**kwargs):
            with self._lock:
                self.count += 1


@dataclass(frozen=True)
class _Pagination:
    """One operation's paginator model (botocore's ``paginators-1`` data), compiled."""

    input_tokens: tuple[str, ...]
    output_tokens: tuple[Any, ...]  # compiled JMESPath expressions
    limit_key: str | None
    more_results: Any
    result_key: Any

    @classmethod
    def of(cls, client: BaseClient, operation: str) -> _Pagination:
        """Read from the loader botocore itself uses, so the model matches the client's API version."""
        if not client.can_paginate(operation):
            raise ValueError(f"{client.meta.service_model.service_name}:{operation} cannot be paginated")
        api_name = client.meta.method_to_api_mapping[operation]
        service = client.meta.service_model
        config = _pagination_model(service.service_name, service.api_version).get_paginator(api_name)

        def as_tuple(value: str | list[str] | None) -> tuple[str, ...]:
            return () if value is None else (value,) if isinstance(value, str) else tuple(value)

        result_keys = as_tuple(config.get("result_key"))
        return cls(
            input_tokens=as_tuple(config["input_token"]),
            output_tokens=tuple(jmespath.compile(token) for token in as_tuple(config["output_token"])),
            limit_key=config.get("limit_key"),
            more_results=jmespath.compile(config["more_results"]) if config.get("more_results") else None,
            result_key=jmespath.compile(result_keys[0]) if result_keys else None,
        )

    def items(self, page: Mapping[str, Any]) -> int:
        found = self.result_key.search(page) if self.result_key is not None else None
        return len(found) if isinstance(found, list) else 0

    def next_tokens(self, page: Mapping[str, Any]) -> dict[str, Any]:
        """The next request's tokens, empty when the page was the last (as botocore decides)."""
        if self.more_results is not None and not self.more_results.search(page):
            return {}
        # botocore treats an empty string as no token (the Tagging API ends with "").
        outputs = zip(self.input_tokens, self.output_tokens, strict=True)
        tokens = {name: expr.search(page) or None for name, expr in outputs}
        return tokens if any(token is not None for token in tokens.values()) else {}


@cache
def _pagination_model(service: str, api_version: str) -> Any:
    return _offline_session(None, "us-east-1").get_paginator_model(service, api_version)


@dataclass
class _Client:
    client: BaseClient
    throttles: _ThrottleCounter


class TagComplianceAwsHook(AwsBaseHook):
    """Clients for many accounts and regions from one Airflow AWS connection.

    :param aws_conn_id: the Airflow connection (credentials, endpoint, botocore config).
    :param role_name: role assumed in every account other than the connection's own.
    :param recorder: where operation counts go (one per task run).
    :param backoff: our retry policy for throttling that outlives botocore's retries.
    :param rate_limits: per-service overrides of the default client-side rate limits.
    :param own_account_id: the connection's own account when already known (the run asks STS
        once, in its first task), else asked on first need.
    """

    conn_name_attr = "aws_conn_id"
    hook_name = "Tag compliance AWS"

    def __init__(
        self,
        aws_conn_id: str | None = "aws_default",
        *,
        role_name: str = "TagComplianceReadOnly",
        recorder: ApiCallRecorder | None = None,
        backoff: Backoff | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        own_account_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(aws_conn_id=aws_conn_id, client_type="sts", **kwargs)
        self.role_name = role_name
        self.recorder = recorder or ApiCallRecorder(task="adhoc")
        self.backoff = backoff or Backoff()
        self.rate_limits = dict(rate_limits or {})
        self._sleep = sleep
        self._clients: dict[tuple[str, str, str], _Client] = {}
        self._sessions: dict[str, tuple[boto3.session.Session, datetime | None]] = {}
        self._lock = threading.RLock()
        self._own_account_id = own_account_id

    # -- sessions and clients -------------------------------------------------------------

    @property
    def botocore_config(self) -> Config:
        """Our defaults, overridden by whatever the connection's ``config_kwargs`` set."""
        connection_config = self.conn_config.botocore_config
        if connection_config is None:
            return DEFAULT_BOTOCORE_CONFIG
        return DEFAULT_BOTOCORE_CONFIG.merge(connection_config)

    def get_session(self, region_name: str | None = None, deferrable: bool = False) -> boto3.session.Session:
        """The connection's session (the provider's), with the process's model loader."""
        session = super().get_session(region_name=region_name, deferrable=deferrable)
        _share_loader(session._session)
        return session

    @property
    def _cache_key(self) -> str:
        """Whose answers the process cache holds: the connection, and where it sends requests."""
        return f"{self.aws_conn_id}|{self.conn_config.get_service_endpoint_url(STS)}"

    @property
    def own_account_id(self) -> str:
        """The connection's own account (no role to assume there); asked once per process."""
        with self._lock:
            if self._own_account_id is None:

                def ask_sts() -> str:
                    sts = self._base_client(STS, self.conn_config.region_name or "us-east-1")
                    identity = self.call(sts, "get_caller_identity", account_id="self", region="global")
                    return identity["Account"]

                self._own_account_id = _PROCESS.remember(("own account", self._cache_key), ask_sts)
            return self._own_account_id

    def _client_kwargs(self, service: str, region: str) -> dict[str, Any]:
        """How every client of this hook is made: the connection's endpoint for it, our config."""
        return {
            "region_name": region,
            "endpoint_url": self.conn_config.get_service_endpoint_url(service),
            "config": self.botocore_config,
            "verify": self.verify,
        }

    def _base_client(self, service: str, region: str) -> BaseClient:
        """A client of the connection's own session (STS: who we are, member roles), instrumented
        and rate-limited like every other client."""
        session = self.get_session(region_name=region)
        return self._instrumented(
            (OWN_ACCOUNT, region, service),
            lambda: session.client(service, **self._client_kwargs(service, region)),
        )

    def client_endpoints(self, services: Iterable[str], region: str) -> dict[str, str]:
        """Where each client this hook would create for ``services`` (and STS) sends requests.

        Found without a network call: each client is built as :meth:`client_for` builds it, but
        unsigned (no credential lookup, which may ask the instance metadata service), and botocore's
        resolution is read back from ``client.meta.endpoint_url``. For a service the connection
        gives no endpoint (none in the extra, or ``service_config.<service>.endpoint_url: null``)
        that is ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, the shared config file, else
        AWS's own endpoint (FIPS, dual-stack). Both kinds of session the hook uses are asked: the
        connection's own (its ``profile_name``) and the default one that carries member accounts'
        assumed credentials. With ``role_arn`` in the extra, also the provider's STS client that
        assumes it, which ignores the extra's ``endpoint_url``: only
        ``service_config.sts.endpoint_url`` counts there (``sts_connection_assume``).

        Keys name the client: ``"ec2"``, ``"ec2 (member accounts)"`` (only when it differs),
        :data:`ROLE_ARN_STS`.
        """
        conn = self.conn_config
        unsigned = Config(signature_version=UNSIGNED)
        # With role_arn the provider's own-account session is a fresh default one, like members'.
        own_profile = None if conn.role_arn else conn.profile_name
        sessions = {"": _offline_session(own_profile, region)}
        if own_profile is not None:
            sessions[" (member accounts)"] = _offline_session(None, region)
        endpoints: dict[str, str] = {}
        for service in sorted({*services, STS}):
            kwargs = {**self._client_kwargs(service, region), "config": self.botocore_config.merge(unsigned)}
            if kwargs["endpoint_url"] is not None:
                # Given to the client, used as it is: what botocore would check of it, without the
                # service model a client needs (tens of services, several seconds a process).
                found = dict.fromkeys(sessions, _checked_endpoint(kwargs["endpoint_url"]))
            else:
                found = {
                    label: session.create_client(service, **kwargs).meta.endpoint_url
                    for label, session in sessions.items()
                }
            endpoints[service] = found.pop("")
            endpoints |= {
                f"{service}{label}": url for label, url in found.items() if url != endpoints[service]
            }
        if conn.role_arn:
            # BaseSessionFactory._refresh_credentials: the basic session, the connection's config.
            assume = _offline_session(conn.profile_name, region).create_client(
                STS,
                region_name=region,
                endpoint_url=conn.get_service_endpoint_url(STS, sts_connection_assume=True),
                config=(conn.botocore_config or Config()).merge(unsigned),
            )
            endpoints[ROLE_ARN_STS] = assume.meta.endpoint_url
        return endpoints

    def session_for(self, account_id: str) -> boto3.session.Session:
        """A session in ``account_id``: the connection's own, or an assumed read-only role."""
        with self._lock:
            cached = self._sessions.get(account_id)
            if cached and (cached[1] is None or cached[1] - datetime.now(UTC) > timedelta(minutes=5)):
                return cached[0]
            region = self.conn_config.region_name or "us-east-1"
            if account_id == self.own_account_id:
                session, expires = self.get_session(region_name=region), None
            else:
                session, expires = self._assume_role(account_id, region)
            self._sessions[account_id] = (session, expires)
            return session

    def _assume_role(self, account_id: str, region: str) -> tuple[boto3.session.Session, datetime]:
        role_arn = f"arn:aws:iam::{account_id}:role/{self.role_name}"

        def assume() -> dict[str, Any]:
            sts = self._base_client(STS, region)
            try:
                response = self.call(
                    sts,
                    "assume_role",
                    account_id=account_id,
                    region="global",
                    RoleArn=role_arn,
                    RoleSessionName="tag-compliance",
                )
            except AwsCollectionError as exc:
                raise AwsCollectionError(
                    f"cannot assume {role_arn} in account {account_id}: {exc}", code=exc.code
                ) from exc
            return response["Credentials"]

        credentials = _PROCESS.remember(
            ("credentials", self._cache_key, role_arn, region),
            assume,
            fresh=lambda known: known["Expiration"] - datetime.now(UTC) > CREDENTIALS_MARGIN,
        )
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
            botocore_session=_share_loader(botocore.session.Session()),
        )
        return session, credentials["Expiration"]

    def client_for(self, account_id: str, region: str, service: str) -> BaseClient:
        """A cached, rate-limited, instrumented client for (account, region, service)."""
        return self._instrumented(
            (account_id, region, service),
            lambda: self.session_for(account_id).client(service, **self._client_kwargs(service, region)),
        )

    def _instrumented(self, key: tuple[str, str, str], make: Callable[[], BaseClient]) -> BaseClient:
        """The cached client for ``key``, made once with a token bucket and a throttle counter."""
        with self._lock:
            if key not in self._clients:
                client = make()
                bucket = RATE_LIMITERS.bucket(*key, self.rate_limits)

                def wait_for_token(**_: Any) -> None:
                    bucket.acquire()  # a non-None return would replace the HTTP response

                # before-send fires for every HTTP attempt, botocore's retries included.
                client.meta.events.register("before-send", wait_for_token)
                throttles = _ThrottleCounter()
                client.meta.events.register("needs-retry", throttles)
                self._clients[key] = _Client(client, throttles)
            return self._clients[key].client

    def _throttle_count(self, client: BaseClient) -> int:
        for wrapped in self._clients.values():
            if wrapped.client is client:
                return wrapped.throttles.count
        return 0

    # -- calls --------------------------------------------------------------------------

    def _operation_key(
        self, client: BaseClient, operation: str, account_id: str, region: str, resource_type: str
    ) -> OperationKey:
        return OperationKey(
            account_id=account_id,
            region=region,
            service=client.meta.service_model.service_name,
            resource_type=resource_type,
            operation=client.meta.method_to_api_mapping.get(operation, operation),
        )

    def _back_off_or_raise(
        self, exc: Exception, key: OperationKey, attempt: int, client: BaseClient, throttles_before: int
    ) -> None:
        """Account for a failed request, then sleep before a retry or raise a clear error."""
        if isinstance(exc, ClientError):
            self.recorder.add(
                key,
                retries=_retry_attempts(exc.response),
                throttles=self._throttle_count(client) - throttles_before,
            )
            operation = client.meta.service_model.operation_model(key.operation)
            if is_throttling(exc, operation) and attempt + 1 < self.backoff.attempts:
                self.recorder.add(key, retries=1)
                self._sleep(self.backoff.delay(attempt))
                return
        self.recorder.add(key, errors=1)
        raise self._describe(exc, key, attempt + 1, client) from exc

    def _record_page(
        self,
        key: OperationKey,
        page: Mapping[str, Any],
        items: int,
        client: BaseClient,
        throttles_before: int,
    ) -> None:
        self.recorder.add(
            key,
            pages=1,
            items=items,
            retries=_retry_attempts(page),
            throttles=self._throttle_count(client) - throttles_before,
        )

    def call(
        self,
        client: BaseClient,
        operation: str,
        *,
        account_id: str,
        region: str,
        resource_type: str = "",
        items_key: str | None = None,
        count_items: Callable[[Mapping[str, Any]], int] | None = None,
        next_page: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One API request, with backoff on throttling and accounting.

        Items are counted as ``len(response[items_key])``, or by ``count_items(response)`` when
        the answer nests them (Cost Explorer's groups inside ``ResultsByTime``). ``next_page``
        marks a later page of a pagination the caller drives itself: a page, not a new call.
        """
        key = self._operation_key(client, operation, account_id, region, resource_type)
        if not next_page:
            self.recorder.add(key, calls=1)
        attempt = 0
        while True:
            throttles_before = self._throttle_count(client)
            try:
                response = getattr(client, operation)(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                self._back_off_or_raise(exc, key, attempt, client, throttles_before)
                attempt += 1
                continue
            items = count_items(response) if count_items else _count_items(response, items_key)
            self._record_page(key, response, items, client, throttles_before)
            return response

    def paginate(
        self,
        client: BaseClient,
        operation: str,
        *,
        account_id: str,
        region: str,
        resource_type: str = "",
        page_size: int | None = None,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        """Every page of ``operation``, one request per page, each with :meth:`call`'s backoff.

        botocore's paginator is not resumable after an error (it keeps a resume token only when
        ``MaxItems`` truncates), so we drive its paginator model ourselves: the tokens a page
        returns go into the next request, and a throttled request is retried as it was. A page
        is yielded exactly once; a service that returns the same token twice is an error, as in
        botocore.
        """
        pagination = _Pagination.of(client, operation)
        request = dict(kwargs)
        if page_size and pagination.limit_key:
            request[pagination.limit_key] = page_size
        previous: dict[str, Any] = {}
        first = True
        while True:
            page = self.call(
                client,
                operation,
                account_id=account_id,
                region=region,
                resource_type=resource_type,
                count_items=pagination.items,
                next_page=not first,
                **request,
            )
            yield page
            tokens = pagination.next_tokens(page)
            if not tokens:
                return
            if tokens == previous:
                where = f"{client.meta.service_model.service_name}:{operation} in account {account_id}"
                raise AwsCollectionError(f"{where}, region {region}: the same next token twice: {tokens}")
            for name, token in tokens.items():
                if token is None:
                    request.pop(name, None)
                else:
                    request[name] = token
            previous, first = tokens, False

    def _describe(self, exc: Exception, key: OperationKey, attempts: int, client: BaseClient) -> Exception:
        where = f"{key.service}:{key.operation} in account {key.account_id}, region {key.region}"
        max_attempts = (client.meta.config.retries or {}).get("total_max_attempts", "?")
        if isinstance(exc, BotoConnectionError):
            return AwsCollectionError(
                f"{where}: cannot reach AWS endpoint {client.meta.endpoint_url} after {max_attempts} "
                f"botocore attempts: {exc}",
                code="EndpointConnectionError",
            )
        if isinstance(exc, ClientError) and is_throttling(
            exc, client.meta.service_model.operation_model(key.operation)
        ):
            return AwsCollectionError(
                f"{where}: still throttled ({error_code(exc)}) after {attempts} backoff attempts",
                code=error_code(exc),
            )
        return AwsCollectionError(
            f"{where}: {exc}", code=error_code(exc) if isinstance(exc, ClientError) else None
        )
