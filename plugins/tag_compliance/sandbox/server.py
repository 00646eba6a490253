"""The moto server process: started on a free 127.0.0.1 port, and never outliving us.

moto runs as a real HTTP server in a child process (not in-process mocks) so the pipeline, Airflow
and the demo talk to it exactly as they would talk to AWS: through endpoint_url and botocore. The child
runs :mod:`.moto_main`: moto's own server, with deleted ECS services dropped from the listings as AWS
drops them.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
MOTO_MAIN = Path(__file__).resolve().with_name("moto_main.py")


class SandboxError(RuntimeError):
    """The sandbox could not be started or seeded."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _load_prctl() -> Callable[..., int] | None:
    # resolved in the parent: the forked child must not dlopen anything before exec
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux sends it SIGTERM when we die, even by SIGKILL."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


class MotoServer:
    """moto's server (``moto_main.py``) as a child process."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise SandboxError("moto server is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0, attempts: int = 3) -> str:
        """Start and wait until it answers; retries on another port if one was taken meanwhile."""
        for attempt in range(1, attempts + 1):
            self._spawn(free_port())
            try:
                self._wait_ready(timeout)
                return self.endpoint_url
            except SandboxError:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("AWS_SESSION_TOKEN", "AWS_PROFILE")}
        env.update(
            MOTO_EC2_LOAD_DEFAULT_AMIS="false",
            # certificates issued at once, not after 60 s: a certificate's state must not depend on
            # how long after seeding a run lists it
            MOTO_ACM_VALIDATION_WAIT="0",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            PYTHONUNBUFFERED="1",
        )
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("wb")
        self.port = port
        self._process = subprocess.Popen(
            [sys.executable, str(MOTO_MAIN), "-H", HOST, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            env=env,
            # PDEATHSIG fires when the *thread* that forked exits, so only tie it to the main thread;
            # otherwise stop(), __exit__ and atexit are what end the server.
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )
        atexit.register(self.stop)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint_url}/moto-api/"
        while time.monotonic() < deadline:
            if not self.running():
                raise SandboxError(
                    f"moto server exited early (code {self._process.returncode}){self._tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise SandboxError(
            f"moto server did not answer on {self.endpoint_url} within {timeout:.0f}s{self._tail()}"
        )

    def _tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return "\n" + "\n".join(lines)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate, then kill if it does not go; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)
