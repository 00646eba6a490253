"""``python -m tag_compliance.sandbox``: start and seed the sandbox (moto + Cost Explorer emulator), print
exports, serve until stopped."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import time
from datetime import date
from pathlib import Path
from types import FrameType

from tag_compliance.sandbox import DEFAULT_DATA_DIR, Sandbox


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    # turn SIGTERM into SystemExit so the context manager stops moto on the way out
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tag_compliance.sandbox", description=__doc__)
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic organisation")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="manifest + ledger dir")
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (1.0 = full estate)")
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="last day of the cost ledger, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        metavar="N",
        help="let the estate evolve over the N days before today (default 0: a static estate); "
        "prints the history dates",
    )
    parser.add_argument(
        "--day",
        type=date.fromisoformat,
        default=None,
        help="with --history-days: serve the estate of this history day (default: the first one)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, _raise_exit)

    try:
        sandbox = Sandbox(
            seed=args.seed,
            data_dir=args.data_dir,
            scale=args.scale,
            today=args.today,
            history_days=args.history_days,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.day is not None and args.day not in sandbox.history:
        parser.error(f"--day {args.day} is not one of the --history-days dates")
    if sandbox.history:
        # a comment line: the output stays safe to eval
        print(f"# history: {' '.join(day.isoformat() for day in sandbox.history)}", flush=True)
    with sandbox:
        if args.day is not None:
            sandbox.advance_to(args.day)
        for key, value in sandbox.env().items():
            print(f"export {key}={shlex.quote(value)}")
        summary = json.loads(sandbox.summary_path.read_text(encoding="utf-8"))
        print(
            f"# {summary['resources_total']} resources, {summary['violations_total']} expected violations, "
            f"seeded in {sandbox.seed_seconds:.1f}s; manifest: {sandbox.manifest_path}",
            file=sys.stderr,
        )
        if sandbox.day is not None:
            print(
                f"# estate of history day {sandbox.day.isoformat()} "
                f"({sandbox.history[0].isoformat()} .. {sandbox.history[-1].isoformat()}); "
                f"per-day truth and changes under {sandbox.manifest_path.parent / 'days'}",
                file=sys.stderr,
            )
        print(
            f"# cost ledger (to {sandbox.today.isoformat()}): {sandbox.ledger_path}; "
            f"Cost Explorer emulator: {sandbox.cost_explorer_url}",
            file=sys.stderr,
        )
        print("# serving until Ctrl-C / SIGTERM", file=sys.stderr, flush=True)
        sys.stdout.flush()
        try:
            while sandbox.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
        print("moto server exited unexpectedly", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
