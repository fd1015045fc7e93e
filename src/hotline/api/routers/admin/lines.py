"""Lines (dedicated numbers) and which operators serve them, at which priority.

A line rings on one PBX (``pbx_id``, one of the configured ids; the first PBX by default). A number is unique per
PBX: the same number on two PBXs is two lines. The first PBX's id is stored as NULL (``Line.pbx_id`` says why),
so the audit log shows ``pbx_id: null`` for those lines; the API always shows the id.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import IdPath
from hotline.api.schemas.admin import AssignmentIn, AssignmentOut, LineCreate, LineOut, LineUpdate
from hotline.api.schemas.pbx import pbx_context
from hotline.api.security import AdminOnly, Staff, forget_after_commit
from hotline.bootstrap import Runtime
from hotline.db.models import Line, OperatorLine, User
from hotline.db.repositories import admin as repo
from hotline.db.repositories.pbx import on_pbx
from hotline.errors import Conflict
from hotline.services import admin_crud as crud
from hotline.services.admin_validation import check_line
from hotline.services.pbx_ids import PbxIds
from hotline.services.schedules import schedule_for_line

router = APIRouter(prefix="/api/admin/lines", tags=["admin: lines"])


def _out(runtime: Runtime, line: Line) -> LineOut:
    return LineOut.model_validate(line, context=pbx_context(runtime.settings))


def _stored_pbx(runtime: Runtime, pbx_id: str | None) -> str | None:
    """A configured PBX id (else 422 naming the field and the known ids) as the row stores it."""
    ids = PbxIds.of(runtime.settings)
    return ids.stored(ids.check(pbx_id) if pbx_id is not None else None)


async def _check_number_free(
    session: SessionDep, runtime: Runtime, number: str, stored_pbx: str | None, line_id: int | None = None
) -> None:
    """The number is not another line's on the same PBX (the same number on another PBX is another line)."""
    ids = PbxIds.of(runtime.settings)
    pbx_id = ids.shown(stored_pbx)
    found = await repo.list_rows(
        session, Line, Line.number == number, on_pbx(Line.pbx_id, pbx_id, first=ids.is_first(pbx_id))
    )
    if any(line.id != line_id for line in found):
        raise Conflict(
            f"the number {number} already belongs to another line on PBX {pbx_id}",
            details={"field": "number", "pbx_id": pbx_id},
        )


@router.get("", response_model=list[LineOut], summary="All lines")
async def list_lines(_: Staff, session: SessionDep, runtime: RuntimeDep) -> list[LineOut]:
    return [_out(runtime, line) for line in await repo.list_rows(session, Line, order_by=(Line.number, Line.id))]


@router.get("/{line_id}", response_model=LineOut, summary="One line")
async def get_line(line_id: IdPath, _: Staff, session: SessionDep, runtime: RuntimeDep) -> LineOut:
    return _out(runtime, await crud.get_or_404(session, Line, line_id, "line"))


@router.post("", response_model=LineOut, status_code=201, summary="Create a line")
async def create_line(body: LineCreate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep) -> LineOut:
    values = body.model_dump()
    values["pbx_id"] = _stored_pbx(runtime, body.pbx_id)
    check_line(values)
    await _check_number_free(session, runtime, body.number, values["pbx_id"])
    line = await crud.create(session, principal.user_id, "line", Line(**values))
    await schedule_for_line(session, line.id)  # 24/7 with no ranges is always valid; checked for symmetry
    crud.config_changed(session, runtime, "line")
    return _out(runtime, line)


@router.patch("/{line_id}", response_model=LineOut, summary="Change a line (only the fields sent)")
async def update_line(
    line_id: IdPath, body: LineUpdate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> LineOut:
    """Moving a line to another PBX (``pbx_id``) moves its calls' tagging and its routing at once; apply the
    dialplan on both PBXs so the number and queue leave the old one and arrive on the new one."""
    line = await crud.get_or_404(session, Line, line_id, "line")
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(Line, changes)
    if "pbx_id" in changes:
        changes["pbx_id"] = _stored_pbx(runtime, changes["pbx_id"])
    check_line(_merged(line, changes))
    if "number" in changes or "pbx_id" in changes:
        number = changes.get("number", line.number)
        await _check_number_free(session, runtime, number, changes.get("pbx_id", line.pbx_id), line_id)
    await crud.update(session, principal.user_id, "line", line, changes)
    await schedule_for_line(session, line_id)  # a new zone or always_open must still fit the hours
    crud.config_changed(session, runtime, "line")
    return _out(runtime, line)


def _merged(line: Line, changes: dict[str, object]) -> dict[str, object]:
    current = {c: getattr(line, c) for c in ("closed_action", "forward_to")}
    return current | changes


@router.delete("/{line_id}", status_code=204, summary="Delete a line that never had calls")
async def delete_line(line_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep) -> Response:
    """A line with call records is refused (409): deleting it would orphan its history in every report.
    Deactivate it instead (``PATCH {"active": false}``). Its hours, campaigns, exceptions, operator assignments,
    script and tariffs go with it."""
    line = await crud.get_or_404(session, Line, line_id, "line")
    calls = await repo.calls_on_line(session, line_id)
    if calls:
        raise Conflict(
            f"line {line.number} has {calls} call records; deactivate it (active=false) instead of deleting it",
            details={"calls": calls},
        )
    await crud.delete(session, principal.user_id, "line", line)
    forget_after_commit(session, runtime, everyone=True)  # operators remembered as serving it
    crud.config_changed(session, runtime, "line")
    return Response(status_code=204)


# --- operator assignments -------------------------------------------------------------------------------------


def _assignment(link: OperatorLine, user: User) -> AssignmentOut:
    return AssignmentOut(line_id=link.line_id, user_id=link.user_id, username=user.username, priority=link.priority)


@router.get("/{line_id}/operators", response_model=list[AssignmentOut], summary="Who serves this line")
async def list_assignments(line_id: IdPath, _: Staff, session: SessionDep) -> list[AssignmentOut]:
    await crud.get_or_404(session, Line, line_id, "line")
    return [_assignment(link, user) for link, user in await repo.assignments_of_line(session, line_id)]


@router.put(
    "/{line_id}/operators/{user_id}", response_model=AssignmentOut, summary="Assign a user to a line, or reprioritise"
)
async def put_assignment(
    line_id: IdPath, user_id: IdPath, body: AssignmentIn, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> AssignmentOut:
    await crud.get_or_404(session, Line, line_id, "line")
    user = await crud.get_or_404(session, User, user_id, "user")
    link = await repo.get(session, OperatorLine, (user_id, line_id))
    if link is None:
        link = await crud.create(
            session,
            principal.user_id,
            "operator_line",
            OperatorLine(user_id=user_id, line_id=line_id, priority=body.priority),
        )
    else:
        await crud.update(session, principal.user_id, "operator_line", link, {"priority": body.priority})
    forget_after_commit(session, runtime, user_id=user_id)  # the lines they see
    crud.config_changed(session, runtime, "operator_line")
    return _assignment(link, user)


@router.delete("/{line_id}/operators/{user_id}", status_code=204, summary="Stop a user serving a line")
async def delete_assignment(
    line_id: IdPath, user_id: IdPath, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Response:
    link = await crud.get_or_404(session, OperatorLine, (user_id, line_id), "operator assignment")
    await crud.delete(session, principal.user_id, "operator_line", link)
    forget_after_commit(session, runtime, user_id=user_id)  # the lines they see
    crud.config_changed(session, runtime, "operator_line")
    return Response(status_code=204)
