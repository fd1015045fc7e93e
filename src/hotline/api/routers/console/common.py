"""What the console routers share: the console service, which lines a user sees, and call access rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.api.deps import RuntimeDep
from hotline.api.params import IdPath
from hotline.api.security import Principal
from hotline.db.models import Call
from hotline.db.repositories import calls as calls_repo
from hotline.errors import Forbidden, NotFound
from hotline.services.console import ConsoleService, console_service

MAX_ID = 2_147_483_647
"""Ids are 32-bit in PostgreSQL; a larger one is refused as invalid (422) instead of overflowing the driver."""
CallId = Annotated[int, Path(ge=1, le=MAX_ID, description="call id")]


async def get_console(runtime: RuntimeDep) -> ConsoleService:
    return console_service(runtime)


ConsoleDep = Annotated[ConsoleService, Depends(get_console)]


def visible_lines(principal: Principal) -> set[int] | None:
    """None = every line (staff); an operator sees the lines they serve (read with their token, see security.py)."""
    return None if principal.is_staff else set(principal.line_ids or ())


async def visible_call(session: AsyncSession, principal: Principal, call_id: IdPath) -> Call:
    """The call, if this user may see it (staff: any; operator: calls of their lines or that they took)."""
    call = await calls_repo.get_call(session, call_id)
    if call is not None and not principal.is_staff and call.operator != principal.username:
        lines = visible_lines(principal)
        if lines is not None and call.line_id not in lines:
            call = None
    if call is None:
        raise NotFound(f"No call {call_id}.", details={"call_id": call_id})
    return call


def require_own_call(principal: Principal, call: Call, what: str) -> None:
    """Registration, transfer and recordings: the operator who took the call, or staff."""
    if not principal.is_staff and call.operator != principal.username:
        raise Forbidden(f"Only the operator who took call {call.id} or a supervisor may {what}.",
                        details={"call_id": call.id})  # fmt: skip
