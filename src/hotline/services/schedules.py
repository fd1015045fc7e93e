"""A line's hours as the domain's ``Schedule``, built from its rows: weekly ranges, campaigns, exceptions.

Used by the admin API to validate a change (build the schedule after the change, inside the transaction: an
overlap or an invalid range raises ``ScheduleError``, a 422, and the change rolls back) and by routing to
evaluate the line. Exception ranges are stored as ``[{"start": "HH:MM", "end": "HH:MM"}]``; ``"24:00"`` and
``"00:00"`` as an end both mean midnight at the end of the day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import Campaign as CampaignRow
from hotline.db.models import HoursException as ExceptionRow
from hotline.db.models import Line, WeeklyHours
from hotline.db.repositories import admin as repo
from hotline.domain.hours import Campaign, HoursException, Schedule, TimeRange, WeeklyRange, parse_wall_time, zone
from hotline.errors import NotFound

__all__ = ["build_schedule", "parse_wall_time", "schedule_for_line", "zone"]


def _weekly(rows: Iterable[WeeklyHours]) -> tuple[WeeklyRange, ...]:
    return tuple(WeeklyRange(r.weekday, r.start_time, r.end_time) for r in rows)


def build_schedule(
    line: Line,
    weekly: Sequence[WeeklyHours],
    campaigns: Sequence[CampaignRow],
    campaign_ranges: Mapping[int, Sequence[WeeklyHours]],
    exceptions: Sequence[ExceptionRow],
) -> Schedule:
    """The domain schedule of these rows; raises ``ScheduleError`` (a 422 ``invalid-schedule``) if invalid."""
    return Schedule(
        tz=zone(line.timezone),
        weekly=_weekly(weekly),
        campaigns=tuple(
            Campaign(
                name=c.name, first_day=c.start_date, last_day=c.end_date, ranges=_weekly(campaign_ranges.get(c.id, ()))
            )
            for c in campaigns
        ),
        exceptions=tuple(
            HoursException(
                first_day=e.start_date,
                last_day=e.end_date,
                reason=e.reason,
                ranges=tuple(
                    TimeRange(parse_wall_time(r["start"]), parse_wall_time(r["end"])) for r in (e.ranges or [])
                ),
            )
            for e in exceptions
        ),
        always_open=line.always_open,
    )


async def schedule_for_line(session: AsyncSession, line_id: int) -> Schedule:
    """The current ``Schedule`` of line ``line_id`` as this session sees it (pending changes included).

    Raises ``NotFound`` for an unknown line and ``ScheduleError`` if the stored rows do not form a valid schedule
    (the admin API never commits such rows).
    """
    line = await repo.get(session, Line, line_id)
    if line is None:
        raise NotFound(f"No line {line_id}.", details={"line_id": line_id})
    campaigns = await repo.campaigns_of(session, line_id)
    return build_schedule(
        line,
        await repo.weekly_rows(session, line_id),
        campaigns,
        await repo.campaign_ranges(session, [c.id for c in campaigns]),
        await repo.exceptions_of(session, line_id),
    )
