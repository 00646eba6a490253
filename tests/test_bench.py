"""`make bench` at toy size: it runs, its lakes hold the stated mix, and the score agrees with
the plain-Python reference on every (rule, violation type) count (the bench refuses otherwise)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb

from bench import run, synthetic
from tag_compliance import lake


def test_the_synthetic_lake_holds_every_key_state_at_about_its_rate(tmp_path: Path) -> None:
    day = date(2026, 11, 30)
    synthetic.write_snapshot(tmp_path, day, 6000)
    files = lake.read_commit(tmp_path, lake.SNAPSHOT, day).paths(tmp_path, lake.RESOURCES)
    with duckdb.connect() as con:
        maps = con.execute("SELECT tags FROM read_parquet($f)", {"f": files}).fetchall()
    assert len(maps) == 6000
    states: Counter[str] = Counter()
    for (tags,) in maps:
        value = tags.get("Environment")
        if value is None:
            states["wrong_case" if "environment" in tags else "missing"] += 1
        elif not value.strip():
            states["blank"] += 1
        elif value in ("prod", "staging", "dev", "test"):
            states["valid"] += 1
        else:
            states["bad"] += 1
    rates = {state: count / len(maps) for state, count in states.items()}
    assert abs(rates["valid"] - 0.70) < 0.03
    for state in ("missing", "wrong_case", "blank"):
        assert abs(rates[state] - synthetic.KEY_STATES[state]) < 0.02, (state, rates)
    assert abs(rates["bad"] - 0.10) < 0.02
    # Same seed, same rows: a lake is generated once and reused by every run.
    again = tmp_path / "again"
    synthetic.write_snapshot(again, day, 6000)
    with duckdb.connect() as con:
        other = con.execute(
            "SELECT tags FROM read_parquet($f)",
            {"f": lake.read_commit(again, lake.SNAPSHOT, day).paths(again, lake.RESOURCES)},
        ).fetchall()
    assert sorted(map(repr, other)) == sorted(map(repr, maps))


def test_the_bench_runs_and_agrees_with_its_reference(tmp_path: Path, capsys) -> None:
    out = tmp_path / "medians.json"
    assert (
        run.main(
            [
                *("--sizes", "1500,3000", "--repeat", "1", "--data-dir", str(tmp_path), "--json", str(out)),
                *("--history-days", "3", "--history-size", "1500", "--collection-scale", "0.1"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Scoring one snapshot" in printed and "growth exponent" in printed
    assert "History: 3 daily snapshots of 1,500 resources" in printed and "one-day rescore" in printed
    medians = json.loads(out.read_text())
    history = medians.pop("history")
    medians_collection = medians.pop("collection")
    assert set(medians) == {f"{size}/{contender}" for size in (1500, 3000) for contender in run.CONTENDERS}
    assert all(value["peak_rss"] > 0 for value in medians.values())
    # Every public view was asked for the latest day, and the history views found that day's rows.
    assert set(run.HISTORY_CONTENDERS) <= set(history)
    views = {view: measured["rows"] for view, measured in history["views"].items()}
    assert {"violations", "resource_compliance", "compliance_trend", "tag_drift", "violation_history"} <= set(
        views
    )
    assert views["resource_compliance"] == 1500
    assert views["tag_drift"] > 0  # the day retagged one partition
    assert views["violation_history"] > 0
    assert views["tag_suggestions"] > 0
    # The history a publish computes for the latest day, each kind timed on its own.
    assert set(history["refresh"]["histories"]) == {"tag_drift", "violation_changes", "tag_suggestions"}
    assert "its history, computed at publish" in printed
    # The collection side: at each API's maximum page size no operation makes more requests than
    # its items require (a page size left small would show as more).
    collection = {row["operation"]: row for row in medians_collection}
    assert {"DescribeInstances", "GetResources", "ListFunctions"} <= set(collection)
    for row in medians_collection:
        # The Tagging API also ends a page at 500 tags (TagsPerPage), so a listing of resources with
        # many tags may take one page more than its resources need (issue 13: one per listing).
        slack = row["listings"] if row["operation"] == "GetResources" else 0
        assert row["requests"] <= row["fewest_requests"] + slack, row
    assert collection["GetResources"]["items"] > 0


def test_history_days_differ_by_one_retagged_partition(tmp_path: Path) -> None:
    days = synthetic.write_history(tmp_path, date(2026, 11, 1), 3, 1500)
    assert len(days) == 3
    with duckdb.connect() as con:
        snapshots = [
            dict(
                con.execute(
                    "SELECT arn, tags FROM read_parquet($f)",
                    {"f": lake.read_commit(tmp_path, lake.SNAPSHOT, day).paths(tmp_path, lake.RESOURCES)},
                ).fetchall()
            )
            for day in days
        ]
    assert set(snapshots[0]) == set(snapshots[1]) == set(snapshots[2])  # the same estate every day
    changed = [sum(snapshots[n][arn] != snapshots[n - 1][arn] for arn in snapshots[0]) for n in (1, 2)]
    partition_size = 1500 // len(synthetic.partitions())
    assert all(0 < count <= partition_size for count in changed), changed


def test_a_measurement_past_its_time_is_reported_not_waited_for(tmp_path: Path) -> None:
    # No process starts, let alone scans, within a millisecond: the bench says so and goes on.
    assert run.run_child("scan", tmp_path, timeout=0.001) == {"timed_out": 0.001}
