"""The wheel is a complete install: ``pip wheel .``, installed into a fresh venv with the
constraints, carries the SQL, policies, pools and IAM documents; its core (no Airflow) checks a
policy and queries a warehouse; with the ``airflow`` and ``sandbox`` extras and the DAG file alone
(no checkout) it scores the sandbox exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

UV = Path(sys.executable).with_name("uv")
PACKAGE_DATA = (
    "include/sql/violations.sql",
    "include/sql/report/headline.sql",
    "include/policies/default.yaml",
    "include/airflow/pools.json",
    "include/iam/member-read-only-policy.json",
    "include/iam/caller-policy.json",
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing into the checkout (or its settings)."""
    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TAG_COMPLIANCE_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**keep, **extra}


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(out)], REPO_ROOT, clean_env()
    )
    (built,) = out.glob("tag_compliance-*.whl")
    return built


def venv_with(wheel: Path, where: Path, extras: str = "") -> Path:
    """A fresh venv with the wheel (and ``extras``) installed under the project's constraints."""
    run([str(UV), "venv", "-q", "--python", sys.executable, str(where)], where.parent, clean_env())
    requirement = f"{wheel}[{extras}]" if extras else str(wheel)
    python = where / "bin" / "python"
    install = [str(UV), "pip", "install", "-q", "--python", str(python), requirement]
    run([*install, "-c", str(REPO_ROOT / "constraints.txt")], where.parent, clean_env())
    return python


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory that is not the checkout."""
    yield tmp_path_factory.mktemp("elsewhere")


def test_the_wheel_carries_the_package_data(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"tag_compliance/{path}" for path in PACKAGE_DATA} <= names
    sql_in_checkout = {
        path.relative_to(REPO_ROOT / "include").as_posix() for path in (REPO_ROOT / "include").rglob("*.sql")
    }
    assert {f"tag_compliance/include/{path}" for path in sql_in_checkout} <= names


def test_the_core_checks_the_packaged_policy_and_queries_without_airflow(
    wheel: Path, outside: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    python = venv_with(wheel, tmp_path_factory.mktemp("core") / "venv")
    env = clean_env()
    probe = "import importlib.util as u; print(u.find_spec('airflow') is None)"
    assert run([str(python), "-c", probe], outside, env).strip() == "True"  # no 700 MB environment
    checked = run([str(python.with_name("tag-compliance")), "policy", "check"], outside, env)
    assert (
        checked.startswith("OK ") and "site-packages/tag_compliance/include/policies/default.yaml" in checked
    )
    # a warehouse over a lake, made by the core alone, answers a query
    script = textwrap.dedent(
        """
        from tag_compliance.warehouse import publish_warehouse
        publish_warehouse("lake", "warehouse.duckdb")
        """
    )
    run([str(python), "-c", script], outside, env)
    answer = run(
        [
            str(python.with_name("tag-compliance")),
            "query",
            "--warehouse",
            "warehouse.duckdb",
            "--format",
            "json",
            "SELECT count(*) AS resources FROM resources",
        ],
        outside,
        env,
    )
    assert json.loads(answer) == [{"resources": 0}]


def test_the_wheel_and_the_dag_file_score_the_sandbox(
    wheel: Path, outside: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    python = venv_with(wheel, tmp_path_factory.mktemp("full") / "venv", extras="airflow,sandbox")
    home = outside / "deployment"
    (home / "dags").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dags" / "tag_compliance.py", home / "dags")
    env = clean_env(
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    script = (REPO_ROOT / "tests" / "package_scoring.py").read_text(encoding="utf-8")
    found = json.loads(run([str(python), "-c", script], home, env, timeout=1200).strip().splitlines()[-1])
    assert found["state"] == "success"
    assert found["package"].startswith(str(python.parent.parent))  # the installed copy, not the checkout
    assert found["violations"] == found["truth"] and found["truth"] > 0
    assert found["lake"] == str(home / "data" / "lake")
