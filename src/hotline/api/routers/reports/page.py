"""The printable first-week report page (HTML with inline SVG; staff, bearer token in the Authorization header
— never in the URL, where it would end up in access logs)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from hotline.api.routers.reports.params import FirstWeekReport
from hotline.api.security import Staff
from hotline.reports import page, service

router = APIRouter(tags=["reports"])


@router.get("/reports/first-week", response_class=HTMLResponse, summary="First-week report page (HTML)")
async def first_week_page(_: Staff, report: FirstWeekReport) -> HTMLResponse:
    html = page.render(
        service.summary_json(report),
        service.findings_json(report),
        title="Hotline — first week",
        generated_at=datetime.now(UTC),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP})


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
