"""``make bench``: how scoring scales, measured against a floor and a reference in one run.

For each lake size (``BENCH_SIZES``, default 100k, 300k and 1M resources) and each repetition
(``BENCH_REPEAT``, default 3), interleaved so a busy moment hurts every contender alike, each in
its own process (so its peak RSS is its own):

- ``scan``: a bare DuckDB scan of the snapshot's tag maps, the floor;
- ``score``: ``score_snapshot``, the entry point of the DAG's ``score`` task, outputs written;
- ``outputs``: the score's output files read back and written again: what writing the outputs
  alone costs, whatever computes them;
- ``python``: a plain-Python per-resource loop over the same rules, the reference.

Then one table: median seconds, resources/s, peak RSS, the ratio to the scan, and the growth
exponent from the smallest to the largest size. The score and the Python loop must agree on
every (rule, violation type) count, or the bench fails: a fast wrong answer is no result.
Then the history lake (``BENCH_HISTORY_DAYS`` daily snapshots; 0 skips it): every public view
asked for the latest day, the one-day rescore and the history a publish computes for it. Last,
the collection side (``BENCH_COLLECTION=0`` skips it, see ``bench/collection.py``): the AWS
requests of one inventory of the sandbox demo estate per operation, against the fewest possible.
Benchmarks are not tests: nothing here runs in ``make test`` but a tiny smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

BENCH_DAY = date(2026, 11, 30)
DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
CONTENDERS = ("scan", "score", "outputs", "python")
"""In this order in each repetition: ``outputs`` rewrites the files ``score`` just wrote."""
HISTORY_DAYS = 30
REPO = Path(__file__).resolve().parent.parent


def _peak_rss_bytes() -> int:
    """This process's own peak: VmHWM is reset by exec, where getrusage's ru_maxrss keeps the
    parent's peak across it (so a child would report at least the parent's size)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _files(lake_root: Path) -> list[str]:
    from tag_compliance.scoring import snapshot_files

    return snapshot_files(lake_root, BENCH_DAY)


def measure_scan(lake_root: Path) -> dict[str, object]:
    return _scan_tags(_files(lake_root))


def _scan_tags(files: list[str]) -> dict[str, object]:
    """The floor: DuckDB decoding the tag maps of these files and nothing else."""
    import duckdb

    started = time.perf_counter()
    with duckdb.connect() as con:
        resources, tags = con.execute(
            "SELECT count(*), sum(cardinality(tags)) FROM read_parquet($files)", {"files": files}
        ).fetchall()[0]
    return {"seconds": time.perf_counter() - started, "resources": resources, "tags": int(tags or 0)}


def measure_score(lake_root: Path) -> dict[str, object]:
    """Through ``pipeline.score``, what the DAG's ``score`` task calls, with default settings
    (the DuckDB memory limit included) but this lake and the benchmark policy."""
    import duckdb

    from bench.synthetic import POLICY_DATA
    from tag_compliance import lake
    from tag_compliance.config import Settings
    from tag_compliance.pipeline import score

    policy_file = lake_root.parent / f"{lake_root.name}-policy.json"
    policy_file.write_text(json.dumps(POLICY_DATA), encoding="utf-8")
    settings = Settings(lake=lake_root, policy=policy_file)
    started = time.perf_counter()
    result = score(BENCH_DAY.isoformat(), settings=settings)
    seconds = time.perf_counter() - started
    violations = lake.read_commit(lake_root, lake.SCORES, BENCH_DAY).paths(lake_root, lake.VIOLATIONS)
    with duckdb.connect() as con:
        counts = con.execute(
            "SELECT tag_key, violation_type, count(*) FROM read_parquet($files) GROUP BY ALL",
            {"files": violations},
        ).fetchall()
    return {
        "seconds": seconds,
        "resources": result["resources"],
        "violations": {f"{key}/{kind}": n for key, kind, n in counts},
    }


def measure_outputs(lake_root: Path) -> dict[str, object]:
    """The floor of the outputs: the files the score just committed, read back and written again
    through the lake's writer (in their order, no scoring, no sort). Whatever computes these
    rows pays at least this to write them, against a scan that writes nothing."""
    import tempfile

    import duckdb

    from tag_compliance import lake
    from tag_compliance.scoring import OUTPUTS

    scored = lake.read_commit(lake_root, lake.SCORES, BENCH_DAY)
    started = time.perf_counter()
    rows = 0
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as scratch, duckdb.connect() as con:
        for dataset in OUTPUTS.values():
            stream = con.sql(
                "SELECT * FROM read_parquet($files)", params={"files": scored.paths(lake_root, dataset)}
            )
            written = lake.write_data_file(
                Path(scratch), dataset, {"snapshot_date": BENCH_DAY}, stream.to_arrow_reader(), "bench"
            )
            rows += written.rows
    return {"seconds": time.perf_counter() - started, "rows": rows}


def measure_python(lake_root: Path) -> dict[str, object]:
    """The same five rules, one resource at a time, reading the same files."""
    import pyarrow.parquet as pq
    import re2

    from bench.synthetic import policy

    started = time.perf_counter()
    rules = [
        (
            rule.key,
            rule.key.lower(),
            set(rule.allowed_values) if rule.allowed_values else None,
            re2.compile(rule.pattern) if rule.pattern else None,
        )
        for rule in policy().required_tags
    ]
    counts: Counter[str] = Counter()
    resources = 0
    for file in _files(lake_root):
        for tags in pq.read_table(file, columns=["tags"]).column("tags").to_pylist():
            resources += 1
            carried = dict(tags)
            for key, folded, allowed, pattern in rules:
                value = carried.get(key)
                if value is None:
                    other = any(k.lower() == folded for k in carried)
                    counts[f"{key}/{'wrong_key_case' if other else 'missing_required_tag'}"] += 1
                elif not value.strip(" \t\n\v\f\r"):
                    counts[f"{key}/empty_value"] += 1
                elif allowed is not None and value not in allowed:
                    counts[f"{key}/invalid_value"] += 1
                elif pattern is not None and pattern.fullmatch(value) is None:
                    counts[f"{key}/invalid_format"] += 1
    return {"seconds": time.perf_counter() - started, "resources": resources, "violations": dict(counts)}


def _history_warehouse(lake_root: Path) -> Path:
    return lake_root.parent / f"{lake_root.name}.duckdb"


def latest_day_query(view: str, columns: list[str]) -> str:
    """What a user asks of a view for the latest day: its rows of that day (by the view's own
    date column), every column. Names come from the warehouse's catalogue, never from data."""
    for column in ("snapshot_date", "last_seen", "usage_date", "run_date"):
        if column in columns:
            return f'SELECT * FROM "{view}" WHERE "{column}" = $day'
    return f'SELECT * FROM "{view}"'


def public_views(lake_root: Path) -> list[str]:
    from tag_compliance.warehouse import connect_read_only

    with connect_read_only(_history_warehouse(lake_root)) as con:
        return [
            name
            for (name,) in con.execute(
                "SELECT view_name FROM duckdb_views() "
                "WHERE NOT internal AND database_name = current_database() ORDER BY view_name"
            ).fetchall()
        ]


def measure_view(lake_root: Path, view: str) -> dict[str, object]:
    """One public view of the history lake's warehouse, latest day, rows consumed as Arrow, with
    the DuckDB memory limit the DAG uses (beyond it, DuckDB spills)."""
    from tag_compliance import lake
    from tag_compliance.config import Settings
    from tag_compliance.warehouse import connect_read_only

    with connect_read_only(_history_warehouse(lake_root), Settings().duckdb_memory_limit) as con:
        columns = [row[0] for row in con.execute(f'DESCRIBE "{view}"').fetchall()]
        query = latest_day_query(view, columns)
        params = {"day": BENCH_DAY} if "$day" in query else {}
        started = time.perf_counter()
        reader = con.execute(query, params).to_arrow_reader(lake.ROW_GROUP_ROWS)
        rows = sum(batch.num_rows for batch in reader)
        return {"seconds": time.perf_counter() - started, "rows": rows}


def measure_scan_history(lake_root: Path) -> dict[str, object]:
    """The bare scan of every day's tag maps: the floor of a view that reads every day."""
    from tag_compliance import lake
    from tag_compliance.scoring import snapshot_files

    days = lake.committed_keys(lake_root, lake.SNAPSHOT)
    return _scan_tags([path for day in days for path in snapshot_files(lake_root, day)])


def measure_refresh(lake_root: Path) -> dict[str, object]:
    """What a daily publish adds: each precomputed history of the latest day, computed again
    (its commits are dropped first, as if the day were new), with the DAG's engine limits."""
    from tag_compliance import history
    from tag_compliance.config import Settings
    from tag_compliance.scoring import EngineLimits

    settings = Settings()
    limits = EngineLimits.of(settings)
    seconds: dict[str, float] = {}
    for daily in history.HISTORIES:
        latest = history.source_days(lake_root, daily)
        Path(daily.unit.commit_path(lake_root, max(latest))).unlink(missing_ok=True)
        started = time.perf_counter()
        computed = history.refresh(lake_root, limits, histories=(daily,)).computed
        seconds[daily.dataset.name] = time.perf_counter() - started
        assert computed == {daily.dataset.name: [max(latest)]}, computed
    return {"seconds": sum(seconds.values()), "histories": seconds}


def measure_collection_child(_lake_root: Path) -> dict[str, object]:
    """The collection side in its own process, so the pipeline's logs stay out of the tables."""
    from bench.collection import measure_collection

    return {"operations": measure_collection(BENCH_DAY, float(os.environ["BENCH_COLLECTION"]))}


MEASURES = {
    "scan": measure_scan,
    "score": measure_score,
    "outputs": measure_outputs,
    "python": measure_python,
    "view": measure_view,
    "scan-history": measure_scan_history,
    "refresh": measure_refresh,
    "collection": measure_collection_child,
}
HISTORY_CONTENDERS = ("scan", "scan-history", "score", "refresh")
"""On the history lake: ``score`` there is the one-day rescore (a backfill's work per day), and
``refresh`` the history a publish computes for that day."""


def run_child(
    contender: str, lake_root: Path, view: str | None = None, timeout: float | None = None
) -> dict[str, object]:
    """One measurement in a fresh process: its own start, its own peak RSS. Past ``timeout``
    seconds the process is stopped and the measurement says so ({"timed_out": seconds})."""
    command = [sys.executable, "-m", "bench.run", "--child", contender, "--lake", str(lake_root)]
    try:
        done = subprocess.run(
            [*command, *(("--view", view) if view else ())],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"timed_out": timeout}
    if done.returncode != 0 and view is not None:  # one view failing is a result, not the end
        return {"failed": done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else "no output"}
    if done.returncode != 0:
        raise SystemExit(f"bench: {contender} on {lake_root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_history(lake_root: Path, days: int, size: int) -> None:
    """The history lake: ``days`` daily snapshots ending on BENCH_DAY, each scored as the DAG
    scores it, and its warehouse published. Generated once and reused, like the other lakes."""
    from datetime import timedelta

    from bench.synthetic import POLICY_DATA, write_history
    from tag_compliance.config import Settings
    from tag_compliance.pipeline import score
    from tag_compliance.scoring import scored_dates
    from tag_compliance.warehouse import publish_warehouse

    written = write_history(lake_root, BENCH_DAY - timedelta(days=days - 1), days, size)
    policy_file = lake_root.parent / f"{lake_root.name}-policy.json"
    policy_file.write_text(json.dumps(POLICY_DATA), encoding="utf-8")
    settings = Settings(lake=lake_root, policy=policy_file)
    done = set(scored_dates(lake_root))
    for day in written:
        if day not in done:
            score(day.isoformat(), settings=settings)
    publish_warehouse(lake_root, _history_warehouse(lake_root))


def _medians(runs: list[dict[str, object]]) -> dict[str, object]:
    timed_out = [run for run in runs if "timed_out" in run or "failed" in run]
    if timed_out:
        return timed_out[0]
    medians: dict[str, object] = {
        "seconds": statistics.median(float(run["seconds"]) for run in runs),
        "peak_rss": statistics.median(int(run["peak_rss"]) for run in runs),
    }
    if "rows" in runs[0]:
        medians["rows"] = runs[0]["rows"]
    if "histories" in runs[0]:
        names = runs[0]["histories"]
        medians["histories"] = {
            name: statistics.median(float(run["histories"][name]) for run in runs) for name in names
        }
    return medians


def history_table(medians: dict[str, dict[str, object]], days: int, size: int, repeat: int):
    """Views, latest day, over the history lake; the one-day rescore and the history a publish
    then computes for the day (peak RSS of the per-history rows: the whole refresh's)."""
    from rich.table import Table

    from tag_compliance.config import Settings

    scan = float(medians["scan"]["seconds"])
    scan_all = float(medians["scan-history"]["seconds"])
    table = Table(
        title=f"History: {days} daily snapshots of {size:,} resources, latest day, median of {repeat}"
    )
    for column in ("what", "rows", "seconds", "peak RSS MiB", "x scan of a day", "x scan of every day"):
        table.add_column(column, justify="left" if column == "what" else "right")

    def add(what: str, rows: int, measured: dict[str, object]) -> None:
        if "failed" in measured:
            error = str(measured["failed"])
            reason = "out of memory" if "Out of Memory" in error else "failed"
            table.add_row(what, "", reason, f"limit {Settings().duckdb_memory_limit}", "", "")
            return
        if "timed_out" in measured:
            limit = float(measured["timed_out"])
            table.add_row(
                what, "", f"> {limit:.0f}", "", f"> {limit / scan:.0f}", f"> {limit / scan_all:.1f}"
            )
            return
        seconds = float(measured["seconds"])
        table.add_row(
            what,
            f"{rows:,}",
            f"{seconds:.2f}",
            f"{int(measured['peak_rss']) / 2**20:,.0f}",
            f"{seconds / scan:.1f}",
            f"{seconds / scan_all:.2f}",
        )

    add("scan: one day's tag maps", size, medians["scan"])
    add(f"scan: {days} days' tag maps", size * days, medians["scan-history"])
    for view, measured in sorted(medians["views"].items()):
        add(f"view {view}", int(measured.get("rows", 0)), measured)
    add("one-day rescore (score again, outputs replaced)", size, medians["score"])
    refreshed = medians["refresh"]
    add("its history, computed at publish (all three)", size, refreshed)
    for name, seconds in refreshed.get("histories", {}).items():
        add(f"  {name} of the day", size, {"seconds": seconds, "peak_rss": refreshed["peak_rss"]})
    return table


def growth_exponent(sizes: list[int], seconds: list[float]) -> float | None:
    if len(sizes) < 2 or seconds[0] <= 0:
        return None
    return math.log(seconds[-1] / seconds[0]) / math.log(sizes[-1] / sizes[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--view", help=argparse.SUPPRESS)
    parser.add_argument(
        "--view-timeout",
        type=float,
        default=float(os.environ.get("BENCH_VIEW_TIMEOUT", "300")),
        help="seconds a view may take before it is reported as timed out",
    )
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", ",".join(map(str, DEFAULT_SIZES))))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")))
    parser.add_argument("--json", type=Path, help="also write the medians here")
    parser.add_argument(  # the demo estate's size; 0 skips the collection table
        "--collection-scale", type=float, default=float(os.environ.get("BENCH_COLLECTION", "1"))
    )
    parser.add_argument(
        "--history-days", type=int, default=int(os.environ.get("BENCH_HISTORY_DAYS", str(HISTORY_DAYS)))
    )
    parser.add_argument(
        "--history-size", type=int, default=int(os.environ.get("BENCH_HISTORY_SIZE", str(DEFAULT_SIZES[-1])))
    )
    args = parser.parse_args(argv)
    if args.child:
        measured = MEASURES[args.child](args.lake, *((args.view,) if args.child == "view" else ()))
        measured["peak_rss"] = _peak_rss_bytes()
        print(json.dumps(measured))
        return 0

    from rich.console import Console
    from rich.table import Table

    from bench.synthetic import ensure_snapshot

    sizes = sorted(int(size) for size in args.sizes.split(",") if size.strip())
    console = Console(stderr=True)
    out = Console(width=120)  # a table, also when piped to a file
    results: dict[str, object] = {}
    if sizes:  # BENCH_SIZES= (empty) measures the history only
        lakes = {}
        for size in sizes:
            lakes[size] = args.data_dir / f"lake-{size}"
            with console.status(f"generating {size:,} resources"):
                ensure_snapshot(lakes[size], BENCH_DAY, size)
        runs: dict[tuple[int, str], list[dict[str, object]]] = {}
        for repetition in range(args.repeat):
            for size in sizes:
                for contender in CONTENDERS:
                    with console.status(f"run {repetition + 1}/{args.repeat}: {contender} at {size:,}"):
                        runs.setdefault((size, contender), []).append(run_child(contender, lakes[size]))
        for size in sizes:
            scored = [run["violations"] for run in runs[size, "score"]]
            reference = [run["violations"] for run in runs[size, "python"]]
            if any(counts != reference[0] for counts in scored + reference):
                raise SystemExit(
                    f"bench: at {size:,} the score and the Python reference disagree: "
                    f"{scored[0]} vs {reference[0]}"
                )

        medians = {key: _medians(measured) for key, measured in runs.items()}
        table = Table(
            title=f"Scoring one snapshot: median of {args.repeat}, five rules, {os.cpu_count()} cores"
        )
        for column in (
            "resources",
            "contender",
            "seconds",
            "resources/s",
            "peak RSS MiB",
            "x scan",
            "scan / python",
        ):
            table.add_column(column, justify="left" if column == "contender" else "right")
        for size in sizes:
            scan = medians[size, "scan"]["seconds"]
            for contender in CONTENDERS:
                median = medians[size, contender]
                table.add_row(
                    f"{size:,}",
                    contender,
                    f"{median['seconds']:.2f}",
                    f"{size / median['seconds']:,.0f}",
                    f"{median['peak_rss'] / 2**20:,.0f}",
                    f"{median['seconds'] / scan:.1f}",
                    f"{medians[size, 'python']['seconds'] / median['seconds']:.1f}",
                )
        table.columns[-1].header = "python / this"
        print_growth = []
        for contender in CONTENDERS:
            exponent = growth_exponent(sizes, [medians[size, contender]["seconds"] for size in sizes])
            if exponent is not None:
                print_growth.append(f"{contender} {exponent:.2f}")
        out.print(table)
        if print_growth:
            Console().print(
                f"growth exponent {sizes[0]:,} -> {sizes[-1]:,} resources: " + ", ".join(print_growth)
            )
        results.update({f"{size}/{contender}": value for (size, contender), value in medians.items()})
    if args.history_days > 0:
        history = args.data_dir / f"history-{args.history_days}x{args.history_size}"
        with console.status(
            f"generating and scoring {args.history_days} days of {args.history_size:,} resources"
        ):
            ensure_history(history, args.history_days, args.history_size)
        views = public_views(history)
        history_runs: dict[str, list[dict[str, object]]] = {}
        view_runs: dict[str, list[dict[str, object]]] = {}
        for repetition in range(args.repeat):
            for contender in HISTORY_CONTENDERS:
                with console.status(f"history run {repetition + 1}/{args.repeat}: {contender}"):
                    history_runs.setdefault(contender, []).append(run_child(contender, history))
            for view in views:
                if any("timed_out" in run or "failed" in run for run in view_runs.get(view, ())):
                    continue  # once over the time allowed is enough to say so
                with console.status(f"history run {repetition + 1}/{args.repeat}: view {view}"):
                    view_runs.setdefault(view, []).append(run_child("view", history, view, args.view_timeout))
        history_medians: dict[str, dict[str, object]] = {
            contender: _medians(measured) for contender, measured in history_runs.items()
        }
        history_medians["views"] = {view: _medians(measured) for view, measured in view_runs.items()}
        out.print(history_table(history_medians, args.history_days, args.history_size, args.repeat))
        results["history"] = history_medians
    if args.collection_scale > 0:
        from bench.collection import collection_table

        os.environ["BENCH_COLLECTION"] = str(args.collection_scale)  # read by the child
        with console.status("collecting the sandbox demo estate"):
            collection = run_child("collection", args.data_dir)["operations"]
        out.print(collection_table(collection))
        results["collection"] = collection
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
