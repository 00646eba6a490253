"""Run by tests/test_package.py with the python of a venv that has only the wheel installed, in a
directory that is not the checkout (with the DAG file in $AIRFLOW__CORE__DAGS_FOLDER): seed a small
sandbox, run the DAG once, and print one JSON line comparing its violations with the sandbox's truth."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb

import tag_compliance
from tag_compliance.config import POOLS_FILE, get_settings
from tag_compliance.sandbox import Sandbox, load_manifest
from tag_compliance.warehouse import connect_read_only

day = datetime.now(UTC).date() - timedelta(days=3)
run_at = datetime.combine(day + timedelta(days=1), time(6), tzinfo=UTC)
airflow = [sys.executable, "-m", "airflow"]
subprocess.run([*airflow, "db", "migrate"], check=True, capture_output=True)
subprocess.run([*airflow, "pools", "import", str(POOLS_FILE)], check=True, capture_output=True)

with Sandbox(seed=5, data_dir=Path("data") / "sandbox", scale=0.05) as sandbox:
    os.environ.update(sandbox.env())
    os.environ["TAG_COMPLIANCE_SANDBOX_CLOCK"] = run_at.isoformat()
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["tag_compliance"]
    state = str(dag.test(logical_date=run_at).state)
    manifest = load_manifest(sandbox.manifest_path).to_pylist()
truth = sorted(
    (row["resource_id"], violation["tag_key"], violation["violation_type"])
    for row in manifest
    for violation in row["expected_violations"]
)
settings = get_settings()
with connect_read_only(settings.warehouse) as con:
    found = sorted(con.execute("SELECT resource_id, tag_key, violation_type FROM violations").fetchall())
print(
    json.dumps(
        {
            "state": state,
            "package": str(Path(tag_compliance.__file__).parent),
            "violations": len(found) if found == [tuple(row) for row in truth] else f"differ: {len(found)}",
            "truth": len(truth),
            "lake": str(settings.lake),
            "duckdb": duckdb.__version__,
        }
    )
)
