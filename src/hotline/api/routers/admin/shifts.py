"""Shift patterns, dated shifts and their planned breaks: editable by admins and supervisors (they plan the floor).

Patterns are validated by building the domain ``ShiftPattern``; shifts and breaks by building the domain
``Shift`` with its breaks. A shift overlapping another shift of the same user is a 409.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import MAX_ID, IdPath
from hotline.api.schemas.admin import (
    BreakCreate,
    BreakOut,
    BreakUpdate,
    ShiftCreate,
    ShiftOut,
    ShiftPatternCreate,
    ShiftPatternOut,
    ShiftPatternUpdate,
    ShiftUpdate,
)
from hotline.api.security import Staff
from hotline.db.models import Shift, ShiftBreak, ShiftPattern, User
from hotline.db.repositories import admin as repo
from hotline.domain import shifts as domain
from hotline.errors import Conflict, InvalidInput, NotFound
from hotline.services import admin_crud as crud
from hotline.services.admin_shifts import pattern_from_slots

router = APIRouter(prefix="/api/admin", tags=["admin: shifts"])


async def _user(session: SessionDep, user_id: IdPath) -> User:
    user = await repo.get(session, User, user_id)
    if user is None:
        raise InvalidInput(f"there is no user {user_id}", details={"field": "user_id"})
    return user


# --- patterns -------------------------------------------------------------------------------------------------


async def _check_pattern(session: SessionDep, values: dict[str, Any]) -> None:
    user = await _user(session, values["user_id"])
    if values.get("valid_to") is not None and values["valid_to"] < values["valid_from"]:
        raise InvalidInput("valid_to is before valid_from", details={"field": "valid_to"})
    pattern_from_slots(user.username, values["timezone"], values["slots"])


def _slots_json(slots: list[Any]) -> list[dict[str, Any]]:
    out = []
    for slot in slots:
        item = slot.model_dump(mode="json")
        for key in ("start", "end"):
            item[key] = item[key][:5] if item[key].endswith(":00") else item[key]
        out.append(item)
    return out


@router.get("/shift-patterns", response_model=list[ShiftPatternOut], summary="Shift patterns")
async def list_patterns(
    _: Staff, session: SessionDep, user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> list[ShiftPattern]:
    where = [ShiftPattern.user_id == user_id] if user_id is not None else []
    return list(await repo.list_rows(session, ShiftPattern, *where))


@router.get("/shift-patterns/{pattern_id}", response_model=ShiftPatternOut, summary="One shift pattern")
async def get_pattern(pattern_id: IdPath, _: Staff, session: SessionDep) -> ShiftPattern:
    return await crud.get_or_404(session, ShiftPattern, pattern_id, "shift pattern")


@router.post("/shift-patterns", response_model=ShiftPatternOut, status_code=201, summary="Create a shift pattern")
async def create_pattern(
    body: ShiftPatternCreate, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> ShiftPattern:
    values = body.model_dump() | {"slots": _slots_json(body.slots)}
    await _check_pattern(session, values)
    pattern = await crud.create(session, principal.user_id, "shift_pattern", ShiftPattern(**values))
    crud.config_changed(session, runtime, "shift_pattern")
    return pattern


@router.patch("/shift-patterns/{pattern_id}", response_model=ShiftPatternOut, summary="Change a shift pattern")
async def update_pattern(
    pattern_id: IdPath, body: ShiftPatternUpdate, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> ShiftPattern:
    pattern = await crud.get_or_404(session, ShiftPattern, pattern_id, "shift pattern")
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(ShiftPattern, changes)
    if "slots" in changes:
        changes["slots"] = _slots_json(body.slots or [])
    current = {k: getattr(pattern, k) for k in ("user_id", "timezone", "valid_from", "valid_to", "slots")}
    await _check_pattern(session, current | changes)
    await crud.update(session, principal.user_id, "shift_pattern", pattern, changes)
    crud.config_changed(session, runtime, "shift_pattern")
    return pattern


@router.delete("/shift-patterns/{pattern_id}", status_code=204, summary="Delete a shift pattern (its shifts stay)")
async def delete_pattern(pattern_id: IdPath, principal: Staff, session: SessionDep, runtime: RuntimeDep) -> Response:
    pattern = await crud.get_or_404(session, ShiftPattern, pattern_id, "shift pattern")
    await crud.delete(session, principal.user_id, "shift_pattern", pattern)
    crud.config_changed(session, runtime, "shift_pattern")
    return Response(status_code=204)


# --- shifts ---------------------------------------------------------------------------------------------------


async def _check_shift(session: SessionDep, values: dict[str, Any], shift_id: int | None) -> None:
    """The shift (with its current breaks) must be a valid domain ``Shift`` and not overlap another shift."""
    user = await _user(session, values["user_id"])
    if values.get("pattern_id") is not None and await repo.get(session, ShiftPattern, values["pattern_id"]) is None:
        raise InvalidInput(f"there is no shift pattern {values['pattern_id']}", details={"field": "pattern_id"})
    breaks = await repo.breaks_of(session, shift_id) if shift_id is not None else []
    domain.Shift(
        user.username,
        values["starts_at"],
        values["ends_at"],
        tuple(domain.Break(b.kind, b.starts_at, b.ends_at) for b in breaks),
    )
    other = await repo.overlapping_shift(session, user.id, values["starts_at"], values["ends_at"], exclude_id=shift_id)
    if other is not None:
        raise Conflict(
            f"{user.username} already has a shift {other.starts_at.isoformat()}–{other.ends_at.isoformat()}",
            details={"shift_id": other.id},
        )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    return value


@router.get("/shifts", response_model=list[ShiftOut], summary="Shifts by start, filtered by user and time")
async def list_shifts(
    _: Staff,
    session: SessionDep,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[
        datetime | None, Query(alias="from", description="shifts ending after (ISO 8601 with zone)")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="shifts starting before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Shift]:
    return list(
        await repo.shifts(session, user_id=user_id, since=_aware(since, "from"), until=_aware(until, "to"), limit=limit)
    )


@router.get("/shifts/{shift_id}", response_model=ShiftOut, summary="One shift")
async def get_shift(shift_id: IdPath, _: Staff, session: SessionDep) -> Shift:
    return await crud.get_or_404(session, Shift, shift_id, "shift")


@router.post("/shifts", response_model=ShiftOut, status_code=201, summary="Plan a shift")
async def create_shift(body: ShiftCreate, principal: Staff, session: SessionDep, runtime: RuntimeDep) -> Shift:
    values = body.model_dump()
    await _check_shift(session, values, None)
    shift = await crud.create(session, principal.user_id, "shift", Shift(**values))
    crud.config_changed(session, runtime, "shift")
    return shift


@router.patch("/shifts/{shift_id}", response_model=ShiftOut, summary="Move or reassign a shift")
async def update_shift(
    shift_id: IdPath, body: ShiftUpdate, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> Shift:
    shift = await crud.get_or_404(session, Shift, shift_id, "shift")
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(Shift, changes)
    current = {k: getattr(shift, k) for k in ("user_id", "pattern_id", "starts_at", "ends_at")}
    await _check_shift(session, current | changes, shift_id)
    await crud.update(session, principal.user_id, "shift", shift, changes)
    crud.config_changed(session, runtime, "shift")
    return shift


@router.delete("/shifts/{shift_id}", status_code=204, summary="Delete a shift and its breaks")
async def delete_shift(shift_id: IdPath, principal: Staff, session: SessionDep, runtime: RuntimeDep) -> Response:
    shift = await crud.get_or_404(session, Shift, shift_id, "shift")
    for b in await repo.breaks_of(session, shift_id):  # each break gets its own entry: nothing vanishes unlogged
        await crud.delete(session, principal.user_id, "shift_break", b)
    await crud.delete(session, principal.user_id, "shift", shift)
    crud.config_changed(session, runtime, "shift")
    return Response(status_code=204)


# --- breaks ---------------------------------------------------------------------------------------------------


async def _break(session: SessionDep, shift_id: IdPath, break_id: IdPath) -> ShiftBreak:
    row = await repo.get(session, ShiftBreak, break_id)
    if row is None or row.shift_id != shift_id:
        raise NotFound(f"No break {break_id} in shift {shift_id}.", details={"id": break_id})
    return row


async def _check_breaks(session: SessionDep, shift: Shift) -> None:
    """After the change: every break inside the shift (domain ``Shift``), none overlapping another, actual
    times ordered."""
    breaks = await repo.breaks_of(session, shift.id)
    domain.Shift(
        str(shift.user_id),
        shift.starts_at,
        shift.ends_at,
        tuple(domain.Break(b.kind, b.starts_at, b.ends_at) for b in breaks),
    )
    ordered = sorted(breaks, key=lambda b: b.starts_at)
    for a, b in pairwise(ordered):
        if b.starts_at < a.ends_at:
            raise domain.ShiftError(f"breaks {a.id} and {b.id} overlap")
    for b in breaks:
        if b.actual_start is not None and b.actual_end is not None and b.actual_end < b.actual_start:
            raise domain.ShiftError(f"break {b.id} actually ended before it started")


@router.get("/shifts/{shift_id}/breaks", response_model=list[BreakOut], summary="A shift's planned breaks")
async def list_breaks(shift_id: IdPath, _: Staff, session: SessionDep) -> list[ShiftBreak]:
    await crud.get_or_404(session, Shift, shift_id, "shift")
    return list(await repo.breaks_of(session, shift_id))


@router.post("/shifts/{shift_id}/breaks", response_model=BreakOut, status_code=201, summary="Plan a break")
async def create_break(
    shift_id: IdPath, body: BreakCreate, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> ShiftBreak:
    shift = await crud.get_or_404(session, Shift, shift_id, "shift")
    _check_times(body.model_dump())
    row = await crud.create(
        session, principal.user_id, "shift_break", ShiftBreak(shift_id=shift_id, **body.model_dump())
    )
    await _check_breaks(session, shift)
    crud.config_changed(session, runtime, "shift_break")
    return row


@router.patch("/shifts/{shift_id}/breaks/{break_id}", response_model=BreakOut, summary="Change a break")
async def update_break(
    shift_id: IdPath, break_id: IdPath, body: BreakUpdate, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> ShiftBreak:
    shift = await crud.get_or_404(session, Shift, shift_id, "shift")
    row = await _break(session, shift_id, break_id)
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(ShiftBreak, changes)
    _check_times({"starts_at": row.starts_at, "ends_at": row.ends_at} | changes)
    await crud.update(session, principal.user_id, "shift_break", row, changes)
    await _check_breaks(session, shift)
    crud.config_changed(session, runtime, "shift_break")
    return row


@router.delete("/shifts/{shift_id}/breaks/{break_id}", status_code=204, summary="Cancel a break")
async def delete_break(
    shift_id: IdPath, break_id: IdPath, principal: Staff, session: SessionDep, runtime: RuntimeDep
) -> Response:
    row = await _break(session, shift_id, break_id)
    await crud.delete(session, principal.user_id, "shift_break", row)
    crud.config_changed(session, runtime, "shift_break")
    return Response(status_code=204)


def _check_times(values: dict[str, Any]) -> None:
    """Before the flush: the table's CHECK would otherwise turn an inverted break into a 409."""
    if values["ends_at"] <= values["starts_at"]:
        raise domain.ShiftError("a break ends before it starts")
