"""Run pipeline steps in processes of their own and SIGKILL them at chosen points.

``python -m tests.crash_harness`` imports the pipeline once, then reads one JSON request per line
on stdin and answers one JSON line on stdout. For each request it forks a child that runs one
step (``run_step``) and is killed:

* ``kill_at: N``: by itself, just before its N-th file operation under ``watch`` (Python audit
  events: a file opened for writing, a rename, a removal, a new directory), so a kill lands exactly
  between two operations whatever the machine's speed;
* ``kill_after: seconds``: by the harness, that long after the fork (it may have finished);
* neither: not at all; the answer then says how many operations the step made, so the caller
  knows every point there is.

Forking from one process that already imported everything keeps each kill cheap (importing the
AWS hook alone takes seconds). The steps are the pipeline's own functions, which the tests also
call in-process to rerun a step after a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
FILE_EVENTS = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree"}
LAKE_EVENT = "tag_compliance.lake"  # (operation, s3:// url): a change to an object of a remote lake


class KillSwitch:
    """Counts file operations under ``watch``; SIGKILLs the process just before number ``kill_at``.

    Installed once as an audit hook (hooks cannot be removed); inactive until ``arm``."""

    def __init__(self) -> None:
        self.watch: str | None = None
        self.kill_at: int | None = None
        self.count = 0
        sys.addaudithook(self._hook)

    def arm(self, watch: str, kill_at: int | None) -> None:
        self.watch, self.kill_at, self.count = watch, kill_at, 0

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.watch is None or not args or not _is_write(event, args):
            return
        path = args[1] if event == LAKE_EVENT else args[0]
        if not isinstance(path, str | os.PathLike) or not os.fspath(path).startswith(self.watch):
            return
        self.count += 1
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


def _is_write(event: str, args: tuple[Any, ...]) -> bool:
    if event in FILE_EVENTS or event == LAKE_EVENT:
        return True
    if event != "open":
        return False
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if isinstance(mode, str):
        return any(char in mode for char in "wax+")
    return bool(isinstance(flags, int) and flags & WRITE_FLAGS)


def run_step(op: str, args: dict[str, Any]) -> None:
    """One step of the pipeline, as its DAG task does it."""
    lake_root = args["lake"]  # a directory or s3://bucket/prefix
    if op == "score":
        from tag_compliance.policy import load_policy
        from tag_compliance.scoring import score_snapshot

        score_snapshot(lake_root, date.fromisoformat(args["day"]), load_policy(args["policy"]))
    elif op == "collect":
        from tag_compliance.collect import collect_chunk, commit_snapshot, plan_targets
        from tag_compliance.config import Settings

        settings = Settings(lake=lake_root, accounts=args["accounts"], regions=args["regions"])
        day = date.fromisoformat(args["day"])
        planned = plan_targets(settings)
        collected = [
            result
            for service, targets in planned.items()
            for result in collect_chunk(service, targets, day, settings)
        ]
        commit_snapshot(day, planned, collected, settings)
    elif op == "publish":
        from tag_compliance.warehouse import publish_warehouse

        publish_warehouse(lake_root, Path(args["warehouse"]))
    else:
        raise ValueError(f"unknown step {op!r}")


def _run_child(switch: KillSwitch, request: dict[str, Any], report: int) -> None:
    """In the forked child: run the step, write the operation count to ``report``, exit."""
    status = 0
    try:
        os.environ.update(request.get("env", {}))  # e.g. the AWS connection of the test's moto
        switch.arm(request["watch"], request.get("kill_at"))
        run_step(request["op"], request)
        os.write(report, json.dumps({"operations": switch.count}).encode())
    except BaseException as exc:  # report it: the parent decides
        os.write(report, json.dumps({"error": repr(exc)}).encode())
        status = 1
    finally:
        os._exit(status)


def handle(switch: KillSwitch, request: dict[str, Any]) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _run_child(switch, request, write_end)
    os.close(write_end)
    if request.get("kill_after") is not None:
        time.sleep(float(request["kill_after"]))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read().decode()
    answer: dict[str, Any] = json.loads(output) if output else {}
    answer["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    answer["exit_code"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return answer


def main() -> int:
    # Answers go to the original stdout only; everything else anyone prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # Everything the steps need, imported once before any fork.
    import tag_compliance.aws.hook
    import tag_compliance.collect
    import tag_compliance.policy
    import tag_compliance.scoring
    import tag_compliance.warehouse  # noqa: F401

    switch = KillSwitch()

    def answer(data: dict[str, Any]) -> None:
        answers.write(json.dumps(data) + "\n")
        answers.flush()

    answer({"ready": True})
    for line in sys.stdin:
        if line.strip():
            answer(handle(switch, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
