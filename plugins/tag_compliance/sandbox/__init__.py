"""Local AWS estate for the demo and tests: a real moto server seeded with a messy organisation.

``Sandbox`` starts moto's server (:mod:`.server`) on a free 127.0.0.1 port, seeds three accounts x
two regions deterministically from a seed (see :mod:`.estate`), reads everything back to check it,
and writes the ground truth to ``<data_dir>/manifest/`` (layout: :mod:`.manifest`). It then builds
the estate's daily cost ledger (:mod:`.ledger`, ``<data_dir>/ledger/costs.parquet``) and serves Cost
Explorer over it from an emulator (:mod:`.cost_explorer`) in a thread of this process. ``env()`` is
what the pipeline needs to point at both. Nothing here ever touches real AWS: credentials are moto's
fake ``testing`` pair.

    with Sandbox(seed=42, data_dir=tmp_path) as sandbox:
        os.environ.update(sandbox.env())
        ...
        truth = load_manifest(sandbox.manifest_path)
        costs = load_ledger(sandbox.ledger_path)

With ``history_days=N`` the estate changes from day to day over ``sandbox.history`` (the N days
``today - N .. today - 1``, see :mod:`.timeline`): ``start()`` seeds the first day's estate, and
``advance_to(day)`` creates, deletes and retags resources in moto until it holds exactly that day's
estate, then rewrites the manifest (and ``manifest/days/<day>/``) to that day's truth. The ledger
follows the timeline from the start: a resource costs only on the days it exists, with that day's
tags.

    with Sandbox(data_dir=tmp_path, history_days=7) as sandbox:
        for day in sandbox.history:
            sandbox.advance_to(day)  # the first day: already there
            ...  # run the pipeline for `day`; reconcile with load_manifest(sandbox.manifest_path)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from tag_compliance.config import REPO_ROOT
from tag_compliance.sandbox.cost_explorer import CostExplorerEmulator
from tag_compliance.sandbox.estate import (
    ACCOUNTS,
    EC2,
    REGIONS,
    ROLE_NAME,
    S3,
    Estate,
    PlannedResource,
    build_estate,
)
from tag_compliance.sandbox.ledger import (
    LEDGER_DIR,
    LEDGER_FILE,
    build_ledger,
    load_ledger,
    rename_resources,
    write_ledger,
)
from tag_compliance.sandbox.manifest import (
    CHANGES_FILE,
    DAYS_DIR,
    HISTORY_FILE,
    RESOURCES_FILE,
    SUMMARY_FILE,
    day_directory,
    load_changes,
    load_manifest,
    write_day,
    write_history,
    write_manifest,
)
from tag_compliance.sandbox.seed import FAKE_KEY, Seeder
from tag_compliance.sandbox.server import MotoServer, SandboxError
from tag_compliance.sandbox.timeline import Timeline, build_timeline

__all__ = [
    "CostExplorerEmulator",
    "Sandbox",
    "SandboxError",
    "Timeline",
    "build_estate",
    "build_timeline",
    "load_changes",
    "load_ledger",
    "load_manifest",
]

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # small enough that every list call paginates on this estate
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "sandbox"
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
        history_days: int = 0,
    ) -> None:
        if not 0 <= history_days < LEDGER_DAYS:
            raise ValueError(f"history_days must be in [0, {LEDGER_DAYS - 1}], not {history_days}")
        self.seed = seed
        self.today = today if today is not None else datetime.now(UTC).date()
        self.data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
        self.scale = scale
        self.workers = workers
        # the days the estate evolves over: today - N .. today - 1 (empty: a static estate)
        self.history: list[date] = [self.today - timedelta(days=n) for n in range(history_days, 0, -1)]
        self.day: date | None = None  # the history day moto holds (None without history)
        self.timeline: Timeline | None = None
        self.estate: Estate | None = None
        self.seed_seconds: float | None = None
        self.cost_explorer: CostExplorerEmulator | None = None
        self._server = MotoServer(self.data_dir / "moto.log")
        self._seeder: Seeder | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        """Start moto, seed the estate, write the manifest and the cost ledger, serve Cost Explorer.

        With history, the estate seeded is the first history day's. Stops everything again if any
        step fails.
        """
        if self._server.running():
            return self
        self._server.start()
        try:
            started = time.monotonic()
            # days of an earlier run in this data dir are not this run's history
            shutil.rmtree(self.manifest_path.parent / DAYS_DIR, ignore_errors=True)
            (self.manifest_path.parent / HISTORY_FILE).unlink(missing_ok=True)
            if self.history:
                self.timeline = build_timeline(self.seed, self.scale, self.history)
                estate = self.timeline.estate_on(self.history[0])
            else:
                estate = build_estate(self.seed, self.scale)
            self._seeder = Seeder(self._server.endpoint_url, estate, self.workers)
            self._seeder.run()
            self.estate = estate
            if self.timeline is not None:
                self.timeline.record_ids(estate)
                self.day = self.history[0]
                self._write_day(self.day, estate)
            write_manifest(self._seeder.truth(estate), self.manifest_path.parent, self.day)
            self.seed_seconds = time.monotonic() - started
            ledger = build_ledger(
                estate, self.today, days=LEDGER_DAYS, timeline=self.timeline, breadth=self._seeder.breadth
            )
            write_ledger(ledger, self.ledger_path.parent)
            self.cost_explorer = CostExplorerEmulator(ledger, self.today, page_size=COST_EXPLORER_PAGE_SIZE)
            self.cost_explorer.start()
            log.info(
                "sandbox seeded %d resources in %.1fs at %s; Cost Explorer (%d ledger rows to %s) at %s",
                len(self._seeder.truth(estate).inventory),
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

    def advance_to(self, day: date) -> Estate:
        """Change moto until it holds exactly the estate of history day ``day``; returns that estate.

        Applies every day's changes in order from the current day (deletions, creations, retags,
        through boto3), reads moto back after each day and fails on any difference, writes each
        day's truth to ``manifest/days/<day>/`` and the last one to ``manifest/``, and refreshes the
        cost ledger (EC2 ids of new instances) and the Cost Explorer emulator. Only forward; the
        current day again is a no-op.
        """
        if self.timeline is None or self.day is None or self._seeder is None:
            raise SandboxError("advance_to needs a started Sandbox with history_days > 0")
        if day not in self.history:
            raise ValueError(f"{day} is not a history day ({self.history[0]} .. {self.history[-1]})")
        if day < self.day:
            raise ValueError(f"the sandbox is at {self.day}: it only moves forward, not to {day}")
        if day == self.day:
            assert self.estate is not None
            return self.estate
        if not self.running:
            raise SandboxError("the moto server is not running")
        started = time.monotonic()
        estate = self.estate
        ids_before = self._cost_explorer_ids()
        for next_day in self.history[self.history.index(self.day) + 1 : self.history.index(day) + 1]:
            estate = self.timeline.estate_on(next_day)
            self._seeder.apply(self.timeline.changes_on(next_day), estate)
            self.timeline.record_ids(estate)
            self.estate, self.day = estate, next_day
            self._write_day(next_day, estate)
        assert estate is not None
        write_manifest(self._seeder.truth(estate), self.manifest_path.parent, day)
        # The ledger was built from the whole timeline at start: only the placeholder ids of the
        # instances created since change (to the ids moto gave them); amounts never depend on ids.
        ids_after = self._cost_explorer_ids()
        renamed = {ids_before[key]: new for key, new in ids_after.items() if new != ids_before[key]}
        if renamed:
            write_ledger(rename_resources(load_ledger(self.ledger_path), renamed), self.ledger_path.parent)
            if self.cost_explorer is not None:
                self.cost_explorer.rename_resources(renamed)
        log.info(
            "sandbox advanced to %s in %.1fs: %d resources",
            day,
            time.monotonic() - started,
            len(self._seeder.truth(estate).inventory),
        )
        return estate

    def _cost_explorer_ids(self) -> dict[tuple[str, str, str, str], str]:
        """RESOURCE_ID as Cost Explorer reports it, of every resource of the timeline (known or not)."""
        assert self.timeline is not None
        return {
            r.ident: self.timeline.ids_of(r)[0 if r.resource_type in (EC2, S3) else 1]
            for r in self.timeline.resources
        }

    def _write_day(self, day: date, estate: Estate) -> None:
        assert self.timeline is not None
        changes = []
        for change in self.timeline.changes_on(day):
            resource_id, arn = self.timeline.ids_of(change.ident)
            changes.append(change.to_json(resource_id, arn))
        assert self._seeder is not None
        write_day(self._seeder.truth(estate), self.manifest_path.parent, day, changes)
        reached = self.history[: self.history.index(day) + 1]
        write_history(
            self.manifest_path.parent,
            {
                "seed": self.seed,
                "scale": self.scale,
                "days": [d.isoformat() for d in self.history],
                "current": day.isoformat(),
                "changes": {
                    d.isoformat(): dict(
                        sorted(Counter(f"{c.kind}:{c.detail}" for c in self.timeline.changes_on(d)).items())
                    )
                    for d in reached
                },
            },
        )

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
    def breadth(self) -> list[PlannedResource]:
        """The seeded resources of every type but the five the history changes (they never change)."""
        return list(self._seeder.breadth) if self._seeder is not None else []

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest" / RESOURCES_FILE

    @property
    def summary_path(self) -> Path:
        return self.data_dir / "manifest" / SUMMARY_FILE

    def day_manifest_path(self, day: date) -> Path:
        """``manifest/days/<day>/resources.parquet``: the truth of one history day (once reached)."""
        return day_directory(self.manifest_path.parent, day) / RESOURCES_FILE

    def changes_path(self, day: date) -> Path:
        """``manifest/days/<day>/changes.json``: what changed on that history day."""
        return day_directory(self.manifest_path.parent, day) / CHANGES_FILE

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / LEDGER_DIR / LEDGER_FILE

    @property
    def cost_explorer_url(self) -> str:
        if self.cost_explorer is None:
            raise SandboxError("the Cost Explorer emulator is not running")
        return self.cost_explorer.endpoint_url

    def delete_member_role(self, account: str) -> None:
        """Delete the pipeline's role in a member account: collecting there fails (AccessDenied)."""
        self._running_seeder().delete_member_role(account)

    def restore_member_role(self, account: str) -> None:
        self._running_seeder().create_member_role(account)

    def enable_region(self, account: str, region: str) -> None:
        """Opt the account into an opt-in region (one AWS has not enabled by default)."""
        self._running_seeder().set_region_enabled(account, region, enabled=True)

    def disable_region(self, account: str, region: str) -> None:
        """Opt the account out of an opt-in region: the pipeline then never calls it there."""
        self._running_seeder().set_region_enabled(account, region, enabled=False)

    def client(self, account: str, service: str, region: str) -> Any:
        """A boto3 client of the sandbox, working in ``account`` (to stage a change a test needs)."""
        return self._running_seeder().client(account, service, region)

    def _running_seeder(self) -> Seeder:
        if self._seeder is None:
            raise SandboxError("the sandbox is not running")
        return self._seeder

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
