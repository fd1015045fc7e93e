"""The reports' hourly roll-up: stored hours give the same report as the raw rows, every kind of change marks its
hours at once (database triggers), the refresher clears a mark only if no write raced it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Call, PresenceLog, Registration, ReportHour, Topic, User
from hotline.db.repositories import reports as repo
from hotline.domain.hour_stats import (
    HOUR_S,
    DirtyRange,
    HourStats,
    combine,
    covered,
    presence_by_hour,
    raw_spans,
    refresh_plan,
)
from hotline.domain.metrics import MetricsConfig, Summary, hour_bucket
from hotline.services.demo_week import DemoSummary, generate_demo_week
from hotline.services.report_rollups import refresh
from test_reports_api import TZ, WEEK_START, assert_same_summary, pure_summary

NOW = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
"""After the demo week: its hours are finished."""
H = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


# --- pure parts ----------------------------------------------------------------------------------------------------


def test_presence_is_split_at_hour_boundaries_and_clipped_to_the_span() -> None:
    entries = [
        (1, "available", H - timedelta(minutes=30)),  # in force when the span starts
        (1, "on_call", H + timedelta(minutes=50)),
        (1, "wrapup", H + timedelta(hours=1, minutes=10)),
        (2, "paused", H + timedelta(minutes=59, seconds=30)),  # the last entry: lasts until the span's end
    ]
    out = presence_by_hour(entries, H, H + timedelta(hours=2))
    b = hour_bucket(H)
    assert out == {
        b: {(1, "available"): 50 * 60.0, (1, "on_call"): 10 * 60.0, (2, "paused"): 30.0},
        b + 1: {(1, "on_call"): 10 * 60.0, (1, "wrapup"): 50 * 60.0, (2, "paused"): 3600.0},
    }
    assert presence_by_hour(entries, H + timedelta(hours=3), H + timedelta(hours=4)) == {
        b + 3: {(1, "wrapup"): 3600.0, (2, "paused"): 3600.0}
    }


def test_raw_spans_keep_partial_hours_and_hours_not_stored() -> None:
    b = hour_bucket(H)
    start, end = H - timedelta(minutes=15), H + timedelta(hours=3, minutes=5)
    assert raw_spans(start, end, {b, b + 1, b + 2}) == [(start.timestamp(), H.timestamp()),
                                                        ((b + 3) * HOUR_S, end.timestamp())]  # fmt: skip
    assert raw_spans(start, end, {b, b + 2}) == [(start.timestamp(), H.timestamp()),
                                                 ((b + 1) * HOUR_S, (b + 2) * HOUR_S),
                                                 ((b + 3) * HOUR_S, end.timestamp())]  # fmt: skip
    assert raw_spans(H, H + timedelta(hours=2), {b, b + 1}) == []


def test_refresh_plan_computes_missing_and_marked_hours_and_clears_only_what_it_covers() -> None:
    now_bucket = 100
    dirty = [DirtyRange(90, 90, 3), DirtyRange(95, 2**31 - 1, 7), DirtyRange(100, 100, 1), DirtyRange(50, 52, 1)]
    plan = refresh_plan(first=80, before=now_bucket, stored=set(range(80, 100)), dirty=dirty, max_hours=100)
    assert plan.todo == [50, 51, 52, 90, 95, 96, 97, 98, 99]
    # The unfinished hour 100 keeps its mark; the open range is cleared (its unfinished hours are never stored).
    assert plan.cleared == [DirtyRange(90, 90, 3), DirtyRange(95, 2**31 - 1, 7), DirtyRange(50, 52, 1)]
    assert plan.narrowed == []
    plan = refresh_plan(first=80, before=now_bucket, stored=set(), dirty=dirty, max_hours=5)
    assert plan.todo == [50, 51, 52, 80, 81] and plan.cleared == [DirtyRange(50, 52, 1)] and plan.narrowed == []
    # A long mark is worked through chunk by chunk: narrowed to what is left, not recomputed from its start.
    long_mark = [DirtyRange(10, 2**31 - 1, 4)]
    plan = refresh_plan(first=10, before=now_bucket, stored=set(range(10, 100)), dirty=long_mark, max_hours=30)
    assert plan.todo == list(range(10, 40)) and plan.cleared == [] and plan.narrowed == [(long_mark[0], 40)]
    assert refresh_plan(first=None, before=now_bucket, stored=set(), dirty=[], max_hours=5).todo == []
    assert covered([(1, 3), (2, 8)], 0, 4) == {1, 2, 3, 4}


async def test_a_long_mark_is_refreshed_in_chunks(sessions: async_sessionmaker[AsyncSession]) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=8, timezone="UTC")
    first = await refresh(sessions, now=NOW, max_hours=24)
    async with sessions() as session:
        user_id = await session.scalar(select(func.min(User.id)))
        session.add(PresenceLog(user_id=user_id, state="paused", reason="break", at=demo.start + timedelta(hours=1)))
        await session.commit()
        assert len(await repo.dirty_ranges(session)) == 1
    second = await refresh(sessions, now=NOW, max_hours=24)
    async with sessions() as session:
        assert await repo.dirty_ranges(session) == []
        assert_same_summary(await _summary(session, demo), await pure_summary(session, demo.start, demo.end,
                                                                               ZoneInfo(TZ)))  # fmt: skip
    assert 0 < second.hours < first.hours


def test_combined_hours_attribute_wrap_up_over_the_whole_period() -> None:
    # ana answered 1 call in each hour and spent 60 s in wrap-up overall: 30 s per call, whichever hour.
    values = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 10.0, 100.0, 0.0, 10.0, 0]
    hours = {
        1: HourStats(calls={(1, "ana"): list(values)}, topics={(1, 7): list(values)},
                     topic_answered={(1, 7, "ana"): 1}, presence={(5, "wrapup"): 60.0}),
        2: HourStats(calls={(2, "ana"): list(values)}, topics={(2, None): list(values)},
                     topic_answered={(2, None, "ana"): 1}),
    }  # fmt: skip
    both = combine(hours, usernames={5: "ana"}, n_bins=3)
    assert both.by_operator["ana"].wrapup_s == 60.0 and both.by_topic_id[7].wrapup_s == 30.0
    line2 = combine(hours, usernames={5: "ana"}, n_bins=3, line_id=2)
    assert line2.by_line[2].wrapup_s == 30.0 and set(line2.by_topic_id) == {None}
    assert HourStats.from_json(hours[1].to_json()) == hours[1]


# --- with the database ---------------------------------------------------------------------------------------------


async def _summary(session: AsyncSession, demo: DemoSummary, line: int | None = None) -> Summary:
    report, _, _ = await repo.summary(session, start=demo.start, end=demo.end, tz=ZoneInfo(TZ), line_id=line, now=NOW)
    return report


async def test_stored_hours_give_the_same_report_and_every_change_shows_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=5, timezone=TZ)
    result = await refresh(sessions, now=NOW)
    async with sessions() as session:
        first = await repo.oldest_data_hour(session)
        assert first is not None
        assert await repo.stored_hour_numbers(session, MetricsConfig()) == set(range(first, hour_bucket(NOW)))
        assert result.hours == hour_bucket(NOW) - first
        assert await repo.dirty_ranges(session) == []
        for line in (None, 2):
            assert_same_summary(await _summary(session, demo, line),
                                await pure_summary(session, demo.start, demo.end, ZoneInfo(TZ), line))  # fmt: skip
        before = await _summary(session, demo)

    # The stored rows are what the report reads: a tampered hour shows.
    busiest = max(before.by_hour, key=lambda b: before.by_hour[b].offered)
    async with sessions() as session:
        row = await session.get(ReportHour, busiest)
        assert row is not None
        original = row.stats
        tampered = HourStats.from_json(original)
        key = next(iter(tampered.calls))
        tampered.calls[key][0] += 1000
        row.stats = tampered.to_json()
        await session.commit()
    async with sessions() as session:
        assert (await _summary(session, demo)).totals.offered == before.totals.offered + 1000
        await session.execute(update(ReportHour).where(ReportHour.hour == busiest).values(stats=original))
        await session.commit()

    # Changes after the hours were stored: a call's fate corrected, a registration's topic changed, a presence
    # entry written late (back-dated into a stored hour).
    async with sessions() as session:
        call = (
            await session.scalars(
                select(Call).where(Call.outcome == "answered", Call.id.in_(select(Registration.call_id)))
                .order_by(Call.arrived_at).limit(1)
            )
        ).one()  # fmt: skip
        other = (
            await session.scalars(select(Call).where(Call.outcome == "answered", Call.id != call.id).limit(1))
        ).one()
        call.outcome, call.wait_s = "abandoned", 30.0
        topic = Topic(name="Late correction")
        session.add(topic)
        await session.flush()
        await session.execute(update(Registration).where(Registration.call_id == other.id).values(topic_id=topic.id))
        ana = await session.scalar(select(User).where(User.username == "ana"))
        assert ana is not None
        late_at = await session.scalar(
            select(func.min(PresenceLog.at)).where(PresenceLog.user_id == ana.id, PresenceLog.state == "on_call")
        )
        assert late_at is not None
        late_at -= timedelta(seconds=1)
        session.add(PresenceLog(user_id=ana.id, state="paused", reason="break", at=late_at))
        next_entry = await session.scalar(
            select(func.min(PresenceLog.at)).where(PresenceLog.user_id == ana.id, PresenceLog.at > late_at)
        )
        await session.commit()
    async with sessions() as session:
        ranges = await repo.dirty_ranges(session)
        marked = covered(((d.first, d.last) for d in ranges), 0, 2**31)
        assert {hour_bucket(call.arrived_at), hour_bucket(other.arrived_at), hour_bucket(late_at)} <= marked
        assert next_entry is not None and hour_bucket(next_entry) in marked
        changed = await _summary(session, demo)
        for line in (None, 1):
            assert_same_summary(await _summary(session, demo, line),
                                await pure_summary(session, demo.start, demo.end, ZoneInfo(TZ), line))  # fmt: skip
    assert changed.totals.answered == before.totals.answered - 1
    assert changed.by_topic["Late correction"].answered == 1

    result = await refresh(sessions, now=NOW)
    assert result.cleared == len(ranges)
    assert result.hours == len(covered(((d.first, d.last) for d in ranges), 0, hour_bucket(NOW) - 1))
    async with sessions() as session:
        assert await repo.dirty_ranges(session) == []
        after = await _summary(session, demo)
        assert_same_summary(after, await pure_summary(session, demo.start, demo.end, ZoneInfo(TZ)))


async def test_a_change_racing_a_refresh_keeps_its_mark(sessions: async_sessionmaker[AsyncSession]) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=6, timezone="UTC")
    await refresh(sessions, now=NOW)
    async with sessions() as session:
        call_id = await session.scalar(select(func.min(Call.id)).where(Call.outcome == "answered"))
        await session.execute(update(Call).where(Call.id == call_id).values(talk_s=Call.talk_s + 1))
        await session.commit()
    async with sessions() as session:
        seen = await repo.dirty_ranges(session)  # a refresh reads the marks, then computes...
    assert len(seen) == 1
    async with sessions() as session:  # ...while the same hour changes again
        await session.execute(update(Call).where(Call.id == call_id).values(talk_s=Call.talk_s + 1))
        await session.commit()
    async with sessions() as session, session.begin():
        assert await repo.clear_dirty(session, seen) == 0
    async with sessions() as session:
        again = await repo.dirty_ranges(session)
        assert [(d.first, d.last) for d in again] == [(seen[0].first, seen[0].last)]
        assert again[0].version != seen[0].version
        report = await _summary(session, demo)
        assert_same_summary(report, await pure_summary(session, demo.start, demo.end, ZoneInfo(TZ)))
    assert (await refresh(sessions, now=NOW)).cleared == 1


async def test_only_changes_that_alter_a_report_mark_an_hour(sessions: async_sessionmaker[AsyncSession]) -> None:
    await generate_demo_week(sessions, start=WEEK_START, seed=7, timezone="UTC")
    await refresh(sessions, now=NOW)
    async with sessions() as session:
        call_id = await session.scalar(select(func.min(Call.id)))
        await session.execute(
            update(Call).where(Call.id == call_id).values(recording_path="/x.wav", ended_at=NOW, end_inferred=True)
        )
        await session.commit()
        assert await repo.dirty_ranges(session) == []
        await session.execute(update(Call).where(Call.id == call_id).values(operator="someone else"))
        await session.commit()
        assert len(await repo.dirty_ranges(session)) == 1


async def test_presence_summed_in_sql_equals_the_per_entry_split(sessions: async_sessionmaker[AsyncSession]) -> None:
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=9, timezone="UTC")
    start, end = demo.start + timedelta(hours=30, minutes=17), demo.start + timedelta(days=3, minutes=41)
    async with sessions() as session:
        in_sql = await repo.presence_hours(session, start, end)
        per_entry = presence_by_hour(await repo.presence_entries(session, start, end), start, end)
    assert in_sql.keys() == per_entry.keys() and len(in_sql) > 24
    for hour, seconds in per_entry.items():
        assert in_sql[hour].keys() == seconds.keys()
        for key, value in seconds.items():
            assert in_sql[hour][key] == pytest.approx(value, abs=0.01), (hour, key)


async def test_a_refresh_completes_while_the_listener_keeps_committing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Writes racing the refresh (a commit every few milliseconds) neither make it fail nor get lost."""
    demo = await generate_demo_week(sessions, start=WEEK_START, seed=10, timezone="UTC")
    async with sessions() as session:
        ids = list((await session.scalars(select(Call.id).where(Call.outcome == "answered").limit(50))).all())
    stop = asyncio.Event()
    commits = 0

    async def listener_like() -> None:
        nonlocal commits
        while not stop.is_set():
            async with sessions() as session:
                await session.execute(update(Call).where(Call.id == ids[commits % len(ids)])
                                      .values(talk_s=Call.talk_s + 1))  # fmt: skip
                await session.commit()
            commits += 1
            await asyncio.sleep(0.002)

    writer = asyncio.create_task(listener_like())
    try:
        result = await refresh(sessions, now=NOW, max_hours=24)
    finally:
        stop.set()
        await writer
    assert result.hours > 100 and commits > 10
    await refresh(sessions, now=NOW)
    async with sessions() as session:
        assert await repo.dirty_ranges(session) == []
        assert_same_summary(await _summary(session, demo), await pure_summary(session, demo.start, demo.end,
                                                                               ZoneInfo(TZ)))  # fmt: skip
