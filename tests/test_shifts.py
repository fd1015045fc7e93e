"""Shift patterns → dated shifts (DST included), break limits, the presence state machine, break overruns."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import product
from zoneinfo import ZoneInfo

import pytest

from hotline.domain.hours import FRI, MON, SAT, SUN, TUE, WED
from hotline.domain.shifts import (
    Break,
    BreakKind,
    BreakLimits,
    BreakOverrun,
    InvalidTransition,
    PauseReason,
    PlannedBreak,
    Presence,
    PresenceState,
    Shift,
    ShiftError,
    ShiftPattern,
    ShiftTemplate,
    break_overruns,
    generate_shifts,
    transition,
)

TZ = ZoneInfo("Europe/Bucharest")
T = time
M = lambda n: timedelta(minutes=n)  # noqa: E731
H = lambda n: timedelta(hours=n)  # noqa: E731
LUNCH = BreakKind.LUNCH
BRK = BreakKind.BREAK
S = PresenceState


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def loc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


def day_template(weekday: int) -> ShiftTemplate:
    return ShiftTemplate(
        weekday, T(9), T(17), (PlannedBreak(LUNCH, H(4), M(45)), PlannedBreak(BRK, H(2), M(15)))
    )


# --- generation ---------------------------------------------------------------------------------------------


def test_weekday_pattern_generates_dated_shifts_with_breaks() -> None:
    pattern = ShiftPattern(operator="ana", tz=TZ, templates=[day_template(d) for d in range(5)])
    shifts = generate_shifts(pattern, date(2026, 11, 23), date(2026, 11, 29))
    assert [s.start for s in shifts] == [loc(2026, 11, d, 9) for d in range(23, 28)]
    first = shifts[0]
    assert first == Shift(
        "ana",
        loc(2026, 11, 23, 9),
        loc(2026, 11, 23, 17),
        (
            Break(BRK, loc(2026, 11, 23, 11), loc(2026, 11, 23, 11, 15)),  # sorted by offset
            Break(LUNCH, loc(2026, 11, 23, 13), loc(2026, 11, 23, 13, 45)),
        ),
    )
    assert first.start.tzinfo is UTC  # stored in UTC: see the next test
    assert first.break_at(loc(2026, 11, 23, 13, 44)) == first.breaks[1]
    assert first.break_at(loc(2026, 11, 23, 13, 45)) is None
    assert first.covers(loc(2026, 11, 23, 16, 59)) and not first.covers(loc(2026, 11, 23, 17))


def test_times_are_stored_in_utc_so_durations_and_the_repeated_hour_are_right() -> None:
    # Same-ZoneInfo arithmetic is wall-clock arithmetic in Python: 22:00 → 06:00 would be 8 hours on 24/25
    # Oct.
    assert loc(2026, 10, 25, 6) - loc(2026, 10, 24, 22) == H(8)
    shift = Shift("x", loc(2026, 10, 24, 22), loc(2026, 10, 25, 6))
    assert shift.end - shift.start == H(9)
    second_0330 = datetime(2026, 10, 25, 3, 30, tzinfo=TZ, fold=1)
    shift = Shift("x", loc(2026, 10, 24, 22), datetime(2026, 10, 25, 3, 45, tzinfo=TZ, fold=0))
    assert not shift.covers(second_0330)  # by wall clock 03:30 < 03:45 would say it does


def test_range_is_inclusive_and_by_start_day() -> None:
    pattern = ShiftPattern(operator="bo", tz=TZ, templates=[ShiftTemplate(SUN, T(22), T(6))])
    shifts = generate_shifts(pattern, date(2026, 11, 29), date(2026, 11, 29))
    assert [(s.start, s.end) for s in shifts] == [(loc(2026, 11, 29, 22), loc(2026, 11, 30, 6))]
    assert generate_shifts(pattern, date(2026, 11, 30), date(2026, 12, 5)) == []
    with pytest.raises(ShiftError, match="before it starts"):
        generate_shifts(pattern, date(2026, 11, 30), date(2026, 11, 29))


def test_night_shift_across_both_dst_changes() -> None:
    template = ShiftTemplate(SAT, T(22), T(6), (PlannedBreak(LUNCH, H(4), M(30)),))
    pattern = ShiftPattern(operator="cy", tz=TZ, templates=[template])
    spring = generate_shifts(pattern, date(2026, 3, 28), date(2026, 3, 28))[0]
    assert (spring.start, spring.end) == (utc(2026, 3, 28, 20), utc(2026, 3, 29, 3))
    assert spring.end - spring.start == H(7)
    # The break is 4 hours of work in: 00:00 UTC, still 02:00 EET (the jump is at 01:00 UTC).
    assert (spring.breaks[0].start, spring.breaks[0].end) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 0, 30))
    autumn = generate_shifts(pattern, date(2026, 10, 24), date(2026, 10, 24))[0]
    assert (autumn.start, autumn.end) == (utc(2026, 10, 24, 19), utc(2026, 10, 25, 4))
    assert autumn.end - autumn.start == H(9)
    assert autumn.breaks[0].start == utc(2026, 10, 24, 23)  # 02:00 EEST


def test_shift_starting_in_the_skipped_hour_starts_at_the_jump() -> None:
    pattern = ShiftPattern(operator="di", tz=TZ, templates=[ShiftTemplate(SUN, T(3, 30), T(12))])
    (shift,) = generate_shifts(pattern, date(2026, 3, 29), date(2026, 3, 29))
    assert shift.start == utc(2026, 3, 29, 1)  # 04:00 EEST
    assert shift.start.astimezone(TZ).utcoffset() == H(3)


def test_a_break_past_a_dst_shortened_shift_is_cut_at_its_end() -> None:
    template = ShiftTemplate(SAT, T(22), T(6), (PlannedBreak(BRK, H(7) - M(5), M(10)),))
    pattern = ShiftPattern(operator="ed", tz=TZ, templates=[template])
    (shift,) = generate_shifts(pattern, date(2026, 3, 28), date(2026, 3, 28))
    assert shift.breaks[0].end == shift.end
    assert shift.breaks[0].length == M(5)


def test_24_00_end() -> None:
    template = ShiftTemplate(FRI, T(16), T.max)
    assert template.end == T(0) and template.length == H(8) and template.label == "Fri 16:00–24:00"


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ShiftTemplate(MON, T(9), T(9)), "empty or 24 hours"),
        (lambda: ShiftTemplate(7, T(9), T(17)), "weekday"),
        (lambda: ShiftTemplate(MON, T(9), T(17), (PlannedBreak(BRK, H(8), M(10)),)), "does not end before"),
        (
            lambda: ShiftTemplate(
                MON, T(9), T(17), (PlannedBreak(BRK, H(2), M(15)), PlannedBreak(LUNCH, H(2), M(30)))
            ),
            "overlap",
        ),
        (lambda: PlannedBreak("nap", H(1), M(10)), "lunch' or 'break"),  # type: ignore[arg-type]
        (lambda: PlannedBreak(BRK, H(0), M(10)), "after the shift starts"),
        (lambda: PlannedBreak(BRK, H(1), M(0)), "last some time"),
        (lambda: BreakLimits(break_min=M(15), break_max=M(10)), "min <= max"),
        (lambda: BreakLimits(lunch_min=M(0)), "min <= max"),
        (
            lambda: ShiftPattern(
                operator="x",
                tz=TZ,
                templates=[ShiftTemplate(MON, T(9), T(17), (PlannedBreak(LUNCH, H(3), M(20)),))],
            ),
            "outside the allowed",
        ),
        (
            lambda: ShiftPattern(
                operator="x",
                tz=TZ,
                templates=[ShiftTemplate(MON, T(9), T(17), (PlannedBreak(BRK, H(3), M(20)),))],
            ),
            "outside the allowed",
        ),
        (
            lambda: ShiftPattern(
                operator="x",
                tz=TZ,
                templates=[ShiftTemplate(MON, T(22), T(6)), ShiftTemplate(TUE, T(5), T(13))],
            ),
            "overlap",
        ),
        (
            lambda: ShiftPattern(
                operator="x",
                tz=TZ,
                templates=[ShiftTemplate(MON, T(5), T(13)), ShiftTemplate(SUN, T(22), T(6))],
            ),
            "overlap",
        ),
        (lambda: ShiftPattern(operator="x", tz="UTC", templates=[]), "ZoneInfo"),  # type: ignore[arg-type]
        (lambda: Shift("x", loc(2026, 1, 1, 9), loc(2026, 1, 1, 8)), "before it starts"),
        (lambda: Shift("x", datetime(2026, 1, 1, 9), loc(2026, 1, 1, 10)), "timezone-aware"),
    ],
)
def test_invalid_patterns_are_rejected(make: object, message: str) -> None:
    with pytest.raises(ShiftError, match=message):
        make()  # type: ignore[operator]
    assert issubclass(ShiftError, ValueError)


def test_touching_shifts_and_configured_limits_are_accepted() -> None:
    ShiftPattern(
        operator="x", tz=TZ, templates=[ShiftTemplate(SUN, T(22), T(6)), ShiftTemplate(MON, T(6), T(14))]
    )
    limits = BreakLimits(break_min=M(5), break_max=M(20))
    pattern = ShiftPattern(
        operator="x",
        tz=TZ,
        limits=limits,
        templates=[ShiftTemplate(WED, T(9), T(17), (PlannedBreak(BRK, H(1), M(20)),))],
    )
    assert pattern.templates[0].breaks[0].length == M(20)


# --- presence -----------------------------------------------------------------------------------------------

ALLOWED = {
    (S.OFFLINE, S.AVAILABLE),
    (S.AVAILABLE, S.ON_CALL),
    (S.AVAILABLE, S.PAUSED),
    (S.AVAILABLE, S.OFFLINE),
    (S.ON_CALL, S.WRAPUP),
    (S.ON_CALL, S.AVAILABLE),
    (S.ON_CALL, S.PAUSED),
    (S.ON_CALL, S.OFFLINE),
    (S.WRAPUP, S.AVAILABLE),
    (S.WRAPUP, S.ON_CALL),
    (S.WRAPUP, S.PAUSED),
    (S.WRAPUP, S.OFFLINE),
    (S.PAUSED, S.AVAILABLE),
    (S.PAUSED, S.ON_CALL),
    (S.PAUSED, S.PAUSED),
    (S.PAUSED, S.OFFLINE),
}
T0 = utc(2026, 11, 23, 8)


def presence(state: PresenceState) -> Presence:
    return Presence(state, T0, PauseReason.BREAK if state is S.PAUSED else None)


@pytest.mark.parametrize(("src", "dst"), list(product(S, S)))
def test_transition_table(src: PresenceState, dst: PresenceState) -> None:
    reason = PauseReason.LUNCH if dst is S.PAUSED else None  # differs from the BREAK of a paused source
    at = T0 + M(1)
    if (src, dst) in ALLOWED:
        assert transition(presence(src), dst, at, reason) == Presence(dst, at, reason)
    else:
        with pytest.raises(InvalidTransition, match=f"cannot go from {src} to {dst}"):
            transition(presence(src), dst, at, reason)


def test_a_working_day() -> None:
    p = Presence(S.OFFLINE, T0)
    steps = [
        (S.AVAILABLE, None),
        (S.ON_CALL, None),
        (S.WRAPUP, None),
        (S.AVAILABLE, None),
        (S.PAUSED, PauseReason.LUNCH),
        (S.AVAILABLE, None),
        (S.OFFLINE, None),
    ]
    for i, (state, reason) in enumerate(steps, start=1):
        p = transition(p, state, T0 + M(10 * i), reason)
    assert p == Presence(S.OFFLINE, T0 + M(70))


@pytest.mark.parametrize(
    ("current", "to", "reason", "message"),
    [
        (presence(S.AVAILABLE), S.PAUSED, None, "needs a reason"),
        (presence(S.AVAILABLE), S.PAUSED, PauseReason.WRAPUP, "needs a reason"),
        (presence(S.ON_CALL), S.WRAPUP, PauseReason.MANUAL, "only a pause has a reason"),
        (presence(S.PAUSED), S.PAUSED, PauseReason.BREAK, "already paused"),
        (presence(S.AVAILABLE), "dancing", None, "unknown presence state"),
    ],
)
def test_invalid_reasons(
    current: Presence, to: PresenceState, reason: PauseReason | None, message: str
) -> None:
    with pytest.raises(ShiftError, match=message):
        transition(current, to, T0 + M(1), reason)


def test_time_does_not_run_backwards_and_must_be_aware() -> None:
    with pytest.raises(InvalidTransition, match="before"):
        transition(presence(S.AVAILABLE), S.ON_CALL, T0 - M(1))
    with pytest.raises(ShiftError, match="timezone-aware"):
        transition(presence(S.AVAILABLE), S.ON_CALL, datetime(2026, 11, 23, 9))


def test_strings_are_accepted_for_states_and_reasons() -> None:
    p = transition(presence(S.AVAILABLE), "paused", T0, "manual")
    assert (p.state, p.reason, p.queue_pause) == (S.PAUSED, PauseReason.MANUAL, "manual")
    assert Presence(S.WRAPUP, T0).queue_pause == "wrapup"
    assert Presence(S.ON_CALL, T0).queue_pause is None


# --- break overruns -----------------------------------------------------------------------------------------

PLANNED = {BRK: M(15), LUNCH: M(45)}


def test_break_overruns_in_a_log() -> None:
    log = [
        Presence(S.AVAILABLE, utc(2026, 11, 23, 7)),
        Presence(S.PAUSED, utc(2026, 11, 23, 9), PauseReason.BREAK),  # 20 min: over by 5
        Presence(S.AVAILABLE, utc(2026, 11, 23, 9, 20)),
        Presence(S.PAUSED, utc(2026, 11, 23, 11), PauseReason.LUNCH),  # 40 min: fine
        Presence(S.AVAILABLE, utc(2026, 11, 23, 11, 40)),
        Presence(S.PAUSED, utc(2026, 11, 23, 12), PauseReason.MANUAL),  # manual pauses are not judged
        Presence(S.PAUSED, utc(2026, 11, 23, 13), PauseReason.BREAK),  # break then straight into lunch
        Presence(S.PAUSED, utc(2026, 11, 23, 13, 10), PauseReason.LUNCH),  # still going at `at`: 50 min
    ]
    at = utc(2026, 11, 23, 14)
    found = break_overruns(log, PLANNED, at)
    assert found == [
        BreakOverrun(BRK, utc(2026, 11, 23, 9), utc(2026, 11, 23, 9, 20), M(15), M(20)),
        BreakOverrun(LUNCH, utc(2026, 11, 23, 13, 10), None, M(45), M(50)),
    ]
    assert [o.over for o in found] == [M(5), M(5)]
    assert break_overruns(log, PLANNED, at, grace=M(5)) == []
    assert break_overruns(log, {LUNCH: M(45)}, at) == found[1:]


def test_a_break_exactly_on_time_is_not_an_overrun() -> None:
    log = [
        Presence(S.PAUSED, utc(2026, 11, 23, 9), PauseReason.BREAK),
        Presence(S.AVAILABLE, utc(2026, 11, 23, 9, 15)),
    ]
    assert break_overruns(log, PLANNED, utc(2026, 11, 23, 12)) == []
    assert break_overruns(log[:1], PLANNED, utc(2026, 11, 23, 9, 15)) == []
    assert len(break_overruns(log[:1], PLANNED, utc(2026, 11, 23, 9, 16))) == 1
