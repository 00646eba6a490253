"""Which accounts a run inventories when none are listed: AWS Organizations' ACTIVE accounts (moto)."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from tag_compliance.aws.accounting import ApiCallRecorder
from tag_compliance.aws.hook import TagComplianceAwsHook
from tag_compliance.aws.organization import (
    ORGANIZATIONS,
    AccountDiscoveryError,
    discover_accounts,
    discover_organisation_accounts,
)
from tag_compliance.collect import discover_organisation
from tag_compliance.config import Settings
from tests.conftest import OWN_ACCOUNT


def hook() -> TagComplianceAwsHook:
    return TagComplianceAwsHook("aws_default", recorder=ApiCallRecorder(task="test"))


@pytest.fixture
def organisation(aws):
    """The connection's account manages an organisation: root -> workloads -> prod, five accounts
    (one in each unit, one at the root, one suspended in workloads, the management one)."""
    client = aws.client("organizations")
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]
    workloads = client.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    prod = client.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]

    def account(name: str, parent: str) -> str:
        created = client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        if parent != root:
            client.move_account(
                AccountId=created["AccountId"], SourceParentId=root, DestinationParentId=parent
            )
        return created["AccountId"]

    ids = {
        "at-root": account("at-root", root),
        "workloads": account("workloads", workloads),
        "prod": account("prod", prod),
        "closed": account("closed", workloads),
    }
    client.close_account(AccountId=ids["closed"])
    return {"root": root, "unit:workloads": workloads, "unit:prod": prod, **ids}


def test_every_active_account_of_the_organisation_and_no_suspended_one(organisation, caplog):
    with caplog.at_level(logging.WARNING, logger="tag_compliance.aws.organization"):
        found = discover_accounts(hook())
    assert found == sorted(
        [OWN_ACCOUNT, organisation["at-root"], organisation["workloads"], organisation["prod"]]
    )
    assert organisation["closed"] in caplog.text and "SUSPENDED" in caplog.text


def test_each_account_comes_with_its_name_email_domain_unit_path_status_and_joining_date(organisation):
    found = discover_organisation_accounts(hook(), exclude=[organisation["prod"]])
    by_id = {account.account_id: account for account in found.listed}
    assert set(by_id) == {
        OWN_ACCOUNT,
        *(organisation[name] for name in ("at-root", "workloads", "prod", "closed")),
    }
    described = {
        name: (
            by_id[organisation[name]].name,
            by_id[organisation[name]].email_domain,
            by_id[organisation[name]].ou_path,
            by_id[organisation[name]].status,
            by_id[organisation[name]].inventoried,
        )
        for name in ("at-root", "workloads", "prod", "closed")
    }
    assert described == {
        "at-root": ("at-root", "example.com", "Root", "ACTIVE", True),
        "workloads": ("workloads", "example.com", "Root/workloads", "ACTIVE", True),
        "prod": ("prod", "example.com", "Root/workloads/prod", "ACTIVE", False),  # excluded
        "closed": ("closed", "example.com", "Root/workloads", "SUSPENDED", False),
    }
    assert all(account.joined_at is not None for account in found.listed)
    assert found.chosen == sorted(a.account_id for a in found.listed if a.inventoried)


def test_organisational_units_are_followed_down_and_exclusions_apply(organisation):
    workloads = organisation["unit:workloads"]
    assert discover_accounts(hook(), org_units=[workloads]) == sorted(
        [organisation["workloads"], organisation["prod"]]
    )
    assert discover_accounts(hook(), org_units=[workloads], exclude=[organisation["prod"]]) == [
        organisation["workloads"]
    ]


def test_an_account_in_no_organisation_is_inventoried_alone(aws):
    assert discover_accounts(hook()) == [OWN_ACCOUNT]


@pytest.mark.parametrize(
    ("units", "exclude", "message"),
    [
        (
            ["ou-abcd-12345678"],
            [],
            r"TAG_COMPLIANCE_ORG_UNITS names an organisational unit .* ou-abcd-12345678",
        ),
        ([], "all", r"no ACTIVE account in the organisation is left .* TAG_COMPLIANCE_EXCLUDE_ACCOUNTS"),
    ],
)
def test_a_configuration_the_organisation_cannot_answer_is_a_named_error(
    organisation, units, exclude, message
):
    if exclude == "all":
        exclude = discover_accounts(hook())
    with pytest.raises(AccountDiscoveryError, match=message):
        discover_accounts(hook(), org_units=units, exclude=exclude)


def test_units_without_an_organisation_are_a_named_error(aws):
    # AWS says AWSOrganizationsNotInUseException, moto ParentNotFoundException: both name the setting
    with pytest.raises(AccountDiscoveryError, match=r"TAG_COMPLIANCE_ORG_UNITS .*r-abcd"):
        discover_accounts(hook(), org_units=["r-abcd"])


def test_a_member_account_that_may_not_list_the_organisation_is_told_what_to_do(aws):
    # moto lets any account of an organisation list it; AWS answers a member account with
    # AccessDeniedException, which botocore's stubber gives here.
    member = hook()
    client = member.client_for(member.own_account_id, "us-east-1", ORGANIZATIONS)
    with Stubber(client) as stub:
        stub.add_client_error("list_roots", "AccessDeniedException", "You don't have permissions")
        with pytest.raises(AccountDiscoveryError, match=r"management account or a delegated administrator"):
            discover_accounts(member)


def test_malformed_units_and_excluded_accounts_are_refused_by_the_settings(monkeypatch):
    monkeypatch.setenv("TAG_COMPLIANCE_ORG_UNITS", "ou-abcd-12345678,workloads")
    with pytest.raises(ValidationError, match="'workloads' is not an organisational unit id"):
        Settings()
    monkeypatch.setenv("TAG_COMPLIANCE_ORG_UNITS", "")
    monkeypatch.setenv("TAG_COMPLIANCE_EXCLUDE_ACCOUNTS", "1234")
    with pytest.raises(ValidationError, match="'1234' is not a 12-digit AWS account id"):
        Settings()


def test_the_run_asks_sts_once_and_lists_the_organisation_once(organisation, settings):
    found = discover_organisation(date(2026, 3, 1), live=True, settings=settings)
    assert found["caller_account"] == OWN_ACCOUNT
    assert len(found["accounts"]) == 4
    # every account listed (the suspended one too) is staged for the snapshot's commit
    assert found["accounts_file"]["dataset"] == "accounts" and found["accounts_file"]["rows"] == 5
    # a past day's inventory is a stored one: nobody to list, the caller still (for the costs)
    assert discover_organisation(date(2026, 3, 1), live=False, settings=settings)["accounts"] == []
