"""Call-center metrics: one definition each (../shared/DESIGN.md, "Metrics"), used by every report.

Pure and standard-library only. Two paths produce the same figures:

* **per call**: :func:`totals_of` folds :class:`CallFact` values (plain dataclasses built from call rows) into a
  :class:`Totals` of counts and sums;
* **pre-aggregated**: the SQL repository (``db/repositories/reports.py``) computes the same counts and sums with
  ``GROUP BY`` and builds the same :class:`Totals`.

Every ratio (service level, ASA, AHT, rates) is a function of a :class:`Totals` only, so a definition lives once.

Definitions decided here (the numbers a supervisor reads):

* A **callback** (a call with ``callback_of_id`` set: an operator calling back an abandoned caller) is counted in
  ``callbacks`` only; it is not demand, so it is left out of every other count.
* **offered** = every other call that reached a line (in progress included); **offered in hours** = offered minus
  the calls routed ``closed`` (arrived while the line was closed).
* **abandoned** = caller hung up while queued *after at least* ``short_abandon_s`` (5 s); quicker hang-ups are
  **short abandons**, counted apart and left out of abandonment rate and service level. An abandoned call whose
  wait is unknown counts as waited 0 s (a short abandon).
* **answered within T**: wait ``<=`` T (a call answered exactly at T is within). **Abandoned after T**: wait ``>`` T.
* A missing wait or talk time of an answered call counts as 0 s.
* **Wrap-up** of a call: presence says how long each operator spent in ``wrapup`` but not which call each
  interval followed, and matching intervals to calls by time is a range join far too slow at scale (measured:
  minutes on a million calls). So a call's wrap-up is its operator's wrap-up time in the period ÷ the operator's
  answered calls in the period (all lines): exact for the totals and per operator, the operator's mean within
  other breakdowns; 0 when the operator has no presence (unknown). See :func:`wrapup_rates`.
* **Presence intervals**: each entry lasts until the operator's next one; the last one until the end of the
  period; all clipped to the period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, tzinfo

__all__ = [
    "CallFact",
    "MetricsConfig",
    "PresenceFact",
    "Summary",
    "Totals",
    "abandonment_rate",
    "aht",
    "answer_rate",
    "asa",
    "attach_wrapup",
    "build_summary",
    "figures",
    "hour_bucket",
    "occupancy",
    "occupancy_by_operator",
    "occupancy_from_seconds",
    "presence_seconds",
    "service_level",
    "summarize",
    "totals_of",
    "wait_bin",
    "wrapup_rates",
]

UNREGISTERED = "(unregistered)"
"""Topic key of calls without a registration."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Thresholds, in seconds. ``wait_bins_s`` are the upper bounds of the wait histogram's bins (the last bin is
    open: "more than the last bound")."""

    sl_threshold_s: float = 20.0
    short_abandon_s: float = 5.0
    sl_target: float = 0.8
    wait_bins_s: tuple[float, ...] = (10.0, 20.0, 30.0, 60.0, 120.0)

    def __post_init__(self) -> None:
        if self.sl_threshold_s <= 0 or self.short_abandon_s < 0:
            raise ValueError("thresholds must be positive")
        if not 0 < self.sl_target <= 1:
            raise ValueError("the service level target is a fraction in (0, 1]")
        if list(self.wait_bins_s) != sorted(set(self.wait_bins_s)) or not self.wait_bins_s:
            raise ValueError("wait bins must be increasing")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFact:
    """What the metrics need of one call. Times are aware UTC datetimes; durations in seconds."""

    id: int
    line_id: int | None
    arrived_at: datetime
    outcome: str
    wait_s: float | None = None
    talk_s: float | None = None
    operator: str | None = None
    ended_at: datetime | None = None
    callback_of_id: int | None = None
    topic: str | None = None
    wrapup_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PresenceFact:
    """One presence change of an operator (``state`` among offline, available, on_call, wrapup, paused)."""

    operator: str
    state: str
    at: datetime
    reason: str | None = None


@dataclass(slots=True)
class Totals:
    """Counts and sums over a set of calls; additive (``+``), so breakdowns roll up. ``max_wait_s`` merges by max.

    Both the per-call fold and the SQL ``GROUP BY`` produce it; every ratio is computed from it.
    """

    offered: int = 0
    closed: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    busy: int = 0
    overflow: int = 0
    timeout: int = 0
    other: int = 0
    answered_within_t: int = 0
    abandoned_after_t: int = 0
    wait_answered_s: float = 0.0
    talk_s: float = 0.0
    wrapup_s: float = 0.0
    max_wait_s: float = 0.0
    callbacks: int = 0

    def __add__(self, other: Totals) -> Totals:
        out = Totals()
        for f in fields(Totals):
            a, b = getattr(self, f.name), getattr(other, f.name)
            setattr(out, f.name, max(a, b) if f.name == "max_wait_s" else a + b)
        return out

    @property
    def offered_in_hours(self) -> int:
        return self.offered - self.closed


def _outcome_field(outcome: str) -> str:
    return {
        "answered": "answered",
        "closed": "closed",
        "busy": "busy",
        "overflow": "overflow",
        "timeout": "timeout",
    }.get(outcome, "other")


def add_call(t: Totals, call: CallFact, config: MetricsConfig) -> None:
    """Fold one call into ``t`` (the per-call twin of the SQL aggregate in ``db/repositories/reports.py``)."""
    if call.callback_of_id is not None:
        t.callbacks += 1
        return
    t.offered += 1
    wait = call.wait_s or 0.0
    if call.wait_s is not None:
        t.max_wait_s = max(t.max_wait_s, wait)
    if call.outcome == "abandoned":
        if wait < config.short_abandon_s:
            t.short_abandoned += 1
        else:
            t.abandoned += 1
            if wait > config.sl_threshold_s:
                t.abandoned_after_t += 1
        return
    name = _outcome_field(call.outcome)
    setattr(t, name, getattr(t, name) + 1)
    if call.outcome == "answered":
        t.wait_answered_s += wait
        t.talk_s += call.talk_s or 0.0
        t.wrapup_s += call.wrapup_s
        if wait <= config.sl_threshold_s:
            t.answered_within_t += 1


def totals_of(calls: Iterable[CallFact], config: MetricsConfig = MetricsConfig()) -> Totals:
    t = Totals()
    for call in calls:
        add_call(t, call, config)
    return t


# --- ratios: the only place they are defined ------------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def service_level(t: Totals) -> float | None:
    """SL = answered within T ÷ (answered + abandoned after T); None when there is nothing to judge."""
    return _ratio(t.answered_within_t, t.answered + t.abandoned_after_t)


def asa(t: Totals) -> float | None:
    """ASA (average speed of answer) = Σ wait of answered calls ÷ answered, in seconds."""
    return _ratio(t.wait_answered_s, t.answered)


def aht(t: Totals) -> float | None:
    """AHT (average handling time) = Σ (talk + wrap-up) of answered calls ÷ answered, in seconds."""
    return _ratio(t.talk_s + t.wrapup_s, t.answered)


def abandonment_rate(t: Totals) -> float | None:
    """Abandoned ÷ (answered + abandoned); short abandons are in neither."""
    return _ratio(t.abandoned, t.answered + t.abandoned)


def answer_rate(t: Totals) -> float | None:
    """Answered ÷ offered in hours: how much of the demand that could be answered was."""
    return _ratio(t.answered, t.offered_in_hours)


# --- presence: occupancy and wrap-up ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    operator: str
    state: str
    start: datetime
    end: datetime
    reason: str | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def presence_intervals(log: Sequence[PresenceFact], until: datetime | None = None) -> list[Interval]:
    """Each presence entry lasts until the operator's next one; the last one until ``until`` (omitted when None:
    its end is unknown). ``log`` in any order."""
    by_op: dict[str, list[PresenceFact]] = {}
    for p in sorted(log, key=lambda p: (p.operator, p.at)):
        by_op.setdefault(p.operator, []).append(p)
    out: list[Interval] = []
    for entries in by_op.values():
        for i, p in enumerate(entries):
            end = entries[i + 1].at if i + 1 < len(entries) else until
            if end is not None and end > p.at:
                out.append(Interval(p.operator, p.state, p.at, end, p.reason))
    return out


def presence_seconds(log: Sequence[PresenceFact], start: datetime, end: datetime) -> dict[str, dict[str, float]]:
    """Operator -> state -> seconds spent in it inside ``[start, end)`` (intervals clipped; the last entry lasts
    until ``end``). The log should include the entry each operator was in when the period began."""
    out: dict[str, dict[str, float]] = {}
    for iv in presence_intervals(log, until=end):
        s, e = max(iv.start, start), min(iv.end, end)
        if e > s:
            states = out.setdefault(iv.operator, {})
            states[iv.state] = states.get(iv.state, 0.0) + (e - s).total_seconds()
    return out


def wrapup_rates(seconds: Mapping[str, Mapping[str, float]], answered: Mapping[str, int]) -> dict[str, float]:
    """Operator -> wrap-up seconds per answered call (see the module docstring); operators with no answered call
    are left out (their wrap-up is attributed to no call)."""
    return {
        op: states.get("wrapup", 0.0) / answered[op]
        for op, states in sorted(seconds.items())
        if answered.get(op, 0) > 0
    }


def attach_wrapup(calls: Sequence[CallFact], rates: Mapping[str, float]) -> list[CallFact]:
    """Calls with ``wrapup_s`` set from their operator's rate (answered calls only, callbacks included in
    nothing: they are not counted as answered)."""
    return [
        replace(c, wrapup_s=rates[c.operator])
        if c.outcome == "answered" and c.callback_of_id is None and c.operator in rates
        else c
        for c in calls
    ]


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Seconds an operator spent on calls and wrap-up, and logged in and not paused, inside the period."""

    busy_s: float = 0.0
    ready_s: float = 0.0

    @property
    def ratio(self) -> float | None:
        return _ratio(self.busy_s, self.ready_s)


def occupancy_from_seconds(seconds: Mapping[str, Mapping[str, float]]) -> dict[str, Occupancy]:
    """Occupancy = time on calls and wrap-up ÷ time logged in and not paused (available + on call + wrap-up)."""
    out = {}
    for op, st in sorted(seconds.items()):
        ready = st.get("available", 0.0) + st.get("on_call", 0.0) + st.get("wrapup", 0.0)
        if ready > 0:
            out[op] = Occupancy(st.get("on_call", 0.0) + st.get("wrapup", 0.0), ready)
    return out


def occupancy_by_operator(log: Sequence[PresenceFact], start: datetime, end: datetime) -> dict[str, Occupancy]:
    """Occupancy of each operator from presence intervals clipped to ``[start, end)``."""
    return occupancy_from_seconds(presence_seconds(log, start, end))


def occupancy(by_operator: Mapping[str, Occupancy]) -> Occupancy:
    """The team's occupancy: sums of the operators' times (not a mean of their ratios)."""
    return Occupancy(sum(o.busy_s for o in by_operator.values()), sum(o.ready_s for o in by_operator.values()))


# --- breakdowns -------------------------------------------------------------------------------------------------


def hour_bucket(at: datetime) -> int:
    """Hours since the epoch (UTC): the time key both paths group by; converted to local hours afterwards."""
    return math.floor(at.timestamp() / 3600)


def wait_bin(wait_s: float | None, config: MetricsConfig) -> int:
    """Index of the wait histogram bin: bin i holds waits in (bound[i-1], bound[i]]; the last bin is open."""
    wait = wait_s or 0.0
    for i, bound in enumerate(config.wait_bins_s):
        if wait <= bound:
            return i
    return len(config.wait_bins_s)


@dataclass(slots=True)
class Summary:
    """Every metric of a period: totals, breakdowns (key -> Totals), the wait histogram, occupancy."""

    start: datetime
    end: datetime
    tz: tzinfo
    config: MetricsConfig
    totals: Totals
    by_line: dict[int | None, Totals]
    by_operator: dict[str, Totals]
    by_topic: dict[str, Totals]
    by_hour: dict[int, Totals]
    """UTC hour bucket (:func:`hour_bucket`) -> totals: the time series, and the source of hour of day and weekday."""
    waits: dict[str, list[int]]
    """``answered`` / ``abandoned`` -> count per wait bin (short abandons included under ``abandoned``)."""
    occupancy: dict[str, Occupancy] = field(default_factory=dict)

    def by_hour_of_day(self) -> dict[int, Totals]:
        """Local hour of day (0–23, in ``tz``) -> totals."""
        return _regroup(self.by_hour, lambda b: _local(b, self.tz).hour)

    def by_weekday(self) -> dict[int, Totals]:
        """Local weekday (0 = Monday) -> totals."""
        return _regroup(self.by_hour, lambda b: _local(b, self.tz).weekday())


def _local(bucket: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(bucket * 3600, UTC).astimezone(tz)


def _regroup(by_hour: Mapping[int, Totals], key: Callable[[int], Hashable]) -> dict:  # type: ignore[type-arg]
    out: dict = {}  # type: ignore[type-arg]
    for bucket, t in sorted(by_hour.items()):
        k = key(bucket)
        out[k] = out[k] + t if k in out else t + Totals()
    return dict(sorted(out.items()))


def build_summary(
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    config: MetricsConfig,
    by_line: dict[int | None, Totals],
    by_operator: dict[str, Totals],
    by_topic: dict[str, Totals],
    by_hour: dict[int, Totals],
    waits: dict[str, list[int]],
    occupancy: dict[str, Occupancy],
) -> Summary:
    """The one constructor both paths call; the grand total is the sum of the per-line totals."""
    total = Totals()
    for t in by_line.values():
        total = total + t
    return Summary(start, end, tz, config, total, by_line, by_operator, by_topic, by_hour, waits, occupancy)


def summarize(
    calls: Iterable[CallFact],
    presence: Sequence[PresenceFact],
    *,
    start: datetime,
    end: datetime,
    tz: tzinfo = UTC,
    config: MetricsConfig = MetricsConfig(),
    line_id: int | None = None,
) -> Summary:
    """The per-call path: calls arrived in ``[start, end)`` (others are ignored), of one line when ``line_id`` is
    given (wrap-up rates are still computed over every line), wrap-up attached from presence."""
    chosen = [c for c in calls if start <= c.arrived_at < end]
    seconds = presence_seconds(presence, start, end)
    answered: dict[str, int] = {}
    for c in chosen:
        if c.outcome == "answered" and c.callback_of_id is None and c.operator:
            answered[c.operator] = answered.get(c.operator, 0) + 1
    chosen = attach_wrapup(chosen, wrapup_rates(seconds, answered))
    if line_id is not None:
        chosen = [c for c in chosen if c.line_id == line_id]
    by_line: dict[int | None, Totals] = {}
    by_operator: dict[str, Totals] = {}
    by_topic: dict[str, Totals] = {}
    by_hour: dict[int, Totals] = {}
    n_bins = len(config.wait_bins_s) + 1
    waits = {"answered": [0] * n_bins, "abandoned": [0] * n_bins}
    for c in chosen:
        add_call(by_line.setdefault(c.line_id, Totals()), c, config)
        add_call(by_hour.setdefault(hour_bucket(c.arrived_at), Totals()), c, config)
        if c.operator:
            add_call(by_operator.setdefault(c.operator, Totals()), c, config)
        if c.callback_of_id is None and c.outcome == "answered":
            add_call(by_topic.setdefault(c.topic or UNREGISTERED, Totals()), c, config)
        if c.callback_of_id is None and c.outcome in waits:
            waits[c.outcome][wait_bin(c.wait_s, config)] += 1
    return build_summary(
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


# --- figures: what the API and the page show -------------------------------------------------------------------


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def figures(t: Totals) -> dict[str, float | int | None]:
    """Every count and ratio of a Totals, rounded for display (ratios to 4 places, seconds to 0.1)."""
    return {
        "offered": t.offered,
        "offered_in_hours": t.offered_in_hours,
        "answered": t.answered,
        "abandoned": t.abandoned,
        "short_abandoned": t.short_abandoned,
        "busy": t.busy,
        "closed": t.closed,
        "overflow": t.overflow,
        "timeout": t.timeout,
        "other": t.other,
        "callbacks": t.callbacks,
        "answered_within_t": t.answered_within_t,
        "abandoned_after_t": t.abandoned_after_t,
        "service_level": _round(service_level(t)),
        "asa_s": _round(asa(t), 1),
        "aht_s": _round(aht(t), 1),
        "talk_s": round(t.talk_s, 1),
        "wrapup_s": round(t.wrapup_s, 1),
        "abandonment_rate": _round(abandonment_rate(t)),
        "answer_rate": _round(answer_rate(t)),
        "longest_wait_s": round(t.max_wait_s, 1),
    }
