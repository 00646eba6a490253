"""The DuckDB warehouse: a small file of views over the Parquet lake, for ad hoc queries.

The file holds no data, only views that read the lake with hive partitioning (so
``account_id`` stays VARCHAR with its leading zeros and ``snapshot_date`` is a DATE). It is
rebuilt under a temporary name and renamed over the old one, so a reader never sees a
half-built warehouse. The views and their columns are a public contract: ``VIEW_COLUMNS``
documents them (the README prints it) and changes need a migration note.

Besides one view per lake dataset, ``DERIVED_VIEWS`` are views defined by a SELECT in
``include/sql/<name>.sql`` over the dataset views (created after them, so they work on an
empty lake too: the dataset views then have zero typed rows).

Every reader opens the warehouse with ``connect_read_only``: DuckDB itself then refuses to
read files outside the lake, to write files anywhere but the lake, to install or load
extensions, and to change those settings. ``check_select_only`` refuses, before it runs,
any statement of an ad hoc query but a SELECT, so not even the lake can be written.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from datetime import date
from pathlib import Path

import duckdb

from tag_compliance import history, lake, storage
from tag_compliance.config import SQL_DIR, get_settings
from tag_compliance.scoring import EngineLimits

log = logging.getLogger(__name__)

_VIOLATION_COLUMNS: dict[str, str] = {
    "snapshot_date": "Snapshot scored.",
    "account_id": "Account of the resource.",
    "region": "Region of the resource.",
    "resource_type": "Type of the resource.",
    "resource_id": "Id of the resource.",
    "arn": "ARN of the resource.",
    "tag_key": "The key of the failed tag rule; for prohibited_tag, the key found; NULL for too_many_tags.",
    "violation_type": "missing_required_tag, wrong_key_case, empty_value, invalid_value, "
    "invalid_format, prohibited_tag or too_many_tags (see docs/policy.md). Violations an exemption "
    "waives are in exempted_violations instead.",
    "severity": "'error' or 'warning' (from the policy).",
    "current_value": "The offending value; the key found for wrong_key_case; the number of user "
    "tags for too_many_tags; NULL when missing.",
    "expected": "Short text saying what would pass.",
    "inventory_as_of": "Date of the inventory scored: snapshot_date, or for a backfilled day without "
    "an inventory of its own the nearest earlier snapshot_date of resources.",
    "policy_version": "Version of the policy the snapshot was scored with.",
}

# Documentation of every view's columns, in view column order (partition keys first).
VIEW_COLUMNS: dict[str, dict[str, str]] = {
    "resources": {
        "snapshot_date": "Inventory date (UTC) the row belongs to.",
        "account_id": "12-digit AWS account id (text: leading zeros kept).",
        "region": "AWS region, or 'global' for S3.",
        "service": "AWS service (ec2, rds, s3, lambda, ecs, ...).",
        "collected_at": "When the collector saw the resource (UTC).",
        "resource_type": "service:type, e.g. ec2:instance, rds:db, s3:bucket.",
        "resource_id": "The service's own id of the resource.",
        "arn": "Amazon Resource Name.",
        "name": "Display name, when the service has one.",
        "state": "Lifecycle state reported by the service.",
        "created_at": "Creation time (UTC), when the service reports it.",
        "tags": "All tags, MAP(VARCHAR, VARCHAR).",
        "source": "'service_api' (list/describe calls) or 'tagging_api' (Resource Groups Tagging API).",
    },
    "collection_status": {
        "snapshot_date": "Inventory date (UTC).",
        "service": "Service collected (one collection per service, account and region).",
        "account_id": "12-digit AWS account id.",
        "region": "AWS region, or 'global' for a global service.",
        "status": "'collected' (its resources are in the snapshot), 'failed' (they are not: not "
        "collected, neither compliant nor absent) or 'not_enabled' (a region the account has not enabled: "
        "not called, not planned, outside the coverage figure; error_code holds its opt-in status).",
        "error_code": "AWS's error code of a failed target (AccessDenied, ...), the exception's name when "
        "AWS gave none, 'TaskFailed' when its collection task ended without a report; NULL when collected.",
        "message": "What failed, in words; NULL when collected.",
        "attempts": "Times this run tried the target (a retry of a failed run adds one; the hook's own "
        "retries of throttled requests are not counted here).",
        "resources": "Resources collected (0 when failed or not enabled).",
    },
    "accounts": {
        "snapshot_date": "Inventory date (UTC) of the run that listed the accounts.",
        "account_id": "12-digit AWS account id.",
        "name": "The account's name in AWS Organizations; NULL when the accounts were configured "
        "(TAG_COMPLIANCE_ACCOUNTS) rather than discovered.",
        "email_domain": "Domain of the account's root email address (the part after @; the mailbox is "
        "not kept).",
        "ou_path": "Organisational units from the root down to the account, e.g. 'Root/workloads/prod'.",
        "status": "Organizations' state of the account: ACTIVE, SUSPENDED, PENDING_CLOSURE...",
        "joined_at": "When the account joined the organisation (UTC).",
        "inventoried": "Whether the run inventoried it (ACTIVE, in the units asked for, not excluded).",
    },
    "costs": {
        "usage_date": "Day (UTC) the spend was incurred.",
        "source": "'service' (per account and service: the day's total spend), 'tag' (per account and "
        "required tag key and value), 'resource' (per account and resource, last 14 days only) or "
        "'usage_type' (per account and usage type of a service several resource types share, on days "
        "without 'resource' rows). Sum one source at a time: 'service' and 'tag' each add up to the day's "
        "spend, 'resource' and 'usage_type' to that of the services they were asked for.",
        "extracted_at": "When the row was fetched from Cost Explorer (UTC); estimates are re-fetched.",
        "account_id": "Linked (member) account the spend belongs to.",
        "service": "Cost Explorer SERVICE value, e.g. 'Amazon Elastic Compute Cloud - Compute'; "
        "NULL for source 'tag'.",
        "group_type": "'SERVICE', 'TAG', 'RESOURCE_ID' or 'USAGE_TYPE': what the row is grouped by "
        "besides the account.",
        "tag_key": "The tag key grouped by (source 'tag' only).",
        "tag_value": "The tag's value; '' for spend without the key (source 'tag' only).",
        "resource_id": "What Cost Explorer reports as the resource: an instance id, a bucket name or an "
        "ARN (source 'resource' only).",
        "usage_type": "Cost Explorer USAGE_TYPE, e.g. 'USE1-EBS:VolumeUsage.gp3' (source 'usage_type' only).",
        "metric": "'AmortizedCost' or 'UnblendedCost'.",
        "amount": "Spend, exact DECIMAL(38,10).",
        "unit": "Currency, e.g. 'USD'.",
        "estimated": "Cost Explorer still marks the day's figures as estimated.",
    },
    "violations": _VIOLATION_COLUMNS,
    "exempted_violations": {
        **_VIOLATION_COLUMNS,
        "violation_type": "As in violations: a violation an exemption in force on snapshot_date waives.",
        "exemption_reason": "Reason of the exemption that waives the violation (the first in the policy "
        "that matches).",
        "exemption_expires": "Last day that exemption applies.",
    },
    "resource_compliance": {
        "snapshot_date": "Snapshot scored.",
        "account_id": "Account of the resource.",
        "region": "Region of the resource.",
        "service": "Service of the resource.",
        "resource_type": "Type of the resource.",
        "resource_id": "Id of the resource.",
        "arn": "ARN of the resource.",
        "name": "Display name of the resource.",
        "in_scope": "True when at least one required or optional tag rule applies to the resource.",
        "compliant": "compliance_status = 'compliant'; NULL when not in scope.",
        "compliance_status": "'compliant' (in scope, no error-severity violation), 'non_compliant', "
        "'exempt' (its only error-severity violations are exempted: not compliant, not to fix) or "
        "'out_of_scope'.",
        "error_violations": "Violations of severity error (prohibited tags and the tag limit included; "
        "exempted ones not).",
        "warning_violations": "Violations of severity warning (exempted ones not).",
        "exempted_violations": "Violations an exemption waives.",
        "violation_types": "Sorted distinct violation types of the resource (exempted ones not).",
        "tags": "The resource's tags as scored.",
        "cost_basis": "'resource' (its own Cost Explorer rows: 0 when it has none), 'service_average' "
        "(an equal share of its account's spend on its type: its service's total, or for a service "
        "several types share the spend of its type's usage types), or NULL (no costs for the day, or no "
        "Cost Explorer service for its type).",
        "amortized_cost": "The resource's amortized cost on the snapshot day; NULL when cost_basis is.",
        "unblended_cost": "The resource's unblended cost on the snapshot day; NULL when cost_basis is.",
        "cost_estimated": "The figures used are Cost Explorer estimates (will be re-extracted).",
        "inventory_as_of": "Date of the inventory scored: snapshot_date, or for a backfilled day without "
        "an inventory of its own the nearest earlier snapshot_date of resources.",
        "policy_version": "Version of the policy the snapshot was scored with.",
    },
    "compliance_summary": {
        "snapshot_date": "Snapshot scored.",
        "dimension": "overall, account, region, service, resource_type or tag_key.",
        "dimension_value": "'all' for overall; else the account id, region, service, type or the key of "
        "a tag rule.",
        "resources_total": "Resources in the group (for tag_key: resources the rule applies to).",
        "resources_in_scope": "In-scope resources (for tag_key: resources the rule applies to).",
        "resources_compliant": "Compliant resources (for tag_key: no violation of that rule).",
        "resources_exempt": "Exempt resources: in scope, counted as not compliant (for tag_key: failing "
        "that rule under an exemption).",
        "compliance_pct": "100 * compliant / in scope; NULL when nothing is in scope.",
        "violations": "All violations in the group, exempted ones not (for tag_key: of that rule).",
        "error_violations": "Error-severity violations in the group, exempted ones not.",
        "cost_total": "Amortized cost of the group's resources (a resource without a cost counts 0); "
        "NULL when the day has no costs.",
        "cost_in_scope": "Amortized cost of its in-scope resources (for tag_key: those the rule applies "
        "to); NULL when the day has no costs.",
        "cost_compliant": "Amortized cost of its compliant resources (for tag_key: no violation of that "
        "rule); NULL when the day has no costs.",
        "cost_compliance_pct": "100 * cost_compliant / cost_in_scope; NULL when cost_in_scope is 0 or "
        "the day has no costs.",
        "targets_planned": "(service, account, region) targets the scored inventory planned to collect "
        "(NULL for an inventory that does not say); the same on every row of the day.",
        "targets_collected": "Of those, the targets collected; the others are named in collection_status.",
        "collection_coverage_pct": "100 * targets_collected / targets_planned: below 100, resources of "
        "the targets not collected are in no figure of the day (neither compliant nor absent).",
        "inventory_as_of": "Date of the inventory scored: snapshot_date, or for a backfilled day without "
        "an inventory of its own the nearest earlier snapshot_date of resources.",
        "policy_version": "Version of the policy the snapshot was scored with.",
    },
    "attribution_gap": {
        "snapshot_date": "Snapshot scored (its costs are those of the same day).",
        "account_id": "Account of the spend.",
        "service": "Our service name (ec2, s3, ...); NULL for a Cost Explorer service without a collector "
        "(or, for no_resource, one that types of several of our services share).",
        "cost_explorer_service": "Cost Explorer SERVICE value; NULL for a type it has no service for.",
        "resource_type": "Type of the resources; NULL for no_resource.",
        "tag_key": "Key of a tag rule (tag_violation only). Rows with tag_key NULL add up to the day's total "
        "amortized cost minus the cost of compliant resources.",
        "gap_reason": "'non_compliant' (in scope, an error-severity violation), 'exempt' (in scope, "
        "not compliant only through exempted violations), 'out_of_scope' (no rule applies), "
        "'no_resource' (service spend not given to any resource of the snapshot: deleted resources, "
        "services without a collector, tax, ...) or 'tag_violation' (resources failing the key's rule).",
        "severity": "Severity of the key's rule (tag_violation only).",
        "resources": "Resources in the row (0 for no_resource).",
        "amortized_cost": "Their amortized cost (a resource without a cost counts 0).",
        "unblended_cost": "Their unblended cost.",
        "cost_basis": "cost_basis of the resources; 'service' for no_resource.",
        "inventory_as_of": "Date of the inventory scored: snapshot_date, or for a backfilled day without "
        "an inventory of its own the nearest earlier snapshot_date of resources.",
        "policy_version": "Version of the policy the snapshot was scored with.",
    },
    "api_calls": {
        "snapshot_date": "Inventory date of the calls.",
        "task": "Airflow task (collector) that made the calls.",
        "account_id": "Account called.",
        "region": "Region called.",
        "service": "AWS service called.",
        "resource_type": "Resource type being collected.",
        "operation": "AWS API operation, e.g. DescribeInstances.",
        "calls": "Logical invocations (a whole pagination counts once).",
        "pages": "Responses received: every page is one billed request.",
        "items": "Items returned.",
        "retries": "Extra attempts, by botocore and by our own backoff.",
        "throttles": "Throttled responses (botocore's throttling detector), retried or not.",
        "errors": "Invocations that finally failed.",
        "request_cost_usd": "What the requests cost in USD: pages x the API's request price (Cost Explorer "
        "$0.01 per request); 0 for APIs without one.",
    },
    "tag_drift": {
        "snapshot_date": "Inventory snapshot (a snapshot_date of resources) where the change was seen "
        "(computed per day at every publish: the lake as of the last one).",
        "previous_snapshot_date": "The inventory snapshot before it (the first one yields no rows).",
        "account_id": "Account of the resource.",
        "region": "Region of the resource.",
        "resource_type": "Type of the resource.",
        "resource_id": "Id of the resource; (account_id, region, resource_type, resource_id) identify it.",
        "arn": "ARN of the resource (for resource_deleted: as in the previous snapshot).",
        "change": "'resource_created' (absent before; its tags are not listed as added), 'resource_deleted' "
        "(absent now: one row, at the first snapshot without it), 'tag_added', 'tag_removed' or "
        "'tag_value_changed'. Keys compare exactly: a key whose case changed is removed + added.",
        "tag_key": "The key added, removed or changed; NULL for resource_created and resource_deleted.",
        "previous_value": "The key's value in the previous snapshot; NULL when it had no such key.",
        "value": "The key's value in this snapshot; NULL when it has no such key.",
    },
    "violation_changes": {
        "snapshot_date": "Scored snapshot where the change was seen.",
        "previous_snapshot_date": "The scored snapshot before it (NULL on the first: every violation opens).",
        "account_id": "Account of the resource.",
        "region": "Region of the resource.",
        "resource_type": "Type of the resource.",
        "resource_id": "Id of the resource.",
        "arn": "ARN of the resource: on snapshot_date, or for resolved on previous_snapshot_date.",
        "tag_key": "As in violations; (resource, tag_key, violation_type) identify a violation.",
        "violation_type": "As in violations.",
        "severity": "Severity: on snapshot_date, or for resolved on previous_snapshot_date.",
        "change": "'opened' (not seen on previous_snapshot_date), 'resolved' (seen then, not now) or "
        "'updated' (seen on both, with another arn or severity). The episode bookkeeping violation_history "
        "adds up; brought up to date at every publish.",
        "resolution": "For resolved: 'fixed' (the resource is still scored on snapshot_date) or "
        "'resource_deleted'; else NULL.",
    },
    "tag_suggestions": {
        "snapshot_date": "Snapshot scored (computed per day at every publish: the lake as of the last one).",
        "account_id": "Account of the resource.",
        "region": "Region of the resource.",
        "resource_type": "Type of the resource.",
        "resource_id": "Id of the resource. One row per (snapshot_date, resource, tag_key) with a "
        "missing_required_tag, wrong_key_case, empty_value, invalid_value or invalid_format violation "
        "for which evidence exists; none without evidence (never a guess).",
        "arn": "ARN of the resource.",
        "tag_key": "The key of the failed tag rule (the key to set).",
        "violation_type": "As in violations.",
        "current_key": "The key the resource carries: the other-case key for wrong_key_case, tag_key for "
        "empty_value, invalid_value and invalid_format; NULL when missing.",
        "current_value": "The resource's value under current_key; NULL when missing.",
        "suggested_value": "Value proposed for tag_key: one a neighbour passing the key's rule carries, and "
        "a resource of the same type passing it too, so it passes on this resource (see "
        "include/sql/tag_suggestions.sql). Ties go to the smallest value (code-point order).",
        "action": "'rename_key' (set tag_key to current_value, then remove current_key) or 'set_value' "
        "(set tag_key to suggested_value; for wrong_key_case also remove current_key).",
        "confidence": "weight x agreeing / neighbours, rounded to 4 decimals; weight 1.0 key_case, 0.9 "
        "cloudformation_stack, 0.8 ecs_cluster, 0.6 name_prefix, 0.5 account_type_majority.",
        "evidence": "The strongest kind with a usable neighbour: 'key_case' (the other-case key's value, "
        "carried by passing resources of the type), 'cloudformation_stack' (same account, "
        "aws:cloudformation:stack-name and stack region), 'ecs_cluster' (ecs:service of the same "
        "cluster), 'name_prefix' (same account and name prefix: the name, or id, without its trailing "
        "digit run, else without its last '-', '_' or '.' part; at least 3 characters and a letter) or "
        "'account_type_majority' (same account and resource_type).",
        "evidence_detail": "The neighbourhood and the count, e.g. 'stack checkout: 7 of 8 resources'.",
        "neighbours": "Usable neighbours of that kind: resources with the exact key, no violation of it "
        "(exempted or not), and a value valid for this resource's type.",
        "agreeing": "Of them, those carrying suggested_value.",
    },
    "account_names": {
        "account_id": "12-digit AWS account id.",
        "name": "Its name in AWS Organizations, as the latest snapshot that listed it says (accounts "
        "configured in TAG_COMPLIANCE_ACCOUNTS have none and are not listed).",
        "named_as_of": "The inventory snapshot that name comes from.",
    },
    "untagged_spend": {
        "usage_date": "Day (UTC) the spend was incurred.",
        "account_id": "Linked account.",
        "tag_key": "Required tag key Cost Explorer grouped the spend by.",
        "untagged_amortized_cost": "Amortized spend Cost Explorer reports without the key.",
        "untagged_unblended_cost": "Unblended spend Cost Explorer reports without the key.",
        "total_amortized_cost": "The account's amortized spend over all values of the key (its total as "
        "that request saw it).",
        "total_unblended_cost": "The account's unblended spend over all values of the key.",
        "untagged_pct": "100 * untagged / total amortized spend; NULL when the total is 0.",
        "estimated": "Some of the figures are Cost Explorer estimates.",
    },
    "compliance_trend": {
        "snapshot_date": "Snapshot scored.",
        "dimension": "overall, account, region, service, resource_type or tag_key.",
        "dimension_value": "'all' for overall; else the account id, region, service, type or the key of "
        "a tag rule.",
        "resources_in_scope": "In-scope resources (for tag_key: resources the rule applies to).",
        "resources_compliant": "Compliant resources (for tag_key: no violation of that rule).",
        "resources_exempt": "Exempt resources: in scope, counted as not compliant (for tag_key: failing "
        "that rule under an exemption).",
        "compliance_pct": "100 * compliant / in scope; NULL when nothing is in scope.",
        "violations": "All violations in the group (for tag_key: of that rule).",
        "cost_in_scope": "Amortized cost of the in-scope resources; NULL when the day has no costs.",
        "cost_compliant": "Amortized cost of the compliant resources; NULL when the day has no costs.",
        "cost_compliance_pct": "100 * cost_compliant / cost_in_scope; NULL when cost_in_scope is 0 or the "
        "day has no costs.",
        "previous_snapshot_date": "The latest earlier snapshot_date at which the same dimension and value "
        "has a row; NULL for its first.",
        "previous_compliance_pct": "compliance_pct at previous_snapshot_date.",
        "compliance_pct_change": "compliance_pct - previous_compliance_pct, in percentage points; NULL when "
        "either is NULL.",
        "previous_cost_compliance_pct": "cost_compliance_pct at previous_snapshot_date.",
        "cost_compliance_pct_change": "cost_compliance_pct - previous_cost_compliance_pct, in percentage "
        "points; NULL when either is NULL.",
        "violations_change": "violations - the violations at previous_snapshot_date; NULL for the first row.",
        "inventory_as_of": "Date of the inventory scored (see compliance_summary).",
        "policy_version": "Version of the policy the snapshot was scored with.",
    },
    "violation_history": {
        "account_id": "Account of the resource.",
        "region": "Region of the resource.",
        "resource_type": "Type of the resource.",
        "resource_id": "Id of the resource.",
        "arn": "ARN of the resource at last_seen.",
        "tag_key": "As in violations.",
        "violation_type": "As in violations. One row per episode: a maximal run of consecutive scored "
        "snapshots (snapshot_dates of resource_compliance) with this violation of this resource.",
        "severity": "Severity at last_seen.",
        "first_seen": "First snapshot_date of the episode.",
        "last_seen": "Last snapshot_date of the episode.",
        "snapshots_seen": "Scored snapshots in the episode.",
        "days_open": "last_seen - first_seen + 1, in calendar days.",
        "status": "'open' when last_seen is the latest scored snapshot, else 'resolved'.",
        "resolved_on": "First scored snapshot after last_seen; NULL when open.",
        "resolution": "'fixed' (the resource is still there on resolved_on) or 'resource_deleted' (it is "
        "not); NULL when open. A resource recreated with the same id starts a new episode.",
        "days_to_resolve": "resolved_on - first_seen, in days; NULL when open.",
    },
    "coverage": {
        "snapshot_date": "Snapshot scored.",
        "account_id": "Account.",
        "region": "Region ('global' for types collected once per account).",
        "resource_type": "Type (service:type).",
        "resources": "Resources of the type scored on snapshot_date.",
        "service_api_resources": "Of them, those its service's own API listed (never-tagged ones included).",
        "tagging_api_resources": "Of them, those only the Tagging API's breadth listing saw (tagged or "
        "once-tagged resources only).",
        "never_tagged_visible": "Whether never-tagged resources of the type are seen: true when its "
        "service's API lists it; false when only the Tagging API does, and never-tagged ones are missing "
        "everywhere.",
        "amortized_cost": "Amortized spend of these resources that day; NULL when the day has no costs or "
        "Cost Explorer bills the type under no service mapped to it.",
        "unblended_cost": "Unblended spend of these resources that day; NULL likewise.",
        "inventory_as_of": "Date of the inventory scored (see compliance_summary).",
    },
}


def views_markdown() -> str:
    """The README's table of every view and column (a test keeps the README equal to it)."""
    lines = []
    for view, columns in VIEW_COLUMNS.items():
        lines += [f"### `{view}`", "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in columns.items()]
        lines.append("")
    return "\n".join(lines)


# Views defined by include/sql/<name>.sql over the dataset views, created in this order after them.
DERIVED_VIEWS: tuple[str, ...] = (
    "account_names",
    "untagged_spend",
    "compliance_trend",
    "violation_history",
    "coverage",
)


def view_columns(dataset: lake.Dataset) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a dataset's view: partition keys first, then file columns."""
    con = duckdb.connect(":memory:")
    try:
        file_types = con.from_arrow(dataset.empty_table()).types
    finally:
        con.close()
    partition_columns = [(key, lake.HIVE_TYPES.get(key, "VARCHAR")) for key in dataset.partition_keys]
    return partition_columns + [
        (name, str(duckdb_type)) for name, duckdb_type in zip(dataset.schema.names, file_types, strict=True)
    ]


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(lake_root: Path | str, dataset: lake.Dataset, uniform_schema: bool = False) -> str:
    """``CREATE VIEW`` text for one dataset: over its committed files, or zero typed rows if it has
    none yet.

    The files are unioned by name with a zero-row SELECT of every column, so a column added
    later (with a migration note) reads as NULL from older files, even when no file has it yet.
    A dataset written in commits (``lake.CommitUnit``) keeps only the files its unit's commit
    files list, read when the view is queried: a reader sees each snapshot, scored day and day
    of costs as its last commit left it, never a writer's files before their commit. DuckDB
    prunes the other files before reading them (a dynamic filter on ``filename``).

    With ``uniform_schema`` (every committed file has the dataset's current schema,
    ``uniform_schemas``) the files are not unioned by name: DuckDB binds the view with the first
    file's schema and opens only the files a query's partition filter leaves, where unioning by
    name opens every file of the dataset, to read its schema, on every query.

    Every path is the lake's root, resolved when the view is queried (``lake_expression``:
    the ``tag_compliance_lake`` variable ``connect_read_only`` sets, else the root it was
    published from), then the path below it: the file opens wherever the lake is reachable from.
    The published root is quoted as a literal; it comes from settings, never from policy or tag data.
    """
    location = storage.locate(lake_root)
    lake_root = location.root
    columns = view_columns(dataset)
    typed_nulls = ", ".join(
        f"CAST(NULL AS {duckdb_type}) AS {_identifier(name)}" for name, duckdb_type in columns
    )
    unit = lake.COMMITTED_DATASETS.get(dataset.name)
    # A commit may list no file (a first inventory has no drift): then the glob would match nothing.
    has_data = lake.has_files(lake_root, dataset) and (unit is None or lake.has_commits(lake_root, unit))
    if not has_data:
        select_list = ",\n    ".join(
            f"CAST(NULL AS {duckdb_type}) AS {_identifier(name)}" for name, duckdb_type in columns
        )
        return (
            f"CREATE VIEW {_identifier(dataset.name)} AS\nSELECT\n    {select_list}\n"
            "FROM (SELECT 1) AS no_files_yet WHERE false"
        )
    hive_types = ", ".join(
        f"{_literal(key)}: {_literal(lake.HIVE_TYPES.get(key, 'VARCHAR'))}" for key in dataset.partition_keys
    )
    select_list = ",\n    ".join(
        f"CAST({_identifier(name)} AS {duckdb_type}) AS {_identifier(name)}" for name, duckdb_type in columns
    )
    root = lake_expression(lake_root)
    files = f"{root} || {_literal('/' + lake.files_pattern(dataset))}"
    filename, filename_null, committed = "", "", ""
    if unit is not None:
        filename, filename_null = ", filename = true", ", CAST(NULL AS VARCHAR) AS filename"
        commits = f"{root} || {_literal('/' + unit.commits_pattern)}"
        committed = (
            "\nWHERE lake_files.filename IN (\n"
            f"    SELECT {root} || '/' || path FROM read_parquet({commits})\n"
            f"    WHERE dataset = {_literal(dataset.name)})"
        )
    source = (
        "(\n"
        f"    SELECT * FROM read_parquet({files},\n"
        f"        hive_partitioning = true, hive_types = {{{hive_types}}}, "
        f"union_by_name = {str(not uniform_schema).lower()}{filename})\n"
        "    UNION ALL BY NAME\n"
        f"    SELECT {typed_nulls}{filename_null} WHERE false\n"
        ") AS lake_files"
    )
    order = f"\nORDER BY {', '.join(dataset.view_order)}" if dataset.view_order else ""
    view = f"CREATE VIEW {_identifier(dataset.name)} AS\nSELECT\n    {select_list}\nFROM {source}"
    return f"{view}{committed}{order}"


def uniform_schemas(lake_root: Path | str) -> set[str]:
    """The committed datasets whose every committed file was written with the current schema
    (the commits say so; a file adopted or committed before they did is not known to be)."""
    uniform = {dataset.name for unit in lake.COMMIT_UNITS for dataset in unit.datasets}
    for unit in lake.COMMIT_UNITS:
        for key in lake.committed_keys(lake_root, unit):
            commit = lake.read_commit(lake_root, unit, key)
            for file in commit.files if commit else ():
                if file.schema_id != lake.DATASETS[file.dataset].schema_id:
                    uniform.discard(file.dataset)
    return uniform


LAKE_VARIABLE = "tag_compliance_lake"


def lake_expression(published_root: str) -> str:
    """SQL for the lake's root as a view reads it: the reader's ``tag_compliance_lake`` variable,
    else the root the warehouse was published from."""
    return f"coalesce(getvariable({_literal(LAKE_VARIABLE)}), {_literal(published_root)})"


def derived_view_sql(name: str, sql_dir: Path = SQL_DIR) -> str:
    """``CREATE VIEW`` text for a derived view: the SELECT of ``include/sql/<name>.sql``."""
    select = (Path(sql_dir) / f"{name}.sql").read_text(encoding="utf-8").strip().rstrip(";")
    return f"CREATE VIEW {_identifier(name)} AS\n{select}"


PUBLICATION_TABLE = "_publication"
"""A one-row table in the warehouse: which lake it was published from, when, and the days it covers."""


class WarehouseCoverageError(RuntimeError):
    """Publishing would replace a warehouse with one that has lost days; nothing was replaced."""


def _covered_days(warehouse_path: Path) -> tuple[set[date], set[date]] | None:
    """(scored days, inventory snapshots) the warehouse file shows; None when it cannot say."""
    if not warehouse_path.is_file():
        return None
    try:
        with duckdb.connect(str(warehouse_path), read_only=True) as con:
            try:
                row = con.execute(f"SELECT scored_dates, snapshot_dates FROM {PUBLICATION_TABLE}").fetchone()
                return (set(row[0]), set(row[1])) if row else None
            except duckdb.CatalogException:  # published before the table existed: ask its views
                scored = con.execute("SELECT DISTINCT snapshot_date FROM compliance_summary").fetchall()
                snapshots = con.execute("SELECT DISTINCT snapshot_date FROM resources").fetchall()
                return {day for (day,) in scored}, {day for (day,) in snapshots}
    except duckdb.Error as exc:
        log.warning("cannot read which days %s covers (%s); publishing over it", warehouse_path, exc)
        return None


def _days_text(days: set[date]) -> str:
    ordered = sorted(days)
    listed = ", ".join(day.isoformat() for day in ordered[:5])
    return listed + (
        f", ... ({len(ordered)} days, up to {ordered[-1].isoformat()})" if len(ordered) > 5 else ""
    )


def check_coverage(lake_root: Path, warehouse_path: Path, scored: set[date], snapshots: set[date]) -> None:
    """Refuse to replace a warehouse with one that lacks days the old one shows.

    A lake setting pointing at the wrong place (a moved lake, a typo, a file) would otherwise
    silently turn a good warehouse into empty views.
    """
    covered = _covered_days(warehouse_path)
    if covered is None:
        return
    missing_scored, missing_snapshots = covered[0] - scored, covered[1] - snapshots
    if not (missing_scored or missing_snapshots):
        return
    lost = []
    if missing_scored:
        lost.append(f"scores of {_days_text(missing_scored)}")
    if missing_snapshots:
        lost.append(f"inventory snapshots of {_days_text(missing_snapshots)}")
    raise WarehouseCoverageError(
        f"not publishing {warehouse_path}: it shows {' and '.join(lost)}, which the lake {lake_root} "
        "(TAG_COMPLIANCE_LAKE) does not have. If the lake moved, point TAG_COMPLIANCE_LAKE at it; if "
        "those days were removed on purpose, set TAG_COMPLIANCE_PUBLISH_ALLOW_MISSING_DAYS=true for "
        "one run. The current warehouse was left as it was."
    )


def _remove_leftovers(warehouse_path: Path) -> None:
    """Temporary files of a publish that was killed (publishing runs in a one-slot pool)."""
    for leftover in warehouse_path.parent.glob(f".{warehouse_path.name}.*.tmp*"):
        leftover.unlink(missing_ok=True)


def publish_warehouse(
    lake_root: Path,
    warehouse_path: Path,
    allow_missing_days: bool = False,
    limits: EngineLimits | None = None,
) -> list[str]:
    """Bring the lake's precomputed history up to date (``history.refresh``, within ``limits``),
    then build the warehouse file of views over the lake and atomically replace the old one.

    Returns the names of the views created. Readers that already have the old file open
    keep reading it; new connections get the new one. Refuses (``WarehouseCoverageError``)
    to replace a warehouse showing days the lake no longer has, unless ``allow_missing_days``;
    then the lake is left as it was too.
    """
    location = storage.locate(lake_root)
    lake_root = location.root
    warehouse_path = Path(warehouse_path).resolve()
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(warehouse_path)
    scored = set(lake.committed_keys(lake_root, lake.SCORES))
    snapshots = set(lake.committed_keys(lake_root, lake.SNAPSHOT))
    if not allow_missing_days:
        check_coverage(lake_root, warehouse_path, scored, snapshots)
    history.refresh(lake_root, limits)
    temporary = warehouse_path.with_name(f".{warehouse_path.name}.{uuid.uuid4().hex}.tmp")
    temporary_wal = temporary.with_name(temporary.name + ".wal")
    views = []
    try:
        with location.register(duckdb.connect(str(temporary), config=_CONNECT_CONFIG)) as con:
            uniform = uniform_schemas(lake_root)
            for dataset in lake.DATASETS.values():
                con.execute(view_sql(lake_root, dataset, dataset.name in uniform))
                views.append(dataset.name)
            for name in DERIVED_VIEWS:
                con.execute(derived_view_sql(name))
                views.append(name)
            con.execute(
                f"CREATE TABLE {PUBLICATION_TABLE} AS SELECT $lake AS lake, now() AS published_at, "
                "$scored::DATE[] AS scored_dates, $snapshots::DATE[] AS snapshot_dates",
                {"lake": lake_root, "scored": sorted(scored), "snapshots": sorted(snapshots)},
            )
            con.execute("CHECKPOINT")
        # A WAL left by a crashed writer of the old file would be replayed onto the new one.
        warehouse_path.with_name(warehouse_path.name + ".wal").unlink(missing_ok=True)
        os.replace(temporary, warehouse_path)
    finally:
        temporary.unlink(missing_ok=True)
        temporary_wal.unlink(missing_ok=True)
    return views


# --- reading: one locked-down connection for every reader -------------------------------------

# Given when the instance starts; the rest is SET after (DuckDB 2.0.1 takes allowed_directories
# only once it runs).
_CONNECT_CONFIG = storage.DUCKDB_CONFIG
WAREHOUSE_ALIAS = "warehouse"


def published_lake(con: duckdb.DuckDBPyConnection) -> str | None:
    """The lake root the attached warehouse was published from (None: it does not say)."""
    try:
        row = con.execute(f"SELECT lake FROM {PUBLICATION_TABLE}").fetchone()
    except duckdb.CatalogException:
        return None
    return str(row[0]) if row and row[0] else None


def resolve_lake(given: Path | str | None, published: str | None) -> storage.LakeLocation:
    """The lake a reader reads: the one it names; else the one the warehouse was published from
    while it is reachable (on object storage, or a directory that exists here); else
    TAG_COMPLIANCE_LAKE (a warehouse file copied to another machine, or a lake that moved)."""
    if given:
        return storage.locate(given)
    if published and (storage.is_remote(published) or Path(published).is_dir()):
        return storage.locate(published)
    return storage.locate(get_settings().lake)


def lake_roots(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The lake root the views of a ``connect_read_only`` connection read."""
    row = con.execute(f"SELECT getvariable({_literal(LAKE_VARIABLE)})").fetchone()
    return [str(row[0])] if row and row[0] else []


def _directory(root: str) -> str:
    # A trailing separator: "/data/lake/" must not admit "/data/lake-copy/".
    return root.rstrip("/") + "/"


def connect_read_only(
    warehouse: Path | str, memory_limit: str | None = None, lake_root: Path | str | None = None
) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only, with DuckDB's external access off but for reading the lake
    (``resolve_lake``: ``lake_root``, local or ``s3://``, or the one it was published from);
    ``memory_limit`` bounds DuckDB before the settings are locked (beyond it, it spills).

    The whole lake root is allowed (not each dataset), so layers below it that the views read
    work too. Extensions are neither auto-installed nor auto-loaded, and ``lock_configuration``
    makes every later SET or RESET fail. DuckDB's allowed directories can also be written, so
    ad hoc SQL must pass ``check_select_only`` as well.

    The warehouse is attached to a new in-memory database rather than opened directly: settings
    belong to a DuckDB instance, and the instance of a file is shared by every connection to it
    in the process, so locking it would lock (or, with another configuration, fail against) a
    plain connection already open there. Spill files go where DuckDB puts them for the file.
    """
    path = Path(warehouse).resolve()
    config: dict[str, str | bool] = dict(_CONNECT_CONFIG)
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute(f"ATTACH {_literal(str(path))} AS {_identifier(WAREHOUSE_ALIAS)} (READ_ONLY)")
        con.execute(f"USE {_identifier(WAREHOUSE_ALIAS)}")
        con.execute(f"SET temp_directory = {_literal(str(path) + '.tmp')}")
        location = resolve_lake(lake_root, published_lake(con))
        location.register(con)
        con.execute(f"SET VARIABLE {_identifier(LAKE_VARIABLE)} = {_literal(location.root)}")
        con.execute(f"SET allowed_directories = [{_literal(_directory(location.root))}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


class QueryRefusedError(ValueError):
    """An ad hoc query holds a statement other than a SELECT; the message names it."""


# Why a kind of statement cannot run (the default: it would change the warehouse).
_REFUSED_BECAUSE = {
    duckdb.StatementType.COPY: "they read and write files",
    duckdb.StatementType.COPY_DATABASE: "they write databases",
    duckdb.StatementType.EXPORT: "they write files",
    duckdb.StatementType.ATTACH: "they open other databases",
    duckdb.StatementType.DETACH: "they detach databases",
    duckdb.StatementType.LOAD: "extensions cannot be installed or loaded",
    duckdb.StatementType.SET: "the connection's settings are locked",
    duckdb.StatementType.PRAGMA: "the connection's settings are locked",
    duckdb.StatementType.EXPLAIN: "EXPLAIN ANALYZE runs the statement it explains",
    duckdb.StatementType.CALL: "use SELECT * FROM function(...)",
    duckdb.StatementType.MULTI: "one without IN (...) runs more than one statement: list the values, "
    "PIVOT ... ON column IN (...)",
}
_LEADING_COMMENTS = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)
ALLOWED_QUERIES = "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, PIVOT ... IN (...)"


def _keyword(statement: duckdb.Statement) -> str:
    """The statement's first keyword as written (INSTALL and LOAD share a type), e.g. 'COPY'."""
    words = _LEADING_COMMENTS.sub("", statement.query, count=1).split(None, 2)
    if not words:
        return statement.type.name
    first = words[0].upper()
    return f"{first} {words[1].upper()}" if first == "FORCE" and len(words) > 1 else first


def check_select_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``QueryRefusedError`` unless every statement of ``sql`` is a SELECT (DuckDB's parser
    decides: DESCRIBE, SHOW, SUMMARIZE and FROM-first queries are SELECTs too)."""
    for statement in con.extract_statements(sql):
        if statement.type != duckdb.StatementType.SELECT:
            because = _REFUSED_BECAUSE.get(statement.type, "the warehouse is read-only")
            raise QueryRefusedError(
                f"{_keyword(statement)} statements are not allowed ({because}); "
                f"the query connection runs SELECT queries only ({ALLOWED_QUERIES})"
            )


class WarehouseNotFoundError(FileNotFoundError):
    """The warehouse file to read does not exist; the message says how to make one."""


def existing_warehouse(given: Path | str | None = None) -> Path:
    """The warehouse file readers use: ``given``, else the configured one; it must exist."""
    path = Path(given) if given else get_settings().warehouse
    if not path.is_file():
        raise WarehouseNotFoundError(
            f"warehouse {path} does not exist: run `make demo` or the tag_compliance DAG first "
            "(or point --warehouse / TAG_COMPLIANCE_WAREHOUSE at one)"
        )
    return path
