"""SQL for the audit log. Entries are added in the caller's transaction; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import AuditEntry, User


@dataclass(frozen=True, slots=True)
class AuditFilter:
    entity: str | None = None
    entity_id: str | None = None
    user_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def add(session: AsyncSession, entry: AuditEntry) -> AuditEntry:
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, flt: AuditFilter, *, limit: int, before_id: int | None = None
) -> Sequence[tuple[AuditEntry, str | None]]:
    """Entries newest first (by id: ids grow with commits, ``at`` can tie within a transaction), with usernames.

    ``before_id`` is the keyset cursor: only entries older than that id.
    """
    stmt = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    if flt.entity is not None:
        stmt = stmt.where(AuditEntry.entity == flt.entity)
    if flt.entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == flt.entity_id)
    if flt.user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == flt.user_id)
    if flt.since is not None:
        stmt = stmt.where(AuditEntry.at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AuditEntry.at < flt.until)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
