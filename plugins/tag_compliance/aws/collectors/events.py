"""EventBridge rules, on every event bus of the region: no tags in ListRules; the Tagging API in
bulk. ListEventBuses has no boto3 paginator, so it is paged here by its token."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import CollectionContext, Collector, ResourceRecord

PAGE_MAXIMUM = 100
DEFAULT_BUS = "default"


class RuleCollector(Collector):
    resource_type = "events:rule"
    cost_explorer_service = "CloudWatch Events"
    service = "events"
    api_services = ("resourcegroupstaggingapi",)

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        rules = [(bus, rule) for bus in self._buses(ctx) for rule in self._rules(ctx, bus)]
        if not rules:
            return
        tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, "events:rule")
        for bus, rule in rules:
            yield ResourceRecord(
                # Rule names are unique per bus; rules of the default bus are known by name alone.
                resource_id=rule["Name"] if bus == DEFAULT_BUS else f"{bus}/{rule['Name']}",
                arn=rule["Arn"],
                name=rule["Name"],
                state=rule.get("State"),
                tags=tags_by_arn.get(rule["Arn"], {}),
            )

    def _buses(self, ctx: CollectionContext) -> Iterator[str]:
        request: dict[str, object] = {"Limit": ctx.page_size_for(PAGE_MAXIMUM)}
        first = True
        while True:
            page = ctx.call(
                "events",
                "list_event_buses",
                self.resource_type,
                items_key="EventBuses",
                next_page=not first,
                **request,
            )
            yield from (bus["Name"] for bus in page.get("EventBuses", []))
            if not page.get("NextToken"):
                return
            request["NextToken"], first = page["NextToken"], False

    def _rules(self, ctx: CollectionContext, bus: str) -> Iterator[dict]:
        for page in ctx.paginate(
            "events",
            "list_rules",
            self.resource_type,
            page_size=ctx.page_size_for(PAGE_MAXIMUM),
            EventBusName=bus,
        ):
            yield from page.get("Rules", [])
