"""`make backfill` refuses a request it can tell is wrong before starting anything.

Each case runs the real CLI entry in a subprocess: a bad request must end in one clear line and a
non-zero exit, with no sandbox and no Airflow started (they would take minutes to get there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

A_PAST_DAY = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()


def backfill(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TAG_COMPLIANCE_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tag_compliance.local_airflow",
            "backfill",
            *args,
            "--home",
            str(tmp_path / "airflow-home"),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "2026-03-05", "--to", "2026-03-01"],
            "--from 2026-03-05 is after --to 2026-03-01: the range must start on or before its last day",
        ),
        (["--from", "2026-3-5", "--to", "2026-03-06"], "--from: '2026-3-5' is not a day in YYYY-MM-DD form"),
        (["--from", "2026-03-01", "--to", "20260306"], "--to: '20260306' is not a day in YYYY-MM-DD form"),
        (
            ["--from", "2026-02-30", "--to", "2026-03-06"],
            "--from: '2026-02-30' is not a day in YYYY-MM-DD form",
        ),
        (["--from", A_PAST_DAY, "--to", A_PAST_DAY], f"{A_PAST_DAY} cannot be scored: "),
        (["--from", A_PAST_DAY, "--to", A_PAST_DAY, "--max-active-runs", "0"], "--max-active-runs: 0"),
    ],
)
def test_a_wrong_request_fails_in_one_line_before_anything_starts(tmp_path, args, message):
    result = backfill(tmp_path, *args)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    # nothing was started: no Airflow home (database, logs), no sandbox data
    assert not (tmp_path / "airflow-home").exists()
    assert not (tmp_path / "data").exists()
