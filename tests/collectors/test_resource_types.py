"""Every resource type the sandbox can make, collected from moto by its collector.

Per type (its recipe in ``tag_compliance.sandbox.recipes`` makes the resources): two never-tagged
resources and ten tagged ones, each with tags of its own. The collector must see exactly what was
there before plus what was made (moto makes some resources by itself: a region's default VPC, a
VPC's default security group), each with its tags exactly; where moto honours the page size asked
for, more than one page; and never one request per resource, except where AWS offers no bulk call
(the README names each exception).
"""

from __future__ import annotations

import math

import pytest

from tag_compliance.aws.collectors import all_collectors
from tag_compliance.aws.collectors.base import GLOBAL_REGION
from tag_compliance.aws.collectors.tagging import BREADTH_TYPE
from tag_compliance.sandbox.recipes import RECIPES, Prerequisites
from tests.collectors.helpers import run_collector
from tests.conftest import OWN_ACCOUNT

REGION = "us-east-1"
UNTAGGED, TAGGED = 2, 10
# AWS offers no bulk alternative: (type, operation) -> one request per resource.
PER_RESOURCE_CALLS = {("eks:nodegroup", "DescribeNodegroup")}
COLLECTORS = {collector.resource_type: collector for collector in all_collectors()}
BREADTH = COLLECTORS.pop(BREADTH_TYPE)  # the Tagging API's listing of every other tagged type


def tags_of(index: int) -> dict[str, str]:
    if index < UNTAGGED:
        return {}
    return {"Owner": f"team{index}@example.com", "CostCenter": f"CC-{index:04d}", "Équipe": "données"}


@pytest.mark.parametrize("resource_type", sorted(r for r in RECIPES if not RECIPES[r].tagging_only))
def test_never_tagged_and_tagged_resources_are_collected_with_their_tags(aws, resource_type):
    recipe, collector = RECIPES[resource_type], COLLECTORS[resource_type]
    api = Prerequisites(lambda service: aws.client(service, REGION), OWN_ACCOUNT, REGION)
    api.make(recipe.needs)
    region = GLOBAL_REGION if recipe.is_global else REGION

    def collect():
        return run_collector(
            collector, OWN_ACCOUNT, region, client_region=REGION, page_size=recipe.test_page_size
        )

    before = collect()
    made = {recipe.create(api, index, tags_of(index)): tags_of(index) for index in range(UNTAGGED + TAGGED)}
    assert len(made) == UNTAGGED + TAGGED, "a recipe returned one id twice"

    run = collect()

    assert set(run.records) == set(before.records) | {resource_id for resource_id, _ in made}
    assert {(resource_id, run.records[resource_id].arn) for resource_id, _ in made} == set(made)
    assert {(resource_id, arn): dict(run.records[resource_id].tags) for resource_id, arn in made} == made
    arns = [record.arn for record in run.records.values()]
    assert len(set(arns)) == len(arns)
    assert all(arn.startswith("arn:aws:") for arn in arns), arns
    requests = run.recorder.to_table().to_pylist()
    if recipe.moto_pages:
        assert max(row["pages"] for row in requests) > 1, requests
    for row in requests:
        if (resource_type, row["operation"]) not in PER_RESOURCE_CALLS:
            assert row["calls"] <= 2, f"{row['service']}:{row['operation']} called {row['calls']} times"


def test_every_collector_of_a_new_type_has_a_recipe():
    # The five original types have tests of their own (tests/collectors/test_<type>.py).
    original = {"ec2:instance", "ecs:service", "lambda:function", "rds:db", "s3:bucket"}
    assert set(COLLECTORS) - original == {r for r in RECIPES if not RECIPES[r].tagging_only}
    assert len(COLLECTORS) >= 50


def test_the_tagging_api_breadth_sees_every_other_tagged_type_and_leaves_the_rest_to_their_collectors(aws):
    api = Prerequisites(lambda service: aws.client(service, REGION), OWN_ACCOUNT, REGION)
    only_tagging = sorted(r for r in RECIPES if RECIPES[r].tagging_only)
    made = {}
    for resource_type in [*only_tagging, "dynamodb:table", "ec2:vpc"]:
        for index in range(UNTAGGED + TAGGED):
            resource_id, arn = RECIPES[resource_type].create(api, index, tags_of(index))
            made[arn] = (resource_type, resource_id, tags_of(index))
    run = run_collector(BREADTH, OWN_ACCOUNT, REGION)
    seen = {
        record.arn: (record.resource_type, record.resource_id, dict(record.tags))
        for record in run.records.values()
    }
    # tagged resources of the types no collector lists, with their types read from their ARNs;
    # never-tagged ones are invisible to the Tagging API, and DynamoDB tables and VPCs are
    # their own collectors' (which see never-tagged ones too)
    assert seen == {arn: made[arn] for arn in made if made[arn][0] in only_tagging and made[arn][2]}
    assert {record.source for record in run.records.values()} == {"tagging_api"}
    # one listing, 100 resources a request, however many types
    assert run.pages("GetResources") == math.ceil((len(only_tagging) + 2) * TAGGED / 100)
