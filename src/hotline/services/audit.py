"""The audit log: who changed what, with the values before and after, written in the change's own transaction.

An entry is added to the session that makes the change, so it commits with it or vanishes with its rollback: a
refused change leaves no trace, an accepted one always does. Secrets never reach the log: snapshots drop every
column named in ``SECRET_FIELDS`` (password hashes, token hashes) whatever the entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import AuditEntry, Base
from hotline.db.repositories import admin_audit as audit_repo

CREATE, UPDATE, DELETE = "create", "update", "delete"
ACTIONS = (CREATE, UPDATE, DELETE)
SECRET_FIELDS = frozenset({"password", "password_hash", "token", "token_hash"})
# Bookkeeping columns: the entry has its own ``at``; repeating them only makes every diff look different.
_SKIPPED = frozenset({"created_at", "updated_at"})


def json_value(value: Any) -> Any:
    """A JSON-safe spelling of a column value (dates and times in ISO 8601, decimals as strings: no rounding)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def scrub(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without secrets, JSON-safe."""
    return {k: json_value(v) for k, v in values.items() if k not in SECRET_FIELDS}


def snapshot(obj: Base, extra: Mapping[str, Any] | None = None, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The loaded column values of a row (secrets and bookkeeping dropped) plus ``extra`` (e.g. related ids)."""
    state = inspect(obj)
    skipped = _SKIPPED | set(skip)
    values = {
        attr.key: state.dict[attr.key]
        for attr in state.mapper.column_attrs
        if attr.key in state.dict and attr.key not in skipped
    }
    return scrub(values | dict(extra or {}))


async def record(
    session: AsyncSession,
    *,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: object,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> AuditEntry:
    """Add one entry to the current transaction; ``before``/``after`` are scrubbed again, to be safe."""
    if action not in ACTIONS:
        raise ValueError(f"audit action must be one of {ACTIONS}, got {action!r}")
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=None if before is None else scrub(before),
        after=None if after is None else scrub(after),
    )
    return await audit_repo.add(session, entry)
