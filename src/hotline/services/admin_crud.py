"""Create, update and delete configuration rows with their audit entry, in the request's transaction.

Each helper flushes (so constraint violations surface here, as ``Conflict``), then adds the audit entry to the same
transaction. Nothing commits here: the request edge does, once; a refused change rolls back with its entry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.after_commit import after_commit
from hotline.db.models import Base
from hotline.db.repositories import admin as repo
from hotline.errors import Conflict, InvalidInput, NotFound
from hotline.services import audit

M = TypeVar("M", bound=Base)
log = logging.getLogger(__name__)

# Entities whose change alters what a line does with a call: listeners reload their numbers, hooks re-plan.
LINE_ENTITIES = frozenset({"line", "weekly_hours", "campaign", "hours_exception"})
# Entities routing also depends on (who is in which queue, when): the hooks hear of these too.
ROUTING_ENTITIES = LINE_ENTITIES | {"operator_line", "user", "shift", "shift_break", "shift_pattern"}

_CHANGED_KEY = "hotline.admin.config_changed"


async def get_or_404(session: AsyncSession, model: type[M], ident: Any, what: str) -> M:
    obj = await repo.get(session, model, ident)
    if obj is None:
        raise NotFound(f"No {what} {ident}.", details={"entity": what, "id": ident})
    return obj


async def flush_or_conflict(session: AsyncSession, message: str) -> None:
    """Flush; a unique or foreign-key violation becomes a 409 (the pre-checks catch the usual cases first)."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message, details={"reason": type(exc.orig).__name__}) from None


def refuse_nulls(model: type[Base], changes: Mapping[str, Any]) -> None:
    """A PATCH may clear an optional field with null, never a required one."""
    columns = inspect(model).columns
    for key, value in changes.items():
        if value is None and key in columns and not columns[key].nullable:
            raise InvalidInput(f"{key} cannot be null", details={"field": key})


async def create(
    session: AsyncSession,
    user_id: int,
    entity: str,
    obj: M,
    *,
    extra: Callable[[M], Awaitable[dict[str, Any]]] | None = None,
) -> M:
    session.add(obj)
    await flush_or_conflict(session, f"this {entity} conflicts with an existing one")
    await repo.save(session, obj)
    after = audit.snapshot(obj, await extra(obj) if extra else None)
    await audit.record(
        session, user_id=user_id, action=audit.CREATE, entity=entity, entity_id=_ident(obj), before=None, after=after
    )
    return obj


async def update(
    session: AsyncSession,
    user_id: int,
    entity: str,
    obj: M,
    changes: Mapping[str, Any],
    *,
    before_extra: Mapping[str, Any] | None = None,
    after_extra: Callable[[M], Awaitable[dict[str, Any]]] | None = None,
    force: bool = False,
) -> M:
    """Apply ``changes`` (column -> value); an entry is written only if something changed (or ``force``)."""
    refuse_nulls(type(obj), changes)
    before = audit.snapshot(obj, before_extra)
    for key, value in changes.items():
        setattr(obj, key, value)
    await flush_or_conflict(session, f"this {entity} conflicts with an existing one")
    await repo.save(session, obj)
    after = audit.snapshot(obj, await after_extra(obj) if after_extra else None)
    if force or before != after:
        await audit.record(
            session,
            user_id=user_id,
            action=audit.UPDATE,
            entity=entity,
            entity_id=_ident(obj),
            before=before,
            after=after,
        )
    return obj


async def delete(
    session: AsyncSession, user_id: int, entity: str, obj: Base, *, extra: Mapping[str, Any] | None = None
) -> None:
    before = audit.snapshot(obj, extra)
    ident = _ident(obj)
    await repo.remove(session, obj)
    await audit.record(
        session, user_id=user_id, action=audit.DELETE, entity=entity, entity_id=ident, before=before, after=None
    )


def _ident(obj: Base) -> str:
    """The primary key as a string; composite keys joined with ':' in column order."""
    return ":".join(str(v) for v in inspect(obj).identity or ())


def config_changed(session: AsyncSession, runtime: Any, entity: str) -> None:
    """Tell the rest of the system, after the commit, that ``entity`` changed.

    Once per transaction whatever the number of rows: line and hours changes make every AMI listener reload its
    line numbers; every routing-relevant change runs ``runtime.config_changed_hooks`` (the dialplan marks itself
    pending, routing re-plans) with each entity name once. Dropped if the transaction rolls back.
    """
    if entity not in ROUTING_ENTITIES:
        return
    pending: list[str] | None = session.info.get(_CHANGED_KEY)
    if pending is None:
        pending = session.info[_CHANGED_KEY] = []

        async def notify() -> None:
            entities = session.info.pop(_CHANGED_KEY, pending)
            calls: list[Callable[[], Awaitable[None]]] = []
            if LINE_ENTITIES.intersection(entities):
                calls += [listener.reload_lines for listener in list(runtime.listeners.values())]
            for name in entities:
                calls += [partial(hook, name) for hook in list(getattr(runtime, "config_changed_hooks", []))]
            for call in calls:  # one failing (a PBX down) must not keep the others from hearing
                try:
                    await call()
                except Exception:
                    log.exception("a config-changed notification failed")

        after_commit(session, notify)
    if entity not in pending:
        pending.append(entity)
