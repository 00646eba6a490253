"""A real multi-process Airflow 3.3 on this machine, for backfills and scheduler tests.

``LocalAirflow`` is a context manager that migrates a metadata database in ``home``, imports
``include/airflow/pools.json`` and starts, each in its own process group with its log in
``home/local-airflow/``:

- ``airflow api-server`` on 127.0.0.1 at a free port: the Task Execution API the task runners report
  to (``[core] execution_api_server_url``), and the REST API this module reads states from;
- ``airflow dag-processor``, which parses the DAGs folder into the database;
- ``airflow scheduler`` with the ``LocalExecutor`` and a parallelism of 2, without its log server
  (it would listen on every interface). It never creates scheduled runs (``[scheduler]
  use_job_schedule = False``), only the runs asked for: backfills.

::

    with LocalAirflow(home, env={**sandbox.env(), "TAG_COMPLIANCE_LAKE": ...}) as airflow:
        backfill = airflow.backfill(date(2026, 3, 1), date(2026, 3, 3), "none")
        runs = airflow.wait_for_runs("tag_compliance", backfill_id=backfill.id, timeout=600)

The database is SQLite by default: Airflow 3 task runners never touch it (they go through the Task
Execution API), so the LocalExecutor works with it. It runs in WAL mode with a 60 s busy timeout,
because ``airflow backfill create`` clearing runs writes while the scheduler does; even so a write
that follows a read in one transaction can fail at once ("database is locked") when another process
wrote in between, which :meth:`LocalAirflow.backfill` retries only while nothing was created. Give
``database_url`` (PostgreSQL, as the scheduler tests do) where that must never happen.

Backfills are created with Airflow's own ``airflow backfill create``. States are read from the REST
API (``/api/v2``), not by polling ``airflow dags list-runs``: each CLI call costs about 6 s of CPU
(it imports all of Airflow), which would starve the tasks on a small machine, and the API is
Airflow's stable interface whatever the database. It is authenticated: a local user whose password
is generated at start (file mode 0600 in ``home``) gets a JWT from ``/auth/token``. The JWT signing
secret is generated at start too and only ever handed to the child processes in their environment.

Every process started is stopped however the block ends (exception, ``KeyboardInterrupt``); see
:meth:`LocalAirflow.stop`. A service that dies early raises :class:`LocalAirflowError` with the
tail of its log.

``python -m tag_compliance.local_airflow backfill --from 2026-03-01 --to 2026-03-03`` (``make
backfill``) does all this against the demo's local sandbox and the lake in ``data/lake``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psutil

from tag_compliance.config import POOLS_FILE, REPO_ROOT

log = logging.getLogger(__name__)

__all__ = [
    "TERMINAL_STATES",
    "BackfillRequestError",
    "BackfillStatus",
    "DagRunStatus",
    "LocalAirflow",
    "LocalAirflowError",
    "ReprocessBehavior",
    "day_start",
]

ReprocessBehavior = Literal["none", "failed", "completed"]
TERMINAL_STATES = frozenset({"success", "failed"})
DAG_ID = "tag_compliance"
API_USER = "local-airflow"
LOG_DIR_NAME = "local-airflow"
# Inherited variables that must not leak into the children: the caller's own Airflow home,
# database and connections (pytest's, say) and pipeline settings; ``env`` sets what it needs.
_ISOLATED_PREFIXES = ("AIRFLOW_", "TAG_COMPLIANCE_")
_SERVICES = ("api-server", "dag-processor", "scheduler")
# ``[database] sql_alchemy_connect_args`` of every Airflow process (an import path to this dict): wait up
# to a minute for SQLite's write lock instead of the default 5 s. A backfill that clears runs holds it
# while the scheduler and the API server write too. Transactions start with BEGIN IMMEDIATE: they take
# the write lock up front, where the busy timeout applies, instead of upgrading a read snapshot later,
# which WAL mode refuses at once ("database is locked") when another process wrote in between.
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60, "isolation_level": "IMMEDIATE"}
SQLITE_LOCKED_ATTEMPTS = 5


class LocalAirflowError(RuntimeError):
    """A command failed, a process died or something did not happen in time."""


class BackfillRequestError(LocalAirflowError):
    """A ``make backfill`` request that cannot succeed, found before anything is started."""


@dataclass(frozen=True)
class DagRunStatus:
    """One DAG run as the REST API reports it."""

    run_id: str
    logical_date: datetime | None
    state: str
    run_type: str
    start_date: datetime | None
    end_date: datetime | None

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> DagRunStatus:
        return cls(
            run_id=payload["dag_run_id"],
            logical_date=_parse_datetime(payload.get("logical_date")),
            state=payload["state"],
            run_type=payload["run_type"],
            start_date=_parse_datetime(payload.get("start_date")),
            end_date=_parse_datetime(payload.get("end_date")),
        )


@dataclass(frozen=True)
class BackfillStatus:
    """One backfill as the REST API reports it; ``completed_at`` is set once it has no active run."""

    id: int
    dag_id: str
    from_date: datetime
    to_date: datetime
    reprocess_behavior: str
    max_active_runs: int
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> BackfillStatus:
        return cls(
            id=payload["id"],
            dag_id=payload["dag_id"],
            from_date=_required_datetime(payload["from_date"]),
            to_date=_required_datetime(payload["to_date"]),
            reprocess_behavior=payload["reprocess_behavior"],
            max_active_runs=payload["max_active_runs"],
            created_at=_required_datetime(payload["created_at"]),
            completed_at=_parse_datetime(payload.get("completed_at")),
        )


@dataclass
class _Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class LocalAirflow:
    """Airflow's API server, DAG processor and scheduler (LocalExecutor, SQLite) as child processes.

    :param home: ``AIRFLOW_HOME``; holds the SQLite database, ``airflow.cfg``, task logs and the
        processes' logs (``home/local-airflow/*.log``).
    :param env: extra environment of every Airflow process (the pipeline's settings, connections).
        Inherited ``AIRFLOW_*`` and ``TAG_COMPLIANCE_*`` variables are dropped first, so the
        caller's own Airflow setup never leaks in; the settings this class owns win over ``env``.
    :param dags_folder: the DAGs folder to parse.
    :param parallelism: most task instances running at once (``[core] parallelism``).
    :param startup_timeout: seconds to wait for the API server and for a DAG to be parsed.
    :param stop_timeout: seconds between SIGTERM and SIGKILL, for each of the two stages of the stop.
    :param database_url: the metadata database (SQLAlchemy URL, an empty PostgreSQL database say);
        default SQLite in ``home``.
    """

    def __init__(
        self,
        home: Path,
        env: Mapping[str, str] | None = None,
        dags_folder: Path = REPO_ROOT / "dags",
        *,
        parallelism: int = 2,
        pools_file: Path = POOLS_FILE,
        startup_timeout: float = 180.0,
        stop_timeout: float = 20.0,
        database_url: str | None = None,
    ) -> None:
        self._database_url = database_url
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.pools_file = Path(pools_file).resolve()
        self.parallelism = parallelism
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_dir = self.home / LOG_DIR_NAME
        self.port = 0
        self._extra_env = dict(env or {})
        self._jwt_secret = ""
        self._secret_key = ""
        self._password = ""
        self._token: str | None = None
        self._services: list[_Service] = []
        self._prepared = False
        self._unpaused: set[str] = set()
        # every descendant seen while running, so that one whose parent died is still stopped
        self._seen: dict[int, psutil.Process] = {}

    # ------------------------------------------------------------------ environment

    @property
    def database_url(self) -> str:
        return self._database_url or f"sqlite:///{self.home / 'airflow.db'}"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every Airflow process started here (holds the JWT secret: never log it)."""
        if not self.port:
            self.port = _free_port()
        if not self._jwt_secret:
            self._jwt_secret = secrets.token_urlsafe(48)
            self._secret_key = secrets.token_urlsafe(32)
        inherited = {
            name: value for name, value in os.environ.items() if not name.startswith(_ISOLATED_PREFIXES)
        }
        owned = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__API__SECRET_KEY": self._secret_key,
            # only the runs asked for (backfills); never the DAG's own schedule
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # parse once at start, then rarely: CPU is for the tasks
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        }
        if self.uses_sqlite:
            owned["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = (
                "tag_compliance.local_airflow.SQLITE_CONNECT_ARGS"
            )
        return {**inherited, **self._extra_env, **owned}

    @property
    def _passwords_file(self) -> Path:
        return self.home / "local_airflow_passwords.json"

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> None:
        """Migrate the metadata database and import the pools (idempotent; ``start`` calls it)."""
        if self._prepared:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.run_airflow("db", "migrate", log_name="db-migrate")
        if self.uses_sqlite:
            # Write-ahead logging: readers (the API server, the DAG processor) never block the writer.
            # The mode is stored in the database file.
            with contextlib.closing(sqlite3.connect(self.home / "airflow.db", timeout=60)) as database:
                database.execute("pragma journal_mode = wal")
        self.run_airflow("pools", "import", str(self.pools_file), log_name="pools-import")
        self._prepared = True

    def start(self) -> LocalAirflow:
        """Prepare the database, start the three services and wait until the API answers."""
        if self._services:
            return self
        try:
            self.prepare()
            self._write_password()
            for name in _SERVICES:
                self._services.append(self._spawn(name))
            self._wait_for_api()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process started here, their children included (idempotent).

        Each service gets one SIGTERM, as Airflow expects: the scheduler then shuts its LocalExecutor
        workers down itself once their tasks end (a second signal, or one sent to a worker, would
        cut that short and leave it hanging). Running tasks, in process groups of their own, get
        SIGTERM too so that they end now. The API server goes last: task runners report their end
        through it. Whatever is still alive ``stop_timeout`` seconds after its SIGTERM, in the
        services' process groups or among every descendant ever seen, gets SIGKILL. A Ctrl-C during
        the stop is held until the stop is done.
        """
        if not self._services:
            return
        with _deferred_sigint():
            with contextlib.suppress(Exception):
                self._restore_paused()
            groups = {service.process.pid: service.name for service in self._services}
            tracked = self._descendants()
            group_of = {process.pid: _group(process) for process in tracked}
            api_server = [process for process in tracked if groups.get(group_of[process.pid]) == "api-server"]
            others = [process for process in tracked if process not in api_server]
            for service in self._services:
                if service.name != "api-server":
                    with contextlib.suppress(ProcessLookupError):
                        service.process.terminate()
            for process in others:
                if group_of[process.pid] not in groups:  # a task runner
                    with contextlib.suppress(psutil.Error):
                        process.terminate()
            _, alive = psutil.wait_procs(others, timeout=self.stop_timeout)
            for service in self._services:
                if service.name == "api-server":
                    with contextlib.suppress(ProcessLookupError):
                        service.process.terminate()
            _, alive_api_server = psutil.wait_procs(api_server, timeout=self.stop_timeout)
            alive += alive_api_server
            if alive:
                for pgid in groups:
                    _signal_group(pgid, signal.SIGKILL)
                for process in list(alive):
                    with contextlib.suppress(psutil.Error):
                        alive.extend(process.children(recursive=True))
                for process in alive:
                    with contextlib.suppress(psutil.Error):
                        process.kill()
                psutil.wait_procs(alive, timeout=5)
            for service in self._services:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    service.process.wait(timeout=5)  # reap our direct children
            self._services.clear()
            self._seen.clear()
            self._token = None

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """Process id of each service started (its process group id too)."""
        return {service.name: service.process.pid for service in self._services}

    def check_alive(self) -> None:
        """Raise :class:`LocalAirflowError` with the log tail if a service has exited."""
        self._descendants()  # remembers new task runners
        for service in self._services:
            code = service.process.poll()
            if code is not None:
                raise LocalAirflowError(
                    f"airflow {service.name} exited with code {code}; last lines of {service.log}:\n"
                    f"{_tail(service.log)}"
                )

    # ------------------------------------------------------------------ commands

    def run_airflow(self, *args: str, log_name: str, env: Mapping[str, str] | None = None) -> None:
        """Run ``airflow ARGS`` to completion with this environment (plus ``env``), logging to a file.

        Raises :class:`LocalAirflowError` with the log tail when it fails.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{log_name}.log"
        with log.open("ab") as output:
            output.write(f"\n$ airflow {' '.join(args)}\n".encode())
            output.flush()
            code = subprocess.call(
                [sys.executable, "-m", "airflow", *args],
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        if code != 0:
            raise LocalAirflowError(
                f"`airflow {' '.join(args)}` failed with exit code {code}; last lines of {log}:\n{_tail(log)}"
            )

    def backfill(
        self,
        from_date: date,
        to_date: date,
        reprocess_behavior: ReprocessBehavior = "none",
        *,
        dag_id: str = DAG_ID,
        max_active_runs: int = 1,
    ) -> BackfillStatus:
        """Create a backfill of ``dag_id`` for the days ``from_date`` to ``to_date`` (inclusive).

        Runs ``airflow backfill create --dag-id … --from-date … --to-date … --reprocess-behavior …
        --max-active-runs …``. For a daily data-interval timetable the runs are the days in the
        range (logical date = the day at 00:00 UTC) whose interval has ended. A paused DAG is
        unpaused first (the scheduler starts no run of a paused DAG, backfill runs included; it is
        paused again on stop). Airflow allows one active backfill per DAG: wait for the previous one
        (:meth:`wait_for_runs` with its ``backfill_id``) before creating the next.

        ``reprocess_behavior`` says what happens to a day that already has a finished run: ``none``
        keeps it, ``failed`` reruns it if it failed, ``completed`` reruns it whatever its state. A
        rerun clears the existing run (same run id) rather than adding one.
        """
        self.wait_for_dag(dag_id)
        if self._get(f"/api/v2/dags/{dag_id}")["is_paused"]:
            self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            self._unpaused.add(dag_id)
        existing = self.backfills(dag_id)
        earlier = {backfill.id for backfill in existing}
        active = [backfill for backfill in existing if backfill.completed_at is None]
        if active:
            raise LocalAirflowError(
                f"backfill {active[0].id} of {dag_id} ({active[0].from_date:%Y-%m-%d} to "
                f"{active[0].to_date:%Y-%m-%d}) is still active: wait for it or cancel it first"
            )
        for attempt in range(1, SQLITE_LOCKED_ATTEMPTS + 1):
            try:
                self.run_airflow(
                    "backfill",
                    "create",
                    "--dag-id",
                    dag_id,
                    "--from-date",
                    from_date.isoformat(),
                    "--to-date",
                    to_date.isoformat(),
                    "--reprocess-behavior",
                    reprocess_behavior,
                    "--max-active-runs",
                    str(max_active_runs),
                    log_name="backfill-create",
                )
                break
            except LocalAirflowError as exc:
                # SQLite in WAL mode fails a read transaction that turns into a write at once with
                # "database is locked" when another process wrote in between (no busy wait applies).
                # The CLI's transaction was rolled back, so asking again is safe.
                retry = "database is locked" in str(exc) and attempt < SQLITE_LOCKED_ATTEMPTS
                if not retry or any(backfill.id not in earlier for backfill in self.backfills(dag_id)):
                    raise
                log.warning("backfill create hit a locked SQLite database; attempt %d again", attempt + 1)
                time.sleep(2 * attempt)
        created = [backfill for backfill in self.backfills(dag_id) if backfill.id not in earlier]
        if len(created) != 1:
            raise LocalAirflowError(f"expected one new backfill of {dag_id}, found {created}")
        return created[0]

    def cancel_backfill(self, backfill_id: int, *, fail_running: bool = True) -> BackfillStatus:
        """Cancel a backfill with Airflow's own cancel: no new run starts, queued runs fail.

        With ``fail_running`` its running runs are marked failed too (their running tasks fail, the
        others are skipped), so that none is left half-done to resume on the next start; rerun them
        with reprocess behaviour ``failed``.
        """
        backfill = BackfillStatus.from_api(self._request("PUT", f"/api/v2/backfills/{backfill_id}/cancel"))
        if fail_running:
            for run in self.dag_runs(backfill.dag_id):
                if (
                    run.state not in TERMINAL_STATES
                    and run.run_type == "backfill"
                    and run.logical_date is not None
                    and backfill.from_date <= run.logical_date <= backfill.to_date
                ):
                    self._request(
                        "PATCH", f"/api/v2/dags/{backfill.dag_id}/dagRuns/{run.run_id}", {"state": "failed"}
                    )
        return backfill

    def backfills(self, dag_id: str = DAG_ID) -> list[BackfillStatus]:
        """Every backfill of ``dag_id``, oldest first."""
        payload = self._get("/api/v2/backfills", dag_id=dag_id, limit=100, order_by="id")
        return [BackfillStatus.from_api(item) for item in payload["backfills"]]

    def backfill_status(self, backfill_id: int) -> BackfillStatus:
        return BackfillStatus.from_api(self._get(f"/api/v2/backfills/{backfill_id}"))

    def dag_runs(self, dag_id: str = DAG_ID) -> list[DagRunStatus]:
        """Every run of ``dag_id``, by logical date."""
        runs: list[DagRunStatus] = []
        while True:
            payload = self._get(
                f"/api/v2/dags/{dag_id}/dagRuns", limit=100, offset=len(runs), order_by="logical_date"
            )
            page = [DagRunStatus.from_api(item) for item in payload["dag_runs"]]
            runs.extend(page)
            if not page or len(runs) >= payload["total_entries"]:
                return runs

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """Every task instance of one run (mapped ones one per map index), as the REST API gives them."""
        instances: list[dict[str, Any]] = []
        while True:
            payload = self._get(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=len(instances)
            )
            instances.extend(payload["task_instances"])
            if not payload["task_instances"] or len(instances) >= payload["total_entries"]:
                return instances

    def wait_for_runs(
        self,
        dag_id: str = DAG_ID,
        *,
        backfill_id: int | None = None,
        logical_dates: Iterable[datetime] | None = None,
        timeout: float = 900.0,
        poll_interval: float = 2.0,
        on_poll: Callable[[list[DagRunStatus]], None] | None = None,
    ) -> list[DagRunStatus]:
        """Wait until the runs are finished and return them, by logical date.

        With ``backfill_id``: until the scheduler marks the backfill completed (it checks every 30 s
        and only once none of its runs is queued or running), then every run whose logical date is in
        the backfill's range: those it created or cleared and, for days it skipped (``none``,
        ``failed``), their existing runs (manual runs in the range too). With ``logical_dates``: until
        a run of each date is in a terminal state. Raises :class:`LocalAirflowError` on timeout or
        when a service dies.
        """
        if (backfill_id is None) == (logical_dates is None):
            raise ValueError("give exactly one of backfill_id and logical_dates")
        wanted = {_as_utc(moment) for moment in logical_dates or ()}
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if backfill_id is not None:
                backfill = self.backfill_status(backfill_id)
                runs = [
                    run
                    for run in self.dag_runs(dag_id)
                    if run.logical_date is not None
                    and backfill.from_date <= run.logical_date <= backfill.to_date
                ]
                done = backfill.completed_at is not None
                pending = f"backfill {backfill_id} not completed yet"
            else:
                latest = {
                    run.logical_date: run for run in self.dag_runs(dag_id) if run.logical_date in wanted
                }
                runs = sorted(latest.values(), key=lambda run: run.logical_date or datetime.min)
                done = len(runs) == len(wanted) and all(run.state in TERMINAL_STATES for run in runs)
                pending = f"runs {[(str(run.logical_date), run.state) for run in runs]}"
            if on_poll is not None:
                on_poll(runs)
            if done:
                return runs
            if time.monotonic() > deadline:
                raise LocalAirflowError(f"timed out after {timeout:.0f}s waiting for {dag_id}: {pending}")
            time.sleep(poll_interval)

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float | None = None) -> None:
        """Wait until the DAG processor has parsed ``dag_id`` into the database."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            self.check_alive()
            try:
                self._get(f"/api/v2/dags/{dag_id}")
                return
            except _NotFound:
                pass
            if time.monotonic() > deadline:
                errors = self._get("/api/v2/importErrors").get("import_errors", [])
                raise LocalAirflowError(
                    f"{dag_id} was not parsed within {timeout or self.startup_timeout:.0f}s; import errors: "
                    f"{json.dumps(errors)[:2000]}; DAG processor log: {self.log_dir / 'dag-processor.log'}"
                )
            time.sleep(1)

    # ------------------------------------------------------------------ internals

    def _spawn(self, name: str) -> _Service:
        log = self.log_dir / f"{name}.log"
        args = [name]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        elif name == "scheduler":
            # Task logs are files in ``home`` that the API server reads directly; the log server the
            # scheduler would start listens on every interface at a fixed port (8793).
            args.append("--skip-serve-logs")
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C does not reach it, we stop it
            )
        return _Service(name, process, log)

    def _write_password(self) -> None:
        self._password = secrets.token_urlsafe(24)
        descriptor = os.open(self._passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({API_USER: self._password}, file)

    def _wait_for_api(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            self.check_alive()
            try:
                self._token = self._login()
                return
            except urllib.error.HTTPError as error:
                raise LocalAirflowError(
                    f"the API server refused the login: {error.code} {error.read().decode(errors='replace')}"
                ) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise LocalAirflowError(
                    f"the API server did not answer on {self.api_url} within {self.startup_timeout:.0f}s; "
                    f"see {self.log_dir / 'api-server.log'}"
                )
            time.sleep(0.5)

    def _login(self) -> str:
        request = urllib.request.Request(
            f"{self.api_url}/auth/token",
            data=json.dumps({"username": API_USER, "password": self._password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def _get(self, path: str, **params: object) -> dict[str, Any]:
        query = urllib.parse.urlencode({name: str(value) for name, value in params.items()})
        return self._request("GET", f"{path}?{query}" if query else path)

    def _request(
        self, method: str, path: str, body: object | None = None, *, timeout: float = 30
    ) -> dict[str, Any]:
        if self._token is None:
            raise LocalAirflowError("LocalAirflow is not running")
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:1000]
            if error.code == 404:
                raise _NotFound(f"{method} {path}: {detail}") from None
            raise LocalAirflowError(f"{method} {path} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise LocalAirflowError(f"{method} {path}: the API server did not answer ({error})") from None

    def _restore_paused(self) -> None:
        for dag_id in sorted(self._unpaused):
            self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True}, timeout=5)
        self._unpaused.clear()

    def _descendants(self) -> list[psutil.Process]:
        """The services and every descendant seen so far that still runs (a reused pid is not ours)."""
        for service in self._services:
            try:
                root = psutil.Process(service.process.pid)
                self._seen.setdefault(root.pid, root)
                for child in root.children(recursive=True):
                    self._seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                continue
        return [process for process in self._seen.values() if process.is_running()]


class _NotFound(LocalAirflowError):
    pass


# ---------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _group(process: psutil.Process) -> int | None:
    """The process group of a process, None once it is gone."""
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {log}: {error})"


def _parse_datetime(value: str | None) -> datetime | None:
    return None if value is None else _as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _required_datetime(value: str) -> datetime:
    parsed = _parse_datetime(value)
    assert parsed is not None
    return parsed


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_start(day: date) -> datetime:
    """The logical date of a daily data-interval run covering ``day``: 00:00 UTC that day."""
    return datetime.combine(day, dt_time(0), tzinfo=UTC)


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C until the block is done (main thread only), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# ---------------------------------------------------------------------- make backfill


def parse_day(option: str, value: str) -> date:
    """A day given exactly as YYYY-MM-DD, the form ``make backfill`` documents."""
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise BackfillRequestError(f"{option}: {value!r} is not a day in YYYY-MM-DD form ({error})") from None
    if day.isoformat() != value:  # fromisoformat also takes 20260305, 2026-W10-4, ...
        raise BackfillRequestError(
            f"{option}: {value!r} is not a day in YYYY-MM-DD form (did you mean {day}?)"
        )
    return day


def check_request(
    from_date: date, to_date: date, *, max_active_runs: int, timeout: float, lake: Path
) -> None:
    """Everything that can be told wrong about a backfill before minutes go into starting it."""
    if from_date > to_date:
        raise BackfillRequestError(
            f"--from {from_date} is after --to {to_date}: the range must start on or before its last day"
        )
    if max_active_runs < 1:
        raise BackfillRequestError(f"--max-active-runs: {max_active_runs} runs at once; give 1 or more")
    if timeout <= 0:
        raise BackfillRequestError(f"--timeout: {timeout:g} seconds; give a positive number")
    check_scorable(from_date, lake)


def check_scorable(from_date: date, lake: Path) -> None:
    """Fail early when the range starts on a past day that no stored inventory snapshot covers.

    Such a day's run would extract its costs and then fail: the pipeline scores a past day from
    the nearest earlier snapshot, never from live inventory.
    """
    from tag_compliance.clock import SandboxClockError, inventory_is_live
    from tag_compliance.config import Settings
    from tag_compliance.scoring import latest_snapshot_on_or_before

    try:
        live = inventory_is_live(from_date, Settings(lake=lake))
    except (SandboxClockError, ValueError) as error:  # ValueError: TAG_COMPLIANCE_* settings
        raise BackfillRequestError(" ".join(str(error).split())) from None
    if live:
        return
    if latest_snapshot_on_or_before(lake, from_date) is None:
        raise BackfillRequestError(
            f"{from_date} cannot be scored: {lake} holds no inventory snapshot on or before it, and a past "
            "day is only ever scored from a stored snapshot. Run `make demo` first (it stores the "
            "snapshots of the days it replays) or start the range on a day that has one."
        )


def run_backfill(
    from_date: date,
    to_date: date,
    reprocess_behavior: ReprocessBehavior,
    *,
    home: Path,
    data_dir: Path,
    max_active_runs: int,
    timeout: float,
    console: Any,
) -> list[DagRunStatus]:
    """``make backfill``: the demo's seeded sandbox, the lake in ``data_dir``, a LocalAirflow in ``home``.

    The request is checked first (:func:`check_request`): a wrong one raises
    :class:`BackfillRequestError` before anything is started. On Ctrl-C every active backfill of
    the DAG is cancelled and its unfinished runs are marked failed (rerun them with ``--reprocess
    failed``) before every process is stopped.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tag_compliance.demo import DEMO_SEED, HISTORY_DAYS
    from tag_compliance.sandbox import Sandbox

    pipeline_env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("TAG_COMPLIANCE_", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    pipeline_env.setdefault("TAG_COMPLIANCE_LAKE", str(data_dir / "lake"))
    pipeline_env.setdefault("TAG_COMPLIANCE_WAREHOUSE", str(data_dir / "warehouse.duckdb"))
    check_request(
        from_date,
        to_date,
        max_active_runs=max_active_runs,
        timeout=timeout,
        lake=Path(pipeline_env["TAG_COMPLIANCE_LAKE"]),
    )
    # The demo's sandbox (same seed and history, so the same cost ledger), moved to its last day:
    # live inventory (only ever taken for yesterday or today) is the estate as it is now.
    sandbox = Sandbox(seed=DEMO_SEED, data_dir=data_dir / "sandbox", history_days=HISTORY_DAYS)
    with (
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as bar,
        contextlib.ExitStack() as cleanup,
    ):
        cleanup.callback(sandbox.stop)
        step = bar.add_task("Starting and seeding the AWS sandbox (moto and Cost Explorer on 127.0.0.1)")
        sandbox.start()
        sandbox.advance_to(sandbox.history[-1])
        bar.update(step, description=f"AWS sandbox seeded at {sandbox.endpoint_url}", total=1, completed=1)

        step = bar.add_task("Starting Airflow: database, pools, api-server, dag-processor, scheduler")
        airflow = cleanup.enter_context(LocalAirflow(home, env={**pipeline_env, **sandbox.env()}))
        bar.update(
            step, description=f"Airflow running; its logs are in {airflow.log_dir}", total=1, completed=1
        )

        step = bar.add_task(f"airflow backfill create {from_date} to {to_date} ({reprocess_behavior})")
        try:
            backfill = airflow.backfill(
                from_date, to_date, reprocess_behavior, max_active_runs=max_active_runs
            )

            def show(runs: Sequence[DagRunStatus]) -> None:
                done = sum(run.state in TERMINAL_STATES for run in runs)
                bar.update(step, description=f"Backfill {backfill.id}: {done} of {len(runs)} runs finished")

            runs = airflow.wait_for_runs(DAG_ID, backfill_id=backfill.id, timeout=timeout, on_poll=show)
        except KeyboardInterrupt:
            with _deferred_sigint():
                for active in airflow.backfills(DAG_ID):
                    if active.completed_at is None:
                        with contextlib.suppress(LocalAirflowError):
                            airflow.cancel_backfill(active.id)
            raise
        bar.update(step, description=f"Backfill {backfill.id} completed", total=1, completed=1)
    return runs


def _runs_table(runs: Sequence[DagRunStatus], home: Path) -> Any:
    from rich.table import Table

    table = Table(title=f"Backfill runs of {DAG_ID}", title_justify="left")
    for column in ("day", "state", "run id", "started (UTC)", "seconds"):
        table.add_column(column, no_wrap=column != "run id")
    for run in runs:
        seconds = (run.end_date - run.start_date).total_seconds() if run.start_date and run.end_date else None
        colour = {"success": "green", "failed": "red"}.get(run.state, "yellow")
        table.add_row(
            f"{run.logical_date:%Y-%m-%d}" if run.logical_date else "",
            f"[{colour}]{run.state}[/{colour}]",
            run.run_id,
            f"{run.start_date:%H:%M:%S}" if run.start_date else "",
            "" if seconds is None else f"{seconds:.0f}",
        )
    table.caption = f"task logs: {home / 'logs' / f'dag_id={DAG_ID}'}"
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tag_compliance.local_airflow backfill --from YYYY-MM-DD --to YYYY-MM-DD``."""
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m tag_compliance.local_airflow", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    backfill = commands.add_parser(
        "backfill",
        help="backfill tag_compliance on a local scheduler against the demo's sandbox (make backfill)",
    )
    # Days are parsed after argparse so that a wrong one gets the same one-line error as the rest.
    backfill.add_argument("--from", dest="from_date", required=True, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="to_date", required=True, help="last day (YYYY-MM-DD)")
    backfill.add_argument(
        "--reprocess",
        choices=("none", "failed", "completed"),
        default="none",
        help="days that already have a finished run: keep them (none), rerun failed ones, rerun all",
    )
    backfill.add_argument("--max-active-runs", type=int, default=1, help="runs at once (the DAG's own: 1)")
    backfill.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the runs")
    backfill.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("AIRFLOW_HOME") or REPO_ROOT / ".airflow"),
        help="Airflow home (default: $AIRFLOW_HOME, else .airflow)",
    )
    backfill.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data", help="sandbox and lake")
    args = parser.parse_args(argv)

    console = Console()
    # `kill` or a closed terminal stop everything as Ctrl-C does
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_keyboard_interrupt)
    try:
        runs = run_backfill(
            parse_day("--from", args.from_date),
            parse_day("--to", args.to_date),
            args.reprocess,
            home=args.home,
            data_dir=args.data_dir,
            max_active_runs=args.max_active_runs,
            timeout=args.timeout,
            console=console,
        )
    except BackfillRequestError as error:  # nothing was started: one line, like a usage error
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LocalAirflowError as error:
        console.print(f"[red]{error}[/red]")
        return 1
    except KeyboardInterrupt:
        console.print(
            "[yellow]Interrupted: the backfill was cancelled, its unfinished runs marked failed (rerun "
            "them with REPROCESS=failed) and every process stopped.[/yellow]"
        )
        return 130
    console.print(_runs_table(runs, args.home.resolve()))
    if not runs:
        console.print("No runs: no day of the range has ended yet.")
    return 0 if runs and all(run.state == "success" for run in runs) else 1


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
