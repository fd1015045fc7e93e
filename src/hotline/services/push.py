"""Live push to consoles: a hub of numbered events, a replay ring, bounded per-connection queues.

Three rules shape it:

- **Published after commit only.** Call events come from ``CallListener.commit_hooks`` (run after each committed
  batch); presence and registration events are queued with ``after_commit`` by the request that made them. A console
  never hears of a change the database refused.
- **A slow console never slows the listener.** ``publish`` is synchronous and never waits: each connection has its own
  bounded queue; when it is full that connection is dropped (the WebSocket closes with 1013 and a reason) and the
  console reconnects with ``since`` to catch up from the ring.
- **Fan-out behind a port.** :class:`PushBackend` numbers events and hands them to every process's hub. The in-memory
  backend here serves one process; a Redis stream or PostgreSQL ``LISTEN/NOTIFY`` backend can implement the same
  two methods (``bind``, ``publish``) when several API workers run.

Authorization lives in :class:`Viewer`: staff see everything; an operator sees events of the lines they serve and
events addressed to them by username (``call.offered`` goes only to the operator whose phone rings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from hotline.domain.calls import CallRecord

if TYPE_CHECKING:
    from hotline.services.call_listener import CallListener

log = logging.getLogger(__name__)

RING_SIZE = 2048
"""Events kept for ``?since=`` replay (about 10 minutes of a busy 50-operator floor); older -> ``resync.required``."""
QUEUE_SIZE = 512
"""Events one connection may have waiting to be sent; one more and that connection is dropped."""
CLOSE_TOO_SLOW = 1013
"""WebSocket close code ("try again later") for a console that fell ``QUEUE_SIZE`` events behind."""

EVENT_TYPES = (
    "call.offered",
    "call.answered",
    "call.ended",
    "queue.changed",
    "presence.changed",
    "registration.required",
    "resync.required",
)


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One numbered event. ``line_id`` / ``user`` say who may see it (see :meth:`Viewer.may_see`); ``at`` is the
    publishing time (epoch seconds) so a console (or the bench) can measure delivery latency."""

    id: int
    type: str
    data: dict[str, Any]
    at: float
    line_id: int | None = None
    user: str | None = None

    def wire(self) -> str:
        return json.dumps({"id": self.id, "type": self.type, "at": self.at, "data": self.data}, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is listening. The WebSocket re-reads it every few seconds (``api/routers/console/ws.py``), so a change of
    role or lines applies to the events sent from then on."""

    username: str
    is_staff: bool
    line_ids: frozenset[int] = frozenset()

    def may_see(self, event: PushEvent) -> bool:
        if self.is_staff:
            return True
        if event.user is not None:
            return event.user == self.username
        return event.line_id is not None and event.line_id in self.line_ids


class PushBackend(Protocol):
    """Numbers events and delivers them, in id order, to the hub of every process (one process here)."""

    def bind(self, deliver: Callable[[PushEvent], None]) -> None: ...

    def publish(self, type_: str, data: dict[str, Any], *, line_id: int | None, user: str | None) -> None: ...


class InMemoryBackend:
    """One process: a counter and a direct call. Ids restart at 1 with the process; a console whose ``since`` is
    beyond the last id (the server restarted) gets ``resync.required``."""

    def __init__(self) -> None:
        self._next = 1
        self._deliver: Callable[[PushEvent], None] | None = None

    def bind(self, deliver: Callable[[PushEvent], None]) -> None:
        self._deliver = deliver

    def publish(self, type_: str, data: dict[str, Any], *, line_id: int | None, user: str | None) -> None:
        event = PushEvent(self._next, type_, data, time.time(), line_id, user)
        self._next += 1
        if self._deliver is not None:
            self._deliver(event)


class Subscription:
    """One console connection's queue. ``next()`` returns events in order, or None once dropped or closed."""

    def __init__(self, viewer: Viewer, limit: int) -> None:
        self.viewer = viewer
        self.limit = limit
        self.dropped_reason: str | None = None
        self._items: deque[PushEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, event: PushEvent) -> bool:
        """Queue a live event; False (and the subscription is dropped) when the console is ``limit`` behind."""
        if self._closed:
            return False
        if len(self._items) >= self.limit:
            self.drop(f"console fell {self.limit} events behind; reconnect with since={self._last_queued_id()}")
            return False
        self._items.append(event)
        self._ready.set()
        return True

    def _last_queued_id(self) -> int:
        return self._items[0].id - 1 if self._items else 0

    def preload(self, events: Iterable[PushEvent]) -> None:
        """Replay on subscribe: not bounded by ``limit`` (the ring is)."""
        self._items.extend(events)
        if self._items:
            self._ready.set()

    def drop(self, reason: str) -> None:
        self.dropped_reason = reason
        self.close()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    async def next(self) -> PushEvent | None:
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


@dataclass
class HubStats:
    published: int = 0
    delivered: int = 0
    dropped_connections: int = 0


class PushHub:
    """Fans numbered events out to subscriptions and keeps the last ``ring_size`` for replay."""

    def __init__(
        self, backend: PushBackend | None = None, *, ring_size: int = RING_SIZE, queue_size: int = QUEUE_SIZE
    ) -> None:
        self.backend: PushBackend = backend or InMemoryBackend()
        self.queue_size = queue_size
        self.stats = HubStats()
        self._ring: deque[PushEvent] = deque(maxlen=ring_size)
        self._subs: set[Subscription] = set()
        self._last_id = 0
        self.backend.bind(self._deliver)

    @property
    def last_id(self) -> int:
        return self._last_id

    @property
    def connections(self) -> int:
        return len(self._subs)

    def publish(self, type_: str, data: dict[str, Any], *, line_id: int | None = None, user: str | None = None) -> None:
        """Never blocks and never raises to the publisher (the listener's commit hook)."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown push event type {type_!r}")
        self.backend.publish(type_, data, line_id=line_id, user=user)

    def _deliver(self, event: PushEvent) -> None:
        self._ring.append(event)
        self._last_id = event.id
        self.stats.published += 1
        for sub in list(self._subs):
            if not sub.viewer.may_see(event):
                continue
            if sub.offer(event):
                self.stats.delivered += 1
            else:
                self._subs.discard(sub)
                self.stats.dropped_connections += 1
                log.info("push: dropped a slow console of %s", sub.viewer.username)

    def subscribe(self, viewer: Viewer, since: int | None = None) -> Subscription:
        """Register a connection; with ``since``, first the missed events it may see, or ``resync.required`` when
        the ring no longer holds them (or ``since`` is from before a restart). Atomic: no await inside."""
        sub = Subscription(viewer, self.queue_size)
        if since is not None:
            sub.preload(self._replay(viewer, since))
        self._subs.add(sub)
        return sub

    def _replay(self, viewer: Viewer, since: int) -> list[PushEvent]:
        if since == self._last_id:
            return []
        oldest = self._ring[0].id if self._ring else self._last_id + 1
        if since > self._last_id or since < oldest - 1:
            reason = "since is newer than the last event (server restarted)" if since > self._last_id else (
                f"events after {since} are no longer buffered (the buffer holds {self._ring.maxlen})"
            )  # fmt: skip
            data = {"reason": reason, "latest_id": self._last_id}
            return [PushEvent(self._last_id, "resync.required", data, time.time(), None, viewer.username)]
        return [e for e in self._ring if e.id > since and viewer.may_see(e)]

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        sub.close()

    def close(self) -> None:
        for sub in list(self._subs):
            self.unsubscribe(sub)


# --- call events from the listener --------------------------------------------------------------------------------


def _call_data(record: CallRecord, call_id: int | None) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "pbx_id": record.pbx_id,
        "linkedid": record.linkedid,
        "line_id": record.line_id,
        "number": record.number,
        "caller_number": record.caller_number,
        "caller_name": record.caller_name,
        "arrived_at": record.arrived_at,
        "answered_at": record.answered_at,
        "operator": record.operator,
        "outcome": str(record.outcome),
    }


@dataclass
class _Seen:
    rang: int = 0
    answered: bool = False
    call_id: int | None = None


EndedHook = Callable[[CallRecord, "int | None"], None]


@dataclass
class CallFeed:
    """Turns one listener's committed records into ``call.*`` and ``queue.changed`` events.

    Runs inside the listener's commit hook: plain dict work, no I/O, no await. The call id comes from the listener's
    map of live calls (``CallListener._known``, read only) because commit hooks receive records without their ids.
    ``on_ended`` is told of every ended call (the console service starts wrap-up from it, in its own task).
    """

    hub: PushHub
    listener: CallListener
    on_ended: list[EndedHook] = field(default_factory=list)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _waiting: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def attach(self) -> None:
        self.listener.commit_hooks.append(self.on_commit)

    def _call_id(self, linkedid: str, seen: _Seen) -> int | None:
        known = self.listener._known.get(linkedid)  # read-only use of the listener's live-call map
        if known is not None:
            seen.call_id = known[0]
        return seen.call_id

    def on_commit(self, records: list[CallRecord]) -> None:
        hub = self.hub
        touched: set[int] = set()
        for record in records:
            seen = self._seen.setdefault(record.linkedid, _Seen())
            call_id = self._call_id(record.linkedid, seen)
            if record.line_id is not None:
                touched.add(record.line_id)
            if len(record.rang) > seen.rang:
                data = _call_data(record, call_id)
                for member in dict.fromkeys(record.rang[seen.rang :]):
                    hub.publish("call.offered", data, user=member)
                seen.rang = len(record.rang)
            if record.answered_at is not None and not seen.answered and record.live:
                seen.answered = True
                hub.publish("call.answered", _call_data(record, call_id), line_id=record.line_id)
            if not record.live:
                self._seen.pop(record.linkedid, None)
                hub.publish("call.ended", _call_data(record, call_id), line_id=record.line_id)
                for hook in self.on_ended:
                    try:
                        hook(record, call_id)
                    except Exception:
                        log.exception("a call-ended hook failed")
        if touched:
            self._publish_queues(touched)

    def _publish_queues(self, lines: set[int]) -> None:
        now = datetime.now(UTC)
        waiting: dict[int, list[CallRecord]] = {line: [] for line in lines}
        for record in self.listener.tracker.live_calls():
            if record.line_id in waiting and record.queued_at is not None and record.answered_at is None:
                waiting[record.line_id].append(record)
        for line_id, calls in waiting.items():
            calls.sort(key=lambda r: r.queued_at or now)
            key = tuple(r.linkedid for r in calls)
            if self._waiting.get(line_id, ()) == key:
                continue
            self._waiting[line_id] = key
            hub_data = {"line_id": line_id, "waiting": queue_entries(calls, now)}
            self.hub.publish("queue.changed", hub_data, line_id=line_id)


def queue_entries(calls: list[CallRecord], now: datetime) -> list[dict[str, Any]]:
    """Waiting callers of one line, in queue order (by when they joined), with the wait so far in seconds."""
    return [
        {
            "position": position,
            "linkedid": r.linkedid,
            "caller_number": r.caller_number,
            "caller_name": r.caller_name,
            "queued_at": r.queued_at,
            "waiting_s": round(max(0.0, (now - r.queued_at).total_seconds()), 1) if r.queued_at else None,
        }
        for position, r in enumerate(calls, start=1)
    ]
