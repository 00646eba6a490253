"""Resource types described as data, and the one collector that reads them.

Most AWS resource types share one shape: a list or describe call whose items carry an id, an
ARN (or the parts to build one), a name, a state and a creation time, with the tags inline, in one
bulk Resource Groups Tagging API listing, or in a service's own batch tag call. Such a type is a
``DescribedType``: a few lines of data in its service's module, in the spirit of Cloud Custodian's
per-type ``resource_type`` metadata. Types that do not fit (ECS services listed per cluster, EC2
instances per reservation) stay hand-written ``Collector`` subclasses.

Paths into an API's answers are JMESPath expressions (what botocore itself uses for paginators),
compiled once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

import jmespath
from jmespath.parser import ParsedResult

from tag_compliance.aws.collectors.base import (
    TAGGING_API,
    CollectionContext,
    Collector,
    ResourceRecord,
    arn_partition,
)
from tag_compliance.aws.errors import AwsCollectionError


def _compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


@dataclass(frozen=True)
class InlineTags:
    """Tags carried by the item itself: a list of ``{key: ..., value: ...}`` objects at ``path``,
    or, with ``key=None``, one ``{tag key: tag value}`` object. Absent or null means no tags."""

    path: str = "Tags"
    key: str | None = "Key"
    value: str = "Value"

    def read(self, item: Any) -> dict[str, str]:
        found = _compiled(self.path).search(item)
        if not found:
            return {}
        if self.key is None:
            return {str(key): "" if value is None else str(value) for key, value in found.items()}
        # A missing value reads as "" (S3 and others drop empty ones).
        return {tag[self.key]: tag.get(self.value) or "" for tag in found}


@dataclass(frozen=True)
class TaggingApiTags:
    """Tags from one bulk Tagging API listing of the type per (account, region), 100 resources per
    request; a resource it does not return has never been tagged. ``type_filter`` is the type as
    the Tagging API names it (``elasticfilesystem:file-system`` for ``efs:file-system``)."""

    type_filter: str


@dataclass(frozen=True)
class BatchTags:
    """A service call that returns the tags of up to ``batch`` resources at once (ELB's
    DescribeTags, Route 53's ListTagsForResources, CloudTrail's ListTags).

    Each request sends the resources' ARNs (or ids, ``send="id"``) in ``param``; ``results`` is
    the list of per-resource answers, ``result_id`` what each answer names the resource by, and
    ``tags`` where its tags are."""

    operation: str
    param: str
    batch: int
    results: str
    result_id: str
    tags: InlineTags = InlineTags()
    send: Literal["arn", "id"] = "arn"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchDetails:
    """The list call only names the resources; ``operation`` describes up to ``batch`` of them per
    request (ECS DescribeClusters, CodeBuild BatchGetProjects), and its ``results`` are the items."""

    operation: str
    param: str
    batch: int
    results: str
    params: Mapping[str, Any] = field(default_factory=dict)


TagSource = InlineTags | TaggingApiTags | BatchTags


@dataclass(frozen=True, eq=False)
class DescribedType(Collector):
    """One resource type as data.

    :param resource_type: ``service:type`` as ARNs spell it (``ec2:volume``).
    :param operation: the boto3 method that lists the type (``describe_volumes``).
    :param items: JMESPath of the items in one answer (``Volumes``).
    :param id: JMESPath of an item's id; with ``id_after``, only what follows the last
        occurrence of that text (``/hostedzone/Z12`` -> ``Z12``).
    :param tags: where the tags come from.
    :param service: lake partition, mapped DAG task and Airflow pool family (default: the
        resource type's prefix).
    :param client: the boto3 service name (default: ``service``).
    :param arn: JMESPath of the item's ARN; else ``arn_format``, a ``str.format`` template over
        ``partition``, ``region``, ``account``, ``id`` and ``bare_id`` (the id without a leading
        ``/``: SSM parameter paths).
    :param created_in_ms: the creation time is epoch milliseconds (CloudWatch Logs).
    :param page_size: the API's maximum page size, asked for unless a smaller one is configured;
        None to leave the page size to the service (the call has none, or takes no number).
    :param paginated: whether the call has a boto3 paginator (else one request answers all).
    :param cost_explorer_service: the SERVICE Cost Explorer bills the type under (None: free, or
        billed within another type's usage); ``cost_usage_types`` its usage types when shared.
    :param gone_states: states (any case) of resources that no longer exist.
    :param skip: JMESPath; items for which it is true are not inventory (AWS's own parameters).
    """

    resource_type: str
    operation: str
    items: str
    id: str
    tags: TagSource
    service: str = ""
    client: str = ""
    arn: str | None = None
    arn_format: str | None = None
    name: str | None = None
    state: str | None = None
    created: str | None = None
    created_in_ms: bool = False
    id_after: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    page_size: int | None = None
    paginated: bool = True
    gone_states: frozenset[str] = frozenset()
    skip: str | None = None
    details: BatchDetails | None = None
    is_global: bool = False
    cost_explorer_service: str | None = None
    cost_usage_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.service:
            object.__setattr__(self, "service", self.resource_type.split(":", 1)[0])
        if (self.arn is None) == (self.arn_format is None):
            raise ValueError(f"{self.resource_type}: give exactly one of arn and arn_format")
        object.__setattr__(self, "gone_states", frozenset(state.lower() for state in self.gone_states))

    @property
    def api_services(self) -> tuple[str, ...]:  # type: ignore[override]
        return (TAGGING_API,) if isinstance(self.tags, TaggingApiTags) else ()

    @cached_property
    def boto_service(self) -> str:
        return self.client or self.service

    @property
    def client_services(self) -> tuple[str, ...]:
        return (self.boto_service, *self.api_services)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        items = [item for item in self._listed(ctx) if not self._skipped(item)]
        if not items:
            return
        records = [self._record(ctx, item) for item in items]
        if isinstance(self.tags, TaggingApiTags):
            tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, self.tags.type_filter)
            records = [_with_tags(record, tags_by_arn.get(record.arn, {})) for record in records]
        elif isinstance(self.tags, BatchTags):
            records = self._batch_tagged(ctx, records)
        yield from records

    # --- listing

    def _listed(self, ctx: CollectionContext) -> Iterator[Any]:
        items = _compiled(self.items)
        if self.paginated:
            page_size = ctx.page_size_for(self.page_size) if self.page_size else None
            pages: Iterator[dict[str, Any]] = ctx.paginate(
                self.boto_service, self.operation, self.resource_type, page_size=page_size, **self.params
            )
        else:
            count = _counter(items)
            pages = iter(
                [
                    ctx.call(
                        self.boto_service,
                        self.operation,
                        self.resource_type,
                        count_items=count,
                        **self.params,
                    )
                ]
            )
        listed = [item for page in pages for item in items.search(page) or ()]
        if self.details is None:
            yield from listed
            return
        results = _compiled(self.details.results)
        for batch in _batches(listed, self.details.batch):
            answer = ctx.call(
                self.boto_service,
                self.details.operation,
                self.resource_type,
                count_items=_counter(results),
                **{self.details.param: list(batch)},
                **self.details.params,
            )
            yield from results.search(answer) or ()

    def _skipped(self, item: Any) -> bool:
        if self.skip is not None and _compiled(self.skip).search(item):
            return True
        if self.state is not None and self.gone_states:
            state = _compiled(self.state).search(item)
            return isinstance(state, str) and state.lower() in self.gone_states
        return False

    def _record(self, ctx: CollectionContext, item: Any) -> ResourceRecord:
        resource_id = str(_compiled(self.id).search(item))
        if self.id_after is not None:
            resource_id = resource_id.rsplit(self.id_after, 1)[-1]
        if self.arn is not None:
            arn = _compiled(self.arn).search(item)
        else:
            assert self.arn_format is not None
            arn = self.arn_format.format(
                partition=arn_partition(ctx.client_region),
                region=ctx.client_region,
                account=ctx.account_id,
                id=resource_id,
                bare_id=resource_id.lstrip("/"),
            )
        if not arn:
            raise AwsCollectionError(
                f"{self.resource_type} {resource_id!r} in account {ctx.account_id}, region {ctx.region}: "
                f"{self.operation} returned no ARN at {self.arn!r}"
            )
        state = _compiled(self.state).search(item) if self.state else None
        created = _compiled(self.created).search(item) if self.created else None
        if self.created_in_ms and isinstance(created, int | float):
            created /= 1000
        return ResourceRecord(
            resource_id=resource_id,
            arn=str(arn),
            name=_text(_compiled(self.name).search(item)) if self.name else None,
            state=_text(state),
            created_at=_timestamp(created),
            tags=self.tags.read(item) if isinstance(self.tags, InlineTags) else {},
        )

    # --- tags from a service's batch call

    def _batch_tagged(self, ctx: CollectionContext, records: list[ResourceRecord]) -> list[ResourceRecord]:
        assert isinstance(self.tags, BatchTags)
        source = self.tags
        results, result_id = _compiled(source.results), _compiled(source.result_id)
        found: dict[str, dict[str, str]] = {}
        for batch in _batches(records, source.batch):
            answer = ctx.call(
                self.boto_service,
                source.operation,
                self.resource_type,
                count_items=_counter(results),
                **{source.param: [_sent(record, source.send) for record in batch]},
                **source.params,
            )
            for result in results.search(answer) or ():
                found[str(result_id.search(result))] = source.tags.read(result)
        return [_with_tags(record, found.get(_sent(record, source.send), {})) for record in records]


def _counter(items: ParsedResult) -> Callable[[Mapping[str, Any]], int]:
    """How the hook counts the items of one answer (for ``api_calls``)."""
    return lambda answer: len(items.search(answer) or ())


def _sent(record: ResourceRecord, send: str) -> str:
    return record.arn if send == "arn" else record.resource_id


def _with_tags(record: ResourceRecord, tags: Mapping[str, str]) -> ResourceRecord:
    return ResourceRecord(
        resource_id=record.resource_id,
        arn=record.arn,
        name=record.name,
        state=record.state,
        created_at=record.created_at,
        tags=dict(tags),
        source=record.source,
        resource_type=record.resource_type,
    )


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _timestamp(value: Any) -> datetime | None:
    """botocore parses most timestamps; some APIs answer epoch seconds or ISO text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
