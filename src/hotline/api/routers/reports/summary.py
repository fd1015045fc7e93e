"""JSON reports for staff: every metric and breakdown of a period, and the findings drawn from them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.routers.reports.params import From, LineParam, To, TzParam, resolve
from hotline.api.security import Staff
from hotline.reports import service

router = APIRouter(prefix="/api/reports", tags=["reports"])


async def _report(session: Any, runtime: Any, since: Any, until: Any, line: Any, tz: Any) -> service.Report:
    period = await resolve(session, runtime.settings, since=since, until=until, line_id=line, tz_name=tz)
    return await service.build(session, start=period.start, end=period.end, tz=period.tz, line_id=period.line_id)


@router.get("/summary", summary="Every metric and breakdown of a period")
async def summary(
    _: Staff,
    session: SessionDep,
    runtime: RuntimeDep,
    since: From = None,
    until: To = None,
    line: LineParam = None,
    tz: TzParam = None,
) -> dict[str, Any]:
    """Counts, service level, ASA, AHT, abandonment, occupancy, longest wait, callbacks; by line, operator,
    topic, hour of day, weekday and hour (series); the waits histogram; telephony cost. ``from`` missing: the
    week after the first call; ``to`` missing: seven days after ``from``."""
    return service.summary_json(await _report(session, runtime, since, until, line, tz))


@router.get("/findings", summary="Strengths and weaknesses of a period, ranked, with their evidence")
async def findings(
    _: Staff,
    session: SessionDep,
    runtime: RuntimeDep,
    since: From = None,
    until: To = None,
    line: LineParam = None,
    tz: TzParam = None,
) -> dict[str, Any]:
    return service.findings_json(await _report(session, runtime, since, until, line, tz))


@router.get("/first-week", summary="Summary and findings of the week after the first call (or ?from=)")
async def first_week(
    _: Staff,
    session: SessionDep,
    runtime: RuntimeDep,
    since: From = None,
    line: LineParam = None,
    tz: TzParam = None,
) -> dict[str, Any]:
    report = await _report(session, runtime, since, None, line, tz)
    return {"summary": service.summary_json(report), "findings": service.findings_json(report)}
