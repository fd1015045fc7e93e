"""The AMI listener of one PBX: frames in, call records committed, then published.

The protocol side (:class:`~hotline.ami.connection.AmiConnection`) only appends frames to :class:`EventQueue`. One
consumer task takes them in batches, runs each through the pure tracker inside its own try/except (a frame that
breaks the tracker is counted, never fatal), merges the changed calls with what is stored, and commits once per
batch. When the queue passes its high-water mark the connection stops reading from the socket (Asterisk keeps the
rest); it resumes under the low-water mark. So a slow or absent database never costs an event, and memory stays
bounded by the high-water mark plus one TCP read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.connection import AmiConnection
from hotline.db.repositories import calls as calls_repo
from hotline.domain.call_merge import end_stale, merge_records
from hotline.domain.calls import CallChange, CallRecord, TimelineEntry
from hotline.domain.tracker import CallTracker
from hotline.settings import PbxSettings

log = logging.getLogger(__name__)

Item = tuple[str, dict[str, str], datetime]
CommitHook = Callable[[list[CallRecord]], Awaitable[None] | None]


class EventQueue:
    """FIFO between the protocol and the consumer; ``put`` never blocks and says when to stop reading."""

    def __init__(self, high_water: int = 20_000, low_water: int = 5_000) -> None:
        self.high_water = high_water
        self.low_water = low_water
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self.max_seen = 0

    def put(self, kind: str, frame: dict[str, str], received_at: datetime) -> bool:
        self._items.append((kind, frame, received_at))
        self._ready.set()
        size = len(self._items)
        if size > self.max_seen:
            self.max_seen = size
        return size < self.high_water

    def __len__(self) -> int:
        return len(self._items)

    async def get_batch(self, max_items: int) -> list[Item]:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items = self._items
        n = min(max_items, len(items))
        return [items.popleft() for _ in range(n)]


@dataclass
class ListenerStats:
    events_handled: int = 0
    events_failed: int = 0
    batches: int = 0
    commits: int = 0
    commit_failures: int = 0
    calls_written: int = 0
    resyncs: int = 0
    last_commit_at: datetime | None = None
    last_failure: str | None = None
    commit_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_handled": self.events_handled,
            "events_failed": self.events_failed,
            "batches": self.batches,
            "commits": self.commits,
            "commit_failures": self.commit_failures,
            "calls_written": self.calls_written,
            "resyncs": self.resyncs,
            "last_commit_at": self.last_commit_at.isoformat() if self.last_commit_at else None,
            "last_failure": self.last_failure,
        }


class CallListener:
    """Follows every call of one PBX and keeps its record in SQL; a call belongs to a line of *this* PBX or none.

    ``first_pbx`` (default: a listener on its own is a one-PBX hotline's) says whether this is the first configured
    PBX, which also owns the lines stored without a PBX (``Line.pbx_id`` NULL).
    """

    def __init__(
        self,
        pbx: PbxSettings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        first_pbx: bool = True,
        batch_max: int = 2_000,
        high_water: int = 20_000,
        low_water: int = 5_000,
        retry_cap_s: float = 5.0,
        connection_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.pbx = pbx
        #: This PBX is the first configured (``HOTLINE_AMI__*``): the lines stored without a PBX are its own too.
        self.first_pbx = first_pbx
        self.sessions = sessions
        self.batch_max = batch_max
        self.retry_cap_s = retry_cap_s
        self.queue = EventQueue(high_water=high_water, low_water=low_water)
        self.tracker = CallTracker(pbx.id, {})
        self.connection = AmiConnection(pbx, self.queue, on_login=self._on_login, **dict(connection_options or {}))
        self.stats = ListenerStats()
        self.queue_members: dict[str, dict[str, dict[str, str]]] = {}
        self.commit_hooks: list[CommitHook] = []
        self.db_failing = False
        self._known: dict[str, tuple[int, CallRecord]] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._snapshot: dict[str, dict[str, dict[str, str]]] = {}
        self._resync_completed_at: datetime | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reload_lines()
        self._task = asyncio.create_task(self._consume(), name=f"listener-{self.pbx.id}")
        self.connection.start()

    async def stop(self) -> None:
        await self.connection.stop()
        with contextlib.suppress(TimeoutError):
            await self.drain(timeout=5.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reload_lines(self) -> None:
        """Read this PBX's dedicated numbers again (after an admin edit)."""
        async with self.sessions() as session:
            self.tracker.set_lines(await calls_repo.line_numbers(session, self.pbx.id, first=self.first_pbx))

    async def drain(self, timeout: float) -> None:
        """Wait until every frame received so far is committed (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while len(self.queue) or not self._idle.is_set():  # noqa: ASYNC110 - two conditions; tests and shutdown
                await asyncio.sleep(0.005)

    def status(self) -> dict[str, Any]:
        return {
            **self.connection.status.as_dict(),
            **self.stats.as_dict(),
            "queued_frames": len(self.queue),
            "database_write_failing": self.db_failing,
            "live_calls": self.tracker.live_count,
        }

    # --- resync ---------------------------------------------------------------------------------------------------

    async def _on_login(self, connection: AmiConnection) -> None:
        """After every login: the channel snapshot (calls that began or ended while away), then queue members."""
        try:
            await connection.send({"Action": "CoreShowChannels"}, stream=True, timeout=30)
            await connection.send({"Action": "QueueStatus"}, stream=True, timeout=30)
        except Exception as exc:
            log.warning("AMI %s: resync failed (%s); it is retried at the next login", self.pbx.id, exc)

    # --- consumer -------------------------------------------------------------------------------------------------

    def _handle(self, kind: str, frame: dict[str, str], received_at: datetime) -> list[CallChange]:
        tracker = self.tracker
        if kind == "event":
            return tracker.handle(frame, received_at)
        if kind == "response-item":
            event = frame.get("Event")
            if event == "CoreShowChannel":
                return tracker.resync_channel(frame, received_at)
            if event == "CoreShowChannelsComplete":
                self._resync_completed_at = received_at
                return tracker.end_resync(received_at)
            if event in ("QueueMember", "QueueParams", "QueueStatusComplete"):
                self._on_queue_status(event, frame)
            return []
        if kind == "connected":
            self.stats.resyncs += 1
            tracker.begin_resync()
        return []

    def _on_queue_status(self, event: str, frame: dict[str, str]) -> None:
        action_id = frame.get("ActionID", "")
        if event == "QueueMember":
            queue = frame.get("Queue", "")
            self._snapshot.setdefault(action_id, {}).setdefault(queue, {})[frame.get("Location", "")] = frame
        elif event == "QueueParams":
            self._snapshot.setdefault(action_id, {}).setdefault(frame.get("Queue", ""), {})
        else:
            self.queue_members = self._snapshot.pop(action_id, {})

    async def _consume(self) -> None:
        while True:
            batch = await self.queue.get_batch(self.batch_max)
            self._idle.clear()
            try:
                await self._process(batch)
            finally:
                self._idle.set()
            if len(self.queue) < self.queue.low_water:
                self.connection.resume_reading()

    async def _process(self, batch: list[Item]) -> None:
        pending: dict[str, CallRecord] = {}
        timeline: dict[tuple[str, str], TimelineEntry] = {}
        stats = self.stats
        first_received = batch[0][2]
        for kind, frame, received_at in batch:
            try:
                changes = self._handle(kind, frame, received_at)
            except Exception as exc:
                stats.events_failed += 1
                if stats.events_failed <= 10 or stats.events_failed % 1000 == 0:
                    log.warning("AMI %s: frame skipped (%s: %s)", self.pbx.id, type(exc).__name__, exc)
                continue
            stats.events_handled += 1
            for change in changes:
                linkedid = change.record.linkedid
                pending[linkedid] = change.record
                for entry in change.timeline:
                    timeline[(linkedid, entry.key)] = entry
        stats.batches += 1
        if pending:
            await self._flush_until_done(pending, timeline)
            stats.commit_latency_ms.append((datetime.now(UTC) - first_received).total_seconds() * 1000)
        if self._resync_completed_at is not None:
            at, self._resync_completed_at = self._resync_completed_at, None
            await self._end_stale_in_db(at)

    async def _end_stale_in_db(self, at: datetime) -> None:
        """After a resync: calls stored as in progress that neither this listener follows nor the PBX shows (their
        listener died, or the PBX restarted) are ended, inferred — so no call stays "in progress" for ever."""
        live = {r.linkedid for r in self.tracker.live_calls()}
        try:
            async with self.sessions() as session:
                stored = await calls_repo.live_records(session, self.pbx.id)
                stale = [end_stale(rec, at) for lid, (_, rec) in stored.items() if lid not in live]
                if not stale:
                    return
                await calls_repo.upsert_records(session, stale)
                await session.commit()
        except Exception as exc:  # the next resync tries again
            log.warning("AMI %s: could not close stale calls (%s)", self.pbx.id, exc)
            return
        for record in stale:
            self._known.pop(record.linkedid, None)
        log.info("AMI %s: %d call(s) no longer on the PBX ended (inferred)", self.pbx.id, len(stale))
        await self._publish(stale)

    async def _flush_until_done(
        self, pending: dict[str, CallRecord], timeline: dict[tuple[str, str], TimelineEntry]
    ) -> None:
        """Commit the batch; while the database refuses, keep it and retry (reading is paused meanwhile)."""
        delay = 0.1
        while True:
            try:
                written = await self._flush(pending, timeline)
            except Exception as exc:
                self.stats.commit_failures += 1
                first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
                self.stats.last_failure = f"{type(exc).__name__}: {first_line}"
                if not self.db_failing:
                    log.error("AMI %s: cannot store calls (%s); holding them and retrying", self.pbx.id, exc)
                self.db_failing = True
                if len(self.queue) >= self.queue.high_water:
                    self.connection.pause_reading()
                await asyncio.sleep(delay)
                delay = min(self.retry_cap_s, delay * 2)
                continue
            if self.db_failing:
                log.info("AMI %s: database writes work again", self.pbx.id)
            self.db_failing = False
            await self._publish(written)
            return

    async def _flush(
        self, pending: dict[str, CallRecord], timeline: dict[tuple[str, str], TimelineEntry]
    ) -> list[CallRecord]:
        pbx_id = self.pbx.id
        async with self.sessions() as session:
            unknown = [lid for lid in pending if lid not in self._known]
            stored = await calls_repo.load_records(session, pbx_id, unknown)
            merged: list[CallRecord] = []
            for linkedid, record in pending.items():
                known = self._known.get(linkedid) or stored.get(linkedid)
                merged.append(merge_records(known[1] if known else None, record))
            ids = await calls_repo.upsert_records(session, merged)
            await calls_repo.add_timeline(
                session, [(ids[(pbx_id, linkedid)], entry) for (linkedid, _), entry in timeline.items()]
            )
            await session.commit()
        now = datetime.now(UTC)
        for record in merged:
            if record.live:
                self._known[record.linkedid] = (ids[(pbx_id, record.linkedid)], record)
            else:
                self._known.pop(record.linkedid, None)
        self.stats.commits += 1
        self.stats.calls_written += len(merged)
        self.stats.last_commit_at = now
        return merged

    async def _publish(self, records: list[CallRecord]) -> None:
        for hook in self.commit_hooks:
            try:
                result = hook(records)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a commit hook failed")
