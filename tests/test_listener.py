"""The AMI listener end to end: real TCP (the replay server speaks the recorded protocol, in chunks that split
frames and UTF-8 characters), the real panoramisk-based client, the tracker, and a real SQL database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capture_replay import as_row, capture_names, capture_parts, expected_rows, normalise, within_tolerance
from hotline.db.models import Call, CallEvent
from hotline.db.repositories.calls import row_to_record
from hotline.services.call_listener import CallListener
from hotline.settings import PbxSettings
from replay import ReplayServer

LINES = {"5551000": 1, "5552000": 2, "5553000": 3}
FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "ping_interval": 0.5, "ping_timeout": 2.0}


def pbx(port: int, **kwargs: Any) -> PbxSettings:
    return PbxSettings(id="pbx1", host="127.0.0.1", port=port, username="hotline", secret="hotline-secret", **kwargs)


async def stored_calls(sessions: async_sessionmaker[AsyncSession]) -> list[Call]:
    async with sessions() as session:
        return list(await session.scalars(select(Call).order_by(Call.linkedid)))


async def wait_for_records(
    sessions: async_sessionmaker[AsyncSession], listener: CallListener, expected: int, within: float = 20.0
) -> list[Call]:
    """Wait until ``expected`` calls are stored and none is in progress, then a little longer for extras."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await listener.drain(timeout=within)
        rows = await stored_calls(sessions)
        if len(rows) >= expected and all(r.outcome != "in_progress" for r in rows):
            await asyncio.sleep(0.2)
            await listener.drain(timeout=within)
            return await stored_calls(sessions)
        await asyncio.sleep(0.05)
    return await stored_calls(sessions)


@pytest.fixture
async def run_listener(sessions: async_sessionmaker[AsyncSession], lines: None) -> AsyncIterator[Any]:
    started: list[tuple[CallListener, ReplayServer]] = []

    async def run(server: ReplayServer, **pbx_kwargs: Any) -> CallListener:
        port = await server.start()
        listener = CallListener(pbx(port, **pbx_kwargs), sessions, connection_options=FAST)
        await listener.start()
        started.append((listener, server))
        return listener

    yield run
    for listener, server in started:
        await listener.stop()
        await server.stop()


def compare(rows: Sequence[Call], expected: list[dict[str, Any]]) -> None:
    actual = {r.linkedid: as_row(row_to_record(r)) for r in rows}
    wanted = {row["linkedid"]: normalise(row) for row in expected}
    assert sorted(actual) == sorted(wanted), "missing or extra calls"
    assert {k: within_tolerance(actual[k], wanted[k]) for k in wanted} == wanted


@pytest.mark.parametrize("name", [n for n in capture_names() if n != "login_failed"])
async def test_capture_replayed_over_tcp_is_stored_as_expected(
    name: str, run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    parts = [p.stem for p in capture_parts(name)]
    # actions_reference records answers to actions a listener never sends (QueueAdd, Redirect...): don't wait
    # for them; the answers to the actions it does send (CoreShowChannels, QueueStatus) are still claimed.
    wait = 0.2 if name == "actions_reference" else 5.0
    server = ReplayServer(parts, chunking=(1, 97), seed=len(name), action_wait=wait)
    listener = await run_listener(server)
    await asyncio.wait_for(server.finished.wait(), 30)
    expected = expected_rows(name)
    rows = await wait_for_records(sessions, listener, len(expected))
    compare(rows, expected)
    assert listener.stats.events_failed == 0
    if name == "reconnect_mid_call":
        assert listener.connection.status.reconnects == 1
        assert [r.seen_first_in_resync for r in rows] == [False, True]
    async with sessions() as session:  # every stored call has its timeline
        for row in rows:
            count = await session.scalar(select(func.count()).where(CallEvent.call_id == row.id))
            assert count and count > 0


async def test_refused_login_is_reported_and_nothing_is_stored(
    run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = ReplayServer("login_failed")
    listener = await run_listener(server)
    for _ in range(200):
        if listener.connection.status.state == "auth-failed":
            break
        await asyncio.sleep(0.02)
    status = listener.status()
    assert status["state"] == "auth-failed"
    assert "hotline-secret" not in repr(status)
    assert await stored_calls(sessions) == []


async def test_replaying_the_load_twice_stores_each_call_once(
    run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    expected = expected_rows("load_40_calls")
    first = await run_listener(ReplayServer("load_40_calls", chunking=(200, 4000), seed=1))
    rows_once = await wait_for_records(sessions, first, len(expected))
    compare(rows_once, expected)
    events_once = await _timeline_count(sessions)
    await first.stop()
    # A listener that starts afresh (its memory empty, like after a restart) meets the same stream again.
    second = await run_listener(ReplayServer("load_40_calls", chunking=(1, 300), seed=2))
    rows_twice = await wait_for_records(sessions, second, len(expected))
    compare(rows_twice, expected)
    assert [(r.id, r.outcome, r.talk_s) for r in rows_twice] == [(r.id, r.outcome, r.talk_s) for r in rows_once]
    assert await _timeline_count(sessions) == events_once


async def _timeline_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CallEvent)) or 0)


@pytest.mark.parametrize("seed", [11, 22, 33])
async def test_connection_dropped_at_a_random_frame_then_resumed(
    seed: int, run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    expected = expected_rows("load_40_calls")
    drop_at = random.Random(seed).randrange(100, 3400)
    server = ReplayServer("load_40_calls", drop_at_frame=drop_at, chunking=(1, 2000), seed=seed)
    listener = await run_listener(server)
    await asyncio.wait_for(server.finished.wait(), 30)
    rows = await wait_for_records(sessions, listener, len(expected))
    compare(rows, expected)
    assert listener.connection.status.reconnects == 1
    assert all(not r.end_inferred for r in rows)


GARBAGE = [
    bytes(random.Random(7).randrange(256) for _ in range(2048)) + b"\r\n\r\n",  # binary noise
    b"Channel: Local/1@x-1;1\r\nUniqueid: 1.1\r\n\r\n",  # a frame without Event
    b"X-Huge: " + b"a" * (1024 * 1024) + b"\r\n\r\n",  # a 1 MB header line
    b"Event: Newchannel\r\nChannel: Local/555\r\n\r\n",  # truncated
    b"Event: SomethingNew\r\nPrivilege: call,all\r\nFoo: bar\r\n\r\n",  # unknown event
    b"Event: Newchannel\r\nChannel: PJSIP/t-1\r\nExten: 5551000\r\nUniqueid: 9.9\r\n\r\n",  # no Linkedid
    b"Event: Hangup\r\nTimestamp: not-a-number\r\nLinkedid: 9.9\r\nUniqueid: 9.9\r\nCause: x\r\n\r\n",
]


class GarbageFirst(ReplayServer):
    """Writes hostile frames before the capture."""

    async def on_login(self, conn: Any) -> None:
        for blob in GARBAGE:
            await self.inject(blob, conn)
        await super().on_login(conn)


async def test_garbage_is_skipped_and_counted_and_later_calls_are_recorded(
    run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = GarbageFirst("answered_operator_hangs_up", chunking=(1, 4096), seed=3)
    listener = await run_listener(server)
    await asyncio.wait_for(server.finished.wait(), 30)
    expected = expected_rows("answered_operator_hangs_up")
    rows = await wait_for_records(sessions, listener, len(expected))
    compare(rows, expected)
    status = listener.status()
    assert status["frames_malformed"] >= 2
    assert status["frames_oversize"] >= 1
    assert status["state"] == "connected"
    assert rows[0].caller_name == "Ștefan Țăranu-Şerbănescu"


async def test_pbx_restart_ends_calls_that_are_gone_with_an_inferred_end(
    run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """part1 leaves a call talking when the connection drops; the next session is a PBX that restarted (its channel
    snapshot is empty): that call is ended with ``end_inferred``, and the new PBX's calls are recorded as usual."""
    server = ReplayServer(["reconnect_mid_call.part1", "closed_out_of_hours"], chunking=(1, 500), seed=9)
    listener = await run_listener(server)
    await asyncio.wait_for(server.finished.wait(), 30)
    closed = expected_rows("closed_out_of_hours")
    rows = await wait_for_records(sessions, listener, 1 + len(closed))
    by_id = {r.linkedid: r for r in rows}
    assert sorted(by_id) == sorted(["1795618699.408", *(row["linkedid"] for row in closed)])
    stale = by_id["1795618699.408"]
    assert stale.end_inferred is True and stale.ended_at is not None and stale.outcome != "in_progress"
    assert stale.operator == "ana" and stale.caller_number == "0712000030"  # facts seen before the drop are kept
    compare([r for r in rows if r.linkedid != "1795618699.408"], closed)
    assert listener.tracker.live_count == 0


async def test_calls_left_in_progress_by_a_dead_listener_are_ended_at_the_next_resync(
    run_listener: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A listener that died (SIGKILL) leaves rows in progress; the one that takes over sees in the PBX's snapshot
    that those calls are gone and ends them, inferred; calls it does see stay live."""
    from datetime import UTC, datetime, timedelta

    started = datetime.now(UTC) - timedelta(minutes=3)
    async with sessions() as session:
        session.add(
            Call(pbx_id="pbx1", linkedid="1700000000.1", line_id=1, number="5551000", route="queue",
                 arrived_at=started, answered_at=started + timedelta(seconds=5), operator="ana", outcome="in_progress")
        )  # fmt: skip
        await session.commit()
    server = ReplayServer("closed_out_of_hours", chunking=(1, 500), seed=4)
    listener = await run_listener(server)
    await asyncio.wait_for(server.finished.wait(), 30)
    rows = await wait_for_records(sessions, listener, 2)
    stale = next(r for r in rows if r.linkedid == "1700000000.1")
    assert stale.outcome == "answered" and stale.end_inferred and stale.ended_at is not None
    assert all(r.outcome != "in_progress" for r in rows)


async def test_a_queue_timeout_from_the_simulator_is_recorded_as_timeout_not_abandon(
    sessions: async_sessionmaker[AsyncSession], lines: None
) -> None:
    from hotline.ami.simulator import PbxSimulator

    sim = PbxSimulator(username="hotline", secret="hotline-secret", queue_timeout=1.0)  # nobody in the queue
    port = await sim.start()
    listener = CallListener(pbx(port), sessions, connection_options=FAST)
    try:
        await listener.start()
        await listener.connection.wait_logged_in(5)
        call = sim.place_call("5551000", "0712000099", "Timeout Test", answer_after=None, talk=1.0)
        assert await asyncio.wait_for(call.outcome, 10) == "timeout"
        rows = await wait_for_records(sessions, listener, 1)
        assert [(r.linkedid, r.outcome) for r in rows] == [(call.linkedid, "timeout")]
    finally:
        await listener.stop()
        await sim.stop()
