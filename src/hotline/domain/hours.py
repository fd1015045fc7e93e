"""Opening hours of a line: weekly ranges, campaigns and exceptions, evaluated at an instant.

Pure and standard-library only; time is always an argument. The routing decisions (``domain/routing.py``) ask
``evaluate`` whether a line is open, why, and when that will next change, so the scheduler can sleep exactly
until then and the AstDB flag ``hotline/open/<line id>`` flips on time.

Semantics, decided once here:

* **Wall clock.** Ranges are local wall-clock times in the schedule's time zone.
* **Overnight.** A range whose end is at or before its start crosses midnight and belongs to the day it
  *starts*: ``WeeklyRange(FRI, 22:00, 06:00)`` is a Friday range, open until Saturday 06:00. Its reason names
  Friday.
* **24:00.** An end of ``00:00`` means midnight at the end of the day (24:00): ``09:00–00:00`` runs to
  midnight. ``time.max`` is accepted as a spelling of 24:00 and normalised to ``00:00`` (no microsecond hole
  before midnight).
* **Empty ranges.** ``start == end`` is invalid, except ``00:00–00:00``, which is the whole day. Times are
  whole seconds (no microseconds) and naive (the zone is the schedule's).
* **Precedence** per local date: an exception covering the date, else a campaign covering it, else the weekly
  ranges (``always_open=True`` is a weekly part that is open all day; exceptions and campaigns still override
  it, so a 24/7 line can close at Christmas).
* **Overnight into an exception.** An exception owns its whole local date: a range from the previous day that
  runs past midnight into an exception date is cut at that midnight — unless the same exception also covers
  the previous day (a multi-day exception behaves like a small schedule of its own). An exception's overnight
  range runs on into the following date, unless that date belongs to a different exception.
* **DST.** A range is the span from the *first* instant the wall clock reads its start to the *last* instant
  it reads its end. So: a boundary that does not exist (the spring-forward gap, e.g. 03:30 on the last Sunday
  of March in Europe/Bucharest, where 03:00 jumps to 04:00) resolves to the transition instant (04:00 local) —
  ``01:30–03:30`` is open 01:30–04:00 that night, and a range lying wholly inside the gap is empty that day.
  In the repeated hour (last Sunday of October, 04:00 → 03:00) a range is open through *both* occurrences of
  whatever it covers: ``01:30–03:30`` is open from 01:30 to the second 03:30, and ``03:30–06:00`` opens at the
  first 03:30 and stays open. Ranges are spans, never split: a closed gap inside the repeated hour is
  swallowed.
* **next_change** is the first instant strictly after ``at`` at which ``open`` differs, as a UTC datetime;
  touching or overlapping ranges (also across days) are one open span. ``None`` means it never changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.errors import InvalidInput

__all__ = [
    "FRI",
    "MON",
    "SAT",
    "SUN",
    "THU",
    "TUE",
    "WED",
    "WEEKDAYS",
    "Campaign",
    "HoursException",
    "Schedule",
    "ScheduleError",
    "Status",
    "TimeRange",
    "WeeklyRange",
    "evaluate",
    "holidays_to_exceptions",
    "wall_end",
    "wall_start",
]

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIDNIGHT = time(0, 0)
_DAY = timedelta(days=1)
# Beyond the last dated rule only the weekly pattern remains; two weeks of it show every weekday at least once
# outside any DST day, so a search that finds no change by then will never find one.
_MAX_LOOKAHEAD_DAYS = 3 * 366
_QUIET_DAYS = 15


class ScheduleError(InvalidInput, ValueError):
    """An invalid schedule or time argument: a ``ValueError`` here, ``invalid-input`` for the API."""

    error_id = "invalid-schedule"


# --- wall clock → instants ----------------------------------------------------------------------------------


def _check_zone(tz: object) -> None:
    if not isinstance(tz, tzinfo):
        raise ScheduleError(f"time zone must be a zoneinfo.ZoneInfo, got {tz!r}")


def _transition(lo: datetime, hi: datetime, tz: tzinfo) -> datetime:
    """The first instant in (lo, hi] with hi's offset: where the clock jumped (on a whole second)."""
    offset = hi.astimezone(tz).utcoffset()
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if (lo + timedelta(seconds=mid)).astimezone(tz).utcoffset() == offset:
            hi_s = mid
        else:
            lo_s = mid
    return lo + timedelta(seconds=hi_s)


def _resolve(day: date, t: time, tz: tzinfo, *, last: bool) -> datetime:
    naive = datetime.combine(day, t)
    early = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if early <= late:  # an ordinary time (equal) or one in the repeated hour (two occurrences)
        return late if last else early
    # In a gap PEP 495 maps fold=0 with the offset before the jump (later UTC); the wall clock jumped in
    # between.
    return _transition(late, early, tz)


def wall_start(day: date, t: time, tz: tzinfo) -> datetime:
    """The first instant (UTC) the local wall clock reads ``day t`` — or, inside a DST gap, the jump."""
    return _resolve(day, t, tz, last=False)


def wall_end(day: date, t: time, tz: tzinfo) -> datetime:
    """The last instant (UTC) the local wall clock reads ``day t`` — the second one in a repeated hour."""
    return _resolve(day, t, tz, last=True)


# --- values -------------------------------------------------------------------------------------------------


def _fmt(t: time) -> str:
    return f"{t:%H:%M}" if t.second == 0 else f"{t:%H:%M:%S}"


def _check_times(start: time, end: time) -> time:
    """Validate a range's bounds and return the normalised end (``time.max`` → ``00:00`` meaning 24:00)."""
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, time):
            raise ScheduleError(f"range {name} must be a datetime.time, got {t!r}")
        if t.tzinfo is not None:
            raise ScheduleError(f"range {name} {t} must be naive: the schedule's time zone applies")
    if end == time.max:
        end = MIDNIGHT
    for name, t in (("start", start), ("end", end)):
        if t.microsecond:
            raise ScheduleError(f"range {name} {t} has microseconds; use whole seconds (24:00 is time(0, 0))")
    if start == end and start != MIDNIGHT:
        raise ScheduleError(
            f"range {_fmt(start)}–{_fmt(end)} is empty; only 00:00–00:00 (the whole day) may start where it ends"
        )
    return end


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Open ``start``–``end`` on one date; ``end <= start`` crosses midnight, ``end == 00:00`` is 24:00."""

    start: time
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", _check_times(self.start, self.end))

    @property
    def overnight(self) -> bool:
        """True when the range ends on the next date (including the 24:00 end)."""
        return self.end <= self.start

    @property
    def label(self) -> str:
        end = "24:00" if self.end == MIDNIGHT else _fmt(self.end)
        return f"{_fmt(self.start)}–{end}"


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    """A range on a weekday (0 = Monday … 6 = Sunday, like ``date.weekday()``); overnight belongs to it."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ScheduleError(f"weekday must be 0 (Monday) … 6 (Sunday), got {self.weekday!r}")
        object.__setattr__(self, "end", _check_times(self.start, self.end))

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    @property
    def label(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {TimeRange(self.start, self.end).label}"


def _check_days(first_day: date, last_day: date, what: str) -> None:
    for t in (first_day, last_day):
        if not isinstance(t, date) or isinstance(t, datetime):
            raise ScheduleError(f"{what} days must be datetime.date values, got {t!r}")
    if last_day < first_day:
        raise ScheduleError(f"{what} ends ({last_day}) before it starts ({first_day})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """A period (``first_day``–``last_day``, both inclusive, local dates) with its own weekly ranges."""

    name: str
    first_day: date
    last_day: date
    ranges: tuple[WeeklyRange, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ScheduleError("a campaign needs a name")
        _check_days(self.first_day, self.last_day, f"campaign {self.name}")
        object.__setattr__(self, "ranges", tuple(self.ranges))
        for r in self.ranges:
            if not isinstance(r, WeeklyRange):
                raise ScheduleError(f"campaign {self.name}: ranges must be WeeklyRange values, got {r!r}")

    def covers(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True, slots=True, kw_only=True)
class HoursException:
    """A date or date range (inclusive) that is closed (``ranges == ()``) or open only in its own ``ranges``.

    ``last_day`` defaults to ``first_day``. ``reason`` is shown to people ("Christmas", "Staff training").
    """

    first_day: date
    reason: str
    ranges: tuple[TimeRange, ...] = ()
    last_day: date | None = None

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.strip():
            raise ScheduleError("an exception needs a reason")
        if self.last_day is None:
            object.__setattr__(self, "last_day", self.first_day)
        _check_days(self.first_day, self.last_day, f"exception {self.reason}")  # type: ignore[arg-type]
        object.__setattr__(self, "ranges", tuple(self.ranges))
        for r in self.ranges:
            if not isinstance(r, TimeRange):
                raise ScheduleError(f"exception {self.reason}: ranges must be TimeRange values, got {r!r}")

    @property
    def closed(self) -> bool:
        return not self.ranges

    def covers(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day  # type: ignore[operator]


def _check_no_overlap(items: tuple[Campaign, ...] | tuple[HoursException, ...], what: str) -> None:
    ordered = sorted(items, key=lambda i: i.first_day)
    for a, b in pairwise(ordered):
        if b.first_day <= a.last_day:  # type: ignore[operator]
            name_a = a.name if isinstance(a, Campaign) else a.reason
            name_b = b.name if isinstance(b, Campaign) else b.reason
            raise ScheduleError(f"{what} {name_a!r} and {name_b!r} overlap on {b.first_day}; which one applies?")


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A line's hours in its time zone. Hashable (tuples inside), so evaluations can be cached."""

    tz: ZoneInfo
    weekly: tuple[WeeklyRange, ...] = ()
    campaigns: tuple[Campaign, ...] = ()
    exceptions: tuple[HoursException, ...] = ()
    always_open: bool = False
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        _check_zone(self.tz)
        for name, kind in (("weekly", WeeklyRange), ("campaigns", Campaign), ("exceptions", HoursException)):
            value = tuple(getattr(self, name))
            for item in value:
                if not isinstance(item, kind):
                    raise ScheduleError(f"schedule {name} must be {kind.__name__} values, got {item!r}")
            object.__setattr__(self, name, value)
        if self.always_open and self.weekly:
            raise ScheduleError("a 24/7 schedule has no weekly ranges; give one or the other")
        _check_no_overlap(self.campaigns, "campaigns")
        _check_no_overlap(self.exceptions, "exceptions")
        key = (self.tz, self.weekly, self.campaigns, self.exceptions, self.always_open)
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        """Cached: evaluations are memoised per schedule; rehashing nested tuples each time dominated them."""
        return self._hash

    def exception_on(self, day: date) -> HoursException | None:
        return next((e for e in self.exceptions if e.covers(day)), None)

    def campaign_on(self, day: date) -> Campaign | None:
        return next((c for c in self.campaigns if c.covers(day)), None)

    @property
    def last_dated_day(self) -> date | None:
        """The last local date any campaign or exception touches; after it only the weekly pattern applies."""
        days = [c.last_day for c in self.campaigns] + [e.last_day for e in self.exceptions]  # type: ignore[misc]
        return max(days) if days else None  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class Status:
    """The answer to "open now?": why (which rule), and the first instant (UTC) after ``at`` when it flips."""

    open: bool
    reason: str
    next_change: datetime | None


# --- evaluation ---------------------------------------------------------------------------------------------


class _Span(NamedTuple):
    start: datetime
    end: datetime
    reason: str


def _ranges_on(schedule: Schedule, day: date) -> list[tuple[time, time, str]]:
    """The ranges that start on ``day`` under the rule that governs it, with the reason each one gives."""
    exception = schedule.exception_on(day)
    if exception is not None:
        return [(r.start, r.end, f"exception {exception.reason} {r.label}") for r in exception.ranges]
    campaign = schedule.campaign_on(day)
    if campaign is not None:
        return [
            (r.start, r.end, f"campaign {campaign.name} {r.label}")
            for r in campaign.ranges
            if r.weekday == day.weekday()
        ]
    if schedule.always_open:
        return [(MIDNIGHT, MIDNIGHT, "24/7")]
    return [(r.start, r.end, f"weekly {r.label}") for r in schedule.weekly if r.weekday == day.weekday()]


@lru_cache(maxsize=16384)
def _day_spans(schedule: Schedule, day: date) -> tuple[_Span, ...]:
    """UTC spans of the ranges starting on ``day``; cut at midnight if an exception owns the next day."""
    tz = schedule.tz
    following = day + _DAY
    next_exception = schedule.exception_on(following)
    cut = None
    if next_exception is not None and next_exception is not schedule.exception_on(day):
        cut = wall_start(following, MIDNIGHT, tz)
    spans = []
    for start, end, reason in _ranges_on(schedule, day):
        s = wall_start(day, start, tz)
        e = wall_end(following if end <= start else day, end, tz)
        if cut is not None and e > cut:
            e = cut
        if s < e:
            spans.append(_Span(s, e, reason))
    spans.sort()
    return tuple(spans)


def _closed_reason(schedule: Schedule, day: date) -> str:
    exception = schedule.exception_on(day)
    if exception is not None:
        return f"exception {exception.reason} (closed)"
    campaign = schedule.campaign_on(day)
    if campaign is not None:
        return f"campaign {campaign.name} (closed)"
    return "24/7 (closed)" if schedule.always_open else "weekly (closed)"


def _horizon(schedule: Schedule, day: date) -> date:
    """How far to look for the next change: past the last dated rule, but never more than
    ``_MAX_LOOKAHEAD_DAYS`` ahead — an exception dated in year 9999 must not cost millions of days of walking on
    every evaluation. Beyond it ``next_change`` is None ("no change in sight")."""
    cap = day + timedelta(days=_MAX_LOOKAHEAD_DAYS)
    last = max(day, schedule.last_dated_day or day)
    return cap if last >= cap else min(last + timedelta(days=_QUIET_DAYS), cap)


@lru_cache(maxsize=4096)
def _open_until(schedule: Schedule, day: date, span: _Span) -> datetime | None:
    """Where the open stretch through ``span`` (a span of ``day``) ends: chained touching or overlapping
    spans.

    The same for every instant inside ``span``, hence cached: a 24/7 line walks to its next holiday once.
    """
    end = span.end
    pending: list[_Span] = []  # spans that start after `end` so far; a later extension may reach them
    horizon = _horizon(schedule, day)
    while day <= horizon:
        pending.extend(_day_spans(schedule, day))
        pending.sort()
        day += _DAY
        for candidate in pending:  # by start, so one pass follows the chain
            if candidate.start <= end < candidate.end:
                end = candidate.end
        pending = [candidate for candidate in pending if candidate.start > end]
        # No span of `day` or later starts before this instant, so an end before it is final.
        if end < wall_start(day, MIDNIGHT, schedule.tz):
            return end
    return None


def _opens_at(schedule: Schedule, at: datetime, local_day: date) -> datetime | None:
    """The first span start after ``at`` (which is closed), or None if nothing opens before the horizon."""
    horizon = _horizon(schedule, local_day)
    day = local_day
    while day <= horizon:
        starts = [span.start for span in _day_spans(schedule, day) if span.start > at]
        if starts:  # spans of later days start later than any span of this one
            return min(starts)
        day += _DAY
    return None


def _check_instant(at: object) -> datetime:
    if not isinstance(at, datetime):
        raise ScheduleError(f"at must be a datetime, got {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ScheduleError(f"at must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def evaluate(schedule: Schedule, at: datetime) -> Status:
    """Is the line open at ``at`` (aware), by which rule, and when does that next change (UTC)?"""
    at_utc = _check_instant(at)
    if schedule.always_open and not schedule.campaigns and not schedule.exceptions:
        return Status(True, "24/7", None)
    local_day = at_utc.astimezone(schedule.tz).date()
    containing = [
        (span, day)
        for day in (local_day - _DAY, local_day)
        for span in _day_spans(schedule, day)
        if span.start <= at_utc < span.end
    ]
    if containing:
        span, day = min(containing)
        return Status(True, span.reason, _open_until(schedule, day, span))
    # A closed instant: spans of the previous day that started before it have ended, so look from today on.
    return Status(False, _closed_reason(schedule, local_day), _opens_at(schedule, at_utc, local_day))


def holidays_to_exceptions(
    country: str, years: int | Iterable[int], *, subdiv: str | None = None
) -> list[HoursException]:
    """Closed exceptions for a country's public holidays, from the optional ``holidays`` package.

    Imported here, not at module level: only admins importing a calendar need it. Several holidays on one date
    come as one exception (the package joins their names with "; "). Merge with hand-made exceptions yourself:
    a ``Schedule`` rejects overlapping exceptions.
    """
    import holidays  # optional dependency, see the docstring

    try:
        calendar = holidays.country_holidays(country, subdiv=subdiv, years=years)
    except NotImplementedError as exc:
        raise ScheduleError(f"no public holiday calendar for {country!r} (subdivision {subdiv!r})") from exc
    return [HoursException(first_day=day, reason=name) for day, name in sorted(calendar.items())]


# --- reading stored values (shared by the admin API and routing) ---------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` or a ``ScheduleError`` (422) naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as Europe/Bucharest") from None


def parse_wall_time(value: str | time) -> time:
    """``"HH:MM"`` / ``"HH:MM:SS"`` or a ``time``; ``"24:00"`` is midnight at the end of the day (00:00)."""
    if isinstance(value, time):
        return value
    if value in ("24:00", "24:00:00"):
        return time(0, 0)
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ScheduleError(f"{value!r} is not a time of day (HH:MM)") from None
