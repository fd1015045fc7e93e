"""Routing endpoints: is a line open and who staffs it, operators' schedules, presence.

A presence change is validated by the domain's state machine, stored, and — after the commit — pokes the routing
of every PBX, which pauses, unpauses, adds or removes the operator's queue memberships.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import IdPath
from hotline.api.schemas.routing import (
    BreakOut,
    LineStatusOut,
    PresenceIn,
    PresenceOut,
    QueueMemberOut,
    RoutingStatusOut,
    ScheduleOut,
    ShiftOut,
)
from hotline.api.security import AnyUser, Principal, Staff
from hotline.bootstrap import Runtime
from hotline.db import after_commit
from hotline.db.models import User
from hotline.db.repositories import routing as routing_repo
from hotline.domain.hours import evaluate
from hotline.domain.routing import queue_name
from hotline.domain.shifts import Presence, PresenceState, transition
from hotline.errors import Forbidden, InvalidInput, NotFound
from hotline.services.console import console_service
from hotline.services.pbx_ids import PbxIds
from hotline.services.routing_sync import poke_all

router = APIRouter(tags=["routing"])

MAX_SCHEDULE_SPAN = timedelta(days=92)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    return value.astimezone(UTC)


async def _operator(session: AsyncSession, principal: Principal, user_id: IdPath) -> User:
    """The user ``user_id`` if the principal may see or act for them: themselves, or anyone for staff.

    Another user is "not found" for an operator (not 403): operators do not learn which user ids exist, and every
    role these endpoints admit gets an answer about its own data.
    """
    user = await routing_repo.operator_user(session, user_id)
    if user is None or (user.id != principal.user_id and not principal.is_staff):
        raise NotFound(
            f"no user with id {user_id} among those you may see (operators see only themselves)",
            details={"user": user_id},
        )
    return user


def _queue_members(runtime: Runtime, queue: str, line_pbx: str) -> tuple[list[QueueMemberOut], datetime | None]:
    """From the line's PBX's routing service's last QueueStatus, else from its listener's resync snapshot (another
    PBX may have a queue of that name, which is not this line's)."""
    members: list[QueueMemberOut] = []
    read_at: datetime | None = None
    syncs = getattr(runtime, "routing", None) or {}
    for pbx_id, listener in sorted(runtime.listeners.items()):
        if pbx_id != line_pbx:
            continue
        sync = syncs.get(pbx_id)
        if sync is not None and sync.queue_status_at is not None:
            read_at = max(read_at or sync.queue_status_at, sync.queue_status_at)
            for m in sync.queue_status.get(queue, []):
                members.append(
                    QueueMemberOut(
                        pbx_id=pbx_id,
                        interface=m.interface,
                        name=m.name,
                        penalty=m.penalty,
                        paused=m.paused,
                        reason=m.reason if m.paused else None,
                        in_call=m.in_call,
                    )
                )
            continue
        for frame in listener.queue_members.get(queue, {}).values():
            paused = frame.get("Paused") == "1"
            penalty = frame.get("Penalty") or "0"
            members.append(
                QueueMemberOut(
                    pbx_id=pbx_id,
                    interface=frame.get("Location", ""),
                    name=frame.get("Name", ""),
                    penalty=int(penalty) if penalty.isdigit() else 0,
                    paused=paused,
                    reason=(frame.get("PausedReason") or None) if paused else None,
                    in_call=frame.get("InCall") == "1",
                )
            )
    return members, read_at


@router.get(
    "/api/lines/{line_id}/status", response_model=LineStatusOut, summary="Open now? Why, until when, who staffs it"
)
async def line_status(line_id: IdPath, principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> LineStatusOut:
    line = await routing_repo.get_line(session, line_id)
    if line is None:
        raise NotFound(f"no line with id {line_id}", details={"line": line_id})
    if not principal.is_staff and line_id not in (principal.line_ids or ()):
        raise Forbidden("You do not serve this line.", details={"line": line_id})
    schedule = (await routing_repo.schedules(session, [line_id], include_inactive=True))[line_id]
    if isinstance(schedule, str):
        raise InvalidInput(f"line {line_id} has invalid hours: {schedule}", details={"line": line_id})
    status = evaluate(schedule, _now())
    queue = queue_name(line_id)
    pbx_id = PbxIds.of(runtime.settings).shown(line.pbx_id)
    members, read_at = _queue_members(runtime, queue, pbx_id)
    return LineStatusOut(
        line_id=line_id,
        pbx_id=pbx_id,
        name=line.name,
        active=line.active,
        queue=queue,
        open=status.open,
        why=status.reason,
        next_change=status.next_change,
        members=members,
        members_read_at=read_at,
    )


@router.get("/api/operators/{user_id}/schedule", response_model=ScheduleOut, summary="Shifts and planned breaks")
async def operator_schedule(
    user_id: IdPath,
    principal: AnyUser,
    session: SessionDep,
    since: Annotated[datetime | None, Query(alias="from", description="ISO 8601 with zone; default now")] = None,
    until: Annotated[
        datetime | None, Query(alias="to", description="ISO 8601 with zone; default from + 7 days")
    ] = None,
) -> ScheduleOut:
    user = await _operator(session, principal, user_id)
    start = _aware(since, "from") if since is not None else _now()
    end = _aware(until, "to") if until is not None else start + timedelta(days=7)
    if end <= start:
        raise InvalidInput("'to' must be after 'from'", details={"field": "to"})
    if end - start > MAX_SCHEDULE_SPAN:
        raise InvalidInput(f"ask for at most {MAX_SCHEDULE_SPAN.days} days at once", details={"field": "to"})
    rows = await routing_repo.shift_rows(session, start, end, user_id=user.id)
    shifts = [
        ShiftOut(
            id=row.id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            breaks=[
                BreakOut(
                    id=b.id,
                    kind=b.kind,
                    starts_at=b.starts_at,
                    ends_at=b.ends_at,
                    actual_start=b.actual_start,
                    actual_end=b.actual_end,
                )
                for b in breaks
            ],
        )
        for row, breaks, _ in rows
    ]
    return ScheduleOut(user_id=user.id, username=user.username, since=start, until=end, shifts=shifts)


async def _current(session: AsyncSession, user: User) -> Presence:
    row = (await routing_repo.latest_presence(session, [user.id])).get(user.id)
    return routing_repo.to_presence(row) if row is not None else Presence(PresenceState.OFFLINE, EPOCH)


def _presence_out(user: User, presence: Presence, known: bool) -> PresenceOut:
    return PresenceOut(
        user_id=user.id,
        username=user.username,
        state=str(presence.state),
        reason=str(presence.reason) if presence.reason else None,
        since=presence.since if known else None,
    )


@router.get("/api/operators/{user_id}/presence", response_model=PresenceOut, summary="What the operator is doing")
async def get_presence(user_id: IdPath, principal: AnyUser, session: SessionDep) -> PresenceOut:
    user = await _operator(session, principal, user_id)
    current = await _current(session, user)
    return _presence_out(user, current, current.since != EPOCH)


@router.post("/api/operators/{user_id}/presence", response_model=PresenceOut, summary="Log in, pause, wrap up, log out")
async def set_presence(
    user_id: IdPath, body: PresenceIn, principal: AnyUser, session: SessionDep, runtime: RuntimeDep
) -> PresenceOut:
    user = await _operator(session, principal, user_id)
    if user.role != routing_repo.OPERATOR_ROLE:
        raise InvalidInput(f"{user.username} is a {user.role}, not an operator: only operators have a presence")
    current = await _current(session, user)
    at = max(_now(), current.since)  # never before the stored state, even if clocks disagree
    new = transition(current, body.state, at, body.reason)  # InvalidTransition → 422 with the reason
    await routing_repo.add_presence(session, user.id, new)

    async def poke() -> None:
        poke_all(runtime, f"presence {user.username}")
        console_service(runtime).publish_presence(
            user.id, user.username, str(new.state), new.reason and str(new.reason), at
        )

    after_commit.after_commit(session, poke)
    return _presence_out(user, new, True)


@router.get("/api/routing/status", response_model=RoutingStatusOut, summary="Each PBX's routing: passes, actions")
async def routing_status(_principal: Staff, runtime: RuntimeDep) -> RoutingStatusOut:
    syncs = getattr(runtime, "routing", None) or {}
    return RoutingStatusOut(pbx=[sync.status() for _, sync in sorted(syncs.items())])
