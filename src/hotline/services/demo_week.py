"""A realistic first week in an empty database, for demos and the report page's tests.

Three lines advertised on radio, flyers and the website; four operators with shifts, lunches and short breaks
(some overrun) and their presence log; demand that peaks mid-morning and mid-afternoon, a service dip when
lunches overlap, calls in the evening and on Sunday while the lines are closed; registrations with topics; the
carriers' tariffs and one offer to compare.

The calls go through the same path as real traffic: a small queue simulation decides each call's fate, AMI
event dicts shaped like ``../shared/ami-captures`` are generated for it (Local channel pair, ``HotlineRoute``
user event, queue events, hangups, all with ``Timestamp``), fed to :class:`~hotline.domain.tracker.CallTracker`,
and the records and timelines it returns are stored by ``db/repositories/calls.py``. Only the callbacks
(outbound calls an operator made to an abandoned caller, which the tracker does not watch) are written directly.

Deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.auth.passwords import hash_password
from hotline.db.models import (
    Call,
    Line,
    OperatorLine,
    PresenceLog,
    Registration,
    Shift,
    ShiftBreak,
    Tariff,
    Topic,
    User,
    WeeklyHours,
)
from hotline.db.repositories import calls as calls_repo
from hotline.db.repositories import users as users_repo
from hotline.domain.calls import CallRecord, TimelineEntry
from hotline.domain.tracker import CallTracker
from hotline.errors import Conflict

__all__ = ["DemoSummary", "generate_demo_week"]

PBX_ID = "demo"
LINES = (
    # key, number, name, source, share of demand, max channels
    (1, "5551000", "Radio", "radio", 0.5, None),
    (2, "5552000", "Flyers", "flyers", 0.2, 3),
    (3, "5553000", "Website", "website", 0.3, None),
)
OPERATORS = (
    # username, full name, device extension, weekday shifts (start h, end h, breaks: (kind, offset min, length min))
    ("ana", "Ana Ionescu", "101", (9, 17, (("break", 90, 15), ("lunch", 180, 45)))),
    ("bob", "Bob Marin", "102", (9, 17, (("break", 100, 15), ("lunch", 195, 45)))),
    ("cris", "Cristina Pop", "103", (9, 13, (("break", 120, 10),))),
    ("dana", "Dana Stan", "104", (13, 17, (("break", 120, 15),))),
)
SATURDAY = ("bob", (10, 13, (("break", 90, 10),)))
HOURS = {d: (time(9), time(17)) for d in range(5)} | {5: (time(10), time(13))}
DEMAND = {  # calls per hour by local hour, weekdays; Saturday and Sunday scaled below
    7: 1, 8: 3, 9: 12, 10: 22, 11: 20, 12: 18, 13: 16, 14: 21, 15: 18, 16: 12, 17: 6, 18: 5, 19: 3, 20: 2, 21: 1,
}  # fmt: skip
TOPICS = (  # name, weight, mean talk seconds
    ("Admissions", 0.35, 300),
    ("Fees", 0.2, 150),
    ("Timetable", 0.2, 90),
    ("Documents", 0.15, 200),
    ("Other", 0.1, 120),
)
QUEUE_TIMEOUT_S = 120
RING_S = 3


class _HasSessions(Protocol):
    sessions: async_sessionmaker[AsyncSession]


@dataclass
class DemoSummary:
    start: datetime
    end: datetime
    calls: int
    outcomes: dict[str, int]
    lines: int
    operators: list[str]
    presence_entries: int
    registrations: int
    callbacks: int


@dataclass
class _Break:
    kind: str
    planned: datetime
    length: timedelta
    overrun: timedelta = timedelta(0)
    actual_start: datetime | None = None
    actual_end: datetime | None = None


@dataclass
class _Op:
    name: str
    ext: str
    free_at: datetime
    shift_start: datetime
    shift_end: datetime
    breaks: list[_Break]
    presence: list[tuple[datetime, str, str | None]] = field(default_factory=list)

    def ready_at(self, t: datetime) -> datetime | None:
        """When this operator could answer a caller waiting since ``t`` (breaks due by then taken first), or None
        when not before the end of the shift."""
        ready = max(t, self.free_at, self.shift_start)
        free = self.free_at
        for b in self.breaks:
            if b.actual_start is not None:
                continue
            if ready < b.planned:
                break
            free = max(b.planned, free) + b.length + b.overrun
            ready = max(ready, free)
        return ready if ready < self.shift_end else None

    def take_breaks_before(self, t: datetime) -> None:
        """Breaks planned by ``t`` start when the operator is next free and last their length plus any overrun."""
        for b in self.breaks:
            if b.actual_start is not None or b.planned > t:
                continue
            b.actual_start = max(b.planned, self.free_at)
            b.actual_end = b.actual_start + b.length + b.overrun
            self.presence += [(b.actual_start, "paused", b.kind), (b.actual_end, "available", None)]
            self.free_at = b.actual_end

    def close_day(self) -> None:
        self.take_breaks_before(self.shift_end)
        self.presence.append((max(self.shift_end, self.free_at), "offline", None))


class _Events:
    """AMI event dicts for one call, in the captures' shape (only the headers the tracker and timeline read, plus
    the usual identifying ones)."""

    def __init__(self, serial: int, number: str, line_id: int, caller: tuple[str, str], t0: datetime) -> None:
        base = int(t0.timestamp())
        self.linkedid = f"{base}.{serial * 3}"
        self.two_id = f"{base}.{serial * 3 + 1}"
        self.op_id = f"{base}.{serial * 3 + 2}"
        self.one = f"Local/{number}@hotline-inbound-{serial:08x};1"
        self.two = self.one[:-1] + "2"
        self.number, self.line_id, self.caller = number, line_id, caller
        self.events: list[dict[str, str]] = []

    def add(self, at: datetime, name: str, channel: str, uniqueid: str, **headers: str) -> None:
        event = {
            "Event": name,
            "Privilege": "call,all",
            "Timestamp": f"{at.timestamp():.6f}",
            "Channel": channel,
            "CallerIDNum": self.caller[0],
            "CallerIDName": self.caller[1],
            "Uniqueid": uniqueid,
            "Linkedid": self.linkedid,
        }
        event.update(headers)
        self.events.append(event)

    def start(self, t0: datetime, route: str) -> None:
        for chan, uid, state in ((self.one, self.linkedid, "0"), (self.two, self.two_id, "4")):
            self.add(t0, "Newchannel", chan, uid, ChannelState=state, Exten=self.number, Context="hotline-inbound",
                     CallerIDNum="<unknown>", CallerIDName="<unknown>")  # fmt: skip
        for chan, uid in ((self.one, self.linkedid), (self.two, self.two_id)):
            self.add(t0 + timedelta(milliseconds=1), "NewCallerid", chan, uid)
        self.add(t0 + timedelta(milliseconds=5), "UserEvent", self.two, self.two_id, Privilege="user,all",
                 UserEvent="HotlineRoute", Line=str(self.line_id), Route=route)  # fmt: skip

    def hangup(self, at: datetime, cause: str = "16", two_cause: str | None = None) -> None:
        self.add(at, "Hangup", self.one, self.linkedid, Cause=cause)
        self.add(at + timedelta(milliseconds=2), "Hangup", self.two, self.two_id, Cause=two_cause or cause)

    def join(self, at: datetime) -> None:
        self.add(at, "QueueCallerJoin", self.two, self.two_id, Privilege="agent,all",
                 Queue=f"hotline-{self.line_id}", Position="1", Count="1")  # fmt: skip

    def answered(self, join: datetime, answer: datetime, end: datetime, op: _Op, serial: int) -> None:
        queue = f"hotline-{self.line_id}"
        op_chan = f"Local/{op.ext}@phones-{serial:08x};1"
        hold = str(int((answer - join).total_seconds()))
        talk = str(int((end - answer).total_seconds()))
        ring = answer - timedelta(seconds=RING_S)
        self.add(ring, "Newchannel", op_chan, self.op_id, Exten="s", Context="phones")
        self.add(ring, "AgentCalled", self.two, self.two_id, Queue=queue, MemberName=op.name,
                 Interface=f"PJSIP/op{op.ext}", DestChannel=op_chan, DestUniqueid=self.op_id)  # fmt: skip
        self.add(answer, "AgentConnect", self.two, self.two_id, Queue=queue, MemberName=op.name, HoldTime=hold,
                 RingTime=str(RING_S), DestChannel=op_chan, DestUniqueid=self.op_id)  # fmt: skip
        self.add(answer, "QueueCallerLeave", self.two, self.two_id, Queue=queue, Position="1")
        self.add(answer, "BridgeEnter", self.two, self.two_id, BridgeUniqueid=f"bridge-{serial}")
        self.add(end, "AgentComplete", self.two, self.two_id, Queue=queue, MemberName=op.name, HoldTime=hold,
                 TalkTime=talk, Reason="caller", DestChannel=op_chan)  # fmt: skip
        self.add(end, "Hangup", self.one, self.linkedid, Cause="16")
        self.add(end + timedelta(milliseconds=1), "Hangup", op_chan, self.op_id, Cause="16")
        self.add(end + timedelta(milliseconds=2), "Hangup", self.two, self.two_id, Cause="16")

    def left_queue(self, join: datetime, left: datetime, *, timed_out: bool) -> None:
        queue = f"hotline-{self.line_id}"
        hold = str(int((left - join).total_seconds()))
        self.add(left, "QueueCallerAbandon", self.two, self.two_id, Queue=queue, HoldTime=hold, Position="1",
                 OriginalPosition="1")  # fmt: skip
        if timed_out:
            self.add(left, "VarSet", self.two, self.two_id, Variable="QUEUESTATUS", Value="TIMEOUT")
        self.hangup(left + timedelta(milliseconds=10))


def _hours_open(local: datetime) -> bool:
    window = HOURS.get(local.weekday())
    return window is not None and window[0] <= local.time() < window[1]


def _arrivals(rng: random.Random, start: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    """Poisson arrivals hour by hour over seven local days."""
    day0 = start.astimezone(tz).date()
    for d in range(7):
        day = day0 + timedelta(days=d)
        scale = {5: 0.5, 6: 0.25}.get(day.weekday(), 1.0)
        for hour, rate in DEMAND.items():
            begin = datetime.combine(day, time(hour), tz).astimezone(UTC)
            t = 0.0
            while True:
                t += rng.expovariate(rate * scale / 3600) if rate * scale > 0 else 3600
                if t >= 3600:
                    break
                yield begin + timedelta(seconds=t)


def _shifts(day: date, tz: ZoneInfo) -> list[tuple[str, str, datetime, datetime, list[tuple[str, datetime, int]]]]:
    out = []
    plans = [(name, ext, plan) for name, _, ext, plan in OPERATORS] if day.weekday() < 5 else []
    if day.weekday() == 5:
        ext = next(e for n, _, e, _ in OPERATORS if n == SATURDAY[0])
        plans = [(SATURDAY[0], ext, SATURDAY[1])]
    for name, ext, (h0, h1, breaks) in plans:
        s = datetime.combine(day, time(h0), tz).astimezone(UTC)
        e = datetime.combine(day, time(h1), tz).astimezone(UTC)
        out.append((name, ext, s, e, [(kind, s + timedelta(minutes=off), length) for kind, off, length in breaks]))
    return out


def _talk(rng: random.Random, mean: float) -> float:
    return float(max(15, int(rng.lognormvariate(math.log(mean) - 0.18, 0.6))))


async def _refuse_unless_empty(session: AsyncSession) -> None:
    calls = await session.scalar(select(func.count()).select_from(Call))
    lines = await session.scalar(select(func.count()).select_from(Line))
    if calls or lines:
        raise Conflict(
            "The demo week fills an empty database only; this one already has lines or calls.",
            details={"calls": calls, "lines": lines},
        )


async def generate_demo_week(
    runtime_or_sessions: _HasSessions | async_sessionmaker[AsyncSession],
    *,
    start: date,
    seed: int,
    timezone: str = "UTC",
) -> DemoSummary:
    """Fill an empty database with the week of local dates ``start`` … ``start + 6`` (refuses a database with
    lines or calls: ``Conflict``). Operators get random passwords nobody knows; an admin resets them to use them."""
    sessions = getattr(runtime_or_sessions, "sessions", runtime_or_sessions)
    tz = ZoneInfo(timezone)
    rng = random.Random(seed)
    begin = datetime.combine(start, time(0), tz).astimezone(UTC)
    end = datetime.combine(start + timedelta(days=7), time(0), tz).astimezone(UTC)
    async with sessions() as session:
        await _refuse_unless_empty(session)
        users, line_ids = await _setup(session, tz, start)
        records, timelines, fates, ops_by_day = _simulate(rng, begin, tz, line_ids)
        ids = await _store_calls(session, records, timelines)
        registrations, callbacks = await _registrations_and_callbacks(session, rng, records, ids, fates, users)
        presence = await _store_people(session, ops_by_day, users)
        await session.commit()
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[str(r.outcome)] = outcomes.get(str(r.outcome), 0) + 1
    return DemoSummary(
        start=begin,
        end=end,
        calls=len(records),
        outcomes=dict(sorted(outcomes.items())),
        lines=len(LINES),
        operators=[o[0] for o in OPERATORS],
        presence_entries=presence,
        registrations=registrations,
        callbacks=callbacks,
    )


async def _setup(session: AsyncSession, tz: ZoneInfo, start: date) -> tuple[dict[str, int], dict[int, int]]:
    line_ids = {}
    for key, number, name, source, _, max_channels in LINES:
        line = Line(number=number, name=name, source=source, timezone=str(tz), max_channels=max_channels,
                    queue_timeout_s=QUEUE_TIMEOUT_S)  # fmt: skip
        session.add(line)
        await session.flush()
        line_ids[key] = line.id
    for line_id in line_ids.values():
        for weekday, (open_at, close_at) in HOURS.items():
            session.add(WeeklyHours(line_id=line_id, weekday=weekday, start_time=open_at, end_time=close_at))
    users = {}
    # One random password nobody knows, hashed once (Argon2 is slow on purpose) and shared: an admin resets it.
    unknown = hash_password(secrets.token_urlsafe(24))
    for name, full_name, ext, _ in OPERATORS:
        if await users_repo.get_by_username(session, name) is not None:
            raise Conflict(f"a user named {name!r} already exists; the demo week needs an empty database")
        user = User(username=name, full_name=full_name, role="operator", device=f"PJSIP/op{ext}",
                    password_hash=unknown)  # fmt: skip
        session.add(user)
        await session.flush()
        users[name] = user.id
        for line_id in line_ids.values():
            session.add(OperatorLine(user_id=user.id, line_id=line_id, priority=0))
    valid = start - timedelta(days=30)
    session.add_all(
        [
            Tariff(line_id=line_ids[1], name="Carrier A", valid_from=valid, monthly_fee=Decimal("25"),
                   price_per_minute=Decimal("0.05"), billing_increment_s=60),
            Tariff(line_id=line_ids[2], name="Carrier A", valid_from=valid, monthly_fee=Decimal("25"),
                   price_per_minute=Decimal("0.05"), billing_increment_s=60),
            Tariff(line_id=line_ids[3], name="Carrier B", valid_from=valid, monthly_fee=Decimal("60"),
                   price_per_minute=Decimal("0.12"), billing_increment_s=60),
            Tariff(line_id=None, name="Offer C", valid_from=valid, monthly_fee=Decimal("10"),
                   price_per_minute=Decimal("0.03"), billing_increment_s=1, comparison=True),
        ]
    )  # fmt: skip
    for name, weight, _ in TOPICS:
        session.add(Topic(name=name, description=f"Questions about {name.lower()} (weight {weight})"))
    await session.flush()
    return users, line_ids


@dataclass
class _Fate:
    topic: str | None = None
    operator: str | None = None


def _simulate(
    rng: random.Random, begin: datetime, tz: ZoneInfo, line_ids: dict[int, int]
) -> tuple[list[CallRecord], dict[str, list[TimelineEntry]], dict[str, _Fate], list[list[_Op]]]:
    """Decide every call's fate with a small FIFO queue model, emit its AMI events, run them through the tracker."""
    weights = [share for *_, share, _ in LINES]
    ops_by_day: list[list[_Op]] = []
    overruns: dict[tuple[str, int], timedelta] = {("bob", 1): timedelta(minutes=20), ("bob", 3): timedelta(minutes=25),
                                                  ("ana", 2): timedelta(minutes=6)}  # fmt: skip
    day0 = begin.astimezone(tz).date()
    for d in range(7):
        ops_by_day.append(
            [_Op(name, ext, s, s, e, [_Break(k, bs, timedelta(minutes=length),
                                             overruns.get((name, d), timedelta(0)) if k == "lunch" else timedelta(0))
                                      for k, bs, length in breaks])
             for name, ext, s, e, breaks in _shifts(day0 + timedelta(days=d), tz)]
        )  # fmt: skip
        for op in ops_by_day[-1]:
            op.presence.append((op.shift_start, "available", None))
    active: dict[int, list[datetime]] = {}
    all_events: list[dict[str, str]] = []
    fates: dict[str, _Fate] = {}
    for serial, arrival in enumerate(_arrivals(rng, begin, tz), start=1):
        key, number, *_, max_channels = LINES[rng.choices(range(len(LINES)), weights)[0]]
        line_id = line_ids[key]
        caller = (f"07{rng.randrange(10**8):08d}", rng.choice(("Ion", "Maria", "Elena", "Andrei", "Vlad", "Ioana")))
        ev = _Events(serial, number, line_id, caller, arrival)
        fate = fates.setdefault(ev.linkedid, _Fate())
        local = arrival.astimezone(tz)
        busy_until = [t for t in active.get(line_id, []) if t > arrival]
        active[line_id] = busy_until
        if not _hours_open(local):
            ev.start(arrival, "closed")
            ev.hangup(arrival + timedelta(seconds=rng.uniform(3, 12)))
        elif max_channels is not None and len(busy_until) >= max_channels:
            ev.start(arrival, "busy")
            ev.hangup(arrival + timedelta(milliseconds=500), "0", "17")
        else:
            ev.start(arrival, "queue")
            join = arrival + timedelta(seconds=1)
            ev.join(join)
            day_ops = ops_by_day[(local.date() - day0).days]
            options = [(t, op) for op in day_ops if (t := op.ready_at(join)) is not None]
            patience = max(2.0, rng.expovariate(1 / 75))
            answer, op = min(options, key=lambda o: (o[0], o[1].name)) if options else (None, None)
            if (
                answer is not None
                and op is not None
                and (answer - join).total_seconds() <= min(patience, QUEUE_TIMEOUT_S)
            ):
                topic, _, mean = rng.choices(TOPICS, [w for _, w, _ in TOPICS])[0]
                talk = _talk(rng, mean)
                end = answer + timedelta(seconds=talk)
                wrap = timedelta(seconds=rng.randint(10, 45))
                op.take_breaks_before(answer)
                op.presence += [(answer, "on_call", None), (end, "wrapup", None), (end + wrap, "available", None)]
                op.free_at = end + wrap
                ev.answered(join, answer, end, op, serial)
                fate.topic, fate.operator = topic, op.name
                busy_until.append(end)
            elif patience < QUEUE_TIMEOUT_S:
                ev.left_queue(join, join + timedelta(seconds=patience), timed_out=False)
                busy_until.append(join + timedelta(seconds=patience))
            else:
                ev.left_queue(join, join + timedelta(seconds=QUEUE_TIMEOUT_S), timed_out=True)
                busy_until.append(join + timedelta(seconds=QUEUE_TIMEOUT_S))
        all_events.extend(ev.events)
    for ops in ops_by_day:
        for op in ops:
            op.close_day()
    return (*_track(all_events, {number: line_ids[key] for key, number, *_ in LINES}), fates, ops_by_day)


def _track(
    events: list[dict[str, str]], lines: dict[str, int]
) -> tuple[list[CallRecord], dict[str, list[TimelineEntry]]]:
    tracker = CallTracker(PBX_ID, lines)
    events.sort(key=lambda e: float(e["Timestamp"]))
    records: dict[str, CallRecord] = {}
    timelines: dict[str, list[TimelineEntry]] = {}
    for event in events:
        at = datetime.fromtimestamp(float(event["Timestamp"]), UTC)
        for change in tracker.handle(event, at):
            records[change.record.linkedid] = change.record
            timelines.setdefault(change.record.linkedid, []).extend(change.timeline)
    return [r for r in records.values() if not r.live], timelines


async def _store_calls(
    session: AsyncSession, records: list[CallRecord], timelines: dict[str, list[TimelineEntry]]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i in range(0, len(records), 500):
        batch = records[i : i + 500]
        stored = await calls_repo.upsert_records(session, batch)
        ids.update({linkedid: call_id for (_, linkedid), call_id in stored.items()})
        entries = [(ids[r.linkedid], e) for r in batch for e in timelines.get(r.linkedid, ())]
        for j in range(0, len(entries), 1000):
            await calls_repo.add_timeline(session, entries[j : j + 1000])
    return ids


async def _registrations_and_callbacks(
    session: AsyncSession,
    rng: random.Random,
    records: list[CallRecord],
    ids: dict[str, int],
    fates: dict[str, _Fate],
    users: dict[str, int],
) -> tuple[int, int]:
    topics = {t.name: t.id for t in await session.scalars(select(Topic))}
    registrations = callbacks = 0
    for r in records:
        fate = fates.get(r.linkedid)
        if str(r.outcome) == "answered" and fate is not None and fate.topic and rng.random() < 0.92:
            resolution = rng.choices(("resolved", "escalated", "callback"), (0.8, 0.12, 0.08))[0]
            session.add(Registration(call_id=ids[r.linkedid], user_id=users.get(fate.operator or ""),
                                     topic_id=topics[fate.topic], summary=f"{fate.topic} question",
                                     resolution=resolution))  # fmt: skip
            registrations += 1
        elif str(r.outcome) == "abandoned" and (r.wait_s or 0) >= 20 and rng.random() < 0.3 and r.ended_at:
            called = r.ended_at + timedelta(minutes=rng.randint(5, 40))
            row = await session.get(Call, ids[r.linkedid])
            if row is not None:
                row.called_back_at = called
            session.add(
                Call(pbx_id=PBX_ID, linkedid=f"callback-{r.linkedid}", line_id=r.line_id, number=r.caller_number or "",
                     caller_number=r.caller_number, arrived_at=called, answered_at=called + timedelta(seconds=8),
                     ended_at=called + timedelta(seconds=128), wait_s=8.0, talk_s=120.0, operator="ana",
                     outcome="answered", route="callback", callback_of_id=ids[r.linkedid])
            )  # fmt: skip
            callbacks += 1
    await session.flush()
    return registrations, callbacks


async def _store_people(session: AsyncSession, ops_by_day: list[list[_Op]], users: dict[str, int]) -> int:
    count = 0
    for ops in ops_by_day:
        for op in ops:
            shift = Shift(user_id=users[op.name], starts_at=op.shift_start, ends_at=op.shift_end)
            session.add(shift)
            await session.flush()
            for b in op.breaks:
                session.add(ShiftBreak(shift_id=shift.id, kind=b.kind, starts_at=b.planned,
                                       ends_at=b.planned + b.length, actual_start=b.actual_start,
                                       actual_end=b.actual_end))  # fmt: skip
            for at, state, reason in sorted(op.presence, key=lambda p: p[0]):
                session.add(PresenceLog(user_id=users[op.name], state=state, reason=reason, at=at))
                count += 1
    await session.flush()
    return count
