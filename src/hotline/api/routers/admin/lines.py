"""Lines (dedicated numbers) and which operators serve them, at which priority."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import IdPath, OptionalIdQuery
from hotline.api.schemas.admin import AssignmentIn, AssignmentOut, LineCreate, LineOut, LineUpdate
from hotline.api.security import AdminOnly, Staff, forget_after_commit
from hotline.db.models import Line, OperatorLine, User
from hotline.db.repositories import admin as repo
from hotline.errors import Conflict
from hotline.services import admin_crud as crud
from hotline.services.admin_validation import check_line
from hotline.services.schedules import schedule_for_line

router = APIRouter(prefix="/api/admin/lines", tags=["admin: lines"])


async def _check_number_free(session: SessionDep, number: str, line_id: OptionalIdQuery = None) -> None:
    found = await repo.list_rows(session, Line, Line.number == number)
    if any(line.id != line_id for line in found):
        raise Conflict(f"the number {number} already belongs to another line", details={"field": "number"})


@router.get("", response_model=list[LineOut], summary="All lines")
async def list_lines(_: Staff, session: SessionDep) -> list[Line]:
    return list(await repo.list_rows(session, Line, order_by=(Line.number,)))


@router.get("/{line_id}", response_model=LineOut, summary="One line")
async def get_line(line_id: IdPath, _: Staff, session: SessionDep) -> Line:
    return await crud.get_or_404(session, Line, line_id, "line")


@router.post("", response_model=LineOut, status_code=201, summary="Create a line")
async def create_line(body: LineCreate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep) -> Line:
    values = body.model_dump()
    check_line(values)
    await _check_number_free(session, body.number)
    line = await crud.create(session, principal.user_id, "line", Line(**values))
    await schedule_for_line(session, line.id)  # 24/7 with no ranges is always valid; checked for symmetry
    crud.config_changed(session, runtime, "line")
    return line


@router.patch("/{line_id}", response_model=LineOut, summary="Change a line (only the fields sent)")
async def update_line(
    line_id: IdPath, body: LineUpdate, principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> Line:
    line = await crud.get_or_404(session, Line, line_id, "line")
    changes = body.model_dump(exclude_unset=True)
    crud.refuse_nulls(Line, changes)
    check_line(_merged(line, changes))
    if "number" in changes:
        await _check_number_free(session, changes["number"], line_id)
    await crud.update(session, principal.user_id, "line", line, changes)
    await schedule_for_line(session, line_id)  # a new zone or always_open must still fit the hours
    crud.config_changed(session, runtime, "line")
    return line


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
