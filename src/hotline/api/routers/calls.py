"""Call records: the list (filters, cursor pagination, newest first), one call with its timeline, calls live now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Response
from pydantic_core import to_json

from hotline.api.deps import ReaderDep, RuntimeDep, SessionDep, read_connection
from hotline.api.params import MAX_ID, IdPath
from hotline.api.schemas.calls import CallDetailOut, CallOut, CallPage, LiveCallOut, TimelineEntryOut
from hotline.api.security import AnyUser, Principal
from hotline.db.models import OUTCOMES, Call
from hotline.db.repositories import calls as calls_repo
from hotline.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix="/api/calls", tags=["calls"])


def _visible_lines(principal: Principal) -> set[int] | None:
    """None = every line (staff); operators see the calls of the lines they serve (read with their token)."""
    return None if principal.is_staff else set(principal.line_ids or ())


def _json(content: Any) -> Response:
    """Plain data already shaped like the response model, serialised in one pass by pydantic-core: the same JSON
    as the model would give (ISO 8601 times with ``Z``, NaN and infinities as null) without building and
    validating one model per row. The route keeps its ``response_model`` for the OpenAPI schema."""
    return Response(to_json(content, inf_nan_mode="null"), media_type="application/json")


# The list's columns are the response model's fields, so the two cannot drift apart.
_CALL_COLUMNS = tuple(CallOut.model_fields)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    return value


@router.get("", response_model=CallPage, summary="Calls, newest first, with filters and cursor pagination")
async def list_calls(
    principal: AnyUser,
    reader: ReaderDep,
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
) -> Response:
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
    visible = _visible_lines(principal)
    if visible is not None and line is not None and line not in visible:
        raise Forbidden("You do not serve this line.", details={"line": line})
    flt = calls_repo.CallFilter(
        line_id=line, operator=operator, outcome=outcome, caller_number=caller_number,
        since=_aware(since, "from"), until=_aware(until, "to"),
    )  # fmt: skip
    rows = await calls_repo.list_call_rows(reader, flt, _CALL_COLUMNS, limit=limit + 1, after=after, line_ids=visible)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = calls_repo.encode_cursor(last["arrived_at"], last["id"])
    return _json({"items": rows[:limit], "next_cursor": next_cursor})


class _LiveSource(Protocol):
    """A tracker's CallRecord or a stored row: the same names."""

    pbx_id: str
    linkedid: str
    line_id: int | None
    number: str
    caller_number: str | None
    caller_name: str | None
    arrived_at: datetime | None
    queued_at: datetime | None
    answered_at: datetime | None
    operator: str | None
    queue: str | None


_LIVE_COLUMNS = tuple(_LiveSource.__annotations__)


def _live(record: _LiveSource, now: datetime) -> dict[str, Any]:
    """One live call as :class:`LiveCallOut`'s fields, in its order."""
    talking = record.answered_at is not None
    start_wait = record.queued_at or record.arrived_at
    return {
        "pbx_id": record.pbx_id, "linkedid": record.linkedid, "line_id": record.line_id, "number": record.number,
        "caller_number": record.caller_number, "caller_name": record.caller_name, "arrived_at": record.arrived_at,
        "state": "talking" if talking else ("waiting" if record.queued_at else "routing"),
        "waiting_s": None if talking or start_wait is None else max(0.0, (now - start_wait).total_seconds()),
        "talking_s": max(0.0, (now - record.answered_at).total_seconds()) if record.answered_at else None,
        "operator": record.operator, "queue": record.queue,
    }  # fmt: skip


@router.get("/live", response_model=list[LiveCallOut], summary="Calls waiting and talking now, with the wait so far")
async def live_calls(principal: AnyUser, runtime: RuntimeDep) -> Response:
    """The calls of the PBXs this process listens to come from their trackers, read in place (nothing awaits while
    they are read); those of the PBXs another process listens to (several ``hotline serve`` processes or workers
    on PostgreSQL) from the calls that process stores as in progress, at most one listener commit behind."""
    visible = _visible_lines(principal)
    now = datetime.now(UTC)
    out = [
        _live(record, now)
        for listener in runtime.listeners.values()
        for record in listener.tracker.live_records()
        if visible is None or record.line_id in visible
    ]
    elsewhere = [pbx_id for pbx_id in runtime.pbx_ids() if pbx_id not in runtime.listeners]
    if elsewhere:
        async with read_connection(runtime) as reader:  # only here: the listening process needs no connection
            rows = await calls_repo.in_progress_rows(reader, elsewhere, _LIVE_COLUMNS, visible)
        out += [_live(row, now) for row in rows]
    out.sort(key=lambda c: c["arrived_at"] or now)
    return _json(out)


@router.get("/{call_id}", response_model=CallDetailOut, summary="One call with its event timeline")
async def get_call(call_id: IdPath, principal: AnyUser, session: SessionDep) -> CallDetailOut:
    call: Call | None = await calls_repo.get_call(session, call_id)
    visible = _visible_lines(principal)
    if call is None or (visible is not None and call.line_id not in visible):
        raise NotFound(f"No call {call_id}.", details={"call_id": call_id})
    events = await calls_repo.timeline(session, call_id)
    return CallDetailOut(
        **CallOut.model_validate(call).model_dump(),
        timeline=[TimelineEntryOut.model_validate(e) for e in events],
    )
