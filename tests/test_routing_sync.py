"""Routing against the PBX simulator and a real database: a whole day with a fake clock, a reconnect, a member
held on a real call, and an action Asterisk refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.simulator import PbxSimulator
from hotline.db.models import Line, OperatorLine, PresenceLog, ShiftBreak, User, WeeklyHours
from hotline.db.models import Shift as ShiftRow
from hotline.domain.routing import desired_state
from hotline.services.call_listener import CallListener
from hotline.services.routing_sync import RoutingSync, sync_for_listener
from hotline.settings import PbxSettings

TZ = ZoneInfo("Europe/Bucharest")
H1, H2, H9 = "hotline-1", "hotline-2", "hotline-9"
ANA, BOB, CY = "Local/101@phones/n", "Local/102@phones/n", "Local/103@phones/n"
MUTATING = {"QueueAdd", "QueueRemove", "QueuePause", "QueuePenalty", "DBPut"}
FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "ping_interval": 0.5, "ping_timeout": 2.0}


def at(h: int, m: int = 0) -> datetime:
    """Monday 23 November 2026 in Bucharest (UTC+2), as UTC."""
    return datetime(2026, 11, 23, h, m, tzinfo=TZ).astimezone(UTC)


class FakeTime:
    """The injected clock and sleep: a sleep waits until the test fires it, which moves the clock to its end."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.requests: list[float] = []
        self._pending: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.requests.append(seconds)
        self._pending = asyncio.get_running_loop().create_future()
        self._changed.set()
        try:
            await self._pending
        finally:
            self._pending = None

    async def sleeping(self, after: int, timeout: float = 10.0) -> float:
        """Wait until the service has asked for its ``after + 1``-th sleep and is in it; return its length."""
        async with asyncio.timeout(timeout):
            while not (len(self.requests) > after and self._pending is not None and not self._pending.done()):
                self._changed.clear()
                await self._changed.wait()
        return self.requests[-1]

    def fire(self) -> None:
        """The sleep runs out: time moves to its end."""
        assert self._pending is not None
        self.now += timedelta(seconds=self.requests[-1])
        self._pending.set_result(None)


@dataclass
class Pbx:
    sim: PbxSimulator
    listener: CallListener
    sync: RoutingSync
    time: FakeTime
    users: dict[str, int]
    sessions: async_sessionmaker[AsyncSession]
    seen: int = 0  # mutating actions already checked

    def new_actions(self) -> list[tuple[str, ...]]:
        """The mutating AMI actions received since the last call, as compact tuples."""
        found = [a for a in self.sim.actions_received if a.get("Action") in MUTATING]
        fresh, self.seen = found[self.seen :], len(found)
        return [_compact(a) for a in fresh]

    async def settle(self) -> float:
        """Wait for the pass(es) in flight to finish and the service to sleep again; the sleep's length."""
        return await self.time.sleeping(len(self.time.requests))

    async def presence(self, name: str, state: str, when: datetime, reason: str | None = None) -> None:
        self.time.now = when
        async with self.sessions() as session:
            session.add(PresenceLog(user_id=self.users[name], state=state, reason=reason, at=when))
            await session.commit()
        self.sync.poke("presence")

    async def desired_members(self, queue: str) -> list[tuple[str, str, int, bool, str | None]]:
        from hotline.db.repositories import routing as repo

        async with self.sessions() as session:
            inputs = await repo.routing_inputs(session, self.time.now, self.time.now + timedelta(days=1))
        plan = desired_state(inputs.lines, inputs.operators, inputs.shifts, inputs.presence, self.time.now)
        line = next(p for p in plan.lines if p.queue == queue)
        return sorted((m.member_name, m.interface, m.penalty, m.paused, m.reason) for m in line.members)

    def members(self, queue: str) -> list[tuple[str, str, int, bool, str | None]]:
        return sorted(
            (str(m["name"]), str(m["interface"]), int(m["penalty"]), bool(m["paused"]), str(m["paused_reason"]) or None)  # type: ignore[call-overload]
            for m in self.sim.members(queue)
        )


def _compact(action: dict[str, str]) -> tuple[str, ...]:
    name = action["Action"]
    if name == "DBPut":
        return ("DBPut", f"{action['Family']}/{action['Key']}", action["Val"])
    if name == "QueueAdd":
        paused = action["Paused"] == "true"
        return (
            "QueueAdd",
            action["Queue"],
            action["MemberName"],
            action["Penalty"],
            action.get("Reason", "") if paused else "-",
        )
    if name == "QueuePause":
        return (
            "QueuePause",
            action["Queue"],
            action["Interface"],
            action.get("Reason", "") if action["Paused"] == "true" else "-",
        )
    return (name, action["Queue"], action["Interface"])


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    shifts: dict[str, list[tuple[datetime, datetime, list[tuple[str, datetime, datetime]]]]],
    extra_line: bool = False,
) -> dict[str, int]:
    """Line 1 open Mon–Fri 08:00–18:00 Bucharest, line 2 24/7; ana serves both, bob line 1, cy line 2."""
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support", timezone="Europe/Bucharest"))
        session.add(Line(id=2, number="5552000", name="Sales", timezone="Europe/Bucharest", always_open=True))
        if extra_line:
            session.add(Line(id=9, number="5559000", name="Not on the PBX", always_open=True))
        await session.flush()
        for weekday in range(5):
            session.add(WeeklyHours(line_id=1, weekday=weekday, start_time=time(8), end_time=time(18)))
        users: dict[str, int] = {}
        for name, device in (("ana", ANA), ("bob", BOB), ("cy", CY)):
            user = User(username=name, role="operator", device=device, password_hash="x")
            session.add(user)
            await session.flush()
            users[name] = user.id
        session.add(User(username="boss", role="supervisor", device="PJSIP/boss", password_hash="x"))
        links = [("ana", 1, 0), ("ana", 2, 5), ("bob", 1, 1), ("cy", 2, 0)] + ([("cy", 9, 0)] if extra_line else [])
        for name, line_id, priority in links:
            session.add(OperatorLine(user_id=users[name], line_id=line_id, priority=priority))
        for name, periods in shifts.items():
            for start, end, breaks in periods:
                row = ShiftRow(user_id=users[name], starts_at=start, ends_at=end)
                session.add(row)
                await session.flush()
                for kind, b_start, b_end in breaks:
                    session.add(ShiftBreak(shift_id=row.id, kind=kind, starts_at=b_start, ends_at=b_end))
        await session.commit()
    return users


DAY_SHIFTS = {
    "ana": [(at(8), at(16), [("break", at(10), at(10, 15)), ("lunch", at(12), at(12, 45))])],
    "bob": [(at(10), at(18), [("lunch", at(13), at(13, 30))])],
    "cy": [(at(6), at(14), [])],
}


@pytest.fixture
async def make_pbx(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    running: list[Pbx] = []

    async def make(start: datetime, shifts: Any = DAY_SHIFTS, *, extra_line: bool = False, speed: float = 1.0) -> Pbx:
        users = await seed(sessions, shifts, extra_line)
        sim = PbxSimulator(speed=speed, seed=3)
        port = await sim.start()
        settings = PbxSettings(id="pbx1", host="127.0.0.1", port=port, username="hotline", secret="hotline-secret")
        listener = CallListener(settings, sessions, connection_options=FAST)
        await listener.start()
        await listener.connection.wait_logged_in(5)
        fake = FakeTime(start)
        sync = sync_for_listener(
            listener, sessions, clock=fake.clock, sleep=fake.sleep, max_sleep_s=86400.0, reconnect_poll_s=0.02
        )
        pbx = Pbx(sim, listener, sync, fake, users, sessions)
        running.append(pbx)
        sync.start()
        await pbx.settle()  # the first pass, before the test changes anything
        return pbx

    yield make
    for pbx in running:
        await pbx.sync.stop()
        await pbx.listener.stop()
        await pbx.sim.stop()


async def test_a_simulated_day_sends_exactly_the_expected_actions(make_pbx: Any) -> None:
    pbx: Pbx = await make_pbx(at(5))
    steps: list[tuple[str, list[tuple[str, ...]]]] = []

    async def check(
        label: str, expected: list[tuple[str, ...]], next_wake: datetime | None = None, *, settle: bool = True
    ) -> None:
        slept = await pbx.settle() if settle else pbx.time.requests[-1]
        assert pbx.new_actions() == expected, label
        for queue in (H1, H2):
            assert pbx.members(queue) == await pbx.desired_members(queue), f"{label}: {queue}"
        if next_wake is not None:
            assert pbx.time.now + timedelta(seconds=slept) == next_wake, f"{label}: sleeps exactly to the boundary"
        steps.append((label, expected))

    async def boundary(label: str, expected: list[tuple[str, ...]], next_wake: datetime | None = None) -> None:
        pbx.time.fire()
        await check(label, expected, next_wake)

    # 05:00 nobody works: the flags are set (AstDB had none); line 1 closed first, line 2 opened last.
    await check("05:00", [("DBPut", "hotline/open/1", "0"), ("DBPut", "hotline/open/2", "1")], at(6), settle=False)
    assert pbx.sim.astdb == {"hotline/open/1": "0", "hotline/open/2": "1"}
    await pbx.presence("cy", "available", at(5, 50))
    await check("05:50 cy logs in before her shift", [], at(6))
    await boundary("06:00 cy's shift", [("QueueAdd", H2, "cy", "0", "-")], at(8))
    await pbx.presence("ana", "available", at(7, 55))
    await check("07:55 ana logs in", [], at(8))
    await boundary(
        "08:00 ana's shift, line 1 opens",
        [("QueueAdd", H1, "ana", "0", "-"), ("QueueAdd", H2, "ana", "5", "-"), ("DBPut", "hotline/open/1", "1")],
        at(10),
    )
    await boundary("10:00 ana's short break", [("QueuePause", H1, ANA, "break"), ("QueuePause", H2, ANA, "break")])
    await pbx.presence("bob", "available", at(10, 5))
    await check("10:05 bob logs in", [("QueueAdd", H1, "bob", "1", "-")], at(10, 15))
    await boundary("10:15 break over", [("QueuePause", H1, ANA, "-"), ("QueuePause", H2, ANA, "-")], at(12))
    await pbx.presence("bob", "paused", at(11), "manual")
    await check("11:00 bob pauses", [("QueuePause", H1, BOB, "manual")], at(12))
    await pbx.presence("bob", "available", at(11, 20))
    await check("11:20 bob is back", [("QueuePause", H1, BOB, "-")], at(12))
    await boundary(
        "12:00 ana's lunch", [("QueuePause", H1, ANA, "lunch"), ("QueuePause", H2, ANA, "lunch")], at(12, 45)
    )

    # 12:10 Asterisk's state drifts behind our back (someone removes bob at the CLI, the AstDB is wiped), then
    # the connection drops. After the reconnect one pass puts everything back, and nothing else is sent.
    pbx.time.now = at(12, 10)
    await pbx.listener.connection.send({"Action": "QueueRemove", "Queue": H1, "Interface": BOB})
    pbx.sim.astdb.clear()
    pbx.new_actions()
    reconnects = pbx.listener.connection.status.reconnects
    pbx.sim.drop_all()
    await check(
        "12:10 reconnect",
        [("QueueAdd", H1, "bob", "1", "-"), ("DBPut", "hotline/open/1", "1"), ("DBPut", "hotline/open/2", "1")],
        at(12, 45),
    )
    assert pbx.listener.connection.status.reconnects == reconnects + 1
    assert pbx.sync.last is not None and pbx.sync.last.trigger == "reconnect"

    await boundary("12:45 lunch over", [("QueuePause", H1, ANA, "-"), ("QueuePause", H2, ANA, "-")], at(13))
    await boundary("13:00 bob's lunch", [("QueuePause", H1, BOB, "lunch")], at(13, 30))
    await boundary("13:30 bob's lunch over", [("QueuePause", H1, BOB, "-")], at(14))
    await boundary("14:00 cy's shift ends", [("QueueRemove", H2, CY)], at(16))
    await pbx.presence("ana", "offline", at(15))
    await check("15:00 ana logs out early", [("QueueRemove", H1, ANA), ("QueueRemove", H2, ANA)], at(16))
    await boundary("16:00 ana's shift ends (already out)", [], at(18))
    await boundary(
        "18:00 line 1 closes, bob's shift ends", [("DBPut", "hotline/open/1", "0"), ("QueueRemove", H1, BOB)]
    )
    assert pbx.sim.members(H1) == [] and pbx.sim.members(H2) == []
    assert pbx.sim.astdb == {"hotline/open/1": "0", "hotline/open/2": "1"}
    # Tuesday 08:00 the line opens again: the next boundary.
    assert pbx.time.now + timedelta(seconds=pbx.time.requests[-1]) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)

    # Every action was logged in the ring, each one accepted, and the status shows them newest first.
    status = pbx.sync.status()
    sent = [a for a in status["recent_actions"]]
    assert len(sent) == sum(len(expected) for _, expected in steps)
    assert {a["result"] for a in sent} == {"ok"}
    assert sent[0]["action"] == {"Action": "QueueRemove", "Queue": H1, "Interface": BOB}
    assert status["consecutive_failures"] == 0


async def test_no_flapping_when_nothing_changes(make_pbx: Any) -> None:
    pbx: Pbx = await make_pbx(at(9))
    assert pbx.new_actions() == [("DBPut", "hotline/open/1", "1"), ("DBPut", "hotline/open/2", "1")]
    assert pbx.sync.last is not None and pbx.sync.last.trigger == "start"
    await pbx.presence("ana", "available", at(9))
    await pbx.settle()
    assert pbx.new_actions() == [("QueueAdd", H1, "ana", "0", "-"), ("QueueAdd", H2, "ana", "5", "-")]
    for minute in (1, 2, 3):
        await pbx.presence("ana", "available", at(9, minute))  # the same state again: nothing to do
        await pbx.settle()
        assert pbx.new_actions() == []


async def test_a_member_on_a_call_stays_until_the_call_ends(make_pbx: Any) -> None:
    shifts = {"cy": [(at(6), at(14), [])]}
    pbx: Pbx = await make_pbx(at(9), shifts, speed=20.0)
    assert pbx.new_actions() == [("DBPut", "hotline/open/1", "1"), ("DBPut", "hotline/open/2", "1")]
    await pbx.presence("cy", "available", at(9))
    await pbx.settle()
    assert pbx.new_actions() == [("QueueAdd", H2, "cy", "0", "-")]
    call = pbx.sim.place_call("5552000", "0712000001", "Ion Popescu", answer_after=0.5, talk=30.0)
    async with asyncio.timeout(10):
        while not any(r.operator == "cy" and r.answered_at for r in pbx.listener.tracker.live_calls()):
            await asyncio.sleep(0.02)

    await pbx.presence("cy", "offline", at(9, 5))  # logs out in the middle of the call
    await pbx.settle()
    assert pbx.new_actions() == []
    assert [m["name"] for m in pbx.sim.members(H2)] == ["cy"] and pbx.sim.members(H2)[0]["in_call"] is True
    assert not call.outcome.done()

    sleeps = len(pbx.time.requests)
    assert await asyncio.wait_for(call.outcome, 20) == "answered"
    async with asyncio.timeout(10):  # the listener commits the ended call; its hook pokes routing
        while pbx.sim.members(H2):
            await asyncio.sleep(0.02)
    await pbx.time.sleeping(sleeps)
    assert pbx.new_actions() == [("QueueRemove", H2, CY)]
    assert pbx.sync.last is not None and "call ended" in pbx.sync.last.trigger


async def test_a_refused_action_is_recorded_and_retried_with_backoff(
    make_pbx: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shifts = {"cy": [(at(6), at(14), [])]}
    pbx: Pbx = await make_pbx(at(9), shifts, extra_line=True)
    assert pbx.time.requests == [5 * 3600.0]  # the first pass converged: asleep until cy's shift ends at 14:00
    await pbx.presence("cy", "available", at(9))
    delays = [await pbx.settle()]
    for _ in range(4):
        pbx.time.fire()
        delays.append(await pbx.settle())
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]  # exponential, not a tight loop
    refused = [a for a in pbx.sync.actions if a.result == "refused"]
    assert [a.attempt for a in refused] == [1, 2, 3, 4, 5]
    assert {a.action["Queue"] for a in refused} == {H9}
    assert refused[0].message == "Unable to add interface to queue: No such queue"
    assert pbx.sync.status()["consecutive_failures"] == 5
    # The rest converged on the first pass and is not re-sent by the retries.
    assert [a for a in pbx.new_actions() if a[0] != "QueueAdd" or a[1] != H9] == [
        ("DBPut", "hotline/open/1", "1"),
        ("DBPut", "hotline/open/2", "1"),
        ("DBPut", "hotline/open/9", "1"),
        ("QueueAdd", H2, "cy", "0", "-"),
    ]

    async with sessions() as session:  # an admin takes cy off the line that has no queue, and pokes
        await session.execute(delete(OperatorLine).where(OperatorLine.line_id == 9))
        await session.commit()
    pbx.sync.poke("admin edit")
    slept = await pbx.settle()
    assert pbx.sync.failures == 0 and pbx.sync.last is not None and pbx.sync.last.ok
    assert pbx.time.now + timedelta(seconds=slept) == at(14)  # back to sleeping until the next boundary


async def test_bad_rows_are_skipped_and_reported_not_fatal(sessions: async_sessionmaker[AsyncSession]) -> None:
    from hotline.db.repositories import routing as repo

    users = await seed(sessions, DAY_SHIFTS)
    async with sessions() as session:
        session.add(Line(id=7, number="5557000", name="Bad zone", timezone="Mars/Olympus_Mons"))
        session.add(User(username="dup", role="operator", device=ANA, password_hash="x"))  # ana's device
        session.add(User(username="nodev", role="operator", device="op104", password_hash="x"))
        shift = ShiftRow(user_id=users["cy"], starts_at=at(15), ends_at=at(16))
        session.add(shift)
        await session.flush()
        session.add(ShiftBreak(shift_id=shift.id, kind="break", starts_at=at(16), ends_at=at(16, 10)))
        # Two rows at the same instant: the later one (higher id) is the current presence.
        session.add(PresenceLog(user_id=users["bob"], state="available", at=at(9)))
        session.add(PresenceLog(user_id=users["bob"], state="paused", reason="manual", at=at(9)))
        session.add(PresenceLog(user_id=users["ana"], state="available", at=at(8)))
        await session.commit()
        inputs = await repo.routing_inputs(session, at(9), at(20))
    assert [line.id for line in inputs.lines] == [1, 2]
    assert [op.username for op in inputs.operators] == ["ana", "bob", "cy"]
    assert any("line 7" in p and "Mars/Olympus_Mons" in p for p in inputs.problems)
    assert any(p.startswith("operator dup: device") for p in inputs.problems)
    assert any(p.startswith("operator nodev:") for p in inputs.problems)
    assert any("its breaks are ignored" in p for p in inputs.problems)
    late = next(s for s in inputs.shifts if s.start == at(15))
    assert late.breaks == ()
    assert (str(inputs.presence["bob"].state), str(inputs.presence["bob"].reason)) == ("paused", "manual")
    assert str(inputs.presence["ana"].state) == "available" and "cy" not in inputs.presence
