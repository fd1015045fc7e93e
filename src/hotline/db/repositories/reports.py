"""SQL for reports: counts and sums with ``GROUP BY`` in the database, ratios by ``hotline.domain.metrics``.

Scale: a period's report reads each call row a few times in aggregate queries and returns a few hundred rows at
most (per line × UTC hour, per operator, per topic, per wait bin, per talk second), whatever the number of calls.
The conditional counts are ``SUM(CASE …)``, portable between SQLite and PostgreSQL; the only dialect-specific
pieces are the hour bucket, ceiling and time arithmetic, in the small helpers below.

The per-call twin of every aggregate is ``metrics.add_call``; ``tests/test_reports_api.py`` checks they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from hotline.db.models import Call, Line, PresenceLog, Registration, Shift, ShiftBreak, Tariff, Topic, User
from hotline.db.types import UTCDateTime
from hotline.domain.costs import TariffInfo
from hotline.domain.findings import LineInfo, StaffShift
from hotline.domain.metrics import (
    UNREGISTERED,
    CallFact,
    MetricsConfig,
    PresenceFact,
    Summary,
    Totals,
    build_summary,
    occupancy_from_seconds,
    wrapup_rates,
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
    return cast(func.strftime("%s", column), Integer) / 3600  # integer division: floor for times after 1970


def _ceil(dialect: str, column: Any) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.ceil(column), Integer)
    truncated = cast(column, Integer)
    return truncated + case((column > truncated, 1), else_=0)


def _seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


# --- the aggregate -----------------------------------------------------------------------------------------------


def _sum(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _presence_intervals(start: datetime, end: datetime) -> Any:
    """Presence entries around the period with the time of the operator's next entry (``until``; NULL for the
    last one): the intervals of ``metrics.presence_intervals``, in SQL."""
    nxt = func.lead(PresenceLog.at).over(partition_by=PresenceLog.user_id, order_by=(PresenceLog.at, PresenceLog.id))
    return (
        select(
            PresenceLog.user_id.label("user_id"),
            PresenceLog.state.label("state"),
            PresenceLog.reason.label("reason"),
            PresenceLog.at.label("at"),
            nxt.label("until"),
        )
        .where(PresenceLog.at >= start - PRESENCE_MARGIN, PresenceLog.at < end + PRESENCE_MARGIN)
        .subquery("presence_intervals")
    )


async def presence_seconds(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[dict[str, dict[str, float]], list[PresenceFact]]:
    """``metrics.presence_seconds`` in SQL (operator -> state -> seconds inside the period), and the pauses (each
    followed by a synthetic ``available`` at its end) that ``findings`` judges for overruns."""
    dialect = _dialect(session)
    iv = _presence_intervals(start, end)
    lo = literal(start, UTCDateTime())
    hi = literal(end, UTCDateTime())
    clipped_start = _greatest(dialect, iv.c.at, lo)
    clipped_end = _least(dialect, func.coalesce(iv.c.until, hi), hi)
    length = case((clipped_end > clipped_start, _seconds_between(dialect, clipped_end, clipped_start)), else_=0.0)
    stmt = (
        select(User.username, iv.c.state, func.sum(length))
        .join(User, User.id == iv.c.user_id)
        .group_by(User.username, iv.c.state)
    )
    seconds: dict[str, dict[str, float]] = {}
    for username, state, secs in (await session.execute(stmt)).all():
        seconds.setdefault(username, {})[state] = float(secs or 0.0)
    # Pauses are few: their end (the operator's next entry) is one index lookup each, not a second window pass.
    later = PresenceLog.__table__.alias("later")
    until = (
        select(func.min(later.c.at))
        .where(later.c.user_id == PresenceLog.user_id, later.c.at > PresenceLog.at)
        .scalar_subquery()
    )
    pauses_stmt = (
        select(User.username, PresenceLog.reason, PresenceLog.at, until)
        .join(User, User.id == PresenceLog.user_id)
        .where(PresenceLog.state == "paused", PresenceLog.at >= start - PRESENCE_MARGIN)
        .where(PresenceLog.at < end + PRESENCE_MARGIN)
        .order_by(User.username, PresenceLog.at)
    )
    pauses: list[PresenceFact] = []
    for username, reason, at, ended in (await session.execute(pauses_stmt)).all():
        pauses.append(PresenceFact(username, "paused", _aware(at), reason))
        if ended is not None:
            pauses.append(PresenceFact(username, "available", _aware(ended)))
    return seconds, pauses


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


def _totals(row: Sequence[Any]) -> Totals:
    ints = [int(v) for v in row[:11]]
    floats = [float(v) for v in row[11:15]]
    return Totals(*ints, *floats, int(row[15]))


def _conditions(start: datetime, end: datetime, line_id: int | None) -> list[Any]:
    conditions: list[Any] = [Call.arrived_at >= start, Call.arrived_at < end]
    if line_id is not None:
        conditions.append(Call.line_id == line_id)
    return conditions


async def summary(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo = UTC,
    line_id: int | None = None,
    config: MetricsConfig = MetricsConfig(),  # noqa: B008
) -> tuple[Summary, dict[int, dict[int, int]], list[PresenceFact]]:
    """Every metric over calls arrived in ``[start, end)`` (of one line, or all), aggregated in SQL.

    Returns the summary, the talk-time histogram per line (for costs) and the operators' pauses (for findings).
    """
    dialect = _dialect(session)
    if dialect == "postgresql":
        # JIT compiling these wide CASE aggregates costs more than it saves on a few million rows.
        await session.execute(text("SET LOCAL jit = off"))
    conditions = _conditions(start, end, line_id)
    seconds, pauses = await presence_seconds(session, start, end)
    answered_stmt = (
        select(Call.operator, func.count())
        .where(*_conditions(start, end, None), Call.outcome == "answered", Call.callback_of_id.is_(None))
        .where(Call.operator.is_not(None))
        .group_by(Call.operator)
    )
    answered = {op: int(n) for op, n in (await session.execute(answered_stmt)).all()}
    columns = _totals_columns(config, wrapup_rates(seconds, answered))

    def base(*keys: Any) -> Any:
        return select(*keys, *columns).select_from(Call)

    bucket = _hour_bucket(dialect, Call.arrived_at).label("bucket")
    by_line: dict[int | None, Totals] = {}
    by_hour: dict[int, Totals] = {}
    by_operator: dict[str, Totals] = {}
    # One scan for three breakdowns: line × hour × operator (a few thousand groups a week), rolled up here.
    stmt = base(Call.line_id, bucket, Call.operator).where(*conditions).group_by(Call.line_id, bucket, Call.operator)
    for row in (await session.execute(stmt)).all():
        line, b, op = row[0], int(row[1]), row[2]
        t = _totals(row[3:])
        by_line[line] = by_line[line] + t if line in by_line else t
        by_hour[b] = by_hour[b] + t if b in by_hour else t
        if op is not None:
            by_operator[op] = by_operator[op] + t if op in by_operator else t

    topic_stmt = (
        base(Topic.name)
        .outerjoin(Registration, Registration.call_id == Call.id)
        .outerjoin(Topic, Topic.id == Registration.topic_id)
        .where(*conditions, Call.outcome == "answered", Call.callback_of_id.is_(None))
        .group_by(Topic.name)
    )
    by_topic: dict[str, Totals] = {}
    for row in (await session.execute(topic_stmt)).all():
        key = row[0] or UNREGISTERED
        by_topic[key] = by_topic[key] + _totals(row[1:]) if key in by_topic else _totals(row[1:])

    waits = await _wait_histogram(session, conditions, config)
    talk = await _talk_histogram(session, dialect, conditions)
    result = build_summary(
        start=start,
        end=end,
        tz=tz,
        config=config,
        by_line=by_line,
        by_operator=by_operator,
        by_topic=by_topic,
        by_hour=by_hour,
        waits=waits,
        occupancy=occupancy_from_seconds(seconds),
    )
    return result, talk, pauses


async def _wait_histogram(session: AsyncSession, conditions: list[Any], config: MetricsConfig) -> dict[str, list[int]]:
    wait = func.coalesce(Call.wait_s, 0.0)
    whens = [(wait <= literal(bound, Float), i) for i, bound in enumerate(config.wait_bins_s)]
    binned = case(*whens, else_=len(config.wait_bins_s)).label("bin")
    stmt = (
        select(Call.outcome, binned, func.count())
        .where(*conditions, Call.callback_of_id.is_(None), Call.outcome.in_(("answered", "abandoned")))
        .group_by(Call.outcome, binned)
    )
    n_bins = len(config.wait_bins_s) + 1
    out = {"answered": [0] * n_bins, "abandoned": [0] * n_bins}
    for outcome, index, count in (await session.execute(stmt)).all():
        out[outcome][int(index)] += int(count)
    return out


async def _talk_histogram(session: AsyncSession, dialect: str, conditions: list[Any]) -> dict[int, dict[int, int]]:
    """line id -> {ceil(talk seconds): calls}: what ``costs.usage_cost`` bills, for any increment."""
    secs = _ceil(dialect, Call.talk_s).label("secs")
    stmt = (
        select(Call.line_id, secs, func.count())
        .where(*conditions, Call.outcome == "answered", Call.talk_s > 0, Call.line_id.is_not(None))
        .group_by(Call.line_id, secs)
    )
    out: dict[int, dict[int, int]] = {}
    for line_id, s, count in (await session.execute(stmt)).all():
        out.setdefault(line_id, {})[int(s)] = int(count)
    return out


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
