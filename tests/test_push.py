"""The push hub on its own: numbering, who sees what, replay from the ring, dropping a slow console, and the
call events derived from committed records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hotline.domain.calls import CallRecord, Outcome
from hotline.services.push import CallFeed, PushEvent, PushHub, Viewer

ANA = Viewer("ana", is_staff=False, line_ids=frozenset({1}))
MIHAI = Viewer("mihai", is_staff=False, line_ids=frozenset({2}))
BOSS = Viewer("boss", is_staff=True)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def drain(sub: Any) -> list[PushEvent]:
    out = []
    while len(sub):
        out.append(sub._items.popleft())
    return out


def test_ids_increase_and_each_viewer_sees_only_its_lines_and_its_own_events() -> None:
    hub = PushHub()
    subs = {v.username: hub.subscribe(v) for v in (ANA, MIHAI, BOSS)}
    hub.publish("queue.changed", {"line_id": 1}, line_id=1)
    hub.publish("queue.changed", {"line_id": 2}, line_id=2)
    hub.publish("call.offered", {"to": "ana"}, user="ana")
    hub.publish("presence.changed", {"who": "mihai"}, user="mihai")
    got = {name: [(e.id, e.type) for e in drain(sub)] for name, sub in subs.items()}
    assert got["boss"] == [(1, "queue.changed"), (2, "queue.changed"), (3, "call.offered"), (4, "presence.changed")]
    assert got["ana"] == [(1, "queue.changed"), (3, "call.offered")]
    assert got["mihai"] == [(2, "queue.changed"), (4, "presence.changed")]
    with pytest.raises(ValueError):
        hub.publish("call.unknown", {})


def test_since_replays_exactly_the_missed_visible_events_or_asks_for_a_resync() -> None:
    hub = PushHub(ring_size=5)
    for i in range(1, 5):
        hub.publish("queue.changed", {"n": i}, line_id=1 if i % 2 else 2)
    assert [e.id for e in drain(hub.subscribe(BOSS, since=2))] == [3, 4]
    assert [e.id for e in drain(hub.subscribe(ANA, since=0))] == [1, 3]
    assert drain(hub.subscribe(ANA, since=4)) == []
    for i in range(5, 10):
        hub.publish("queue.changed", {"n": i}, line_id=1)
    # The ring holds 5..9: since=4 is still complete, since=3 is not.
    assert [e.id for e in drain(hub.subscribe(BOSS, since=4))] == [5, 6, 7, 8, 9]
    stale = drain(hub.subscribe(ANA, since=3))
    assert [(e.type, e.data["latest_id"]) for e in stale] == [("resync.required", 9)]
    future = drain(hub.subscribe(BOSS, since=50))  # a server restart reset the ids
    assert [e.type for e in future] == ["resync.required"] and "restarted" in future[0].data["reason"]


async def test_a_full_queue_drops_that_console_only() -> None:
    hub = PushHub(queue_size=3)
    slow = hub.subscribe(BOSS)
    fast = hub.subscribe(BOSS)
    for i in range(5):
        hub.publish("queue.changed", {"n": i}, line_id=1)
        drain(fast)
    assert slow.dropped_reason is not None and "behind" in slow.dropped_reason
    assert await slow.next() is None and hub.connections == 1 and hub.stats.dropped_connections == 1
    hub.publish("queue.changed", {"n": 9}, line_id=1)
    assert [e.data["n"] for e in drain(fast)] == [9]


async def test_next_waits_for_an_event() -> None:
    hub = PushHub()
    sub = hub.subscribe(ANA)
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    hub.publish("queue.changed", {}, line_id=1)
    event = await asyncio.wait_for(waiter, 1)
    assert event is not None and event.id == 1 and '"type": "queue.changed"' in event.wire()


@dataclass
class FakeTracker:
    live: list[CallRecord] = field(default_factory=list)

    def live_calls(self) -> list[CallRecord]:
        return list(self.live)


@dataclass
class FakeListener:
    tracker: FakeTracker = field(default_factory=FakeTracker)
    commit_hooks: list[Any] = field(default_factory=list)
    _known: dict[str, tuple[int, CallRecord]] = field(default_factory=dict)


def test_call_feed_turns_committed_records_into_events() -> None:
    hub = PushHub()
    boss = hub.subscribe(BOSS)
    listener = FakeListener()
    ended: list[tuple[str, int | None]] = []
    feed = CallFeed(hub, listener, on_ended=[lambda r, i: ended.append((r.linkedid, i))])  # type: ignore[arg-type]
    feed.attach()
    assert listener.commit_hooks == [feed.on_commit]
    rec = CallRecord(pbx_id="pbx1", linkedid="L1", number="5551000", line_id=1, caller_number="071",
                     arrived_at=T0, queued_at=T0 + timedelta(seconds=1))  # fmt: skip
    listener._known["L1"] = (42, rec)
    listener.tracker.live = [rec]
    feed.on_commit([rec])
    rec.rang = ["ana", "mihai"]
    feed.on_commit([rec])
    feed.on_commit([rec])  # the same state again: nothing new
    rec.answered_at, rec.operator = T0 + timedelta(seconds=5), "ana"
    listener.tracker.live = [rec]
    feed.on_commit([rec])
    done = CallRecord(**{**{f: getattr(rec, f) for f in rec.__slots__}, "outcome": Outcome.ANSWERED})  # type: ignore[attr-defined]
    listener._known.clear()
    listener.tracker.live = []
    feed.on_commit([done])
    events = [(e.type, e.user, e.line_id, e.data.get("call_id")) for e in drain(boss)]
    assert events == [
        ("queue.changed", None, 1, None),
        ("call.offered", "ana", None, 42),
        ("call.offered", "mihai", None, 42),
        ("call.answered", None, 1, 42),
        ("queue.changed", None, 1, None),
        ("call.ended", None, 1, 42),
    ]
    assert ended == [("L1", 42)]
