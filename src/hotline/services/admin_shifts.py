"""Shift patterns as stored (``slots`` JSON) ↔ the domain's ``ShiftPattern``.

Stored slot format (what the admin API accepts and returns)::

    {"weekday": 0, "start": "09:00", "end": "17:00",
     "breaks": [{"kind": "lunch", "offset_min": 240, "length_min": 30}]}

``weekday`` 0 = Monday; times are local to the pattern's zone (``"24:00"`` = midnight at the end of the day);
``offset_min`` is minutes of work from the shift's start (elapsed, so DST never moves a break).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from hotline.domain.shifts import PlannedBreak, ShiftError, ShiftPattern, ShiftTemplate
from hotline.services.schedules import parse_wall_time, zone

__all__ = ["pattern_from_slots"]


def pattern_from_slots(operator: str, timezone: str, slots: Iterable[Mapping[str, Any]]) -> ShiftPattern:
    """The domain pattern of stored slots; raises ``ShiftError`` (a 422 ``invalid-shift``) if they do not form
    one (overlapping shifts, breaks outside the shift or outside the allowed lengths, ...)."""
    templates = []
    for i, slot in enumerate(slots):
        try:
            breaks = tuple(
                PlannedBreak(
                    b["kind"], timedelta(minutes=int(b["offset_min"])), timedelta(minutes=int(b["length_min"]))
                )
                for b in slot.get("breaks", ())
            )
            templates.append(
                ShiftTemplate(
                    int(slot["weekday"]), parse_wall_time(slot["start"]), parse_wall_time(slot["end"]), breaks
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ShiftError):
                raise
            raise ShiftError(f"slot {i} is not a valid slot: {exc}") from None
    return ShiftPattern(operator=operator, tz=zone(timezone), templates=tuple(templates))
