"""Lambda functions: ListFunctions carries no tags, so they come from one bulk Tagging API listing."""

from __future__ import annotations

from collections.abc import Iterator

from tag_compliance.aws.collectors.base import TAGGING_API, CollectionContext, Collector, ResourceRecord


class LambdaFunctionCollector(Collector):
    resource_type = "lambda:function"
    service = "lambda"
    cost_explorer_service = "AWS Lambda"
    api_services = (TAGGING_API,)  # tags come from tags_from_tagging_api

    def collect(self, ctx: CollectionContext) -> Iterator[ResourceRecord]:
        functions = [
            function
            for page in ctx.paginate(
                "lambda", "list_functions", self.resource_type, page_size=ctx.page_size_for(50)
            )
            for function in page.get("Functions", [])
        ]
        if not functions:
            return
        tags_by_arn = ctx.tags_from_tagging_api(self.resource_type, "lambda:function")
        for function in functions:
            yield ResourceRecord(
                resource_id=function["FunctionName"],
                arn=function["FunctionArn"],
                name=function["FunctionName"],
                state=function.get("State"),
                tags=tags_by_arn.get(function["FunctionArn"], {}),
            )
