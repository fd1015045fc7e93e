"""SQL of the dialplan feature: the lines it renders, its versions and their audit entries. Flushes, never commits.

Everything is per PBX: each PBX has the files of its own lines and its own history of versions. ``first``: the PBX
asked for is the first configured, which owns the rows stored without a PBX (``hotline.db.repositories.pbx``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import AuditEntry, DialplanVersion, Line
from hotline.db.repositories.pbx import on_pbx


async def active_lines(session: AsyncSession, pbx_id: str, *, first: bool) -> list[Line]:
    """The PBX's active lines by id: the ones its rendered dialplan must answer."""
    rows = await session.scalars(
        select(Line).where(Line.active.is_(True), on_pbx(Line.pbx_id, pbx_id, first=first)).order_by(Line.id)
    )
    return list(rows)


async def applied_version(session: AsyncSession, pbx_id: str, *, first: bool) -> DialplanVersion | None:
    """The version in force on the PBX: its newest one marked applied (there is at most one per PBX)."""
    stmt = (
        select(DialplanVersion)
        .where(DialplanVersion.status == "applied", on_pbx(DialplanVersion.pbx_id, pbx_id, first=first))
        .order_by(DialplanVersion.applied_at.desc(), DialplanVersion.id.desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def get_version(session: AsyncSession, version_id: int) -> DialplanVersion | None:
    return await session.get(DialplanVersion, version_id)


async def list_versions(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    pbx_id: str | None = None,
    first: bool = False,
) -> list[DialplanVersion]:
    """Newest first; ``before_id`` pages back; ``pbx_id``: only that PBX's versions (None: every PBX's)."""
    stmt = select(DialplanVersion).order_by(DialplanVersion.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(DialplanVersion.id < before_id)
    if pbx_id is not None:
        stmt = stmt.where(on_pbx(DialplanVersion.pbx_id, pbx_id, first=first))
    return list(await session.scalars(stmt))


async def add_version(session: AsyncSession, version: DialplanVersion) -> DialplanVersion:
    session.add(version)
    await session.flush()
    return version


async def fail_stale_pending(session: AsyncSession, reason: str, pbx_id: str, *, first: bool) -> int:
    """Mark the PBX's versions left ``pending`` by an apply that never finished (the process stopped) as failed.

    Only this PBX's: another PBX's apply may be running right now (in the process that listens to it)."""
    result = await session.execute(
        update(DialplanVersion)
        .where(DialplanVersion.status == "pending", on_pbx(DialplanVersion.pbx_id, pbx_id, first=first))
        .values(status="failed", result=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def supersede_applied(session: AsyncSession, *, except_id: int, pbx_id: str, first: bool) -> None:
    """Every other applied version of the PBX stops being the one in force there."""
    await session.execute(
        update(DialplanVersion)
        .where(
            DialplanVersion.status == "applied",
            DialplanVersion.id != except_id,
            on_pbx(DialplanVersion.pbx_id, pbx_id, first=first),
        )
        .values(status="superseded")
    )


async def mark(
    session: AsyncSession, version_id: int, *, status: str, result: str, applied_at: datetime | None
) -> None:
    values: dict[str, Any] = {"status": status, "result": result}
    if applied_at is not None:
        values["applied_at"] = applied_at
    await session.execute(update(DialplanVersion).where(DialplanVersion.id == version_id).values(**values))


async def add_audit(
    session: AsyncSession,
    *,
    user_id: int | None,
    action: str,
    entity_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(user_id=user_id, action=action, entity="dialplan", entity_id=entity_id, before=before, after=after)
    )
    await session.flush()
