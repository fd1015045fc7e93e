"""Call records: the list (filters, cursor pagination, newest first), one call with its timeline, calls live now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import MAX_ID, IdPath
from hotline.api.schemas.calls import CallDetailOut, CallOut, CallPage, LiveCallOut, TimelineEntryOut
from hotline.api.security import AnyUser, Principal
from hotline.db.models import OUTCOMES, Call
from hotline.db.repositories import calls as calls_repo
from hotline.db.repositories import users as users_repo
from hotline.domain.calls import CallRecord
from hotline.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix="/api/calls", tags=["calls"])


async def _visible_lines(session: SessionDep, principal: Principal) -> set[int] | None:
    """None = every line (staff); operators see the calls of the lines they serve."""
    if principal.is_staff:
        return None
    return set(await users_repo.line_ids_of(session, principal.user_id))


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    return value


@router.get("", response_model=CallPage, summary="Calls, newest first, with filters and cursor pagination")
async def list_calls(
    principal: AnyUser,
    session: SessionDep,
    line: Annotated[int | None, Query(ge=1, le=MAX_ID, description="line id")] = None,
    operator: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(description=" | ".join(OUTCOMES))] = None,
    caller_number: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(alias="from", description="arrived at or after (ISO 8601 with zone)")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="arrived before (ISO 8601 with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
) -> CallPage:
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", details={"field": "outcome"})
    after = None
    if cursor:
        try:
            after = calls_repo.decode_cursor(cursor)
        except ValueError:
            raise InvalidInput(
                "cursor is not valid; use next_cursor from a previous page", details={"field": "cursor"}
            ) from None
    visible = await _visible_lines(session, principal)
    if visible is not None and line is not None and line not in visible:
        raise Forbidden("You do not serve this line.", details={"line": line})
    flt = calls_repo.CallFilter(
        line_id=line, operator=operator, outcome=outcome, caller_number=caller_number,
        since=_aware(since, "from"), until=_aware(until, "to"),
    )  # fmt: skip
    rows = await calls_repo.list_calls(session, flt, limit=limit + 1, after=after, line_ids=visible)
    next_cursor = (
        calls_repo.encode_cursor(rows[limit - 1].arrived_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return CallPage(items=[CallOut.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)


def _live(record: CallRecord, now: datetime) -> LiveCallOut:
    talking = record.answered_at is not None
    start_wait = record.queued_at or record.arrived_at
    return LiveCallOut(
        pbx_id=record.pbx_id, linkedid=record.linkedid, line_id=record.line_id, number=record.number,
        caller_number=record.caller_number, caller_name=record.caller_name, arrived_at=record.arrived_at,
        state="talking" if talking else ("waiting" if record.queued_at else "routing"),
        waiting_s=None if talking or start_wait is None else max(0.0, (now - start_wait).total_seconds()),
        talking_s=max(0.0, (now - record.answered_at).total_seconds()) if record.answered_at else None,
        operator=record.operator, queue=record.queue,
    )  # fmt: skip


@router.get("/live", response_model=list[LiveCallOut], summary="Calls waiting and talking now, with the wait so far")
async def live_calls(principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> list[LiveCallOut]:
    visible = await _visible_lines(session, principal)
    now = datetime.now(UTC)
    out = []
    for listener in runtime.listeners.values():
        for record in listener.tracker.live_calls():
            if visible is None or record.line_id in visible:
                out.append(_live(record, now))
    out.sort(key=lambda c: c.arrived_at or now)
    return out


@router.get("/{call_id}", response_model=CallDetailOut, summary="One call with its event timeline")
async def get_call(call_id: IdPath, principal: AnyUser, session: SessionDep) -> CallDetailOut:
    call: Call | None = await calls_repo.get_call(session, call_id)
    visible = await _visible_lines(session, principal)
    if call is None or (visible is not None and call.line_id not in visible):
        raise NotFound(f"No call {call_id}.", details={"call_id": call_id})
    events = await calls_repo.timeline(session, call_id)
    return CallDetailOut(
        **CallOut.model_validate(call).model_dump(),
        timeline=[TimelineEntryOut.model_validate(e) for e in events],
    )
