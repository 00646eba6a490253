"""Which regions each account has enabled (AWS Account Management, moto with the sandbox's
emulation): a region an account has not opted into is never planned, and says so."""

from __future__ import annotations

from datetime import date

import pytest
from botocore.stub import Stubber

from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.collectors import is_global_service, services
from tag_compliance.aws.hook import TagComplianceAwsHook
from tag_compliance.aws.regions import ACCOUNT_MANAGEMENT, RegionDiscoveryError, regions_not_enabled
from tag_compliance.collect import discover_organisation, not_enabled_outcomes, plan_targets
from tag_compliance.collection_status import NOT_ENABLED
from tag_compliance.config import Settings
from tests.conftest import MEMBER_ACCOUNT, OWN_ACCOUNT

OPT_IN = "eu-south-1"  # an opt-in region: DISABLED in a new account
ALSO_OPT_IN = "ap-east-1"
REGIONS = ["us-east-1", "eu-west-1", OPT_IN, ALSO_OPT_IN]


def hook(recorder: ApiCallRecorder | None = None) -> TagComplianceAwsHook:
    return TagComplianceAwsHook("aws_default", recorder=recorder or ApiCallRecorder(task="test"))


@pytest.fixture
def member_opted_in(aws) -> str:
    """The member account has opted into OPT_IN (enabled from the management account)."""
    aws.client("account").enable_region(RegionName=OPT_IN, AccountId=MEMBER_ACCOUNT)
    return MEMBER_ACCOUNT


def test_each_account_is_asked_once_and_only_its_disabled_regions_are_left_out(member_opted_in):
    recorder = ApiCallRecorder(task="test")
    found = regions_not_enabled(hook(recorder), [OWN_ACCOUNT, member_opted_in], REGIONS)
    assert found == {
        OWN_ACCOUNT: {OPT_IN: "DISABLED", ALSO_OPT_IN: "DISABLED"},
        member_opted_in: {ALSO_OPT_IN: "DISABLED"},
    }
    assert recorder.totals("ListRegions").calls == 2  # one request per account: every region at once
    assert recorder.totals("ListRegions").pages == 2


def test_an_account_with_every_configured_region_enabled_is_not_listed(member_opted_in):
    assert regions_not_enabled(hook(), [OWN_ACCOUNT, member_opted_in], ["us-east-1", OPT_IN]) == {
        OWN_ACCOUNT: {OPT_IN: "DISABLED"}
    }


def test_regions_aws_enables_by_default_need_no_request(aws):
    # AWS enables every Region launched before March 2019 in every account, for good
    recorder = ApiCallRecorder(task="test")
    assert (
        regions_not_enabled(hook(recorder), [OWN_ACCOUNT, MEMBER_ACCOUNT], ["us-east-1", "eu-west-1"]) == {}
    )
    assert recorder.totals("ListRegions").calls == 0


def test_the_plan_never_holds_a_region_the_account_has_not_enabled(member_opted_in):
    settings = Settings(accounts=[OWN_ACCOUNT, member_opted_in], regions=REGIONS)
    skipped = regions_not_enabled(hook(), settings.accounts, settings.regions)
    plan = plan_targets(settings, settings.accounts, skipped)
    for service, targets in plan.items():
        pairs = {(target["account_id"], target["region"]) for target in targets}
        if is_global_service(service):
            assert pairs == {(OWN_ACCOUNT, "global"), (member_opted_in, "global")}
        else:
            assert pairs == {
                (OWN_ACCOUNT, "us-east-1"),
                (OWN_ACCOUNT, "eu-west-1"),
                (member_opted_in, "us-east-1"),
                (member_opted_in, "eu-west-1"),
                (member_opted_in, OPT_IN),
            }
    rows = not_enabled_outcomes(plan, skipped)
    regional = [service for service in services() if not is_global_service(service)]
    assert len(rows) == 3 * len(regional)
    assert {
        (row["account_id"], row["region"], row["status"], row["error_code"], row["attempts"]) for row in rows
    } == {
        (OWN_ACCOUNT, OPT_IN, NOT_ENABLED, "DISABLED", 0),
        (OWN_ACCOUNT, ALSO_OPT_IN, NOT_ENABLED, "DISABLED", 0),
        (member_opted_in, ALSO_OPT_IN, NOT_ENABLED, "DISABLED", 0),
    }


def test_the_run_discovers_regions_once_and_can_be_told_not_to(member_opted_in, settings):
    settings = settings.model_copy(update={"accounts": [OWN_ACCOUNT, member_opted_in], "regions": REGIONS})
    found = discover_organisation(date(2026, 3, 1), live=True, settings=settings)
    assert found["regions_not_enabled"] == {
        OWN_ACCOUNT: {OPT_IN: "DISABLED", ALSO_OPT_IN: "DISABLED"},
        member_opted_in: {ALSO_OPT_IN: "DISABLED"},
    }
    off = settings.model_copy(update={"region_discovery": False})
    assert discover_organisation(date(2026, 3, 2), live=True, settings=off)["regions_not_enabled"] == {}
    # a past day's inventory is a stored one: nothing to ask
    assert discover_organisation(date(2026, 3, 3), live=False, settings=settings)["regions_not_enabled"] == {}


def test_a_caller_that_may_not_list_another_accounts_regions_is_told_what_to_do(aws):
    # AWS answers AccessDeniedException without trusted access for Account Management (moto
    # does not check it): botocore's stubber gives that answer here.
    caller = hook()
    client = caller.client_for(caller.own_account_id, "us-east-1", ACCOUNT_MANAGEMENT)
    with Stubber(client) as stub:
        stub.add_client_error("list_regions", "AccessDeniedException", "not authorized")
        with pytest.raises(
            RegionDiscoveryError, match=r"trusted access for AWS Account Management.*REGION_DISCOVERY=false"
        ):
            regions_not_enabled(caller, [MEMBER_ACCOUNT], REGIONS)


def test_the_sandbox_refuses_to_switch_a_default_region_and_the_management_account_naming_itself(aws):
    client = aws.client("account")
    with pytest.raises(client.exceptions.ValidationException, match="enabled by default"):
        client.disable_region(RegionName="us-east-1", AccountId=MEMBER_ACCOUNT)
    with pytest.raises(client.exceptions.ValidationException, match="cannot specify its own AccountId"):
        client.list_regions(AccountId=OWN_ACCOUNT)
    with pytest.raises(client.exceptions.ValidationException, match="MaxResults"):
        client.list_regions(MaxResults=51)
