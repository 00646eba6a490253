"""The demo's daily runs, one Airflow process for all of them.

``make demo`` replays a week: before each run it changes the sandbox, then asks for the run. One
``airflow dags test`` process per day paid Airflow's start (imports, parsing the DAG folder) seven
times; this process pays it once. It reads one run time (ISO, UTC) per line on stdin, runs the DAG
with ``dag.test()`` for it, under the demo clock of that time, and appends ``<time> <state>`` to
the status file named on its command line. Its own output (Airflow's log) goes where the parent
sends it. Each run starts as a deployed run's tasks would, with nothing remembered from the last.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import datetime
from pathlib import Path

from tag_compliance.clock import SANDBOX_CLOCK_ENV

DAG_ID = "tag_compliance"


def serve(status: Path, lines: list[str] | None = None) -> None:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from tag_compliance.aws.hook import forget_process_cache

    dagbag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if DAG_ID not in dagbag.dags:
        raise SystemExit(
            f"DAG {DAG_ID!r} not found in {conf.get('core', 'dags_folder')}: {dagbag.import_errors}"
        )
    dag = dagbag.dags[DAG_ID]
    for line in lines if lines is not None else sys.stdin:
        if not line.strip():
            continue
        run_at = datetime.fromisoformat(line.strip())
        os.environ[SANDBOX_CLOCK_ENV] = run_at.isoformat()
        forget_process_cache()
        try:
            state = str(dag.test(logical_date=run_at).state)
        except Exception:  # the parent reports the run as failed; the traceback goes to the log
            traceback.print_exc()
            state = "error"
        with status.open("a", encoding="utf-8") as out:
            out.write(f"{run_at.isoformat()} {state}\n")


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
