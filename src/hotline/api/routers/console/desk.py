"""The operator's desk: my day (shift and breaks), my lines' live queue, my current call with the caller's history,
the script, topics, directory and prepared-answer search."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.routers.console.common import MAX_ID, visible_lines
from hotline.api.schemas.calls import CallOut
from hotline.api.schemas.console import (
    AnswerOut,
    BreakOut,
    ContactOut,
    CurrentCallOut,
    HistoryEntryOut,
    LineQueueOut,
    MyDayOut,
    QueuedCallerOut,
    RegistrationOut,
    ScriptOut,
    ShiftOut,
    TopicOut,
)
from hotline.api.security import AnyUser, Principal
from hotline.db.models import Call
from hotline.db.repositories import console as console_repo
from hotline.db.repositories import users as users_repo
from hotline.domain.calls import CallRecord
from hotline.errors import Forbidden, NotFound
from hotline.services.push import queue_entries

router = APIRouter(prefix="/api/console", tags=["console"])

SEARCH_LIMIT = 50


@router.get("/day", response_model=MyDayOut, summary="My shifts today, with the breaks planned and those left")
async def my_day(principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> MyDayOut:
    zone = ZoneInfo(runtime.settings.timezone)
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(0), zone).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), time(0), zone).astimezone(UTC)
    shifts = []
    for shift, breaks in await console_repo.shifts_between(session, principal.user_id, start, end):
        outs = [BreakOut(id=b.id, kind=b.kind, starts_at=b.starts_at, ends_at=b.ends_at, actual_start=b.actual_start,
                         actual_end=b.actual_end, taken=b.actual_start is not None) for b in breaks]  # fmt: skip
        left = sum(1 for b in breaks if b.actual_start is None and b.ends_at > now)
        shifts.append(ShiftOut(id=shift.id, starts_at=shift.starts_at, ends_at=shift.ends_at, breaks=outs,
                               breaks_left=left))  # fmt: skip
    return MyDayOut(date=today.isoformat(), timezone=runtime.settings.timezone, shifts=shifts)


def _live_records(runtime: RuntimeDep) -> list[CallRecord]:
    return [r for listener in runtime.listeners.values() for r in listener.tracker.live_calls()]


@router.get("/queue", response_model=list[LineQueueOut], summary="Callers waiting on my lines, in queue order")
async def my_queue(principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> list[LineQueueOut]:
    lines = visible_lines(principal)
    now = datetime.now(UTC)
    waiting: dict[int, list[CallRecord]] = {line: [] for line in sorted(lines or ())}
    for record in _live_records(runtime):
        if record.line_id is None or (lines is not None and record.line_id not in lines):
            continue
        if record.queued_at is not None and record.answered_at is None:
            waiting.setdefault(record.line_id, []).append(record)
    out = []
    for line_id, calls in sorted(waiting.items()):
        calls.sort(key=lambda r: r.queued_at or now)
        out.append(LineQueueOut(line_id=line_id, waiting=[QueuedCallerOut(**e) for e in queue_entries(calls, now)]))
    return out


async def _history(
    session: SessionDep, principal: Principal, call: Call | None, number: str | None
) -> list[HistoryEntryOut]:
    if not number:
        return []
    lines = visible_lines(principal)
    rows = await console_repo.caller_history(session, number, exclude_call_id=call.id if call else None)
    return [
        HistoryEntryOut(call=CallOut.model_validate(row.call), topic=row.topic,
                        registration=RegistrationOut.model_validate(row.registration) if row.registration else None)
        for row in rows
        if lines is None or row.call.line_id in lines or row.call.operator == principal.username
    ]  # fmt: skip


@router.get(
    "/current-call",
    response_model=CurrentCallOut,
    summary="The call I am talking (or wrapping up), with the caller's earlier calls and registrations",
)
async def current_call(principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> CurrentCallOut:
    call: Call | None = None
    state = "none"
    for record in _live_records(runtime):
        if record.operator == principal.username and record.answered_at is not None:
            call = await console_repo.call_by_key(session, record.pbx_id, record.linkedid)
            if call is not None:
                state = "talking"
                break
    if call is None:
        latest = await console_repo.latest_presence(session, principal.user_id)
        if latest is not None and latest.state == "wrapup":
            candidate = await console_repo.last_answered_by(session, principal.username, latest.at - timedelta(days=1))
            if candidate is not None and await console_repo.registration_for(session, candidate.id) is None:
                call, state = candidate, "wrapup"
    if call is None:
        return CurrentCallOut(state="none", call=None, registration=None, history=[])
    registration = await console_repo.registration_for(session, call.id)
    return CurrentCallOut(
        state=state,  # type: ignore[arg-type]
        call=CallOut.model_validate(call),
        registration=RegistrationOut.model_validate(registration) if registration else None,
        history=await _history(session, principal, call, call.caller_number),
    )


@router.get("/history", response_model=list[HistoryEntryOut],
            summary="Earlier calls from a number (on my lines), with their registrations: the screen pop")  # fmt: skip
async def caller_history(
    principal: AnyUser,
    session: SessionDep,
    caller_number: Annotated[str, Query(min_length=1, max_length=64)],
    call_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the call being offered: left out of its history")
    ] = None,
) -> list[HistoryEntryOut]:
    rows = await _history(session, principal, None, caller_number)
    return [row for row in rows if row.call.id != call_id]


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{organisation}``, ``{operator}`` and ``{line}``; other braces stay as written (no format())."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@router.get("/script", response_model=ScriptOut, summary="Greeting and closing for a line (else the default)")
async def script(
    principal: AnyUser,
    session: SessionDep,
    line: Annotated[int | None, Query(ge=1, le=MAX_ID, description="line id")] = None,
) -> ScriptOut:
    lines = visible_lines(principal)
    if line is not None and lines is not None and line not in lines:
        raise Forbidden("You do not serve this line.", details={"line": line})
    found = await console_repo.script_for(session, line)
    if found is None:
        raise NotFound("No script is configured (neither for this line nor a default).", details={"line": line},
                       error_id="no-script")  # fmt: skip
    user = await users_repo.get(session, principal.user_id)
    line_row = await console_repo.line(session, line) if line is not None else None
    values = {
        "organisation": found.organisation_name,
        "operator": (user.full_name or user.username) if user else principal.username,
        "line": line_row.name if line_row else "",
    }
    return ScriptOut(
        line_id=found.line_id,
        organisation_name=found.organisation_name,
        greeting=_fill(found.greeting_template, values),
        closing=_fill(found.closing_template, values),
    )


@router.get("/topics", response_model=list[TopicOut], summary="Topics, for the registration form's picker")
async def topics(principal: AnyUser, session: SessionDep) -> list[TopicOut]:
    return [TopicOut.model_validate(t) for t in await console_repo.topics(session)]


@router.get("/directory", response_model=list[ContactOut],
            summary="Specialists by name, title, department or topic (case-insensitive)")  # fmt: skip
async def directory(
    principal: AnyUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    topic: Annotated[int | None, Query(ge=1, le=MAX_ID, description="topic id")] = None,
) -> list[ContactOut]:
    rows = await console_repo.search_contacts(session, (q or "").strip() or None, topic, limit=SEARCH_LIMIT)
    return [
        ContactOut(id=c.id, name=c.name, title=c.title, department=c.department, phone=c.phone, extension=c.extension,
                   email=c.email, notes=c.notes, topics=names)
        for c, names in rows
    ]  # fmt: skip


@router.get(
    "/answers",
    response_model=list[AnswerOut],
    summary="Prepared answers by topic and/or words (every word must appear); sensitive ones flagged",
)
async def answers(
    principal: AnyUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    topic: Annotated[int | None, Query(ge=1, le=MAX_ID, description="topic id")] = None,
) -> list[AnswerOut]:
    words = (q or "").split()[:10]
    rows = await console_repo.search_answers(session, words, topic, limit=SEARCH_LIMIT)
    return [AnswerOut(id=a.id, topic_id=a.topic_id, topic=name, title=a.title, body=a.body, sensitive=a.sensitive)
            for a, name in rows]  # fmt: skip
