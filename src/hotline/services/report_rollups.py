"""Keeps ``report_hours`` up to date: finished hours never stored, and hours the triggers marked changed, are
computed from the raw rows and stored, oldest first, a bounded number of hours per transaction.

Reports stay correct without it (an hour not stored, or marked, is computed from the raw rows at report time); it
only makes them fast. With several processes on PostgreSQL, one refresh runs at a time (a transaction-level
advisory lock; the others skip their turn). A mark is cleared only if it was not renewed while its hours were being
computed (``report_dirty.version``), so a write racing a refresh is recomputed next time, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.repositories import reports as repo
from hotline.domain.hour_stats import HourStats, complete_hours_before, hour_runs, refresh_plan
from hotline.domain.metrics import MetricsConfig

log = logging.getLogger(__name__)

LOCK_KEY = int.from_bytes(hashlib.blake2b(b"hotline-report-refresh", digest_size=8).digest(), "big", signed=True)
HOUR_S = 3600


@dataclass
class RefreshResult:
    hours: int = 0
    """hours computed and stored"""
    cleared: int = 0
    """dirty marks cleared"""
    skipped: bool = False
    """another process was refreshing"""


async def refresh_once(
    sessions: async_sessionmaker[AsyncSession], *, config: MetricsConfig, now: datetime, max_hours: int = 48
) -> tuple[RefreshResult, bool]:
    """One bounded step; returns what it did and whether work is left.

    Reading and computing (seconds, for a cold roll-up) happen outside the write transaction, which only stores the
    hours and clears the marks, so the listener, committing every few milliseconds, never waits behind a refresh and
    no write transaction starts from a stale snapshot. On PostgreSQL one refresh runs at a time: a session-level
    advisory lock, held on the reading connection (kept out of the pool by its open transaction) until the write has
    committed.
    """
    result = RefreshResult()
    async with sessions() as reader:
        postgresql = reader.bind.dialect.name == "postgresql"
        if postgresql and not await reader.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}):
            result.skipped = True
            return result, False
        try:
            before = complete_hours_before(now)
            dirty = await repo.dirty_ranges(reader)  # read before the rows they mark: see repo.period_hours
            plan = refresh_plan(
                first=await repo.oldest_data_hour(reader),
                before=before,
                stored=await repo.stored_hour_numbers(reader, config),
                dirty=dirty,
                max_hours=max_hours,
            )
            if not plan.todo:
                return result, False
            computed = {}
            for first, last in hour_runs(plan.todo):
                span = await repo.raw_hours(
                    reader, datetime.fromtimestamp(first * HOUR_S, UTC),
                    datetime.fromtimestamp((last + 1) * HOUR_S, UTC), config,
                )  # fmt: skip
                computed |= {h: span.get(h) or HourStats() for h in range(first, last + 1)}
            async with sessions() as writer, writer.begin():
                await repo.store_hours(writer, computed, config, now)
                result.cleared = await repo.clear_dirty(writer, plan.cleared)
                await repo.narrow_dirty(writer, plan.narrowed)
            result.hours = len(computed)
            return result, len(plan.todo) == max_hours
        finally:
            if postgresql:
                await reader.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})


async def refresh(
    sessions: async_sessionmaker[AsyncSession],
    *,
    config: MetricsConfig = MetricsConfig(),  # noqa: B008
    now: datetime | None = None,
    max_hours: int = 48,
) -> RefreshResult:
    """Refresh until nothing is left (each step its own short write transaction, so writers never wait long)."""
    total = RefreshResult()
    while True:
        step, more = await refresh_once(sessions, config=config, now=now or datetime.now(UTC), max_hours=max_hours)
        total.hours += step.hours
        total.cleared += step.cleared
        total.skipped = total.skipped or step.skipped
        if not more:
            return total


class ReportRefresher:
    """Runs :func:`refresh` every ``interval_s`` seconds in the background; a failure is logged and retried at the
    next turn (reports fall back to the raw rows meanwhile)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        interval_s: float,
        *,
        config: MetricsConfig = MetricsConfig(),  # noqa: B008
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self.config = config
        self.clock = clock
        self.runs = 0
        self.failures = 0
        self.last: RefreshResult | None = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, object]:
        """For ``/health``: a refresher that keeps failing leaves reports correct but slow."""
        return {
            "roll_up_runs": self.runs,
            "roll_up_failures": self.failures,
            "last_hours_stored": None if self.last is None else self.last.hours,
        }

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="report-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.last = await refresh(self.sessions, config=self.config, now=self.clock())
                self.runs += 1
                if self.last.hours:
                    log.info("report roll-up: %d hours stored, %d marks cleared", self.last.hours, self.last.cleared)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("report roll-up refresh failed; reports use the raw rows until the next turn")
            await asyncio.sleep(self.interval_s)
