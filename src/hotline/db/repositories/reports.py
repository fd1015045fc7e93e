"""SQL for reports: sums per UTC hour with ``GROUP BY`` in the database, kept for finished hours, ratios by
``hotline.domain.metrics``.

Scale: an hour's sums (``domain.hour_stats.HourStats``) are computed from the raw rows once — a few aggregate
queries grouped by hour bucket and line — and stored in ``report_hours`` when the hour is over; triggers mark an
hour dirty when one of its calls, registrations or presence entries changes (migration 0003), and the refresher
(``services/report_rollups.py``) recomputes it. A week's report reads 168 stored hours plus, from the raw rows, only
what is unfinished, changed or outside whole hours. The conditional counts are ``SUM(CASE …)``, portable between
SQLite and PostgreSQL; the only dialect-specific pieces are the hour bucket and ceiling, in the helpers below.

The per-call twin of every aggregate is ``metrics.add_call``; ``tests/test_reports_api.py`` checks they agree,
with and without stored hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, delete, func, literal, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from hotline.db.models import (
    Call,
    Line,
    PresenceLog,
    Registration,
    ReportDirty,
    ReportHour,
    Shift,
    ShiftBreak,
    Tariff,
    Topic,
    User,
)
from hotline.domain.costs import TariffInfo
from hotline.domain.findings import LineInfo, StaffShift
from hotline.domain.hour_stats import (
    HOUR_S,
    DirtyRange,
    HourStats,
    add_interval,
    add_values,
    combine,
    complete_hours_before,
    config_key,
    covered,
    raw_spans,
)
from hotline.domain.metrics import (
    UNREGISTERED,
    CallFact,
    MetricsConfig,
    PresenceFact,
    Summary,
    Totals,
    build_summary,
    hour_bucket,
    occupancy_from_seconds,
)

PRESENCE_MARGIN = timedelta(days=1)
"""Presence read around the period: the state an operator was in when it began (logged in for less than a day
before), and the entry that ends a wrap-up started near its end."""


@dataclass
class ReportData:
    """Everything a report needs, read in one go: the summary and the context findings and costs use."""

    summary: Summary
    lines: dict[int, LineInfo]
    talk_by_line: dict[int, dict[int, int]]
    tariffs: list[TariffInfo]
    presence: list[PresenceFact]
    """The pauses only (each followed by its end), what the break-overrun finding reads."""
    shifts: list[StaffShift] = field(default_factory=list)


# --- dialect helpers ---------------------------------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name


def _hour_bucket(dialect: str, column: Any) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / 3600), Integer)
    return cast(func.strftime("%s", column), Integer) // 3600  # floor for times after 1970


def _ceil(dialect: str, column: Any) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.ceil(column), Integer)
    truncated = cast(column, Integer)
    return truncated + case((column > truncated, 1), else_=0)


def _sum(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _presence_entries(start: datetime, end: datetime) -> Any:
    """The entries made in ``[start, end)`` plus each user's entry in force at ``start`` (made less than
    ``PRESENCE_MARGIN`` before). The entry in force is one index probe per user, not a scan of the day before."""
    earlier = PresenceLog.__table__.alias("earlier")
    in_force = (
        select(earlier.c.id)
        .where(earlier.c.user_id == User.id, earlier.c.at < start, earlier.c.at >= start - PRESENCE_MARGIN)
        .order_by(earlier.c.at.desc(), earlier.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = (PresenceLog.user_id, PresenceLog.state, PresenceLog.at, PresenceLog.id)
    return union_all(
        select(*columns).where(PresenceLog.at >= start, PresenceLog.at < end),
        select(*columns).where(PresenceLog.id.in_(select(in_force).select_from(User))),
    )


async def presence_entries(session: AsyncSession, start: datetime, end: datetime) -> list[tuple[int, str, datetime]]:
    """(user id, state, at) of :func:`_presence_entries`, sorted by user and time: what
    ``hour_stats.presence_by_hour`` takes (the per-entry twin of :func:`presence_hours`, for tests)."""
    both = _presence_entries(start, end).subquery("entries")
    stmt = select(both.c.user_id, both.c.state, both.c.at).order_by(both.c.user_id, both.c.at, both.c.id)
    return [(user, state, _aware(at)) for user, state, at in (await session.execute(stmt)).all()]


async def pauses(session: AsyncSession, start: datetime, end: datetime) -> list[PresenceFact]:
    """The pauses around the period, each followed by a synthetic ``available`` at its end (the operator's next
    entry): what ``findings`` judges for overruns. Pauses are few: their end is one index probe each."""
    later = PresenceLog.__table__.alias("later")
    until = (
        select(func.min(later.c.at))
        .where(later.c.user_id == PresenceLog.user_id, later.c.at > PresenceLog.at)
        .scalar_subquery()
    )
    stmt = (
        select(User.username, PresenceLog.reason, PresenceLog.at, until)
        .join(User, User.id == PresenceLog.user_id)
        .where(PresenceLog.state == "paused", PresenceLog.at >= start - PRESENCE_MARGIN)
        .where(PresenceLog.at < end + PRESENCE_MARGIN)
        .order_by(User.username, PresenceLog.at)
    )
    out: list[PresenceFact] = []
    for username, reason, at, ended in (await session.execute(stmt)).all():
        out.append(PresenceFact(username, "paused", _aware(at), reason))
        if ended is not None:
            out.append(PresenceFact(username, "available", _aware(ended)))
    return out


def _aware(at: datetime | str) -> datetime:
    """A window function's result loses the column type on SQLite (text comes back): parse it as UTC."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _totals_columns(config: MetricsConfig, rates: dict[str, float]) -> list[ColumnElement[Any]]:
    """The SQL twin of ``metrics.add_call``: one column per ``Totals`` field, same order."""
    own = Call.callback_of_id.is_(None)
    wait = func.coalesce(Call.wait_s, 0.0)
    outcome = Call.outcome
    answered = and_(own, outcome == "answered")
    abandoned = and_(own, outcome == "abandoned")
    known = ("answered", "abandoned", "closed", "busy", "overflow", "timeout")
    short = literal(config.short_abandon_s, Float)
    threshold = literal(config.sl_threshold_s, Float)
    return [
        _sum(own).label("offered"),
        _sum(and_(own, outcome == "closed")).label("closed"),
        _sum(answered).label("answered"),
        _sum(and_(abandoned, wait >= short)).label("abandoned"),
        _sum(and_(abandoned, wait < short)).label("short_abandoned"),
        _sum(and_(own, outcome == "busy")).label("busy"),
        _sum(and_(own, outcome == "overflow")).label("overflow"),
        _sum(and_(own, outcome == "timeout")).label("timeout"),
        _sum(and_(own, outcome.not_in(known))).label("other"),
        _sum(and_(answered, wait <= threshold)).label("answered_within_t"),
        _sum(and_(abandoned, wait >= short, wait > threshold)).label("abandoned_after_t"),
        _sum(answered, wait).label("wait_answered_s"),
        _sum(answered, func.coalesce(Call.talk_s, 0.0)).label("talk_s"),
        _sum(answered, case(rates, value=Call.operator, else_=0.0) if rates else literal(0.0, Float)).label("wrapup_s"),
        func.coalesce(func.max(case((own, Call.wait_s))), 0.0).label("max_wait_s"),
        _sum(Call.callback_of_id.is_not(None)).label("callbacks"),
    ]


def _conditions(start: datetime, end: datetime, line_id: int | None) -> list[Any]:
    conditions: list[Any] = [Call.arrived_at >= start, Call.arrived_at < end]
    if line_id is not None:
        conditions.append(Call.line_id == line_id)
    return conditions


async def raw_hours(
    session: AsyncSession, start: datetime, end: datetime, config: MetricsConfig
) -> dict[int, HourStats]:
    """Every hour touching ``[start, end)`` computed from the raw rows (only their part inside the span): one
    ``GROUP BY`` per kind of sum, each grouped by hour bucket and line, so a span of many hours is still five
    queries."""
    dialect = _dialect(session)
    if dialect == "postgresql":
        # JIT compiling these wide CASE aggregates costs more than it saves on a few million rows.
        await session.execute(text("SET LOCAL jit = off"))
    where = _conditions(start, end, None)
    bucket = _hour_bucket(dialect, Call.arrived_at).label("bucket")
    columns = _totals_columns(config, {})
    hours: dict[int, HourStats] = {}

    def hour(b: Any) -> HourStats:
        return hours.setdefault(int(b), HourStats())

    stmt = (
        select(bucket, Call.line_id, Call.operator, *columns)
        .where(*where)
        .group_by(bucket, Call.line_id, Call.operator)
    )
    for row in (await session.execute(stmt)).all():
        hour(row[0]).calls[(row[1], row[2])] = _values(row[3:])

    topic_stmt = (
        select(bucket, Call.line_id, Registration.topic_id, Call.operator, *columns)
        .outerjoin(Registration, Registration.call_id == Call.id)
        .where(*where, Call.outcome == "answered", Call.callback_of_id.is_(None))
        .group_by(bucket, Call.line_id, Registration.topic_id, Call.operator)
    )
    for row in (await session.execute(topic_stmt)).all():
        stats, key, values = hour(row[0]), (row[1], row[2]), _values(row[4:])
        add_values(stats.topics, key, values)
        if row[3] is not None:
            stats.topic_answered[(row[1], row[2], row[3])] = int(values[_ANSWERED])

    wait = func.coalesce(Call.wait_s, 0.0)
    whens = [(wait <= literal(bound, Float), i) for i, bound in enumerate(config.wait_bins_s)]
    binned = case(*whens, else_=len(config.wait_bins_s)).label("bin")
    n_bins = len(config.wait_bins_s) + 1
    wait_stmt = (
        select(bucket, Call.line_id, Call.outcome, binned, func.count())
        .where(*where, Call.callback_of_id.is_(None), Call.outcome.in_(("answered", "abandoned")))
        .group_by(bucket, Call.line_id, Call.outcome, binned)
    )
    for b, line, outcome, index, count in (await session.execute(wait_stmt)).all():
        hour(b).waits.setdefault((line, outcome), [0] * n_bins)[int(index)] += int(count)

    secs = _ceil(dialect, Call.talk_s).label("secs")
    talk_stmt = (
        select(bucket, Call.line_id, secs, func.count())
        .where(*where, Call.outcome == "answered", Call.talk_s > 0, Call.line_id.is_not(None))
        .group_by(bucket, Call.line_id, secs)
    )
    for b, line, s, count in (await session.execute(talk_stmt)).all():
        hour(b).talk.setdefault(line, {})[int(s)] = int(count)

    for b, seconds in (await presence_hours(session, start, end)).items():
        hour(b).presence = seconds
    return hours


def _epoch(dialect: str, column: Any) -> ColumnElement[float]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), Float)
    # julianday() is good to about a millisecond: rounded to it, an hour boundary stays exactly on the hour.
    return func.round((func.julianday(column) - 2440587.5) * 86400.0, 3)


async def presence_hours(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int, dict[tuple[int, str], float]]:
    """``hour_stats.presence_by_hour`` with the sums done in SQL: the intervals inside one hour (nearly all: a
    state lasts minutes) are summed per hour, user and state by the database; the few that cross an hour boundary
    come back one by one and are split here."""
    dialect = _dialect(session)
    entries = _presence_entries(start, end).subquery("entries")
    nxt = func.lead(entries.c.at).over(partition_by=entries.c.user_id, order_by=(entries.c.at, entries.c.id))
    lo, hi = start.timestamp(), end.timestamp()
    at_s, next_s = _epoch(dialect, entries.c.at), _epoch(dialect, nxt)
    iv = select(
        entries.c.user_id.label("user_id"),
        entries.c.state.label("state"),
        _greatest(dialect, at_s, literal(lo, Float)).label("s"),
        _least(dialect, func.coalesce(next_s, literal(hi, Float)), literal(hi, Float)).label("e"),
    ).subquery("intervals")
    bucket = (
        cast(func.floor(iv.c.s / float(HOUR_S)), Integer)
        if dialect == "postgresql"
        else cast(iv.c.s / float(HOUR_S), Integer)
    ).label("bucket")
    inside = iv.c.e <= (bucket + 1) * float(HOUR_S)
    multi_s = case((inside, -1.0), else_=iv.c.s).label("multi_s")
    multi_e = case((inside, -1.0), else_=iv.c.e).label("multi_e")
    stmt = (
        select(bucket, iv.c.user_id, iv.c.state, multi_s, multi_e, func.sum(iv.c.e - iv.c.s))
        .where(iv.c.e > iv.c.s)
        .group_by(bucket, iv.c.user_id, iv.c.state, multi_s, multi_e)
    )
    out: dict[int, dict[tuple[int, str], float]] = {}
    for b, user, state, s, e, total in (await session.execute(stmt)).all():
        if s < 0:
            hour = out.setdefault(int(b), {})
            hour[(user, state)] = hour.get((user, state), 0.0) + float(total)
        else:
            add_interval(out, (user, state), float(s), float(e))
    return out


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def _values(row: Sequence[Any]) -> list[float]:
    return [float(v) for v in row]


_ANSWERED = [f.name for f in fields(Totals)].index("answered")


# --- stored hours --------------------------------------------------------------------------------------------------


async def dirty_ranges(session: AsyncSession, first: int | None = None, last: int | None = None) -> list[DirtyRange]:
    """The ranges of hours marked changed (by the triggers of migration 0003), optionally those touching
    ``[first, last]``."""
    stmt = select(ReportDirty.from_hour, ReportDirty.to_hour, ReportDirty.version)
    if first is not None:
        stmt = stmt.where(ReportDirty.to_hour >= first)
    if last is not None:
        stmt = stmt.where(ReportDirty.from_hour <= last)
    return [DirtyRange(f, t, v) for f, t, v in (await session.execute(stmt)).all()]


async def stored_hours(session: AsyncSession, first: int, last: int, config: MetricsConfig) -> dict[int, HourStats]:
    stmt = select(ReportHour.hour, ReportHour.stats).where(
        ReportHour.hour >= first, ReportHour.hour <= last, ReportHour.config == config_key(config)
    )
    return {h: HourStats.from_json(stats) for h, stats in (await session.execute(stmt)).all()}


async def stored_hour_numbers(session: AsyncSession, config: MetricsConfig) -> set[int]:
    stmt = select(ReportHour.hour).where(ReportHour.config == config_key(config))
    return set((await session.scalars(stmt)).all())


async def store_hours(session: AsyncSession, hours: dict[int, HourStats], config: MetricsConfig, now: datetime) -> None:
    """Insert or replace finished hours' stats."""
    if not hours:
        return
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    stmt = insert(ReportHour)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ReportHour.hour],
        set_={"config": stmt.excluded.config, "stats": stmt.excluded.stats, "computed_at": stmt.excluded.computed_at},
    )
    key = config_key(config)
    rows = [{"hour": h, "config": key, "stats": s.to_json(), "computed_at": now} for h, s in hours.items()]
    await session.execute(stmt, rows)


async def clear_dirty(session: AsyncSession, ranges: Sequence[DirtyRange]) -> int:
    """Delete the ranges whose version is still the one read: a range marked again meanwhile stays. Returns how
    many were deleted."""
    deleted = 0
    for d in sorted(ranges, key=lambda r: (r.first, r.last)):  # the triggers' lock order: no deadlock with them
        result = await session.execute(
            delete(ReportDirty).where(
                ReportDirty.from_hour == d.first, ReportDirty.to_hour == d.last, ReportDirty.version == d.version
            )
        )
        deleted += result.rowcount or 0  # type: ignore[attr-defined]
    return deleted


async def narrow_dirty(session: AsyncSession, narrowed: Sequence[tuple[DirtyRange, int]]) -> None:
    """Replace each mark by its part from the given hour on, unless it was marked again meanwhile."""
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    for d, first in narrowed:
        if await clear_dirty(session, [d]):
            stmt = insert(ReportDirty).values(from_hour=first, to_hour=d.last, version=d.version)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[ReportDirty.from_hour, ReportDirty.to_hour],
                    set_={"version": ReportDirty.version + 1},
                )
            )


async def oldest_data_hour(session: AsyncSession) -> int | None:
    """The hour of the oldest call or presence entry: where the roll-up starts."""
    first_call = await session.scalar(select(func.min(Call.arrived_at)))
    first_presence = await session.scalar(select(func.min(PresenceLog.at)))
    known = [_aware(t) for t in (first_call, first_presence) if t is not None]
    return hour_bucket(min(known)) if known else None


async def period_hours(
    session: AsyncSession, start: datetime, end: datetime, config: MetricsConfig, now: datetime
) -> dict[int, HourStats]:
    """The stats of every hour touching ``[start, end)``: finished, unchanged hours from ``report_hours``, the
    rest (partial hours at the edges, the current hour, hours marked dirty or never stored) from the raw rows.

    The dirty marks are read before the stored hours: a refresh committing in between then either left the mark
    (its hour is recomputed here) or stored the new stats with it (read next)."""
    first, last = hour_bucket(start), hour_bucket(end - timedelta(microseconds=1))
    finished_before = complete_hours_before(now)
    dirty = covered(((d.first, d.last) for d in await dirty_ranges(session, first, last)), first, last)
    stored = {
        h: stats
        for h, stats in (await stored_hours(session, first, min(last, finished_before - 1), config)).items()
        if h not in dirty
    }
    hours = dict(stored)
    for lo, hi in raw_spans(start, end, set(stored)):
        span = await raw_hours(session, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC), config)
        hours.update(span)
    return hours


async def usernames(session: AsyncSession) -> dict[int, str]:
    return {i: name for i, name in (await session.execute(select(User.id, User.username))).all()}


async def topic_names(session: AsyncSession) -> dict[int, str]:
    return {i: name for i, name in (await session.execute(select(Topic.id, Topic.name))).all()}


async def summary(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo = UTC,
    line_id: int | None = None,
    config: MetricsConfig = MetricsConfig(),  # noqa: B008
    now: datetime | None = None,
) -> tuple[Summary, dict[int, dict[int, int]], list[PresenceFact]]:
    """Every metric over calls arrived in ``[start, end)`` (of one line, or all), from the period's hours.

    Returns the summary, the talk-time histogram per line (for costs) and the operators' pauses (for findings).
    """
    hours = await period_hours(session, start, end, config, now or datetime.now(UTC))
    n_bins = len(config.wait_bins_s) + 1
    combined = combine(hours, usernames=await usernames(session), n_bins=n_bins, line_id=line_id)
    names = await topic_names(session)
    by_topic: dict[str, Totals] = {}
    for topic_id, t in combined.by_topic_id.items():
        key = names.get(topic_id, UNREGISTERED) if topic_id is not None else UNREGISTERED
        by_topic[key] = by_topic[key] + t if key in by_topic else t
    result = build_summary(
        start=start,
        end=end,
        tz=tz,
        config=config,
        by_line=combined.by_line,
        by_operator=combined.by_operator,
        by_topic=by_topic,
        by_hour=combined.by_hour,
        waits=combined.waits,
        occupancy=occupancy_from_seconds(combined.seconds),
    )
    return result, combined.talk, await pauses(session, start, end)


# --- context: presence, shifts, lines, tariffs -------------------------------------------------------------------


async def presence_between(session: AsyncSession, start: datetime, end: datetime) -> list[PresenceFact]:
    stmt = (
        select(User.username, PresenceLog.state, PresenceLog.at, PresenceLog.reason)
        .join(User, User.id == PresenceLog.user_id)
        .where(PresenceLog.at >= start, PresenceLog.at < end)
        .order_by(PresenceLog.user_id, PresenceLog.at, PresenceLog.id)
    )
    return [PresenceFact(u, s, at, r) for u, s, at, r in (await session.execute(stmt)).all()]


async def shifts_between(session: AsyncSession, start: datetime, end: datetime) -> list[StaffShift]:
    rows = (
        await session.execute(
            select(Shift.id, User.username, Shift.starts_at, Shift.ends_at)
            .join(User, User.id == Shift.user_id)
            .where(Shift.starts_at < end, Shift.ends_at > start)
            .order_by(Shift.starts_at)
        )
    ).all()
    breaks: dict[int, list[tuple[str, datetime, datetime]]] = {}
    if rows:
        stmt = select(ShiftBreak.shift_id, ShiftBreak.kind, ShiftBreak.starts_at, ShiftBreak.ends_at).where(
            ShiftBreak.shift_id.in_([r[0] for r in rows])
        )
        for shift_id, kind, s, e in (await session.execute(stmt)).all():
            breaks.setdefault(shift_id, []).append((kind, s, e))
    return [StaffShift(u, s, e, tuple(breaks.get(i, ()))) for i, u, s, e in rows]


async def lines(session: AsyncSession) -> dict[int, LineInfo]:
    rows = await session.execute(select(Line.id, Line.name, Line.number, Line.source, Line.timezone).order_by(Line.id))
    return {i: LineInfo(i, name, number, source, tz) for i, name, number, source, tz in rows.all()}


async def tariffs(session: AsyncSession) -> list[TariffInfo]:
    rows = await session.scalars(select(Tariff).order_by(Tariff.valid_from, Tariff.id))
    return [
        TariffInfo(
            id=t.id,
            line_id=t.line_id,
            name=t.name,
            valid_from=t.valid_from,
            monthly_fee=t.monthly_fee,
            price_per_minute=t.price_per_minute,
            billing_increment_s=t.billing_increment_s,
            currency=t.currency,
            comparison=t.comparison,
        )
        for t in rows
    ]


async def first_call_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Call.arrived_at)))


async def report_data(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo = UTC,
    line_id: int | None = None,
    config: MetricsConfig = MetricsConfig(),  # noqa: B008
) -> ReportData:
    result, talk, presence = await summary(session, start=start, end=end, tz=tz, line_id=line_id, config=config)
    return ReportData(
        summary=result,
        lines=await lines(session),
        talk_by_line=talk,
        tariffs=await tariffs(session),
        presence=presence,
        shifts=await shifts_between(session, start, end),
    )


# --- the per-call path (tests, small periods) ----------------------------------------------------------------------


async def call_facts(
    session: AsyncSession, *, start: datetime, end: datetime, line_id: int | None = None
) -> list[CallFact]:
    """One :class:`CallFact` per call arrived in ``[start, end)``, with its registration's topic. Reads every row:
    for tests and for drilling into a small set, not for reports."""
    stmt = (
        select(
            Call.id, Call.line_id, Call.arrived_at, Call.outcome, Call.wait_s, Call.talk_s, Call.operator,
            Call.ended_at, Call.callback_of_id, Topic.name,
        )
        .outerjoin(Registration, Registration.call_id == Call.id)
        .outerjoin(Topic, Topic.id == Registration.topic_id)
        .where(*_conditions(start, end, line_id))
        .order_by(Call.arrived_at, Call.id)
    )  # fmt: skip
    return [
        CallFact(
            id=r[0], line_id=r[1], arrived_at=r[2], outcome=r[3], wait_s=r[4], talk_s=r[5], operator=r[6],
            ended_at=r[7], callback_of_id=r[8], topic=r[9],
        )
        for r in (await session.execute(stmt)).all()
    ]  # fmt: skip


def as_date(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()
