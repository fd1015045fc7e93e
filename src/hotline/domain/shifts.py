"""Operators' shifts, planned breaks and presence: the people side of routing.

Pure and standard-library only. Shift patterns (weekly templates) generate dated ``Shift``s; the presence
state machine validates what an operator does (log in, take a call, wrap up, pause, log out) and timestamps
it; the presence log shows which breaks ran over.

Semantics decided here:

* Template times are local wall-clock times in the pattern's zone, resolved like opening hours
  (``hours.wall_start`` / ``hours.wall_end``): a start in the spring-forward gap begins at the jump, an end in
  the repeated autumn hour is its second occurrence. ``end <= start`` crosses midnight and belongs to the
  start day; ``end == 00:00`` (or ``time.max``) is 24:00; ``start == end`` is invalid (no 24-hour shifts).
* A night shift across a DST change lasts one hour less (spring) or more (autumn) than on paper; the pattern
  is validated on paper, the generated shift is what the clock says. Dated shifts and breaks hold UTC
  datetimes.
* Break offsets are **elapsed time** from the shift's actual start ("lunch after four hours of work"), not
  wall times, so DST does not move a break inside its shift. A break that would run past a DST-shortened
  shift's end is cut at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from hotline.domain.hours import MIDNIGHT, WEEKDAYS, ScheduleError, wall_end, wall_start

__all__ = [
    "Break",
    "BreakKind",
    "BreakLimits",
    "BreakOverrun",
    "InvalidTransition",
    "PauseReason",
    "PlannedBreak",
    "Presence",
    "PresenceState",
    "Shift",
    "ShiftError",
    "ShiftPattern",
    "ShiftTemplate",
    "break_overruns",
    "generate_shifts",
    "transition",
]

_DAY = timedelta(days=1)
_WEEK_S = 7 * 86400


class ShiftError(ScheduleError):
    """An invalid shift pattern, break or presence value (a ``ValueError``; ``invalid-input`` for the API)."""

    error_id = "invalid-shift"


class InvalidTransition(ShiftError):
    """A presence change the state machine does not allow (e.g. a call while logged out)."""

    error_id = "invalid-presence-transition"


class BreakKind(StrEnum):
    LUNCH = "lunch"
    BREAK = "break"


class PresenceState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"
    PAUSED = "paused"


class PauseReason(StrEnum):
    """The queue pause reasons of the Asterisk contract (``QueuePause`` Reason)."""

    LUNCH = "lunch"
    BREAK = "break"
    WRAPUP = "wrapup"
    MANUAL = "manual"


def _aware(at: object, what: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ShiftError(f"{what} must be a timezone-aware datetime, got {at!r}")
    return at


# --- patterns -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakLimits:
    """Allowed planned-break lengths per kind, inclusive. Defaults: short break 10–15 min, lunch 30–60."""

    break_min: timedelta = timedelta(minutes=10)
    break_max: timedelta = timedelta(minutes=15)
    lunch_min: timedelta = timedelta(minutes=30)
    lunch_max: timedelta = timedelta(minutes=60)

    def __post_init__(self) -> None:
        for kind, low, high in (
            ("break", self.break_min, self.break_max),
            ("lunch", self.lunch_min, self.lunch_max),
        ):
            if not isinstance(low, timedelta) or not isinstance(high, timedelta):
                raise ShiftError(f"{kind} limits must be timedeltas")
            if low <= timedelta(0) or high < low:
                raise ShiftError(f"{kind} limits must satisfy 0 < min <= max, got {low}–{high}")

    def bounds(self, kind: BreakKind) -> tuple[timedelta, timedelta]:
        if kind is BreakKind.LUNCH:
            return self.lunch_min, self.lunch_max
        return self.break_min, self.break_max


@dataclass(frozen=True, slots=True)
class PlannedBreak:
    """A break ``offset`` (elapsed time) after the shift starts, lasting ``length``."""

    kind: BreakKind
    offset: timedelta
    length: timedelta

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", BreakKind(self.kind))
        except ValueError as exc:
            raise ShiftError(f"break kind must be 'lunch' or 'break', got {self.kind!r}") from exc
        if not isinstance(self.offset, timedelta) or not isinstance(self.length, timedelta):
            raise ShiftError("break offset and length must be timedeltas")
        if self.length <= timedelta(0):
            raise ShiftError(f"a {self.kind} must last some time, got {self.length}")
        if self.offset <= timedelta(0):
            raise ShiftError(f"a {self.kind} must start after the shift starts, got offset {self.offset}")


def _check_shift_times(start: time, end: time) -> time:
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, time) or t.tzinfo is not None:
            raise ShiftError(f"shift {name} must be a naive datetime.time, got {t!r}")
    if end == time.max:
        end = MIDNIGHT
    if start.microsecond or end.microsecond:
        raise ShiftError("shift times are whole seconds (24:00 is time(0, 0))")
    if start == end:
        raise ShiftError(f"a shift {start:%H:%M}–{end:%H:%M} is empty or 24 hours long; split it")
    return end


def _paper_length(start: time, end: time) -> timedelta:
    s = timedelta(hours=start.hour, minutes=start.minute, seconds=start.second)
    e = timedelta(hours=end.hour, minutes=end.minute, seconds=end.second)
    return e - s if end > start else e - s + _DAY


@dataclass(frozen=True, slots=True)
class ShiftTemplate:
    """One weekly shift: weekday (0 = Monday), local start/end, planned breaks in order."""

    weekday: int
    start: time
    end: time
    breaks: tuple[PlannedBreak, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ShiftError(f"weekday must be 0 (Monday) … 6 (Sunday), got {self.weekday!r}")
        object.__setattr__(self, "end", _check_shift_times(self.start, self.end))
        for b in self.breaks:
            if not isinstance(b, PlannedBreak):
                raise ShiftError(f"breaks must be PlannedBreak values, got {b!r}")
        breaks = tuple(sorted(self.breaks, key=lambda b: b.offset))
        object.__setattr__(self, "breaks", breaks)
        length = self.length
        previous_end = timedelta(0)
        for b in breaks:
            if b.offset < previous_end:
                raise ShiftError(f"{self.label}: breaks overlap at offset {b.offset}")
            if b.offset + b.length >= length:
                raise ShiftError(
                    f"{self.label}: a {b.kind} at {b.offset} for {b.length} does not end before the shift"
                )
            previous_end = b.offset + b.length

    @property
    def length(self) -> timedelta:
        """Length on paper (wall clock), ignoring DST."""
        return _paper_length(self.start, self.end)

    @property
    def label(self) -> str:
        end = "24:00" if self.end == MIDNIGHT else f"{self.end:%H:%M}"
        return f"{WEEKDAYS[self.weekday]} {self.start:%H:%M}–{end}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftPattern:
    """An operator's weekly shift templates in a time zone, checked against the break limits."""

    operator: str
    tz: ZoneInfo
    templates: tuple[ShiftTemplate, ...]
    limits: BreakLimits = field(default_factory=BreakLimits)

    def __post_init__(self) -> None:
        if not self.operator:
            raise ShiftError("a shift pattern needs an operator")
        if not isinstance(self.tz, ZoneInfo):
            raise ShiftError(f"time zone must be a zoneinfo.ZoneInfo, got {self.tz!r}")
        object.__setattr__(self, "templates", tuple(self.templates))
        spans: list[tuple[int, int, ShiftTemplate]] = []
        for t in self.templates:
            if not isinstance(t, ShiftTemplate):
                raise ShiftError(f"templates must be ShiftTemplate values, got {t!r}")
            for b in t.breaks:
                low, high = self.limits.bounds(b.kind)
                if not low <= b.length <= high:
                    raise ShiftError(
                        f"{t.label}: a {b.kind} of {b.length} is outside the allowed {low}–{high}"
                    )
            start = t.weekday * 86400 + t.start.hour * 3600 + t.start.minute * 60 + t.start.second
            spans.append((start, start + int(t.length.total_seconds()), t))
        # Overlap on the weekly circle (seconds of the week): a Sunday night shift wraps onto Monday morning.
        for i, (s1, e1, t1) in enumerate(spans):
            for s2, e2, t2 in spans[i + 1 :]:
                if any(s1 < e2 + k and s2 + k < e1 for k in (-_WEEK_S, 0, _WEEK_S)):
                    raise ShiftError(f"{self.operator}: shifts {t1.label} and {t2.label} overlap")


def _utc(at: datetime, what: str) -> datetime:
    return _aware(at, what).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Break:
    """A dated planned break; times are stored in UTC (see ``Shift``)."""

    kind: BreakKind
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BreakKind(self.kind))
        object.__setattr__(self, "start", _utc(self.start, "break start"))
        object.__setattr__(self, "end", _utc(self.end, "break end"))
        if self.end <= self.start:
            raise ShiftError(f"a {self.kind} ends ({self.end}) before it starts ({self.start})")

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Shift:
    """A dated working period of one operator: ``start <= t < end``.

    Times are stored in UTC whatever zone they are given in: Python subtracts and compares two datetimes that
    share a ``ZoneInfo`` by their wall clocks, ignoring ``fold`` — a night shift across the autumn change
    would measure 8 hours instead of 9 and the repeated hour would compare wrong. Convert to the line's zone
    only to display.
    """

    operator: str
    start: datetime
    end: datetime
    breaks: tuple[Break, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start, "shift start"))
        object.__setattr__(self, "end", _utc(self.end, "shift end"))
        if self.end <= self.start:
            raise ShiftError(f"shift of {self.operator} ends ({self.end}) before it starts ({self.start})")
        object.__setattr__(self, "breaks", tuple(self.breaks))
        for b in self.breaks:
            if not (self.start <= b.start < b.end <= self.end):
                raise ShiftError(
                    f"a {b.kind} {b.start}–{b.end} lies outside the shift {self.start}–{self.end}"
                )

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def break_at(self, at: datetime) -> Break | None:
        """The planned break in progress at ``at``, if any."""
        return next((b for b in self.breaks if b.covers(at)), None)

    def boundaries(self) -> list[datetime]:
        """Every instant this shift changes what routing wants: start, end, each break's start and end."""
        points = [self.start, self.end]
        for b in self.breaks:
            points += [b.start, b.end]
        return points


def generate_shifts(pattern: ShiftPattern, first_day: date, last_day: date) -> list[Shift]:
    """The dated shifts that *start* on local dates ``first_day``…``last_day`` (inclusive), by start time."""
    if last_day < first_day:
        raise ShiftError(f"date range ends ({last_day}) before it starts ({first_day})")
    tz = pattern.tz
    shifts: list[Shift] = []
    day = first_day
    while day <= last_day:
        for t in pattern.templates:
            if t.weekday != day.weekday():
                continue
            start = wall_start(day, t.start, tz)
            end = wall_end(day + _DAY if t.end <= t.start else day, t.end, tz)
            if end <= start:  # wholly inside a skipped hour: no shift that day
                continue
            breaks = []
            for b in t.breaks:
                b_start = start + b.offset
                b_end = min(b_start + b.length, end)
                if b_start < b_end:
                    breaks.append(Break(b.kind, b_start, b_end))
            shifts.append(Shift(pattern.operator, start, end, tuple(breaks)))
        day += _DAY
    shifts.sort(key=lambda s: s.start)
    return shifts


# --- presence -----------------------------------------------------------------------------------------------

_PAUSE_REASONS = (PauseReason.LUNCH, PauseReason.BREAK, PauseReason.MANUAL)


@dataclass(frozen=True, slots=True)
class Presence:
    """What an operator is doing since ``since``. ``reason`` only with ``paused`` (lunch, break or manual).

    Wrap-up is its own state (reported to the queue as a pause with reason ``wrapup``), so ``paused`` never
    carries ``wrapup``: one spelling per fact keeps occupancy sums honest.
    """

    state: PresenceState
    since: datetime
    reason: PauseReason | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "state", PresenceState(self.state))
            if self.reason is not None:
                object.__setattr__(self, "reason", PauseReason(self.reason))
        except ValueError as exc:
            raise ShiftError(f"unknown presence state or reason: {self.state!r}, {self.reason!r}") from exc
        _aware(self.since, "presence since")
        if self.state is PresenceState.PAUSED:
            if self.reason not in _PAUSE_REASONS:
                raise ShiftError(f"a pause needs a reason among lunch, break, manual; got {self.reason!r}")
        elif self.reason is not None:
            raise ShiftError(f"only a pause has a reason; {self.state} got {self.reason!r}")

    @property
    def logged_in(self) -> bool:
        return self.state is not PresenceState.OFFLINE

    @property
    def queue_pause(self) -> str | None:
        """The queue pause reason this presence asks for, or None when the operator may take calls."""
        if self.state is PresenceState.PAUSED:
            return str(self.reason)
        if self.state is PresenceState.WRAPUP:
            return str(PauseReason.WRAPUP)
        return None


_S = PresenceState
_ALLOWED: Mapping[PresenceState, frozenset[PresenceState]] = {
    # A call can reach a paused or wrapping-up operator directly (not through the queue), so on_call is
    # allowed. Logging out during a call is allowed: routing keeps the queue member until the call ends.
    _S.OFFLINE: frozenset({_S.AVAILABLE}),
    _S.AVAILABLE: frozenset({_S.ON_CALL, _S.PAUSED, _S.OFFLINE}),
    _S.ON_CALL: frozenset({_S.WRAPUP, _S.AVAILABLE, _S.PAUSED, _S.OFFLINE}),
    _S.WRAPUP: frozenset({_S.AVAILABLE, _S.ON_CALL, _S.PAUSED, _S.OFFLINE}),
    _S.PAUSED: frozenset({_S.AVAILABLE, _S.ON_CALL, _S.PAUSED, _S.OFFLINE}),
}


def transition(
    current: Presence, to: PresenceState | str, at: datetime, reason: PauseReason | str | None = None
) -> Presence:
    """The presence after a change at ``at``; raises ``InvalidTransition`` for one the machine does not allow.

    ``paused`` → ``paused`` is allowed only to change the reason (break → lunch). Time never runs backwards.
    """
    _aware(at, "transition time")
    try:
        target = PresenceState(to)
    except ValueError as exc:
        raise InvalidTransition(f"unknown presence state {to!r}") from exc
    if at < current.since:
        raise InvalidTransition(
            f"change at {at.isoformat()} is before the current state's {current.since.isoformat()}"
        )
    if target not in _ALLOWED[current.state]:
        raise InvalidTransition(f"cannot go from {current.state} to {target}")
    new = Presence(target, at, reason)  # validates the reason
    if target is _S.PAUSED and current.state is _S.PAUSED and new.reason == current.reason:
        raise InvalidTransition(f"already paused for {current.reason}")
    return new


@dataclass(frozen=True, slots=True)
class BreakOverrun:
    """A lunch or break pause longer than planned (``ended`` is None while it is still going on)."""

    kind: BreakKind
    started: datetime
    ended: datetime | None
    planned: timedelta
    actual: timedelta

    @property
    def over(self) -> timedelta:
        return self.actual - self.planned


def break_overruns(
    log: Sequence[Presence],
    planned: Mapping[BreakKind, timedelta],
    at: datetime,
    grace: timedelta = timedelta(0),
) -> list[BreakOverrun]:
    """Lunch/break pauses in a presence log (oldest first) that ran longer than ``planned[kind] + grace``.

    A pause lasts until the next entry (any state, including another pause reason); the last one, if still a
    pause, is measured up to ``at`` so a supervisor sees the overrun while it happens. Kinds without a planned
    length are not judged.
    """
    _aware(at, "at")
    found: list[BreakOverrun] = []
    for i, entry in enumerate(log):
        if entry.state is not _S.PAUSED or entry.reason not in (PauseReason.LUNCH, PauseReason.BREAK):
            continue
        kind = BreakKind(str(entry.reason))
        if kind not in planned:
            continue
        ended = log[i + 1].since if i + 1 < len(log) else None
        actual = (ended if ended is not None else at) - entry.since
        if actual > planned[kind] + grace:
            found.append(BreakOverrun(kind, entry.since, ended, planned[kind], actual))
    return found
