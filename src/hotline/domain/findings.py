"""Findings: the week's numbers turned into short sentences a supervisor can act on, with the evidence beside them.

Pure and standard-library only. Each rule reads a :class:`~hotline.domain.metrics.Summary` (and the context it
needs: lines, staffing, presence, costs) and returns zero or more :class:`Finding`. A finding says one thing in
plain language, carries the numbers it rests on (``evidence``), how much it matters (``impact``: the calls — or for
money, the currency units — concerned; findings are ranked by it) and the calls behind it as a filter for
``GET /api/calls`` (``line``, ``operator``, ``outcome``, ``from``, ``to``; ``topic`` is informative).

Rules stay silent on thin data (each has a minimum number of calls), so a quiet week does not produce alarms.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from hotline.domain import metrics as m
from hotline.domain.costs import LineCost
from hotline.domain.shifts import BreakKind, Presence, ShiftError, break_overruns

__all__ = [
    "Finding",
    "FindingsConfig",
    "FindingsInput",
    "LineInfo",
    "StaffShift",
    "find",
    "staffing_by_hour",
]

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class LineInfo:
    id: int
    name: str
    number: str
    source: str | None = None
    timezone: str = "UTC"

    @property
    def label(self) -> str:
        source = f", {self.source}" if self.source else ""
        return f"{self.name} ({self.number}{source})"


@dataclass(frozen=True, slots=True)
class StaffShift:
    """An operator's shift, with its planned breaks as ``(kind, start, end)``; UTC datetimes."""

    operator: str
    start: datetime
    end: datetime
    breaks: tuple[tuple[str, datetime, datetime], ...] = ()

    def on_duty(self, at: datetime) -> bool:
        return self.start <= at < self.end and not any(s <= at < e for _, s, e in self.breaks)


def staffing_by_hour(shifts: Sequence[StaffShift], buckets: Sequence[int]) -> dict[int, float]:
    """UTC hour bucket -> operators on shift and not on a planned break, averaged over the hour (sampled at :00,
    :15, :30, :45), so a lunch half an hour long counts half an operator."""
    out = {}
    for b in buckets:
        start = datetime.fromtimestamp(b * 3600, UTC)
        samples = [start + timedelta(minutes=q) for q in (0, 15, 30, 45)]
        out[b] = sum(sum(1 for s in shifts if s.on_duty(at)) for at in samples) / len(samples)
    return out


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    kind: str  # "strength" | "weakness"
    text: str
    evidence: dict[str, Any]
    impact: float
    calls: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsConfig:
    min_calls: int = 5
    """Fewer calls (in an hour, on a line, on a topic) than this are not judged."""
    max_per_rule: int = 3
    occupancy_gap: float = 0.2
    """An operator whose occupancy differs from the team's by more than this (absolute) is named."""
    min_ready_s: float = 3600.0
    cost_outlier_factor: float = 1.5
    """A line's cost per answered call above this × the median of the others stands out."""
    cheaper_by: float = 0.1
    """A comparison tariff at least this fraction cheaper is worth a look."""
    topic_share: float = 0.2
    abandon_cluster_share: float = 0.4
    break_grace: timedelta = timedelta(minutes=2)
    low_abandonment: float = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingsInput:
    summary: m.Summary
    lines: Mapping[int, LineInfo] = field(default_factory=dict)
    staffing: Mapping[int, float] = field(default_factory=dict)
    presence: Sequence[m.PresenceFact] = ()
    planned_breaks: Mapping[BreakKind, timedelta] = field(
        default_factory=lambda: {BreakKind.LUNCH: timedelta(minutes=60), BreakKind.BREAK: timedelta(minutes=15)}
    )
    costs: Mapping[int, LineCost] = field(default_factory=dict)
    comparisons: Sequence[LineCost] = ()
    line_id: int | None = None
    """The report's line filter, added to every finding's call filter."""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _bucket_start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * 3600, UTC)


def _local_label(bucket: int, tz: tzinfo) -> str:
    at = _bucket_start(bucket).astimezone(tz)
    return f"{WEEKDAY_NAMES[at.weekday()]} {at:%d %b} {at:%H}:00–{(at + timedelta(hours=1)):%H}:00"


class _Rules:
    def __init__(self, data: FindingsInput, config: FindingsConfig) -> None:
        self.d = data
        self.s = data.summary
        self.c = config
        self.period = {"from": _iso(self.s.start), "to": _iso(self.s.end)}
        if data.line_id is not None:
            self.period["line"] = data.line_id

    def line_name(self, line_id: int | None) -> str:
        info = self.d.lines.get(line_id) if line_id is not None else None
        return info.label if info else f"line {line_id}"

    # --- service level by hour --------------------------------------------------------------------------------

    def sl_hours(self) -> list[Finding]:
        target = self.s.config.sl_target
        out = []
        for bucket, t in self.s.by_hour.items():
            judged = t.answered + t.abandoned_after_t
            sl = m.service_level(t)
            if judged < self.c.min_calls or sl is None or sl >= target:
                continue
            staff = self.d.staffing.get(bucket)
            missed = judged - t.answered_within_t
            staffing = f" with {staff:g} operator(s) on duty" if staff is not None else ""
            out.append(
                Finding(
                    rule="sl_hour",
                    kind="weakness",
                    text=f"{_local_label(bucket, self.s.tz)}: service level {_pct(sl)} (target {_pct(target)})"
                    f"{staffing}; {missed} of {judged} callers waited more than {self.s.config.sl_threshold_s:g} s "
                    "or gave up.",
                    evidence={
                        "hour": _iso(_bucket_start(bucket)),
                        "service_level": round(sl, 4),
                        "offered": t.offered,
                        "answered": t.answered,
                        "abandoned": t.abandoned,
                        "operators_on_duty": staff,
                    },
                    impact=missed,
                    calls={
                        **self.period,
                        "from": _iso(_bucket_start(bucket)),
                        "to": _iso(_bucket_start(bucket + 1)),
                    },
                )
            )
        out.sort(key=lambda f: -f.impact)
        return out[: self.c.max_per_rule]

    def overall_sl(self) -> list[Finding]:
        t = self.s.totals
        sl = m.service_level(t)
        judged = t.answered + t.abandoned_after_t
        if sl is None or judged < self.c.min_calls or sl < self.s.config.sl_target:
            return []
        return [
            Finding(
                rule="sl_overall",
                kind="strength",
                text=f"Service level over the period: {_pct(sl)}, above the {_pct(self.s.config.sl_target)} target "
                f"({t.answered_within_t} of {judged} callers answered within {self.s.config.sl_threshold_s:g} s).",
                evidence={"service_level": round(sl, 4), "answered": t.answered, "offered": t.offered},
                impact=t.answered_within_t,
                calls={**self.period, "outcome": "answered"},
            )
        ]

    def low_abandonment(self) -> list[Finding]:
        t = self.s.totals
        rate = m.abandonment_rate(t)
        if rate is None or t.answered + t.abandoned < self.c.min_calls or rate > self.c.low_abandonment:
            return []
        return [
            Finding(
                rule="low_abandonment",
                kind="strength",
                text=f"Few callers gave up: abandonment {_pct(rate)} ({t.abandoned} of {t.answered + t.abandoned}).",
                evidence={"abandonment_rate": round(rate, 4), "abandoned": t.abandoned, "answered": t.answered},
                impact=t.answered,
                calls={**self.period, "outcome": "abandoned"},
            )
        ]

    # --- demand while closed ------------------------------------------------------------------------------------

    def closed_demand(self) -> list[Finding]:
        closed = self.s.totals.closed
        if closed < self.c.min_calls:
            return []
        by_slot: dict[tuple[int, int], int] = {}
        for bucket, t in self.s.by_hour.items():
            if t.closed:
                at = _bucket_start(bucket).astimezone(self.s.tz)
                by_slot[(at.weekday(), at.hour)] = by_slot.get((at.weekday(), at.hour), 0) + t.closed
        by_hour: dict[int, int] = {}
        for (_, hour), n in by_slot.items():
            by_hour[hour] = by_hour.get(hour, 0) + n
        top = sorted(by_hour.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        when = ", ".join(f"{h:02d}:00–{(h + 1) % 24:02d}:00 ({n})" for h, n in sorted(top))
        return [
            Finding(
                rule="closed_demand",
                kind="weakness",
                text=f"{closed} calls arrived while the line was closed, most of them at {when}: "
                "evidence for longer opening hours.",
                evidence={
                    "closed": closed,
                    "by_hour_of_day": {f"{h:02d}": n for h, n in sorted(by_hour.items())},
                    "by_weekday": {
                        WEEKDAY_NAMES[d]: sum(n for (wd, _), n in by_slot.items() if wd == d)
                        for d in sorted({wd for wd, _ in by_slot})
                    },
                },
                impact=closed,
                calls={**self.period, "outcome": "closed"},
            )
        ]

    # --- sources (lines) ----------------------------------------------------------------------------------------

    def sources(self) -> list[Finding]:
        lines = {k: t for k, t in self.s.by_line.items() if k is not None and t.offered >= self.c.min_calls}
        if len(lines) < 2:
            return []
        total = sum(t.offered for t in lines.values())
        most_id, most = max(lines.items(), key=lambda kv: (kv[1].offered, -kv[0]))
        out = [
            Finding(
                rule="top_source",
                kind="strength",
                text=f"{self.line_name(most_id)} brings the most calls: {most.offered} of {total} "
                f"({_pct(most.offered / total)}).",
                evidence={"line": most_id, "offered": most.offered, "share": round(most.offered / total, 4)},
                impact=most.offered,
                calls={**self.period, "line": most_id},
            )
        ]
        rated = {k: r for k, t in lines.items() if (r := m.answer_rate(t)) is not None}
        if len(rated) >= 2:
            best_id = max(rated, key=lambda k: (rated[k], -k))
            worst_id = min(rated, key=lambda k: (rated[k], k))
            best = lines[best_id]
            out.append(
                Finding(
                    rule="best_answered_source",
                    kind="strength",
                    text=f"{self.line_name(best_id)} is the best answered: {_pct(rated[best_id])} of its "
                    f"{best.offered_in_hours} calls in hours were answered.",
                    evidence={"line": best_id, "answer_rate": round(rated[best_id], 4), "answered": best.answered},
                    impact=best.answered,
                    calls={**self.period, "line": best_id, "outcome": "answered"},
                )
            )
            if rated[best_id] - rated[worst_id] >= 0.1:
                worst = lines[worst_id]
                unanswered = worst.offered_in_hours - worst.answered
                out.append(
                    Finding(
                        rule="worst_answered_source",
                        kind="weakness",
                        text=f"{self.line_name(worst_id)} is the worst answered: {_pct(rated[worst_id])} "
                        f"({unanswered} of {worst.offered_in_hours} calls in hours not answered).",
                        evidence={"line": worst_id, "answer_rate": round(rated[worst_id], 4)},
                        impact=unanswered,
                        calls={**self.period, "line": worst_id},
                    )
                )
        return out

    # --- occupancy ----------------------------------------------------------------------------------------------

    def occupancy(self) -> list[Finding]:
        ops = {k: o for k, o in self.s.occupancy.items() if o.ready_s >= self.c.min_ready_s}
        if len(ops) < 2:
            return []
        team = m.occupancy(ops).ratio
        if team is None:
            return []
        out = []
        for op, o in ops.items():
            ratio = o.ratio or 0.0
            gap = ratio - team
            if abs(gap) <= self.c.occupancy_gap:
                continue
            high = gap > 0
            advice = "a risk of fatigue; share the load" if high else "check their queue penalties or shifts"
            answered = self.s.by_operator.get(op, m.Totals()).answered
            out.append(
                Finding(
                    rule="occupancy_high" if high else "occupancy_low",
                    kind="weakness",
                    text=f"{op} was busy {_pct(ratio)} of their ready time against the team's {_pct(team)}: {advice}.",
                    evidence={
                        "operator": op,
                        "occupancy": round(ratio, 4),
                        "team_occupancy": round(team, 4),
                        "ready_h": round(o.ready_s / 3600, 2),
                        "answered": answered,
                    },
                    impact=answered if high else max(answered, 1),
                    calls={**self.period, "operator": op},
                )
            )
        return out

    # --- cost ---------------------------------------------------------------------------------------------------

    def cost(self) -> list[Finding]:
        out = []
        per = {k: c.per_answered for k, c in self.d.costs.items() if c.per_answered is not None}
        for line_id, value in per.items():
            others = [v for k, v in per.items() if k != line_id]
            if not others:
                continue
            median = Decimal(str(statistics.median(others))).quantize(Decimal("0.01"))
            if median > 0 and value > median * Decimal(str(self.c.cost_outlier_factor)):
                c = self.d.costs[line_id]
                out.append(
                    Finding(
                        rule="cost_outlier",
                        kind="weakness",
                        text=f"{self.line_name(line_id)} costs {value} {c.currency} per answered call, against "
                        f"{median} for the other lines ({c.total} {c.currency} for {c.answered} answered calls).",
                        evidence={
                            "line": line_id,
                            "per_answered": str(value),
                            "others_median": str(median),
                            "total": str(c.total),
                            "tariff": c.tariff,
                        },
                        impact=float(c.total),
                        calls={**self.period, "line": line_id, "outcome": "answered"},
                    )
                )
        for alt in self.d.comparisons:
            own = self.d.costs.get(alt.line_id)
            if own is None or own.total <= 0 or alt.currency != own.currency:
                continue
            if alt.total <= own.total * (1 - Decimal(str(self.c.cheaper_by))):
                saving = own.total - alt.total
                out.append(
                    Finding(
                        rule="cheaper_tariff",
                        kind="weakness",
                        text=f"{self.line_name(alt.line_id)} would have cost {alt.total} {alt.currency} on "
                        f"'{alt.tariff}' instead of {own.total} on '{own.tariff}' ({saving} less).",
                        evidence={
                            "line": alt.line_id,
                            "current": str(own.total),
                            "alternative": str(alt.total),
                            "tariff": alt.tariff,
                        },
                        impact=float(saving),
                        calls={**self.period, "line": alt.line_id},
                    )
                )
        return out

    # --- topics -------------------------------------------------------------------------------------------------

    def topics(self) -> list[Finding]:
        registered = {k: t for k, t in self.s.by_topic.items() if k != m.UNREGISTERED}
        total_talk = sum(t.talk_s for t in registered.values())
        if total_talk <= 0:
            return []
        out = []
        for name, t in sorted(registered.items(), key=lambda kv: (-kv[1].talk_s, kv[0])):
            share = t.talk_s / total_talk
            if t.answered < self.c.min_calls or share < self.c.topic_share:
                continue
            out.append(
                Finding(
                    rule="topic_talk_time",
                    kind="weakness",
                    text=f"'{name}' took {_pct(share)} of the registered talk time ({t.talk_s / 3600:.1f} h over "
                    f"{t.answered} calls, {m.aht(t) or 0:.0f} s each): a candidate for a prepared answer.",
                    evidence={
                        "topic": name,
                        "talk_h": round(t.talk_s / 3600, 2),
                        "calls": t.answered,
                        "share": round(share, 4),
                    },
                    impact=t.answered,
                    calls={**self.period, "outcome": "answered", "topic": name},
                )
            )
        return out[: self.c.max_per_rule]

    # --- breaks -------------------------------------------------------------------------------------------------

    def breaks(self) -> list[Finding]:
        by_op: dict[str, list[Presence]] = {}
        for p in sorted(self.d.presence, key=lambda p: (p.operator, p.at)):
            try:
                by_op.setdefault(p.operator, []).append(Presence(p.state, p.at, p.reason))  # type: ignore[arg-type]
            except ShiftError:
                continue  # an entry the presence machine would not accept is not judged
        out = []
        for op, log in sorted(by_op.items()):
            overruns = [
                o
                for o in break_overruns(log, self.d.planned_breaks, self.s.end, self.c.break_grace)
                if self.s.start <= o.started < self.s.end
            ]
            if not overruns:
                continue
            over_min = sum(o.over.total_seconds() for o in overruns) / 60
            worst = max(overruns, key=lambda o: o.over)
            out.append(
                Finding(
                    rule="break_overrun",
                    kind="weakness",
                    text=f"{op}'s breaks ran over {len(overruns)} time(s), {over_min:.0f} min in all (longest: a "
                    f"{worst.kind} of {worst.actual.total_seconds() / 60:.0f} min planned for "
                    f"{worst.planned.total_seconds() / 60:.0f}).",
                    evidence={
                        "operator": op,
                        "overruns": len(overruns),
                        "minutes_over": round(over_min, 1),
                        "starts": [_iso(o.started) for o in overruns],
                    },
                    impact=round(over_min, 1),
                    calls={**self.period, "operator": op},
                )
            )
        return out

    # --- abandons by wait -----------------------------------------------------------------------------------------

    def abandon_cluster(self) -> list[Finding]:
        counts = self.s.waits.get("abandoned", [])
        bounds = self.s.config.wait_bins_s
        total = sum(counts)
        if total < self.c.min_calls:
            return []
        index = max(range(len(counts)), key=lambda i: (counts[i], -i))
        if index == 0 or counts[index] / total < self.c.abandon_cluster_share:
            return []
        low = bounds[index - 1]
        label = f"{low:g}–{bounds[index]:g} s" if index < len(bounds) else f"more than {low:g} s"
        return [
            Finding(
                rule="abandon_cluster",
                kind="weakness",
                text=f"Most callers who gave up ({counts[index]} of {total}) did so after waiting {label}: "
                f"answering within {low:g} s, or telling them their place in the queue, would keep them.",
                evidence={"bin": label, "abandoned_in_bin": counts[index], "abandoned": total, "bins": counts},
                impact=counts[index],
                calls={**self.period, "outcome": "abandoned"},
            )
        ]


def find(data: FindingsInput, config: FindingsConfig = FindingsConfig()) -> dict[str, list[Finding]]:
    """All rules; ``{"strengths": [...], "weaknesses": [...]}``, each ranked by impact (highest first)."""
    rules = _Rules(data, config)
    found: list[Finding] = []
    for rule in (
        rules.overall_sl,
        rules.low_abandonment,
        rules.sl_hours,
        rules.closed_demand,
        rules.sources,
        rules.occupancy,
        rules.cost,
        rules.topics,
        rules.breaks,
        rules.abandon_cluster,
    ):
        found.extend(rule())
    found.sort(key=lambda f: (-f.impact, f.rule))
    return {
        "strengths": [f for f in found if f.kind == "strength"],
        "weaknesses": [f for f in found if f.kind == "weakness"],
    }
