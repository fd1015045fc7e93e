"""Exactly one AMI listener per PBX, however many hotline processes share one PostgreSQL.

Each process that wants to listen to a PBX tries a PostgreSQL session-level advisory lock named after the PBX, on a
connection of its own (not pooled: closing it must really release the lock). The holder listens; the others stand
by and try again every few seconds. When the holder dies, PostgreSQL drops its connection and the lock with it, and
a standby takes over (then resyncs from the PBX's channel snapshot, so no call is lost or doubled). The holder also
checks its connection regularly: if it cannot reach PostgreSQL it stops listening at once, since another process
may already have taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)


def lock_key(pbx_id: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (the same in every process and release)."""
    digest = hashlib.blake2b(f"hotline-listener:{pbx_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ListenerLease:
    """Runs ``on_acquire`` while this process holds the PBX's lock, ``on_lose`` when it stops holding it."""

    def __init__(
        self,
        database_url: str,
        pbx_id: str,
        on_acquire: Callable[[], Awaitable[None]],
        on_lose: Callable[[], Awaitable[None]],
        *,
        poll_s: float = 2.0,
        check_s: float = 2.0,
    ) -> None:
        self.pbx_id = pbx_id
        self.key = lock_key(pbx_id)
        self._engine = create_async_engine(database_url, poolclass=NullPool)
        self._on_acquire = on_acquire
        self._on_lose = on_lose
        self.poll_s = poll_s
        self.check_s = check_s
        self.role = "standby"
        self.since = datetime.now(UTC)
        self.takeovers = 0
        self._task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        return {"role": self.role, "role_since": self.since.isoformat(), "leaderships": self.takeovers}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lease-{self.pbx_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._engine.dispose()

    def _set_role(self, role: str) -> None:
        if role != self.role:
            self.role = role
            self.since = datetime.now(UTC)

    async def _run(self) -> None:
        while True:
            try:
                async with self._engine.connect() as conn:
                    while not await self._try_lock(conn):
                        self._set_role("standby")
                        await asyncio.sleep(self.poll_s)
                    self._set_role("leader")
                    self.takeovers += 1
                    log.info("PBX %s: this process now listens (advisory lock %d held)", self.pbx_id, self.key)
                    try:
                        await self._on_acquire()
                        while True:
                            await asyncio.sleep(self.check_s)
                            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=self.check_s)
                            await conn.commit()
                    finally:
                        self._set_role("standby")
                        with contextlib.suppress(Exception):
                            await asyncio.shield(self._on_lose())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("PBX %s: lost or could not take the listener lock (%s); retrying", self.pbx_id, exc)
                await asyncio.sleep(self.poll_s)

    async def _try_lock(self, conn: Any) -> bool:
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}))
        await conn.commit()  # no transaction left open while holding or waiting
        return got
