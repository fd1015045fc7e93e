"""JSON reports for staff: every metric and breakdown of a period, and the findings drawn from them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hotline.api.routers.reports.params import FirstWeekReport, PeriodReport
from hotline.api.security import Staff
from hotline.reports import service

router = APIRouter(prefix="/api/reports", tags=["reports"])


@router.get("/summary", summary="Every metric and breakdown of a period")
async def summary(_: Staff, report: PeriodReport) -> dict[str, Any]:
    """Counts, service level, ASA, AHT, abandonment, occupancy, longest wait, callbacks; by line, operator,
    topic, hour of day, weekday and hour (series); the waits histogram; telephony cost. ``from`` missing: the
    week after the first call; ``to`` missing: seven days after ``from``."""
    return service.summary_json(report)


@router.get("/findings", summary="Strengths and weaknesses of a period, ranked, with their evidence")
async def findings(_: Staff, report: PeriodReport) -> dict[str, Any]:
    return service.findings_json(report)


@router.get("/first-week", summary="Summary and findings of the week after the first call (or ?from=)")
async def first_week(_: Staff, report: FirstWeekReport) -> dict[str, Any]:
    return {"summary": service.summary_json(report), "findings": service.findings_json(report)}
