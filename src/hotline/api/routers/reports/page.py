"""The printable first-week report page (HTML with inline SVG; staff, bearer token in the Authorization header
— never in the URL, where it would end up in access logs)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.routers.reports.params import From, LineParam, TzParam, resolve
from hotline.api.security import Staff
from hotline.reports import page, service

router = APIRouter(tags=["reports"])


@router.get("/reports/first-week", response_class=HTMLResponse, summary="First-week report page (HTML)")
async def first_week_page(
    _: Staff,
    session: SessionDep,
    runtime: RuntimeDep,
    since: From = None,
    line: LineParam = None,
    tz: TzParam = None,
) -> HTMLResponse:
    period = await resolve(session, runtime.settings, since=since, until=None, line_id=line, tz_name=tz)
    report = await service.build(session, start=period.start, end=period.end, tz=period.tz, line_id=period.line_id)
    html = page.render(
        service.summary_json(report),
        service.findings_json(report),
        title="Hotline — first week",
        generated_at=datetime.now(UTC),
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Security-Policy": _CSP})


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
