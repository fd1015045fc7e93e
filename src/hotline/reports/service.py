"""The report service: reads the period's aggregates (``db/repositories/reports.py``), prices it
(``domain/costs.py``), judges it (``domain/findings.py``) and shapes it as JSON-ready dicts for the API and page.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.repositories import reports as repo
from hotline.domain import costs, findings, metrics
from hotline.domain.metrics import MetricsConfig, Summary
from hotline.errors import InvalidInput, NotFound

WEEK = timedelta(days=7)
MAX_PERIOD = timedelta(days=400)


@dataclass
class Report:
    start: datetime
    end: datetime
    data: repo.ReportData
    line_costs: dict[int, costs.LineCost]
    comparisons: list[costs.LineCost]
    staffing: dict[int, float]
    found: dict[str, list[findings.Finding]]
    line_id: int | None = None

    @property
    def summary(self) -> Summary:
        return self.data.summary


def resolve_tz(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {name!r}", details={"timezone": name}) from exc


def as_start(value: datetime | date, tz: tzinfo) -> datetime:
    """A date means its local midnight; a datetime must carry a zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput("times need a zone, e.g. 2026-11-23T00:00:00+01:00 (or give a date)")
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tz).astimezone(UTC)


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidInput("'to' must be after 'from'", details={"from": start.isoformat(), "to": end.isoformat()})
    if end - start > MAX_PERIOD:
        raise InvalidInput(f"a report covers at most {MAX_PERIOD.days} days")


async def first_week(session: AsyncSession, tz: tzinfo) -> tuple[datetime, datetime]:
    """The week after the first call: from the local midnight of the first call's day, seven days."""
    first = await repo.first_call_at(session)
    if first is None:
        raise NotFound("No calls yet: the first-week report starts at the first call.")
    start = as_start(first.astimezone(tz).date(), tz)
    return start, start + WEEK


async def build(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    line_id: int | None = None,
    config: MetricsConfig = MetricsConfig(),  # noqa: B008
    findings_config: findings.FindingsConfig = findings.FindingsConfig(),  # noqa: B008
) -> Report:
    check_period(start, end)
    data = await repo.report_data(session, start=start, end=end, tz=tz, line_id=line_id, config=config)
    if line_id is not None and line_id not in data.lines:
        raise NotFound(f"line {line_id} does not exist", details={"line": line_id})
    s = data.summary
    answered = {k: t.answered for k, t in s.by_line.items() if k is not None}
    line_ids = [line_id] if line_id is not None else list(data.lines)
    first_day, last_day = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    day_end = last_day + timedelta(days=1)
    own = costs.line_costs(data.talk_by_line, answered, data.tariffs, first_day, day_end, line_ids)
    alternatives = costs.comparison_costs(data.talk_by_line, answered, data.tariffs, first_day, day_end, line_ids)
    buckets = _buckets(start, end)
    staffing = findings.staffing_by_hour(data.shifts, buckets)
    found = findings.find(
        findings.FindingsInput(
            summary=s,
            lines=data.lines,
            staffing=staffing,
            presence=data.presence,
            planned_breaks=_planned_breaks(data.shifts),
            costs=own,
            comparisons=alternatives,
            line_id=line_id,
        ),
        findings_config,
    )
    return Report(start, end, data, own, alternatives, staffing, found, line_id)


def _buckets(start: datetime, end: datetime) -> list[int]:
    first, last = metrics.hour_bucket(start), metrics.hour_bucket(end - timedelta(microseconds=1))
    return list(range(first, last + 1))


def _planned_breaks(shifts: list[findings.StaffShift]) -> dict[findings.BreakKind, timedelta]:
    """The longest planned length of each break kind in the period's shifts (defaults: lunch 60, break 15 min)."""
    planned = {findings.BreakKind.LUNCH: timedelta(minutes=60), findings.BreakKind.BREAK: timedelta(minutes=15)}
    seen: dict[findings.BreakKind, timedelta] = {}
    for shift in shifts:
        for kind, s, e in shift.breaks:
            k = findings.BreakKind(kind)
            seen[k] = max(seen.get(k, timedelta(0)), e - s)
    return planned | seen


# --- JSON shapes ---------------------------------------------------------------------------------------------------


def _money(value: Any) -> str:
    return str(value)


def _cost_json(c: costs.LineCost, lines: dict[int, findings.LineInfo]) -> dict[str, Any]:
    return {
        "line_id": c.line_id,
        "line": lines[c.line_id].name if c.line_id in lines else None,
        "tariff": c.tariff,
        "currency": c.currency,
        "usage": _money(c.usage.quantize(costs._CENT)),
        "fee": _money(c.fee.quantize(costs._CENT)),
        "total": _money(c.total),
        "answered": c.answered,
        "per_answered": None if c.per_answered is None else _money(c.per_answered),
    }


def summary_json(report: Report) -> dict[str, Any]:
    s = report.summary
    lines = report.data.lines
    occ_team = metrics.occupancy(s.occupancy)
    bounds = s.config.wait_bins_s
    bin_labels = [f"≤{bounds[0]:g} s"] + [f"{a:g}–{b:g} s" for a, b in itertools.pairwise(bounds)]
    bin_labels.append(f">{bounds[-1]:g} s")
    return {
        "period": {
            "from": report.start.isoformat(),
            "to": report.end.isoformat(),
            "from_local": report.start.astimezone(s.tz).isoformat(),
            "to_local": report.end.astimezone(s.tz).isoformat(),
            "timezone": str(s.tz),
            "line": report.line_id,
        },
        "config": asdict(s.config),
        "totals": metrics.figures(s.totals),
        "occupancy": {
            "team": _round(occ_team.ratio),
            "operators": {
                op: {
                    "occupancy": _round(o.ratio),
                    "busy_h": round(o.busy_s / 3600, 2),
                    "ready_h": round(o.ready_s / 3600, 2),
                }
                for op, o in s.occupancy.items()
            },
        },
        "by_line": [
            {
                "line_id": k,
                "name": lines[k].name if k in lines else None,
                "number": lines[k].number if k in lines else None,
                "source": lines[k].source if k in lines else None,
                **metrics.figures(t),
            }
            for k, t in sorted(s.by_line.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ],
        "by_operator": [
            {
                "operator": k,
                **metrics.figures(t),
                "occupancy": _round(s.occupancy[k].ratio) if k in s.occupancy else None,
            }
            for k, t in sorted(s.by_operator.items())
        ],
        "by_topic": [
            {"topic": k, **metrics.figures(t)} for k, t in sorted(s.by_topic.items(), key=lambda kv: -kv[1].talk_s)
        ],
        "by_hour_of_day": [{"hour": h, **metrics.figures(t)} for h, t in s.by_hour_of_day().items()],
        "by_weekday": [
            {"weekday": d, "name": findings.WEEKDAY_NAMES[d], **metrics.figures(t)} for d, t in s.by_weekday().items()
        ],
        "series": [
            {
                "hour": datetime.fromtimestamp(b * 3600, UTC).isoformat(),
                "operators_on_duty": report.staffing.get(b),
                **metrics.figures(s.by_hour.get(b, metrics.Totals())),
            }
            for b in sorted(report.staffing)
        ],
        "waits": {"bins": bin_labels, **{k: list(v) for k, v in s.waits.items()}},
        "costs": {
            "lines": [_cost_json(c, lines) for c in report.line_costs.values()],
            "comparisons": [_cost_json(c, lines) for c in report.comparisons],
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def findings_json(report: Report) -> dict[str, Any]:
    return {
        "period": {"from": report.start.isoformat(), "to": report.end.isoformat(), "line": report.line_id},
        **{kind: [asdict(f) for f in items] for kind, items in report.found.items()},
    }
