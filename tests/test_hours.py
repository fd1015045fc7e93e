"""Opening hours: table tests for every rule, DST in Europe/Bucharest, next_change by brute force."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.domain.hours import (
    FRI,
    MON,
    SAT,
    SUN,
    THU,
    TUE,
    WED,
    Campaign,
    HoursException,
    Schedule,
    ScheduleError,
    TimeRange,
    WeeklyRange,
    evaluate,
    holidays_to_exceptions,
    wall_end,
    wall_start,
)

TZ = ZoneInfo("Europe/Bucharest")
T = time  # short spelling for tables
WEEKDAYS_9_17 = tuple(WeeklyRange(d, T(9), T(17)) for d in (MON, TUE, WED, THU, FRI))


def loc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def weekly(*ranges: WeeklyRange, **kw: object) -> Schedule:
    return Schedule(tz=TZ, weekly=ranges, **kw)  # type: ignore[arg-type]


# --- validation ---------------------------------------------------------------------------------------------


def test_schedule_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        WeeklyRange(MON, T(9), T(9))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WeeklyRange(7, T(9), T(17)), "weekday"),
        (lambda: WeeklyRange(MON, T(9, 30), T(9, 30)), "empty"),
        (lambda: WeeklyRange(MON, T(9, tzinfo=UTC), T(17)), "naive"),
        (lambda: TimeRange(T(9), T(17, 0, 0, 5)), "microseconds"),
        (
            lambda: Campaign(name="A", first_day=date(2026, 7, 31), last_day=date(2026, 7, 1)),
            "before it starts",
        ),
        (lambda: Campaign(name=" ", first_day=date(2026, 7, 1), last_day=date(2026, 7, 31)), "name"),
        (lambda: HoursException(first_day=date(2026, 12, 25), reason=""), "reason"),
        (lambda: Schedule(tz=TZ, always_open=True, weekly=WEEKDAYS_9_17), "24/7"),
        (lambda: Schedule(tz="Europe/Bucharest"), "ZoneInfo"),  # type: ignore[arg-type]
        (
            lambda: Schedule(
                tz=TZ,
                exceptions=(
                    HoursException(first_day=date(2026, 12, 24), last_day=date(2026, 12, 26), reason="Xmas"),
                    HoursException(first_day=date(2026, 12, 26), reason="Boxing day"),
                ),
            ),
            "overlap",
        ),
        (
            lambda: Schedule(
                tz=TZ,
                campaigns=(
                    Campaign(name="A", first_day=date(2026, 7, 1), last_day=date(2026, 7, 31)),
                    Campaign(name="B", first_day=date(2026, 7, 31), last_day=date(2026, 8, 5)),
                ),
            ),
            "overlap",
        ),
    ],
)
def test_invalid_values_are_rejected_with_a_clear_message(make: object, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        make()  # type: ignore[operator]


def test_whole_day_and_24_00_spellings() -> None:
    assert WeeklyRange(MON, T(0), T(0)).label == "Mon 00:00–24:00"
    assert WeeklyRange(MON, T(18), T.max) == WeeklyRange(MON, T(18), T(0))
    assert WeeklyRange(MON, T(18), T.max).label == "Mon 18:00–24:00"
    s = weekly(WeeklyRange(MON, T(18), T.max), WeeklyRange(TUE, T(0), T(0)))
    # Monday 18:00–24:00 touches Tuesday's whole day: one open stretch until Wednesday 00:00.
    assert evaluate(s, loc(2026, 11, 23, 20)) == evaluate(s, loc(2026, 11, 23, 20)).__class__(
        True, "weekly Mon 18:00–24:00", loc(2026, 11, 25).astimezone(UTC)
    )
    assert evaluate(s, loc(2026, 11, 24, 23, 59)).reason == "weekly Tue 00:00–24:00"


def test_naive_instants_are_rejected() -> None:
    with pytest.raises(ScheduleError, match="timezone-aware"):
        evaluate(weekly(*WEEKDAYS_9_17), datetime(2026, 11, 23, 10))


def test_lists_are_accepted_and_stored_as_tuples_so_schedules_hash() -> None:
    s = Schedule(tz=TZ, weekly=list(WEEKDAYS_9_17))  # type: ignore[arg-type]
    assert isinstance(s.weekly, tuple)
    assert hash(s) == hash(Schedule(tz=TZ, weekly=WEEKDAYS_9_17))


# --- table tests --------------------------------------------------------------------------------------------

OFFICE = weekly(*WEEKDAYS_9_17, WeeklyRange(FRI, T(22), T(6)), WeeklyRange(SUN, T(22), T(2)))


@pytest.mark.parametrize(
    ("at", "is_open", "reason", "next_change"),
    [
        (loc(2026, 11, 23, 8, 59), False, "weekly (closed)", loc(2026, 11, 23, 9)),  # Monday
        (loc(2026, 11, 23, 9), True, "weekly Mon 09:00–17:00", loc(2026, 11, 23, 17)),
        (loc(2026, 11, 23, 16, 59), True, "weekly Mon 09:00–17:00", loc(2026, 11, 23, 17)),
        (loc(2026, 11, 23, 17), False, "weekly (closed)", loc(2026, 11, 24, 9)),
        (loc(2026, 11, 27, 21), False, "weekly (closed)", loc(2026, 11, 27, 22)),  # Friday evening
        (loc(2026, 11, 27, 23), True, "weekly Fri 22:00–06:00", loc(2026, 11, 28, 6)),
        # Saturday 02:00 belongs to Friday's overnight range.
        (loc(2026, 11, 28, 2), True, "weekly Fri 22:00–06:00", loc(2026, 11, 28, 6)),
        (loc(2026, 11, 28, 6), False, "weekly (closed)", loc(2026, 11, 29, 22)),
        # Sunday night wraps the week onto Monday.
        (loc(2026, 11, 30, 1), True, "weekly Sun 22:00–02:00", loc(2026, 11, 30, 2)),
        (loc(2026, 11, 30, 2), False, "weekly (closed)", loc(2026, 11, 30, 9)),
    ],
)
def test_weekly_table(at: datetime, is_open: bool, reason: str, next_change: datetime) -> None:
    status = evaluate(OFFICE, at)
    assert (status.open, status.reason, status.next_change) == (is_open, reason, next_change.astimezone(UTC))
    assert status.next_change is not None and status.next_change.tzinfo is UTC


def test_several_ranges_a_day_and_touching_ranges_merge() -> None:
    s = weekly(WeeklyRange(MON, T(9), T(12)), WeeklyRange(MON, T(13), T(17)), WeeklyRange(MON, T(17), T(18)))
    assert evaluate(s, loc(2026, 11, 23, 12, 30)).next_change == loc(2026, 11, 23, 13).astimezone(UTC)
    assert evaluate(s, loc(2026, 11, 23, 14)).next_change == loc(2026, 11, 23, 18).astimezone(UTC)


def test_24_7_is_always_open_and_never_changes() -> None:
    s = Schedule(tz=TZ, always_open=True)
    for at in (loc(2026, 3, 29, 3, 30), loc(2026, 10, 25, 3, 30, fold=1), loc(2028, 2, 29, 12)):
        assert evaluate(s, at) == evaluate(s, at).__class__(True, "24/7", None)


def test_closed_forever_has_no_next_change() -> None:
    assert evaluate(Schedule(tz=TZ), loc(2026, 11, 23, 12)).next_change is None


def test_24_7_with_a_holiday_closes_that_date() -> None:
    s = Schedule(
        tz=TZ,
        always_open=True,
        exceptions=(HoursException(first_day=date(2026, 12, 25), reason="Christmas"),),
    )
    assert evaluate(s, loc(2026, 12, 1)).next_change == loc(2026, 12, 25).astimezone(UTC)
    status = evaluate(s, loc(2026, 12, 25, 12))
    assert (status.open, status.reason, status.next_change) == (
        False,
        "exception Christmas (closed)",
        loc(2026, 12, 26).astimezone(UTC),
    )


# --- campaigns and exceptions -------------------------------------------------------------------------------

ADMISSIONS = Campaign(
    name="Admissions",
    first_day=date(2026, 7, 1),  # a Wednesday
    last_day=date(2026, 7, 31),  # a Friday
    ranges=tuple(WeeklyRange(d, T(9), T(17)) for d in (MON, TUE, WED, THU, FRI)),
)
SUMMER = weekly(
    *(WeeklyRange(d, T(10), T(14)) for d in (MON, TUE, WED, THU, FRI)),
    campaigns=(ADMISSIONS,),
    exceptions=(
        HoursException(first_day=date(2026, 7, 15), reason="Staff training"),
        HoursException(first_day=date(2026, 7, 16), reason="Open day", ranges=(TimeRange(T(8), T(20)),)),
    ),
)


@pytest.mark.parametrize(
    ("at", "is_open", "reason", "next_change"),
    [
        (loc(2026, 6, 30, 9, 30), False, "weekly (closed)", loc(2026, 6, 30, 10)),  # the day before
        (loc(2026, 6, 30, 15), False, "weekly (closed)", loc(2026, 7, 1, 9)),
        (loc(2026, 7, 1, 9), True, "campaign Admissions Wed 09:00–17:00", loc(2026, 7, 1, 17)),  # first day
        (loc(2026, 7, 4, 12), False, "campaign Admissions (closed)", loc(2026, 7, 6, 9)),  # campaign weekend
        (loc(2026, 7, 14, 16), True, "campaign Admissions Tue 09:00–17:00", loc(2026, 7, 14, 17)),
        (
            loc(2026, 7, 14, 18),
            False,
            "campaign Admissions (closed)",
            loc(2026, 7, 16, 8),
        ),  # skips the closure
        (loc(2026, 7, 15, 12), False, "exception Staff training (closed)", loc(2026, 7, 16, 8)),
        (loc(2026, 7, 16, 19), True, "exception Open day 08:00–20:00", loc(2026, 7, 16, 20)),
        (
            loc(2026, 7, 31, 16, 59),
            True,
            "campaign Admissions Fri 09:00–17:00",
            loc(2026, 7, 31, 17),
        ),  # last day
        (loc(2026, 8, 3, 9, 30), False, "weekly (closed)", loc(2026, 8, 3, 10)),  # weekly again
    ],
)
def test_campaign_and_exception_table(
    at: datetime, is_open: bool, reason: str, next_change: datetime
) -> None:
    status = evaluate(SUMMER, at)
    assert (status.open, status.reason, status.next_change) == (is_open, reason, next_change.astimezone(UTC))


NIGHTS = weekly(
    WeeklyRange(THU, T(22), T(6)),
    WeeklyRange(FRI, T(22), T(6)),
    exceptions=(
        HoursException(first_day=date(2026, 12, 25), reason="Christmas"),  # a Friday
        HoursException(
            first_day=date(2026, 12, 31),
            last_day=date(2027, 1, 1),
            reason="New Year",
            ranges=(TimeRange(T(20), T(2)),),
        ),
        HoursException(first_day=date(2027, 1, 2), reason="Recovery", ranges=(TimeRange(T(12), T(13)),)),
    ),
)


def test_an_overnight_range_is_cut_at_the_midnight_of_an_exception_date() -> None:
    status = evaluate(NIGHTS, loc(2026, 12, 24, 23))  # Thursday night, Christmas closed
    assert (status.open, status.reason) == (True, "weekly Thu 22:00–06:00")
    assert status.next_change == loc(2026, 12, 25).astimezone(UTC)
    status = evaluate(NIGHTS, loc(2026, 12, 25, 1))
    assert (status.open, status.reason) == (False, "exception Christmas (closed)")
    # Christmas's own date is closed, so Friday's range never starts; Saturday morning stays closed too.
    assert evaluate(NIGHTS, loc(2026, 12, 26, 1)).open is False


def test_a_multi_day_exception_runs_its_own_overnight_range_through_its_dates() -> None:
    status = evaluate(NIGHTS, loc(2027, 1, 1, 1))
    assert (status.open, status.reason) == (True, "exception New Year 20:00–02:00")
    assert status.next_change == loc(2027, 1, 1, 2).astimezone(UTC)
    # ... but its last night is cut at the midnight of a different exception (Recovery, 2 January).
    assert evaluate(NIGHTS, loc(2027, 1, 1, 23)).next_change == loc(2027, 1, 2).astimezone(UTC)
    assert evaluate(NIGHTS, loc(2027, 1, 2, 1)).reason == "exception Recovery (closed)"


def test_an_exception_overnight_range_runs_into_an_ordinary_day() -> None:
    s = weekly(
        exceptions=(
            HoursException(first_day=date(2026, 12, 31), reason="NYE", ranges=(TimeRange(T(20), T(2)),)),
        )
    )
    status = evaluate(s, loc(2027, 1, 1, 1))
    assert (status.open, status.reason, status.next_change) == (
        True,
        "exception NYE 20:00–02:00",
        loc(2027, 1, 1, 2).astimezone(UTC),
    )


# --- leap year ----------------------------------------------------------------------------------------------


def test_leap_day_exception() -> None:
    s = weekly(*WEEKDAYS_9_17, exceptions=(HoursException(first_day=date(2028, 2, 29), reason="Leap day"),))
    assert evaluate(s, loc(2028, 2, 28, 17, 30)).next_change == loc(2028, 3, 1, 9).astimezone(UTC)
    status = evaluate(s, loc(2028, 2, 29, 12))
    assert (status.open, status.reason) == (False, "exception Leap day (closed)")
    assert evaluate(weekly(*WEEKDAYS_9_17), loc(2028, 2, 29, 12)).reason == "weekly Tue 09:00–17:00"


def test_weekly_schedule_over_a_leap_year() -> None:
    s = weekly(*WEEKDAYS_9_17)
    days = [date(2028, 1, 1) + timedelta(days=i) for i in range(366)]
    assert days[-1] == date(2028, 12, 31)
    open_days = [d for d in days if evaluate(s, loc(d.year, d.month, d.day, 12)).open]
    assert len(open_days) == 260  # 2028 starts on a Saturday: 52 full weeks and a spare Saturday and Sunday
    assert all(d.weekday() < 5 for d in open_days)
    # Every opening is found from the previous closing: 260 openings, walking next_change from New Year.
    at, openings = loc(2028, 1, 1), 0
    while at < loc(2029, 1, 1):
        status = evaluate(s, at)
        assert status.next_change is not None
        at, openings = status.next_change, openings + (not status.open)
    assert openings == 261  # the last one is Monday 1 January 2029 at 09:00
    assert at == loc(2029, 1, 1, 9).astimezone(UTC)


# --- DST in Europe/Bucharest --------------------------------------------------------------------------------
# 2026-03-29 (Sunday): 03:00 EET (+02) → 04:00 EEST (+03) at 01:00 UTC.
# 2026-10-25 (Sunday): 04:00 EEST (+03) → 03:00 EET (+02) at 01:00 UTC; 03:00–04:00 happens twice.


def test_wall_clock_resolution() -> None:
    assert wall_start(date(2026, 3, 29), T(3, 30), TZ) == utc(2026, 3, 29, 1)  # nonexistent → the jump
    assert wall_end(date(2026, 3, 29), T(3, 30), TZ) == utc(2026, 3, 29, 1)
    assert wall_start(date(2026, 10, 25), T(3, 30), TZ) == utc(2026, 10, 25, 0, 30)  # first occurrence
    assert wall_end(date(2026, 10, 25), T(3, 30), TZ) == utc(2026, 10, 25, 1, 30)  # second occurrence
    assert (
        wall_start(date(2026, 7, 1), T(9), TZ) == wall_end(date(2026, 7, 1), T(9), TZ) == utc(2026, 7, 1, 6)
    )


def test_spring_forward_range_ends_at_the_jump() -> None:
    s = weekly(WeeklyRange(SUN, T(1, 30), T(3, 30)))
    assert evaluate(s, loc(2026, 3, 29, 1)).next_change == utc(2026, 3, 28, 23, 30)
    status = evaluate(s, loc(2026, 3, 29, 2, 59))
    assert (status.open, status.next_change) == (True, utc(2026, 3, 29, 1))  # 04:00 EEST
    assert evaluate(s, loc(2026, 3, 29, 4)).open is False
    # An ordinary Sunday: two hours.
    assert evaluate(s, loc(2026, 4, 5, 2)).next_change == loc(2026, 4, 5, 3, 30).astimezone(UTC)


def test_a_range_inside_the_skipped_hour_is_empty_that_day() -> None:
    s = weekly(WeeklyRange(SUN, T(3, 10), T(3, 50)))
    status = evaluate(s, loc(2026, 3, 28, 12))
    assert (status.open, status.next_change) == (False, loc(2026, 4, 5, 3, 10).astimezone(UTC))


def test_fall_back_range_is_open_in_both_occurrences() -> None:
    s = weekly(WeeklyRange(SUN, T(1, 30), T(3, 30)))
    for at in (
        utc(2026, 10, 24, 22, 30),
        utc(2026, 10, 25, 0, 15),
        utc(2026, 10, 25, 0, 45),
        utc(2026, 10, 25, 1, 15),
    ):
        status = evaluate(s, at)
        assert (status.open, status.next_change) == (True, utc(2026, 10, 25, 1, 30)), at
    assert evaluate(s, loc(2026, 10, 25, 3, 30, fold=1)).open is False
    later = weekly(WeeklyRange(SUN, T(3, 30), T(6)))
    assert evaluate(later, loc(2026, 10, 25, 3, 29, fold=0)).next_change == utc(2026, 10, 25, 0, 30)
    status = evaluate(later, loc(2026, 10, 25, 3, 15, fold=1))  # the second 03:15: still open, no flicker
    assert (status.open, status.next_change) == (True, utc(2026, 10, 25, 4))


def test_overnight_range_across_both_transitions() -> None:
    s = weekly(WeeklyRange(SAT, T(22), T(6)))
    assert evaluate(s, loc(2026, 3, 28, 23)).next_change == utc(2026, 3, 29, 3)  # 7 real hours
    assert evaluate(s, loc(2026, 10, 24, 23)).next_change == utc(2026, 10, 25, 4)  # 9 real hours


# --- next_change property, by brute force -------------------------------------------------------------------

PROPERTY_SCHEDULES = {
    "office": OFFICE,
    "dst": weekly(
        WeeklyRange(SAT, T(23), T(3, 30)),
        WeeklyRange(SUN, T(1, 30), T(3, 30)),
        WeeklyRange(SUN, T(3, 45), T(5)),
        WeeklyRange(SUN, T(3, 10), T(3, 20)),
        WeeklyRange(MON, T(0), T(0)),
    ),
    "summer": SUMMER,
    "nights": NIGHTS,
    "holidays": Schedule(
        tz=TZ,
        always_open=True,
        exceptions=(
            HoursException(first_day=date(2026, 3, 30), reason="Spring", ranges=(TimeRange(T(9), T(10)),)),
            HoursException(first_day=date(2026, 10, 26), reason="Autumn"),
        ),
    ),
}
WINDOWS = [
    (utc(2026, 3, 27, 12), utc(2026, 3, 31, 12)),
    (utc(2026, 10, 23, 12), utc(2026, 10, 27, 12)),
    (utc(2026, 6, 29), utc(2026, 7, 2)),
    (utc(2026, 7, 13), utc(2026, 7, 17)),
    (utc(2026, 12, 23), utc(2027, 1, 3)),
]


@pytest.mark.parametrize("name", sorted(PROPERTY_SCHEDULES))
def test_next_change_is_the_first_flip_minute_by_minute(name: str) -> None:
    """Every boundary here is on a whole minute, so scanning minutes finds every flip."""
    s = PROPERTY_SCHEDULES[name]
    flips = 0
    for first, last in WINDOWS:
        minutes = [first + timedelta(minutes=i) for i in range(int((last - first).total_seconds() // 60) + 1)]
        states = [evaluate(s, m) for m in minutes]
        next_flip: datetime | None = None
        for i in range(len(minutes) - 1, -1, -1):  # walk backwards, remembering the next flip
            status = states[i]
            if i + 1 < len(minutes) and states[i + 1].open != status.open:
                next_flip = minutes[i + 1]
                flips += 1
            if next_flip is not None:
                assert status.next_change == next_flip, (name, minutes[i])
            else:
                assert status.next_change is None or status.next_change > last, (name, minutes[i])
    assert flips >= 4  # the windows do exercise changes


@pytest.mark.parametrize("name", sorted(PROPERTY_SCHEDULES))
def test_next_change_flips_exactly_there_over_a_year(name: str) -> None:
    s = PROPERTY_SCHEDULES[name]
    at = utc(2026, 1, 1)
    step = timedelta(minutes=23)
    while at < utc(2027, 1, 10):
        status = evaluate(s, at)
        if status.next_change is not None:
            assert status.next_change > at
            assert evaluate(s, status.next_change).open != status.open
            assert evaluate(s, status.next_change - timedelta(seconds=1)).open == status.open
            probe = at + step
            if probe < status.next_change:
                assert evaluate(s, probe).open == status.open
        at += step


# --- public holidays ----------------------------------------------------------------------------------------


def test_holidays_to_exceptions_romania() -> None:
    pytest.importorskip("holidays")
    exceptions = holidays_to_exceptions("RO", [2026])
    by_day = {e.first_day: e for e in exceptions}
    assert date(2026, 12, 25) in by_day and by_day[date(2026, 12, 25)].closed
    assert date(2026, 1, 1) in by_day
    assert [e.first_day for e in exceptions] == sorted(by_day)
    s = weekly(*WEEKDAYS_9_17, exceptions=exceptions)
    assert evaluate(s, loc(2026, 12, 25, 12)).reason.startswith("exception ")
    with pytest.raises(ScheduleError, match="no public holiday calendar"):
        holidays_to_exceptions("XX", 2026)


def test_a_change_beyond_three_years_is_out_of_sight() -> None:
    """An exception dated in year 9999 does not make every evaluation walk millions of days: beyond the look-ahead
    horizon (about three years) ``next_change`` is None."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from hotline.domain.hours import HoursException, Schedule, evaluate

    far = Schedule(tz=ZoneInfo("UTC"), always_open=True,
                   exceptions=[HoursException(first_day=date(9999, 12, 30), reason="far")])  # fmt: skip
    status = evaluate(far, datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert status.open and status.next_change is None
    near = Schedule(tz=ZoneInfo("UTC"), always_open=True,
                    exceptions=[HoursException(first_day=date(2028, 12, 25), reason="near")])  # fmt: skip
    assert evaluate(near, datetime(2026, 11, 25, 12, tzinfo=UTC)).next_change == datetime(2028, 12, 25, tzinfo=UTC)
