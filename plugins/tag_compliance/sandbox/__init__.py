"""Local AWS estate for the demo and tests: a real moto server seeded with a messy organisation.

``Sandbox`` starts ``python -m moto.server`` on a free 127.0.0.1 port, seeds three accounts x two
regions deterministically from a seed (see :mod:`.estate`), reads everything back to check it, and
writes the ground truth to ``<data_dir>/manifest/``. It then builds the estate's daily cost ledger
(:mod:`.ledger`, ``<data_dir>/ledger/costs.parquet``) and serves Cost Explorer over it from an emulator
(:mod:`.cost_explorer`) in a thread of this process. ``env()`` is what the pipeline needs to point at
both. Nothing here ever touches real AWS: credentials are moto's fake ``testing`` pair.

    with Sandbox(seed=42, data_dir=tmp_path) as sandbox:
        os.environ.update(sandbox.env())
        ...
        truth = load_manifest(sandbox.manifest_path)
        costs = load_ledger(sandbox.ledger_path)
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType

from tag_compliance.sandbox.cost_explorer import CostExplorerEmulator
from tag_compliance.sandbox.estate import ACCOUNTS, REGIONS, ROLE_NAME, Estate, build_estate
from tag_compliance.sandbox.ledger import LEDGER_DIR, LEDGER_FILE, build_ledger, load_ledger, write_ledger
from tag_compliance.sandbox.manifest import RESOURCES_FILE, SUMMARY_FILE, load_manifest, write_manifest
from tag_compliance.sandbox.seed import FAKE_KEY, Seeder
from tag_compliance.sandbox.server import MotoServer, SandboxError

__all__ = ["CostExplorerEmulator", "Sandbox", "SandboxError", "build_estate", "load_ledger", "load_manifest"]

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # small enough that every list call paginates on this estate
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "sandbox"
LEDGER_DAYS = 45
# Cost Explorer groups per page: small enough that the larger answers take several pages
# (every page is a billed request), large enough that the demo stays within its request budget.
COST_EXPLORER_PAGE_SIZE = 200
COST_EXPLORER_REQUESTS_PER_SECOND = 20  # the emulator is local; AWS's own limit is far lower


class Sandbox:
    """A seeded moto server and a Cost Explorer emulator; a context manager that always stops both."""

    def __init__(
        self,
        seed: int = 42,
        data_dir: Path | str | None = None,
        scale: float = 1.0,
        workers: int = 4,
        today: date | None = None,
    ) -> None:
        self.seed = seed
        self.today = today if today is not None else datetime.now(UTC).date()
        self.data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
        self.scale = scale
        self.workers = workers
        self.estate: Estate | None = None
        self.seed_seconds: float | None = None
        self.cost_explorer: CostExplorerEmulator | None = None
        self._server = MotoServer(self.data_dir / "moto.log")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        """Start moto, seed the estate, write the manifest and the cost ledger, serve Cost Explorer.

        Stops everything again if any step fails.
        """
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
            ledger = build_ledger(estate, self.today, days=LEDGER_DAYS)
            write_ledger(ledger, self.ledger_path.parent)
            self.cost_explorer = CostExplorerEmulator(ledger, self.today, page_size=COST_EXPLORER_PAGE_SIZE)
            self.cost_explorer.start()
            log.info(
                "sandbox seeded %d resources in %.1fs at %s; Cost Explorer (%d ledger rows to %s) at %s",
                len(estate.inventory),
                self.seed_seconds,
                self.endpoint_url,
                ledger.num_rows,
                self.today.isoformat(),
                self.cost_explorer.endpoint_url,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the Cost Explorer emulator and terminate the moto server (idempotent)."""
        try:
            if self.cost_explorer is not None:
                self.cost_explorer.stop()
        finally:
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

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / LEDGER_DIR / LEDGER_FILE

    @property
    def cost_explorer_url(self) -> str:
        if self.cost_explorer is None:
            raise SandboxError("the Cost Explorer emulator is not running")
        return self.cost_explorer.endpoint_url

    def env(self) -> dict[str, str]:
        """Environment pointing the pipeline at this sandbox (fake credentials only)."""
        connection = {
            "conn_type": "aws",
            "login": FAKE_KEY,
            "password": FAKE_KEY,
            "extra": {
                "endpoint_url": self.endpoint_url,
                "region_name": "us-east-1",
                "service_config": {"ce": {"endpoint_url": self.cost_explorer_url}},
            },
        }
        return {
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
            "TAG_COMPLIANCE_ACCOUNTS": ",".join(self.accounts),
            "TAG_COMPLIANCE_REGIONS": ",".join(self.regions),
            "TAG_COMPLIANCE_ROLE_NAME": ROLE_NAME,
            "TAG_COMPLIANCE_PAGE_SIZE": str(PAGE_SIZE),
            "TAG_COMPLIANCE_COST_RESOURCE_LEVEL": "true",
            "TAG_COMPLIANCE_COST_REQUESTS_PER_SECOND": str(COST_EXPLORER_REQUESTS_PER_SECOND),
            "AWS_ACCESS_KEY_ID": FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
