"""SQL for the admin API: generic get/add/delete of configuration rows and the few specific queries.

Repositories add, flush and query; the request edge commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import (
    ApiToken,
    Base,
    Call,
    Campaign,
    Contact,
    ContactTopic,
    HoursException,
    Line,
    OperatorLine,
    PreparedAnswer,
    Shift,
    ShiftBreak,
    User,
    WeeklyHours,
)

M = TypeVar("M", bound=Base)


async def get(session: AsyncSession, model: type[M], ident: Any) -> M | None:
    return await session.get(model, ident)


async def list_rows(
    session: AsyncSession, model: type[M], *where: ColumnElement[bool], order_by: Iterable[Any] = ()
) -> Sequence[M]:
    stmt = select(model).where(*where).order_by(*(order_by or model.__table__.primary_key.columns))  # type: ignore[attr-defined]
    return list(await session.scalars(stmt))


async def add(session: AsyncSession, obj: M) -> M:
    session.add(obj)
    await session.flush()
    await session.refresh(obj)  # server defaults (timestamps) loaded now: no lazy load later
    return obj


async def save(session: AsyncSession, obj: M) -> M:
    await session.flush()
    await session.refresh(obj)
    return obj


async def remove(session: AsyncSession, obj: Base) -> None:
    await session.delete(obj)
    await session.flush()


async def exists(session: AsyncSession, model: type[Base], *where: ColumnElement[bool]) -> bool:
    return (await session.scalar(select(func.count()).select_from(model).where(*where))) > 0  # type: ignore[operator]


async def count(session: AsyncSession, model: type[Base], *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- hours ----------------------------------------------------------------------------------------------------


async def weekly_rows(session: AsyncSession, line_id: int) -> Sequence[WeeklyHours]:
    """The line's own weekly ranges (not its campaigns'), by weekday and start."""
    return await list_rows(
        session,
        WeeklyHours,
        WeeklyHours.line_id == line_id,
        WeeklyHours.campaign_id.is_(None),
        order_by=(WeeklyHours.weekday, WeeklyHours.start_time, WeeklyHours.id),
    )


async def campaign_ranges(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, list[WeeklyHours]]:
    ids = list(campaign_ids)
    out: dict[int, list[WeeklyHours]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.scalars(
        select(WeeklyHours)
        .where(WeeklyHours.campaign_id.in_(ids))
        .order_by(WeeklyHours.weekday, WeeklyHours.start_time, WeeklyHours.id)
    )
    for row in rows:
        out[row.campaign_id].append(row)  # type: ignore[index]
    return out


async def campaigns_of(session: AsyncSession, line_id: int) -> Sequence[Campaign]:
    return await list_rows(session, Campaign, Campaign.line_id == line_id, order_by=(Campaign.start_date, Campaign.id))


async def exceptions_of(session: AsyncSession, line_id: int) -> Sequence[HoursException]:
    return await list_rows(
        session,
        HoursException,
        HoursException.line_id == line_id,
        order_by=(HoursException.start_date, HoursException.id),
    )


async def delete_campaign_ranges(session: AsyncSession, campaign_id: int) -> None:
    await session.execute(delete(WeeklyHours).where(WeeklyHours.campaign_id == campaign_id))


async def calls_on_line(session: AsyncSession, line_id: int) -> int:
    return await count(session, Call, Call.line_id == line_id)


# --- people ---------------------------------------------------------------------------------------------------


async def active_admins_other_than(session: AsyncSession, user_id: int) -> int:
    return await count(session, User, User.role == "admin", User.active.is_(True), User.id != user_id)


async def revoke_tokens(session: AsyncSession, user_id: int, now: datetime, *, keep_token_id: int | None) -> None:
    """Sign the user out everywhere (after a password reset), except the token making the request."""
    stmt = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep_token_id is not None:
        stmt = stmt.where(ApiToken.id != keep_token_id)
    await session.execute(stmt.values(revoked_at=now))


async def assignments_of_line(session: AsyncSession, line_id: int) -> Sequence[tuple[OperatorLine, User]]:
    stmt = (
        select(OperatorLine, User)
        .join(User, User.id == OperatorLine.user_id)
        .where(OperatorLine.line_id == line_id)
        .order_by(OperatorLine.priority, User.username)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def shifts(
    session: AsyncSession, *, user_id: int | None, since: datetime | None, until: datetime | None, limit: int
) -> Sequence[Shift]:
    where: list[ColumnElement[bool]] = []
    if user_id is not None:
        where.append(Shift.user_id == user_id)
    if since is not None:
        where.append(Shift.ends_at > since)
    if until is not None:
        where.append(Shift.starts_at < until)
    stmt = select(Shift).where(*where).order_by(Shift.starts_at, Shift.id).limit(limit)
    return list(await session.scalars(stmt))


async def overlapping_shift(
    session: AsyncSession, user_id: int, starts_at: datetime, ends_at: datetime, *, exclude_id: int | None
) -> Shift | None:
    stmt = select(Shift).where(Shift.user_id == user_id, Shift.starts_at < ends_at, Shift.ends_at > starts_at)
    if exclude_id is not None:
        stmt = stmt.where(Shift.id != exclude_id)
    return await session.scalar(stmt.limit(1))


async def breaks_of(session: AsyncSession, shift_id: int) -> Sequence[ShiftBreak]:
    return await list_rows(
        session, ShiftBreak, ShiftBreak.shift_id == shift_id, order_by=(ShiftBreak.starts_at, ShiftBreak.id)
    )


# --- knowledge ------------------------------------------------------------------------------------------------


async def topic_ids_of_contacts(session: AsyncSession, contact_ids: Iterable[int]) -> dict[int, list[int]]:
    ids = list(contact_ids)
    out: dict[int, list[int]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(ContactTopic.contact_id, ContactTopic.topic_id)
        .where(ContactTopic.contact_id.in_(ids))
        .order_by(ContactTopic.topic_id)
    )
    for contact_id, topic_id in rows.all():
        out[contact_id].append(topic_id)
    return out


async def set_contact_topics(session: AsyncSession, contact_id: int, topic_ids: Iterable[int]) -> None:
    await session.execute(delete(ContactTopic).where(ContactTopic.contact_id == contact_id))
    session.add_all(ContactTopic(contact_id=contact_id, topic_id=t) for t in sorted(set(topic_ids)))
    await session.flush()


async def contacts(session: AsyncSession, *, topic_id: int | None, active: bool | None) -> Sequence[Contact]:
    """The directory by name, optionally only one topic's specialists or only (in)active ones."""
    stmt = select(Contact)
    if topic_id is not None:
        stmt = stmt.where(Contact.id.in_(select(ContactTopic.contact_id).where(ContactTopic.topic_id == topic_id)))
    if active is not None:
        stmt = stmt.where(Contact.active.is_(active))
    return list(await session.scalars(stmt.order_by(Contact.name, Contact.id)))


async def contact_ids_with_topic(session: AsyncSession, topic_id: int) -> list[int]:
    return list(await session.scalars(select(ContactTopic.contact_id).where(ContactTopic.topic_id == topic_id)))


async def answers_of_topic(session: AsyncSession, topic_id: int) -> int:
    return await count(session, PreparedAnswer, PreparedAnswer.topic_id == topic_id)


async def line_exists(session: AsyncSession, line_id: int) -> bool:
    return await exists(session, Line, Line.id == line_id)
