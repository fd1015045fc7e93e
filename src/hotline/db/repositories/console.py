"""SQL for the operator console: shifts, caller history, registrations, presence rows, knowledge search, the
abandoned-call worklist and the export. Repositories flush; the request edge commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from hotline.db.models import (
    Call,
    CallEvent,
    Contact,
    ContactTopic,
    Line,
    PreparedAnswer,
    PresenceLog,
    Registration,
    Script,
    Shift,
    ShiftBreak,
    Topic,
    User,
)
from hotline.db.repositories.calls import CallFilter, filter_conditions

WORKLIST_OUTCOMES = ("abandoned", "closed")
"""Callers the hotline owes a call: they hung up waiting, or called while the line was closed."""


def _contains(column: object, text: str) -> object:
    """Case-insensitive substring match; ``%`` and ``_`` in the text are literal. SQLite's lower() folds ASCII
    only, so on SQLite a search for "Ș" matches "Ș", not "ș" (PostgreSQL folds every letter)."""
    return func.lower(column).contains(text.lower(), autoescape=True)  # type: ignore[attr-defined]


# --- shifts ---------------------------------------------------------------------------------------------------------


async def shifts_between(
    session: AsyncSession, user_id: int, start: datetime, end: datetime
) -> list[tuple[Shift, list[ShiftBreak]]]:
    """The user's shifts overlapping [start, end), each with its breaks in time order."""
    shifts = list(
        await session.scalars(
            select(Shift)
            .where(Shift.user_id == user_id, Shift.starts_at < end, Shift.ends_at > start)
            .order_by(Shift.starts_at)
        )
    )
    if not shifts:
        return []
    breaks = await session.scalars(
        select(ShiftBreak).where(ShiftBreak.shift_id.in_([s.id for s in shifts])).order_by(ShiftBreak.starts_at)
    )
    by_shift: dict[int, list[ShiftBreak]] = {s.id: [] for s in shifts}
    for b in breaks:
        by_shift[b.shift_id].append(b)
    return [(s, by_shift[s.id]) for s in shifts]


# --- calls, history, registrations -------------------------------------------------------------------------------


async def call_by_key(session: AsyncSession, pbx_id: str, linkedid: str) -> Call | None:
    return await session.scalar(select(Call).where(Call.pbx_id == pbx_id, Call.linkedid == linkedid))


async def last_answered_by(session: AsyncSession, username: str, since: datetime) -> Call | None:
    """The operator's most recent answered call since ``since`` (their wrap-up candidate)."""
    return await session.scalar(
        select(Call)
        .where(Call.operator == username, Call.answered_at.is_not(None), Call.arrived_at >= since)
        .order_by(Call.answered_at.desc(), Call.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class HistoryRow:
    call: Call
    registration: Registration | None
    topic: str | None


async def caller_history(
    session: AsyncSession, caller_number: str, *, exclude_call_id: int | None, limit: int = 20
) -> list[HistoryRow]:
    """Earlier calls from the same number, newest first, with what was registered about them."""
    stmt = (
        select(Call, Registration, Topic.name)
        .outerjoin(Registration, Registration.call_id == Call.id)
        .outerjoin(Topic, Topic.id == Registration.topic_id)
        .where(Call.caller_number == caller_number)
        .order_by(Call.arrived_at.desc(), Call.id.desc())
        .limit(limit)
    )
    if exclude_call_id is not None:
        stmt = stmt.where(Call.id != exclude_call_id)
    return [HistoryRow(c, r, t) for c, r, t in (await session.execute(stmt)).all()]


async def registered_call_ids(session: AsyncSession, call_ids: Sequence[int]) -> set[int]:
    if not call_ids:
        return set()
    rows = await session.scalars(select(Registration.call_id).where(Registration.call_id.in_(list(call_ids))))
    return set(rows)


async def users_by_username(session: AsyncSession, usernames: Sequence[str]) -> dict[str, User]:
    if not usernames:
        return {}
    rows = await session.scalars(select(User).where(User.username.in_(sorted(set(usernames))), User.active.is_(True)))
    return {u.username: u for u in rows}


async def registration_for(session: AsyncSession, call_id: int) -> Registration | None:
    return await session.scalar(select(Registration).where(Registration.call_id == call_id))


async def save_registration(session: AsyncSession, registration: Registration) -> Registration:
    session.add(registration)
    await session.flush()
    await session.refresh(registration)
    return registration


async def topic(session: AsyncSession, topic_id: int) -> Topic | None:
    return await session.get(Topic, topic_id)


async def topics(session: AsyncSession) -> list[Topic]:
    return list(await session.scalars(select(Topic).order_by(Topic.name)))


async def contact(session: AsyncSession, contact_id: int) -> Contact | None:
    return await session.get(Contact, contact_id)


async def caller_channel(session: AsyncSession, call_id: int) -> str | None:
    """The call's originating channel, from the first ``Newchannel`` of its timeline (the tracker writes the
    originating channel's Newchannel only; later channels of the call join silently)."""
    rows = await session.scalars(
        select(CallEvent.summary)
        .where(CallEvent.call_id == call_id, CallEvent.event == "Newchannel")
        .order_by(CallEvent.at, CallEvent.id)
        .limit(1)
    )
    summary = rows.first()
    channel = (summary or {}).get("Channel")
    return str(channel) if channel else None


# --- presence -------------------------------------------------------------------------------------------------------


async def latest_presence(session: AsyncSession, user_id: int) -> PresenceLog | None:
    return await session.scalar(
        select(PresenceLog)
        .where(PresenceLog.user_id == user_id)
        .order_by(PresenceLog.at.desc(), PresenceLog.id.desc())
        .limit(1)
    )


async def open_wrapups(session: AsyncSession) -> list[tuple[int, str, datetime]]:
    """Operators whose latest presence is ``wrapup``: (user id, username, since) — to resume their timers after a
    restart."""
    latest = select(PresenceLog.user_id, func.max(PresenceLog.at).label("at")).group_by(PresenceLog.user_id).subquery()
    rows = await session.execute(
        select(User.id, User.username, PresenceLog.at)
        .join(latest, latest.c.user_id == User.id)
        .join(PresenceLog, (PresenceLog.user_id == User.id) & (PresenceLog.at == latest.c.at))
        .where(PresenceLog.state == "wrapup")
    )
    return [(user_id, username, at) for user_id, username, at in rows.all()]


async def add_presence(
    session: AsyncSession, user_id: int, state: str, at: datetime, reason: str | None = None
) -> None:
    session.add(PresenceLog(user_id=user_id, state=state, reason=reason, at=at))
    await session.flush()


# --- scripts, directory, prepared answers -------------------------------------------------------------------------


async def script_for(session: AsyncSession, line_id: int | None) -> Script | None:
    """The line's own script, else the default (``line_id`` NULL)."""
    if line_id is not None:
        own = await session.scalar(select(Script).where(Script.line_id == line_id))
        if own is not None:
            return own
    return await session.scalar(select(Script).where(Script.line_id.is_(None)))


async def line(session: AsyncSession, line_id: int) -> Line | None:
    return await session.get(Line, line_id)


async def search_contacts(
    session: AsyncSession, q: str | None, topic_id: int | None, *, limit: int
) -> list[tuple[Contact, list[str]]]:
    """Active contacts whose name, title, department or one of whose topics contains ``q``; with their topics."""
    stmt = select(Contact).where(Contact.active.is_(True))
    if topic_id is not None:
        stmt = stmt.where(exists().where(ContactTopic.contact_id == Contact.id, ContactTopic.topic_id == topic_id))
    if q:
        by_topic = (
            exists()
            .where(ContactTopic.contact_id == Contact.id, ContactTopic.topic_id == Topic.id)
            .where(_contains(Topic.name, q))  # type: ignore[arg-type]
        )
        stmt = stmt.where(
            or_(_contains(Contact.name, q), _contains(Contact.title, q), _contains(Contact.department, q), by_topic)  # type: ignore[arg-type]
        )
    contacts = list(await session.scalars(stmt.order_by(Contact.name, Contact.id).limit(limit)))
    if not contacts:
        return []
    rows = await session.execute(
        select(ContactTopic.contact_id, Topic.name)
        .join(Topic, Topic.id == ContactTopic.topic_id)
        .where(ContactTopic.contact_id.in_([c.id for c in contacts]))
        .order_by(Topic.name)
    )
    names: dict[int, list[str]] = {c.id: [] for c in contacts}
    for contact_id, name in rows.all():
        names[contact_id].append(name)
    return [(c, names[c.id]) for c in contacts]


async def search_answers(
    session: AsyncSession, words: Sequence[str], topic_id: int | None, *, limit: int
) -> list[tuple[PreparedAnswer, str]]:
    """Prepared answers of a topic and/or containing every word (title, body or topic name)."""
    stmt = select(PreparedAnswer, Topic.name).join(Topic, Topic.id == PreparedAnswer.topic_id)
    if topic_id is not None:
        stmt = stmt.where(PreparedAnswer.topic_id == topic_id)
    for word in words:
        stmt = stmt.where(
            or_(
                _contains(PreparedAnswer.title, word), _contains(PreparedAnswer.body, word), _contains(Topic.name, word)
            )  # type: ignore[arg-type]
        )
    rows = await session.execute(stmt.order_by(Topic.name, PreparedAnswer.title, PreparedAnswer.id).limit(limit))
    return [(a, t) for a, t in rows.all()]


# --- callbacks ------------------------------------------------------------------------------------------------------


async def callback_worklist(session: AsyncSession, line_ids: set[int] | None, *, limit: int) -> list[Call]:
    """Abandoned or closed-out calls not called back yet, oldest first.

    "Called back" means: ``called_back_at`` is set, or a later call from that number was answered, or a callback
    linked to it (``callback_of_id``) was answered.
    """
    later = aliased(Call)
    answered_since = exists().where(
        later.outcome == "answered",
        or_(
            and_(later.caller_number == Call.caller_number, later.arrived_at > Call.arrived_at),
            later.callback_of_id == Call.id,
        ),
    )
    stmt = select(Call).where(
        Call.outcome.in_(WORKLIST_OUTCOMES),
        Call.called_back_at.is_(None),
        Call.caller_number.is_not(None),
        ~answered_since,
    )
    if line_ids is not None:
        stmt = stmt.where(Call.line_id.in_(sorted(line_ids)))
    return list(await session.scalars(stmt.order_by(Call.arrived_at, Call.id).limit(limit)))


async def mark_called_back(session: AsyncSession, call_id: int, at: datetime) -> None:
    await session.execute(update(Call).where(Call.id == call_id).values(called_back_at=at))


async def link_callback(session: AsyncSession, call_id: int, callback_of_id: int) -> bool:
    """Link a recorded call to the abandoned call it calls back; only once (an existing link is kept)."""
    result = await session.execute(
        update(Call)
        .where(Call.id == call_id, Call.callback_of_id.is_(None), Call.id != callback_of_id)
        .values(callback_of_id=callback_of_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- export ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    call: Call
    registration: Registration | None
    topic: str | None
    specialist: str | None
    registered_by: str | None


async def export_rows(
    session: AsyncSession, flt: CallFilter, *, line_ids: set[int] | None, limit: int
) -> list[ExportRow]:
    """Calls matching the same filters as ``GET /api/calls`` (newest first), with their registration joined."""
    conditions = filter_conditions(flt, line_ids)
    stmt = (
        select(Call, Registration, Topic.name, Contact.name, User.username)
        .outerjoin(Registration, Registration.call_id == Call.id)
        .outerjoin(Topic, Topic.id == Registration.topic_id)
        .outerjoin(Contact, Contact.id == Registration.specialist_id)
        .outerjoin(User, User.id == Registration.user_id)
        .where(*conditions)
        .order_by(Call.arrived_at.desc(), Call.id.desc())
        .limit(limit)
    )
    return [ExportRow(*row) for row in (await session.execute(stmt)).all()]
