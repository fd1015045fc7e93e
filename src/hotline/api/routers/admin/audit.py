"""The audit log: every admin change, newest first, with filters and a keyset cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from hotline.api.deps import SessionDep
from hotline.api.params import MAX_ID
from hotline.api.schemas.admin import AuditOut, AuditPage
from hotline.api.security import AdminOnly
from hotline.db.repositories import admin_audit as audit_repo
from hotline.errors import InvalidInput

router = APIRouter(prefix="/api/audit", tags=["admin: audit"])


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    return value


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
async def list_audit(
    _: AdminOnly,
    session: SessionDep,
    entity: Annotated[str | None, Query(max_length=64, description="e.g. line, weekly_hours, user")] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[int | None, Query(ge=1, le=MAX_ID, description="id of the user who made the change")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="at or after (ISO 8601 with zone)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="before (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=20, description="next_cursor of the previous page")] = None,
) -> AuditPage:
    before_id = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidInput("cursor is not valid; use next_cursor from a previous page", details={"field": "cursor"})
        before_id = int(cursor)
    flt = audit_repo.AuditFilter(
        entity=entity, entity_id=entity_id, user_id=user, since=_aware(since, "from"), until=_aware(until, "to")
    )
    rows = await audit_repo.list_entries(session, flt, limit=limit + 1, before_id=before_id)
    items = [
        AuditOut(
            id=e.id,
            at=e.at,
            user_id=e.user_id,
            username=username,
            action=e.action,
            entity=e.entity,
            entity_id=e.entity_id,
            before=e.before,
            after=e.after,
        )
        for e, username in rows[:limit]
    ]
    return AuditPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)
