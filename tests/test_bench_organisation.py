"""`make bench-organisation` at toy size, under the real scheduler it uses: a few member accounts,
one without its role, an opt-in region none enabled. The run ends failed after publishing (the
broken account's targets), the opt-in region is never called, and the tables print."""

from __future__ import annotations

import pytest
from rich.console import Console

from bench import organisation

pytestmark = pytest.mark.e2e

MEMBERS, BROKEN = 6, 1


@pytest.fixture(scope="module")
def measured() -> dict:
    return organisation.measure(accounts=MEMBERS, broken_accounts=BROKEN)


def test_every_target_of_the_enabled_regions_is_planned_and_the_broken_ones_failed(measured):
    accounts = MEMBERS + 1  # and the management account
    coverage = measured["coverage"]
    assert coverage.planned == accounts * len(organisation.REGIONS)
    assert measured["statuses"] == {
        "collected": (accounts - BROKEN) * len(organisation.REGIONS),
        "failed": BROKEN * len(organisation.REGIONS),
        "not_enabled": accounts,  # the opt-in region, in every account
    }
    assert measured["opt_in_calls"] == 0
    assert measured["run_state"] == "failed"  # coverage below 100, after publishing
    assert 1 <= measured["collect_instances"] <= measured["cap"]


def test_the_tables_print_with_the_requests_against_the_fewest(measured):
    console = Console(record=True, width=160)
    for table in organisation.tables(measured):
        console.print(table)
    text = console.export_text()
    assert "targets planned (sqs)" in text and "Extrapolation: 5,000 accounts x 17 regions" in text
    operations = {(row["service"], row["operation"]) for row in measured["operations"]}
    assert {("sqs", "ListQueues"), ("account", "ListRegions"), ("sts", "GetCallerIdentity")} <= operations
