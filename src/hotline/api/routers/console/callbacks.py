"""The abandoned-call worklist: callers the hotline owes a call, oldest first; mark done, or dial them back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from hotline.api.deps import SessionDep
from hotline.api.params import IdPath
from hotline.api.routers.console.common import CallId, ConsoleDep, visible_call, visible_lines
from hotline.api.schemas.console import ActionResultOut, WorklistEntryOut
from hotline.api.security import AnyUser
from hotline.db.models import Call
from hotline.db.repositories import console as console_repo
from hotline.db.repositories import users as users_repo
from hotline.errors import Conflict, InvalidInput

router = APIRouter(prefix="/api/callbacks", tags=["console"])


@router.get("", response_model=list[WorklistEntryOut],
            summary="Abandoned or closed-out callers on my lines not called back yet, oldest first")  # fmt: skip
async def worklist(
    principal: AnyUser, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[WorklistEntryOut]:
    lines = visible_lines(principal)
    rows = await console_repo.callback_worklist(session, lines, limit=limit)
    return [WorklistEntryOut(call_id=c.id, line_id=c.line_id, caller_number=c.caller_number,
                             caller_name=c.caller_name, arrived_at=c.arrived_at, outcome=c.outcome, wait_s=c.wait_s)
            for c in rows]  # fmt: skip


async def _worklist_call(session: SessionDep, principal: AnyUser, call_id: IdPath) -> Call:
    call = await visible_call(session, principal, call_id)
    if call.outcome not in console_repo.WORKLIST_OUTCOMES:
        raise Conflict(f"Call {call_id} was {call.outcome}; only abandoned or closed-out calls are called back.",
                       details={"call_id": call_id, "outcome": call.outcome})  # fmt: skip
    return call


@router.post("/{call_id}/done", status_code=204, summary="Mark an abandoned call as called back")
async def mark_done(call_id: CallId, principal: AnyUser, session: SessionDep) -> None:
    call = await _worklist_call(session, principal, call_id)
    if call.called_back_at is None:
        await console_repo.mark_called_back(session, call_id, datetime.now(UTC))


@router.post("/{call_id}/dial", response_model=ActionResultOut,
             summary="Call the caller back from my phone (AMI Originate, sent once, never re-sent)")  # fmt: skip
async def dial(call_id: CallId, principal: AnyUser, session: SessionDep, console: ConsoleDep) -> ActionResultOut:
    call = await _worklist_call(session, principal, call_id)
    if not call.caller_number:
        raise Conflict(f"Call {call_id} has no caller number to call back.", details={"call_id": call_id})
    user = await users_repo.get(session, principal.user_id)
    if user is None or not user.device:
        raise InvalidInput("You have no phone (device) configured; ask an administrator.", details={"field": "device"})
    line = await console_repo.line(session, call.line_id) if call.line_id is not None else None
    caller_id = f'"{line.name}" <{line.number}>' if line else call.number
    return ActionResultOut(**await console.dial_callback(call, user.device, caller_id))
