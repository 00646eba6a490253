"""Local AWS estate for the demo and tests: a real moto server seeded with a messy organisation.

``Sandbox`` starts ``python -m moto.server`` on a free 127.0.0.1 port, seeds three accounts x two
regions deterministically from a seed (see :mod:`.estate`), reads everything back to check it, and
writes the ground truth to ``<data_dir>/manifest/``. ``env()`` is what the pipeline needs to point at
it. Nothing here ever touches real AWS: credentials are moto's fake ``testing`` pair.

    with Sandbox(seed=42, data_dir=tmp_path) as sandbox:
        os.environ.update(sandbox.env())
        ...
        truth = load_manifest(sandbox.manifest_path)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import TracebackType

from tag_compliance.sandbox.estate import ACCOUNTS, REGIONS, ROLE_NAME, Estate, build_estate
from tag_compliance.sandbox.manifest import RESOURCES_FILE, SUMMARY_FILE, load_manifest, write_manifest
from tag_compliance.sandbox.seed import FAKE_KEY, Seeder
from tag_compliance.sandbox.server import MotoServer, SandboxError

__all__ = ["Sandbox", "SandboxError", "build_estate", "load_manifest"]

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # small enough that every list call paginates on this estate
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "sandbox"


class Sandbox:
    """A seeded moto server; a context manager that always stops the server on exit."""

    def __init__(
        self,
        seed: int = 42,
        data_dir: Path | str | None = None,
        scale: float = 1.0,
        workers: int = 4,
    ) -> None:
        self.seed = seed
        self.data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
        self.scale = scale
        self.workers = workers
        self.estate: Estate | None = None
        self.seed_seconds: float | None = None
        self._server = MotoServer(self.data_dir / "moto.log")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        """Start moto, seed the estate, write the manifest. Stops the server again if any step fails."""
        if self._server.running():
            return self
        self._server.start()
        try:
            started = time.monotonic()
            estate = build_estate(self.seed, self.scale)
            Seeder(self._server.endpoint_url, estate, self.workers).run()
            write_manifest(estate, self.manifest_path.parent)
            self.estate = estate
            self.seed_seconds = time.monotonic() - started
            log.info(
                "sandbox seeded %d resources in %.1fs at %s",
                len(estate.inventory),
                self.seed_seconds,
                self.endpoint_url,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the moto server (idempotent)."""
        self._server.stop()

    @property
    def running(self) -> bool:
        return self._server.running()

    @property
    def pid(self) -> int | None:
        """The moto server's process id (None when stopped)."""
        return self._server.pid

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what the pipeline needs

    @property
    def endpoint_url(self) -> str:
        return self._server.endpoint_url

    @property
    def accounts(self) -> list[str]:
        return list(ACCOUNTS)

    @property
    def regions(self) -> list[str]:
        return list(REGIONS)

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest" / RESOURCES_FILE

    @property
    def summary_path(self) -> Path:
        return self.data_dir / "manifest" / SUMMARY_FILE

    def env(self) -> dict[str, str]:
        """Environment pointing the pipeline at this sandbox (fake credentials only)."""
        connection = {
            "conn_type": "aws",
            "login": FAKE_KEY,
            "password": FAKE_KEY,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }
        return {
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
            "TAG_COMPLIANCE_ACCOUNTS": ",".join(self.accounts),
            "TAG_COMPLIANCE_REGIONS": ",".join(self.regions),
            "TAG_COMPLIANCE_ROLE_NAME": ROLE_NAME,
            "TAG_COMPLIANCE_PAGE_SIZE": str(PAGE_SIZE),
            "AWS_ACCESS_KEY_ID": FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
