"""A report's building blocks, one UTC hour at a time, and how a period's report is put together from them.

Every figure a report shows is a sum (or a max) over calls, registrations and presence intervals, so it can be
computed per hour and the hours added up. ``db/repositories/reports.py`` computes an hour from the raw rows, keeps
finished hours as JSON (table ``report_hours``) and recomputes an hour only when a trigger marked it changed; a
week's report then reads 168 small rows instead of a million calls.

Wrap-up is the one figure that is not a plain sum: it is attributed to calls at the operator's wrap-up seconds per
answered call over the whole period (``metrics.wrapup_rates``). So an hour keeps answered counts per operator next
to every breakdown, and :func:`combine` applies the period's rates after adding the hours up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from hotline.domain.metrics import MetricsConfig, Totals, wrapup_rates

HOUR_S = 3600
TOTALS_FIELDS = tuple(f.name for f in fields(Totals))
_N = len(TOTALS_FIELDS)
_ANSWERED = TOTALS_FIELDS.index("answered")
_WRAPUP = TOTALS_FIELDS.index("wrapup_s")
_MAX_WAIT = TOTALS_FIELDS.index("max_wait_s")
_INT_FIELDS = {i for i, f in enumerate(fields(Totals)) if f.type in ("int", int)}

Values = list[float]
"""A ``Totals`` as a list in field order: cheap to add up and to store as JSON."""


def config_key(config: MetricsConfig) -> str:
    """What an hour's figures depend on besides the rows: the thresholds. A stored hour computed with other
    thresholds is not used."""
    bins = ",".join(f"{b:g}" for b in config.wait_bins_s)
    return f"sl={config.sl_threshold_s:g};short={config.short_abandon_s:g};bins={bins}"


@dataclass
class HourStats:
    """The sums of one hour (or of the part of it inside a period), for every line."""

    calls: dict[tuple[int | None, str | None], Values] = field(default_factory=dict)
    """(line id, operator) -> totals of the calls arrived in the hour, wrap-up left at 0."""
    topics: dict[tuple[int | None, int | None], Values] = field(default_factory=dict)
    """(line id, topic id or None) -> totals of the answered calls (not callbacks), wrap-up left at 0."""
    topic_answered: dict[tuple[int | None, int | None, str], int] = field(default_factory=dict)
    """(line id, topic id, operator) -> answered calls: what wrap-up is attributed by."""
    waits: dict[tuple[int | None, str], list[int]] = field(default_factory=dict)
    """(line id, "answered" | "abandoned") -> calls per wait bin."""
    talk: dict[int, dict[int, int]] = field(default_factory=dict)
    """line id -> whole talk seconds (rounded up) -> answered calls: what any billing increment needs."""
    presence: dict[tuple[int, str], float] = field(default_factory=dict)
    """(user id, presence state) -> seconds spent in it inside the hour."""

    def to_json(self) -> dict[str, list[list[Any]]]:
        return {
            "calls": [[line, op, *v] for (line, op), v in self.calls.items()],
            "topics": [[line, topic, *v] for (line, topic), v in self.topics.items()],
            "topic_answered": [[line, topic, op, n] for (line, topic, op), n in self.topic_answered.items()],
            "waits": [[line, outcome, *bins] for (line, outcome), bins in self.waits.items()],
            "talk": [[line, secs, n] for line, hist in self.talk.items() for secs, n in hist.items()],
            "presence": [[user, state, secs] for (user, state), secs in self.presence.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[Sequence[Any]]]) -> HourStats:
        talk: dict[int, dict[int, int]] = {}
        for line, secs, n in data["talk"]:
            talk.setdefault(line, {})[secs] = n
        return cls(
            calls={(r[0], r[1]): list(r[2:]) for r in data["calls"]},
            topics={(r[0], r[1]): list(r[2:]) for r in data["topics"]},
            topic_answered={(r[0], r[1], r[2]): r[3] for r in data["topic_answered"]},
            waits={(r[0], r[1]): list(r[2:]) for r in data["waits"]},
            talk=talk,
            presence={(r[0], r[1]): r[2] for r in data["presence"]},
        )


def add_values(into: dict[Any, Values], key: Any, values: Sequence[float]) -> None:
    """``into[key] += values`` with Totals' rule (``max_wait_s`` by max)."""
    current = into.get(key)
    if current is None:
        into[key] = list(values)
        return
    keep_max = max(current[_MAX_WAIT], values[_MAX_WAIT])
    for i in range(_N):
        current[i] += values[i]
    current[_MAX_WAIT] = keep_max


def to_totals(values: Sequence[float]) -> Totals:
    return Totals(*(int(v) if i in _INT_FIELDS else float(v) for i, v in enumerate(values)))


def presence_by_hour(
    entries: Iterable[tuple[int, str, datetime]], start: datetime, end: datetime
) -> dict[int, dict[tuple[int, str], float]]:
    """Hour bucket -> (user id, state) -> seconds inside ``[start, end)``.

    ``entries`` are (user id, state, at) sorted by user then time, including each user's entry in force at
    ``start``. Each lasts until the user's next entry, the last one until ``end`` (as ``metrics.presence_seconds``).
    """
    lo, hi = start.timestamp(), end.timestamp()
    out: dict[int, dict[tuple[int, str], float]] = {}
    rows = list(entries)
    for i, (user, state, at) in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1][0] == user else None
        s = max(at.timestamp(), lo)
        e = min(nxt[2].timestamp(), hi) if nxt is not None else hi
        add_interval(out, (user, state), s, e)
    return out


def add_interval(out: dict[int, dict[Any, float]], key: Any, s: float, e: float) -> None:
    """Add the seconds of ``[s, e)`` (epoch seconds) to ``out[hour][key]``, split at hour boundaries."""
    while e > s:
        bucket = int(s // HOUR_S)
        cut = min(e, (bucket + 1) * HOUR_S)
        hour = out.setdefault(bucket, {})
        hour[key] = hour.get(key, 0.0) + (cut - s)
        s = cut


@dataclass
class Combined:
    """A period's sums, put together from its hours (wrap-up attributed), still keyed by ids."""

    by_line: dict[int | None, Totals]
    by_hour: dict[int, Totals]
    by_operator: dict[str, Totals]
    by_topic_id: dict[int | None, Totals]
    waits: dict[str, list[int]]
    talk: dict[int, dict[int, int]]
    seconds: dict[str, dict[str, float]]
    """operator -> presence state -> seconds (every line: presence is not per line)."""


def combine(
    hours: Mapping[int, HourStats], *, usernames: Mapping[int, str], n_bins: int, line_id: int | None = None
) -> Combined:
    """Add the hours up. Wrap-up rates come from every line's answered calls and the operators' presence (as the
    per-call path, ``metrics.summarize``, does); the breakdowns keep only ``line_id``'s calls when it is given."""
    seconds: dict[str, dict[str, float]] = {}
    answered: dict[str, int] = {}
    for stats in hours.values():
        for (user, state), secs in stats.presence.items():
            name = usernames.get(user)
            if name is not None:
                states = seconds.setdefault(name, {})
                states[state] = states.get(state, 0.0) + secs
        for (_line, op), v in stats.calls.items():
            if op is not None and v[_ANSWERED]:
                answered[op] = answered.get(op, 0) + int(v[_ANSWERED])
    rates = wrapup_rates(seconds, answered)

    def chosen(line: int | None) -> bool:
        return line_id is None or line == line_id

    by_line: dict[Any, Values] = {}
    by_hour: dict[Any, Values] = {}
    by_operator: dict[Any, Values] = {}
    by_topic: dict[Any, Values] = {}
    waits = {"answered": [0] * n_bins, "abandoned": [0] * n_bins}
    talk: dict[int, dict[int, int]] = {}
    for bucket, stats in hours.items():
        for (line, op), v in stats.calls.items():
            if not chosen(line):
                continue
            if op is not None and op in rates:
                v = list(v)
                v[_WRAPUP] = rates[op] * v[_ANSWERED]
            add_values(by_line, line, v)
            add_values(by_hour, bucket, v)
            if op is not None:
                add_values(by_operator, op, v)
        wrapup_by_topic: dict[int | None, float] = {}
        for (line, topic, op), n in stats.topic_answered.items():
            if chosen(line) and op in rates:
                wrapup_by_topic[topic] = wrapup_by_topic.get(topic, 0.0) + rates[op] * n
        for (line, topic), v in stats.topics.items():
            if chosen(line):
                add_values(by_topic, topic, v)
        for topic, wrapup in wrapup_by_topic.items():
            by_topic[topic][_WRAPUP] += wrapup
        for (line, outcome), bins in stats.waits.items():
            if chosen(line):
                target = waits[outcome]
                for i, n in enumerate(bins):
                    target[i] += n
        for line, hist in stats.talk.items():
            if chosen(line):
                into = talk.setdefault(line, {})
                for secs, n in hist.items():
                    into[secs] = into.get(secs, 0) + n

    def done(acc: dict[Any, Values]) -> dict[Any, Totals]:
        return {k: to_totals(v) for k, v in acc.items()}

    return Combined(done(by_line), done(by_hour), done(by_operator), done(by_topic), waits, talk, seconds)


def hour_runs(buckets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted buckets as runs ``[first, last]`` of consecutive hours."""
    runs: list[tuple[int, int]] = []
    for b in sorted(set(buckets)):
        if runs and runs[-1][1] == b - 1:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((b, b))
    return runs


def covered(ranges: Iterable[tuple[int, int]], first: int, last: int) -> set[int]:
    """The hours in ``[first, last]`` that any of the inclusive ``ranges`` covers."""
    out: set[int] = set()
    for lo, hi in ranges:
        out.update(range(max(lo, first), min(hi, last) + 1))
    return out


def complete_hours_before(now: datetime) -> int:
    """The first hour bucket not finished at ``now``: hours below it may be stored."""
    return int(now.timestamp() // HOUR_S)


def raw_spans(start: datetime, end: datetime, stored: set[int]) -> list[tuple[float, float]]:
    """The parts of ``[start, end)`` (epoch seconds) not covered by ``stored`` whole hours: these are computed from
    the raw rows. Partial hours at either end are always raw."""
    lo, hi = start.timestamp(), end.timestamp()
    spans: list[tuple[float, float]] = []
    b = int(lo // HOUR_S)
    while b * HOUR_S < hi:
        s, e = max(lo, b * HOUR_S), min(hi, (b + 1) * HOUR_S)
        whole = s == b * HOUR_S and e == (b + 1) * HOUR_S
        if not (whole and b in stored):
            if spans and spans[-1][1] == s:
                spans[-1] = (spans[-1][0], e)
            else:
                spans.append((s, e))
        b += 1
    return spans


@dataclass(frozen=True)
class DirtyRange:
    first: int
    last: int
    version: int


@dataclass(frozen=True)
class RefreshPlan:
    todo: list[int]
    """finished hours to compute now, oldest first"""
    cleared: list[DirtyRange]
    """marks whose finished hours are all in ``todo``"""
    narrowed: list[tuple[DirtyRange, int]]
    """marks whose hours up to ``todo``'s last are in it: (mark, first hour still to do)"""


def refresh_plan(
    *, first: int | None, before: int, stored: set[int], dirty: Sequence[DirtyRange], max_hours: int
) -> RefreshPlan:
    """Which finished hours to (re)compute now, oldest first, at most ``max_hours``: those never stored since
    ``first`` (the oldest hour with data) and those a dirty mark covers. Hours from ``before`` on are not finished.

    A mark whose finished hours are all computed is cleared; one computed only in part is narrowed to what is
    left, so a long mark (a back-dated presence entry) is worked through chunk by chunk instead of its first
    chunk being recomputed for ever."""
    marked = covered(((d.first, d.last) for d in dirty), -(2**31), before - 1)
    missing = set() if first is None else set(range(first, before)) - stored
    todo = sorted(missing | marked)[:max_hours]
    if not todo:
        return RefreshPlan([], [], [])
    done_until = todo[-1]  # every hour to do up to here is in ``todo``
    cleared: list[DirtyRange] = []
    narrowed: list[tuple[DirtyRange, int]] = []
    for d in dirty:
        if d.first >= before or d.first > done_until:
            continue
        if min(d.last, before - 1) <= done_until:
            cleared.append(d)
        else:
            narrowed.append((d, done_until + 1))
    return RefreshPlan(todo, cleared, narrowed)
