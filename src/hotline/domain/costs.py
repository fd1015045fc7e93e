"""Telephony cost of a period: what the carrier bills for a line's traffic, and what other offers would have.

Pure and standard-library only; money is ``Decimal``. Decisions:

* **Usage**: each answered call's talk time (callbacks included: they are outbound calls on the line's account)
  is billed in whole ``billing_increment_s`` blocks, rounded *up* (a 61 s call on a 60 s increment bills 120 s),
  at ``price_per_minute``. Calls that were not answered bill
  nothing (the common case for a number whose dialplan answers only to queue; a carrier that bills the queue
  wait too is not modelled).
* **Monthly fee**, prorated by day: each day of the period costs ``monthly_fee / days in that day's month``, so
  a week of November costs 7/30 of the fee and a period across a month end is split exactly.
* **Which tariff**: the line's non-comparison tariff in force on the period's first day (latest ``valid_from`` on
  or before it; if none, the earliest one that starts inside the period) prices the whole period. A contract
  change in the middle of a reported period is not split.
* **Comparison** tariffs (offers) are applied to the same traffic: a comparison tariff with a line prices that
  line; one without a line prices every line.

Talk times arrive as a histogram ``{whole seconds (rounded up): number of calls}`` so the same function works
on per-call facts and on SQL ``GROUP BY`` output, and any increment can be applied exactly.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "LineCost",
    "TariffInfo",
    "billed_seconds",
    "comparison_costs",
    "line_costs",
    "prorated_fee",
    "talk_histogram",
    "tariff_in_force",
    "usage_cost",
]

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True, kw_only=True)
class TariffInfo:
    id: int
    line_id: int | None
    name: str
    valid_from: date
    monthly_fee: Decimal
    price_per_minute: Decimal
    billing_increment_s: int
    currency: str = "EUR"
    comparison: bool = False


def billed_seconds(talk_s: float | None, increment_s: int) -> int:
    """Talk time rounded up to whole billing increments; 0 for no talk."""
    if increment_s <= 0:
        raise ValueError("billing increment must be positive")
    if not talk_s or talk_s <= 0:
        return 0
    return math.ceil(talk_s / increment_s) * increment_s


def talk_histogram(talk_times: Iterable[float | None]) -> dict[int, int]:
    """``{ceil(talk seconds): count}`` of the calls that talked (the shape the SQL path also returns)."""
    out: dict[int, int] = {}
    for t in talk_times:
        if t and t > 0:
            key = math.ceil(t)
            out[key] = out.get(key, 0) + 1
    return out


def usage_cost(histogram: Mapping[int, int], tariff: TariffInfo) -> Decimal:
    billed = sum(count * billed_seconds(secs, tariff.billing_increment_s) for secs, count in histogram.items())
    return Decimal(billed) * tariff.price_per_minute / 60


def prorated_fee(monthly_fee: Decimal, start: date, end: date) -> Decimal:
    """The fee for the days ``[start, end)``: each day is 1/(days in its month) of the monthly fee."""
    total = Decimal(0)
    day = start
    while day < end:
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        total += monthly_fee / days_in_month
        day += timedelta(days=1)
    return total


def tariff_in_force(tariffs: Sequence[TariffInfo], line_id: int, start: date, end: date) -> TariffInfo | None:
    """The line's own (non-comparison) tariff that prices ``[start, end)`` (see the module docstring)."""
    own = sorted((t for t in tariffs if t.line_id == line_id and not t.comparison), key=lambda t: t.valid_from)
    before = [t for t in own if t.valid_from <= start]
    if before:
        return before[-1]
    inside = [t for t in own if t.valid_from < end]
    return inside[0] if inside else None


@dataclass(frozen=True, slots=True)
class LineCost:
    line_id: int
    tariff: str
    currency: str
    usage: Decimal
    fee: Decimal
    answered: int

    @property
    def total(self) -> Decimal:
        return (self.usage + self.fee).quantize(_CENT, rounding=ROUND_HALF_UP)

    @property
    def per_answered(self) -> Decimal | None:
        """Cost per answered call; None when nothing was answered (the fee was paid for no answered call)."""
        if self.answered == 0:
            return None
        return (self.total / self.answered).quantize(_CENT, rounding=ROUND_HALF_UP)


def _cost(line_id: int, tariff: TariffInfo, hist: Mapping[int, int], answered: int, start: date, end: date) -> LineCost:
    return LineCost(
        line_id=line_id,
        tariff=tariff.name,
        currency=tariff.currency,
        usage=usage_cost(hist, tariff),
        fee=prorated_fee(tariff.monthly_fee, start, end),
        answered=answered,
    )


def line_costs(
    talk_by_line: Mapping[int, Mapping[int, int]],
    answered_by_line: Mapping[int, int],
    tariffs: Sequence[TariffInfo],
    start: date,
    end: date,
    line_ids: Iterable[int],
) -> dict[int, LineCost]:
    """Cost of each line over ``[start, end)`` on its own tariff; lines without a tariff are left out."""
    out = {}
    for line_id in line_ids:
        tariff = tariff_in_force(tariffs, line_id, start, end)
        if tariff is not None:
            hist = talk_by_line.get(line_id, {})
            out[line_id] = _cost(line_id, tariff, hist, answered_by_line.get(line_id, 0), start, end)
    return out


def comparison_costs(
    talk_by_line: Mapping[int, Mapping[int, int]],
    answered_by_line: Mapping[int, int],
    tariffs: Sequence[TariffInfo],
    start: date,
    end: date,
    line_ids: Iterable[int],
) -> list[LineCost]:
    """What each line's traffic would have cost on each comparison tariff that applies to it."""
    out = []
    ids = list(line_ids)
    for tariff in (t for t in tariffs if t.comparison):
        for line_id in ids if tariff.line_id is None else [tariff.line_id]:
            if line_id in ids:
                hist = talk_by_line.get(line_id, {})
                out.append(_cost(line_id, tariff, hist, answered_by_line.get(line_id, 0), start, end))
    return out
