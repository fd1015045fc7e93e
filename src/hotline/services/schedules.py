"""A line's hours as the domain's ``Schedule``, built from its rows: weekly ranges, campaigns, exceptions.

One mapping from rows to ``Schedule`` (``db.repositories.routing.build_schedule``) serves both users: the admin
API, to validate a change (build the schedule after the change, inside the transaction: an overlap or an invalid
range raises ``ScheduleError``, a 422, and the change rolls back), and routing, to evaluate the line (a line whose
stored rows are invalid is skipped and reported there). Exception ranges are stored as
``[{"start": "HH:MM", "end": "HH:MM"}]``; ``"24:00"`` and ``"00:00"`` as an end both mean midnight at the end of the
day.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import Line
from hotline.db.repositories import admin as repo
from hotline.db.repositories.routing import build_schedule
from hotline.domain.hours import Schedule, parse_wall_time, zone
from hotline.errors import NotFound

__all__ = ["build_schedule", "parse_wall_time", "schedule_for_line", "zone"]


async def schedule_for_line(session: AsyncSession, line_id: int) -> Schedule:
    """The current ``Schedule`` of line ``line_id`` as this session sees it (pending changes included).

    Raises ``NotFound`` for an unknown line and ``ScheduleError`` if the stored rows do not form a valid schedule
    (the admin API never commits such rows).
    """
    line = await repo.get(session, Line, line_id)
    if line is None:
        raise NotFound(f"No line {line_id}.", details={"line_id": line_id})
    campaigns = await repo.campaigns_of(session, line_id)
    ranges = await repo.campaign_ranges(session, [c.id for c in campaigns])
    weekly = [*await repo.weekly_rows(session, line_id), *(r for rows in ranges.values() for r in rows)]
    return build_schedule(line, weekly, campaigns, await repo.exceptions_of(session, line_id), strict=True)
