"""A throwaway PostgreSQL server on 127.0.0.1 for tests that run a real Airflow scheduler.

Airflow's scheduler, API server and DAG processor write the metadata database at once; on SQLite a
write that follows a read in the same transaction fails at once ("database is locked") when another
process wrote in between, whatever the busy timeout (seen in CI: ``airflow backfill create``
clearing task instances while the scheduler ran). PostgreSQL is what Airflow runs on in production.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it). The cluster lives in
a temporary directory, owned by the ``postgres`` user when the tests run as root (``initdb`` refuses
root), listens on 127.0.0.1 at a free port, trusts local connections (nothing else can reach it) and
is removed on exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailableError(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `apt-get install postgresql` "
        "(.ci/run does it)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TemporaryPostgres:
    """``with TemporaryPostgres() as server: server.url`` — a database ``airflow`` owned by ``airflow``."""

    USER = "airflow"
    DATABASE = "airflow"

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="tag-compliance-postgres-"))
        self.data = self.directory / "data"
        # root may not run initdb: the cluster belongs to the postgres user then
        self.run_as = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.USER}@127.0.0.1:{self.port}/{self.DATABASE}"

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [str(self.bindir / command[0]), *command[1:]],
            user=self.run_as,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.directory,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> TemporaryPostgres:
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.USER, self.DATABASE)
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
