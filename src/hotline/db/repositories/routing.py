"""SQL for routing: lines with their hours, operators with their lines, shifts with breaks, presence.

Rows become the pure domain's values here (``Schedule``, ``Operator``, ``Shift``, ``Presence``) so the routing
service never touches the ORM. A row the domain refuses (a reversed range, a break outside its shift, a device that
is not ``TECH/resource``) does not stop routing for everyone: it is skipped and reported as a problem string.
The caller owns the transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import Campaign as CampaignRow
from hotline.db.models import HoursException as ExceptionRow
from hotline.db.models import Line as LineRow
from hotline.db.models import OperatorLine, PresenceLog, ShiftBreak, User, WeeklyHours
from hotline.db.models import Shift as ShiftRow
from hotline.db.repositories.pbx import on_pbx
from hotline.domain.hours import (
    Campaign,
    HoursException,
    Schedule,
    ScheduleError,
    TimeRange,
    WeeklyRange,
    parse_wall_time,
    zone,
)
from hotline.domain.routing import Line, Operator, RoutingError
from hotline.domain.shifts import Break, PauseReason, Presence, PresenceState, Shift, ShiftError

OPERATOR_ROLE = "operator"


@dataclass
class RoutingInputs:
    """Everything ``desired_state`` needs from the database at one instant, plus what had to be skipped."""

    lines: list[Line] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    shifts: list[Shift] = field(default_factory=list)
    presence: dict[str, Presence] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# --- lines and hours ----------------------------------------------------------------------------------------


def build_schedule(
    line: LineRow,
    weekly: Iterable[WeeklyHours],
    campaigns: Iterable[CampaignRow],
    exceptions: Iterable[ExceptionRow],
    *,
    strict: bool = False,
) -> Schedule:
    """A line's rows as a domain ``Schedule``; raises ``ScheduleError`` (an ``InvalidInput``) when they are bad.

    ``weekly`` holds the line's own ranges and its campaigns' (told apart by ``campaign_id``). ``strict`` (the admin
    API validating a change) hands every row to the domain, which refuses contradictions such as weekly ranges on a
    24/7 line or ranges on a closed exception; routing (not strict) reads them as the flags say — a 24/7 line is
    open whatever ranges are left, a closed exception is closed — so a line keeps being served."""
    weekly = list(weekly)
    own = tuple(WeeklyRange(w.weekday, w.start_time, w.end_time) for w in weekly if w.campaign_id is None)
    dated = []
    for c in campaigns:
        ranges = tuple(WeeklyRange(w.weekday, w.start_time, w.end_time) for w in weekly if w.campaign_id == c.id)
        dated.append(Campaign(name=c.name, first_day=c.start_date, last_day=c.end_date, ranges=ranges))
    special = []
    for e in exceptions:
        if strict and e.closed and e.ranges:
            raise ScheduleError(f"exception {e.id} is closed and has opening ranges: choose one")
        try:
            ranges = (
                ()
                if e.closed and not strict
                else tuple(TimeRange(parse_wall_time(r["start"]), parse_wall_time(r["end"])) for r in e.ranges or [])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"exception {e.id}: ranges must be [{{start: 'HH:MM', end: 'HH:MM'}}]") from exc
        special.append(
            HoursException(
                first_day=e.start_date,
                last_day=e.end_date,
                reason=e.reason.strip() or ("closed" if e.closed else "special hours"),
                ranges=ranges,
            )
        )
    return Schedule(
        tz=zone(line.timezone),
        weekly=() if line.always_open and not strict else own,
        campaigns=tuple(dated),
        exceptions=tuple(special),
        always_open=line.always_open,
    )


async def get_line(session: AsyncSession, line_id: int) -> LineRow | None:
    return await session.get(LineRow, line_id)


async def schedules(
    session: AsyncSession,
    line_ids: Sequence[int] | None = None,
    *,
    include_inactive: bool = False,
    pbx_id: str | None = None,
    first_pbx: bool = True,
) -> dict[int, Schedule | str]:
    """Each active line's ``Schedule`` by id, or the reason it could not be built (a string).

    ``pbx_id``: only that PBX's lines (``first_pbx``: it is the first PBX, which owns the lines stored without one).
    """
    stmt = select(LineRow).order_by(LineRow.id)
    if not include_inactive:
        stmt = stmt.where(LineRow.active.is_(True))
    if line_ids is not None:
        stmt = stmt.where(LineRow.id.in_(line_ids))
    if pbx_id is not None:
        stmt = stmt.where(on_pbx(LineRow.pbx_id, pbx_id, first=first_pbx))
    lines = list(await session.scalars(stmt))
    ids = [line.id for line in lines]
    if not ids:
        return {}
    weekly = list(await session.scalars(select(WeeklyHours).where(WeeklyHours.line_id.in_(ids))))
    campaigns = list(await session.scalars(select(CampaignRow).where(CampaignRow.line_id.in_(ids))))
    exceptions = list(await session.scalars(select(ExceptionRow).where(ExceptionRow.line_id.in_(ids))))
    result: dict[int, Schedule | str] = {}
    for line in lines:
        try:
            result[line.id] = build_schedule(
                line,
                [w for w in weekly if w.line_id == line.id],
                [c for c in campaigns if c.line_id == line.id],
                [e for e in exceptions if e.line_id == line.id],
            )
        except ScheduleError as exc:
            result[line.id] = exc.message
    return result


# --- operators ----------------------------------------------------------------------------------------------


async def operators(session: AsyncSession) -> tuple[list[Operator], list[str]]:
    """Active operators with a device, each with their penalty (= priority) on every line they serve.

    Two operators on one device cannot both be queue members (Asterisk keys members by interface): the first by
    username keeps it, the other is reported.
    """
    users = list(
        await session.scalars(
            select(User)
            .where(User.role == OPERATOR_ROLE, User.active.is_(True), User.device.is_not(None))
            .order_by(User.username)
        )
    )
    links = await session.execute(
        select(OperatorLine.user_id, OperatorLine.line_id, OperatorLine.priority).where(
            OperatorLine.user_id.in_([u.id for u in users])
        )
    )
    penalties: dict[int, dict[int, int]] = {}
    for user_id, line_id, priority in links:
        penalties.setdefault(user_id, {})[line_id] = priority
    found: list[Operator] = []
    problems: list[str] = []
    devices: dict[str, str] = {}
    for user in users:
        device = str(user.device)
        if device in devices:
            problems.append(f"operator {user.username}: device {device} is already {devices[device]}'s; skipped")
            continue
        try:
            found.append(Operator(user.username, device, penalties.get(user.id, {})))
        except RoutingError as exc:
            problems.append(f"operator {user.username}: {exc.message}; skipped")
            continue
        devices[device] = user.username
    return found, problems


async def operator_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


# --- shifts -------------------------------------------------------------------------------------------------


async def shift_rows(
    session: AsyncSession, start: datetime, end: datetime, user_id: int | None = None
) -> list[tuple[ShiftRow, list[ShiftBreak], str]]:
    """Shifts overlapping ``[start, end)``, by start, each with its breaks (by start) and its operator's username."""
    stmt = (
        select(ShiftRow, User.username)
        .join(User, User.id == ShiftRow.user_id)
        .where(ShiftRow.ends_at > start, ShiftRow.starts_at < end)
        .order_by(ShiftRow.starts_at, ShiftRow.id)
    )
    if user_id is not None:
        stmt = stmt.where(ShiftRow.user_id == user_id)
    rows = (await session.execute(stmt)).all()
    ids = [shift.id for shift, _ in rows]
    breaks: dict[int, list[ShiftBreak]] = {}
    if ids:
        found = await session.scalars(
            select(ShiftBreak).where(ShiftBreak.shift_id.in_(ids)).order_by(ShiftBreak.starts_at, ShiftBreak.id)
        )
        for b in found:
            breaks.setdefault(b.shift_id, []).append(b)
    return [(shift, breaks.get(shift.id, []), username) for shift, username in rows]


def to_shift(row: ShiftRow, breaks: Iterable[ShiftBreak], username: str) -> Shift:
    """A domain ``Shift`` (raises ``ShiftError`` if a break lies outside it)."""
    return Shift(username, row.starts_at, row.ends_at, tuple(Break(b.kind, b.starts_at, b.ends_at) for b in breaks))


async def shifts(session: AsyncSession, start: datetime, end: datetime) -> tuple[list[Shift], list[str]]:
    """Domain shifts overlapping ``[start, end)``; a shift whose breaks are bad is kept without its breaks."""
    found: list[Shift] = []
    problems: list[str] = []
    for row, breaks, username in await shift_rows(session, start, end):
        try:
            found.append(to_shift(row, breaks, username))
        except ShiftError as exc:
            problems.append(f"shift {row.id} of {username}: {exc.message}; its breaks are ignored")
            found.append(to_shift(row, [], username))
    return found, problems


# --- presence -----------------------------------------------------------------------------------------------


def to_presence(row: PresenceLog) -> Presence:
    """A stored presence as the domain's; a pause with a missing or unknown reason counts as ``manual``."""
    try:
        return Presence(PresenceState(row.state), row.at, row.reason)
    except (ShiftError, ValueError):
        state = PresenceState(row.state)
        return Presence(state, row.at, PauseReason.MANUAL if state is PresenceState.PAUSED else None)


async def latest_presence(session: AsyncSession, user_ids: Sequence[int] | None = None) -> dict[int, PresenceLog]:
    """Each user's latest presence row (by time, then id), by user id; users who never logged in are absent."""
    latest = select(PresenceLog.user_id, func.max(PresenceLog.at).label("at")).group_by(PresenceLog.user_id)
    if user_ids is not None:
        latest = latest.where(PresenceLog.user_id.in_(user_ids))
    sub = latest.subquery()
    rows = await session.scalars(
        select(PresenceLog)
        .join(sub, (sub.c.user_id == PresenceLog.user_id) & (sub.c.at == PresenceLog.at))
        .order_by(PresenceLog.id)
    )
    return {row.user_id: row for row in rows}  # the highest id wins a tie on time


async def add_presence(session: AsyncSession, user_id: int, presence: Presence) -> PresenceLog:
    row = PresenceLog(
        user_id=user_id,
        state=str(presence.state),
        reason=str(presence.reason) if presence.reason is not None else None,
        at=presence.since,
    )
    session.add(row)
    await session.flush()
    return row


async def presence_by_username(session: AsyncSession) -> dict[str, Presence]:
    rows = await latest_presence(session)
    if not rows:
        return {}
    found = await session.execute(select(User.id, User.username).where(User.id.in_(list(rows))))
    names = {user_id: username for user_id, username in found}
    return {names[user_id]: to_presence(row) for user_id, row in rows.items() if user_id in names}


# --- everything at once -------------------------------------------------------------------------------------


async def routing_inputs(
    session: AsyncSession,
    at: datetime,
    lookahead_end: datetime,
    *,
    pbx_id: str | None = None,
    first_pbx: bool = True,
) -> RoutingInputs:
    """What routing needs at ``at``; shifts are those overlapping ``[at, lookahead_end)`` so the next boundary
    within the look-ahead is known.

    ``pbx_id``: the routing of that PBX, so only its lines (their queues and open flags are all it manages; an
    operator's priorities on other PBXs' lines are then simply not asked for). None: every line.
    """
    inputs = RoutingInputs()
    for line_id, schedule in (await schedules(session, pbx_id=pbx_id, first_pbx=first_pbx)).items():
        if isinstance(schedule, str):
            inputs.problems.append(f"line {line_id}: {schedule}; its queue and open flag are left alone")
        else:
            inputs.lines.append(Line(line_id, schedule))
    inputs.operators, problems = await operators(session)
    inputs.problems += problems
    inputs.shifts, problems = await shifts(session, at, lookahead_end)
    inputs.problems += problems
    inputs.presence = await presence_by_username(session)
    return inputs
