"""Query parameters shared by the report endpoints: period, line and time zone, resolved to UTC instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import MAX_ID
from hotline.db.models import Line
from hotline.errors import InvalidInput, NotFound
from hotline.reports import service
from hotline.settings import Settings

From = Annotated[
    str | None,
    Query(alias="from", max_length=40, description="start: a date (local midnight) or ISO 8601 time with zone"),
]
To = Annotated[str | None, Query(alias="to", max_length=40, description="end (exclusive): a date or ISO time")]
LineParam = Annotated[int | None, Query(alias="line", ge=1, le=MAX_ID, description="line id (= advertising source)")]
TzParam = Annotated[
    str | None, Query(alias="tz", max_length=64, description="IANA zone for hours of day (default: line's)")
]


def parse_when(value: str, name: str) -> datetime | date:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"'{name}' must be a date (2026-11-23) or an ISO 8601 time with zone") from exc


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    tz: tzinfo
    line_id: int | None


async def resolve(
    session: AsyncSession,
    settings: Settings,
    *,
    since: str | None,
    until: str | None,
    line_id: int | None,
    tz_name: str | None,
    default_days: int = 7,
) -> Period:
    """``from`` missing: the week after the first call. ``to`` missing: ``default_days`` after ``from``."""
    if tz_name is None and line_id is not None:
        line = await session.get(Line, line_id)
        if line is None:
            raise NotFound(f"line {line_id} does not exist", details={"line": line_id})
        tz_name = line.timezone
    tz = service.resolve_tz(tz_name or settings.timezone)
    if since is None:
        start, end = await service.first_week(session, tz)
    else:
        start = service.as_start(parse_when(since, "from"), tz)
        end = start + timedelta(days=default_days)
    if until is not None:
        end = service.as_start(parse_when(until, "to"), tz)
    service.check_period(start, end)
    return Period(start, end, tz, line_id)


async def period_report(
    session: SessionDep,
    runtime: RuntimeDep,
    since: From = None,
    until: To = None,
    line: LineParam = None,
    tz: TzParam = None,
) -> service.Report:
    """The report of the period the query asks for (``from``, ``to``, ``line``, ``tz``)."""
    period = await resolve(session, runtime.settings, since=since, until=until, line_id=line, tz_name=tz)
    return await service.build(session, start=period.start, end=period.end, tz=period.tz, line_id=period.line_id)


async def first_week_report(
    session: SessionDep, runtime: RuntimeDep, since: From = None, line: LineParam = None, tz: TzParam = None
) -> service.Report:
    """The first week's report: the week after the first call, or the seven days from ``from``."""
    return await period_report(session, runtime, since, None, line, tz)


# Declare these after the role dependency (``Staff``): FastAPI solves dependencies in order, so the caller is
# checked before any report work is done.
PeriodReport = Annotated[service.Report, Depends(period_report)]
FirstWeekReport = Annotated[service.Report, Depends(first_week_report)]
