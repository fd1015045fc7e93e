"""Metrics and costs on hand-built call sets: every expected figure is worked out by hand in the test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from hotline.domain import costs
from hotline.domain import metrics as m
from hotline.domain.metrics import CallFact, MetricsConfig, PresenceFact

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
END = T0 + timedelta(days=7)


def call(i: int, outcome: str, wait: float | None = None, talk: float | None = None, **kw: object) -> CallFact:
    at = kw.pop("at", T0 + timedelta(minutes=i))
    ended = kw.pop("ended", at + timedelta(seconds=(wait or 0) + (talk or 0)))  # type: ignore[operator]
    return CallFact(
        id=i, line_id=kw.pop("line", 1), arrived_at=at, outcome=outcome, wait_s=wait, talk_s=talk,
        ended_at=ended, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def the_week() -> list[CallFact]:
    return [
        call(1, "answered", 10, 100, operator="ana"),
        call(2, "answered", 20, 200, operator="bob"),  # answered exactly at T: within
        call(3, "answered", 30, 60, operator="ana"),
        call(4, "abandoned", 3),  # short abandon
        call(5, "abandoned", 15),  # abandoned, not after T
        call(6, "abandoned", 40),  # abandoned after T
        call(7, "closed"),
        call(8, "busy"),
        call(9, "overflow", 60),
        call(10, "timeout", 60),
        call(11, "answered", 0, 50, operator="ana", callback_of_id=6),  # a callback: counted apart
    ]


def test_totals_and_ratios_by_hand() -> None:
    t = m.totals_of(the_week())
    assert (t.offered, t.closed, t.offered_in_hours) == (10, 1, 9)
    assert (t.answered, t.abandoned, t.short_abandoned) == (3, 2, 1)
    assert (t.busy, t.overflow, t.timeout, t.other, t.callbacks) == (1, 1, 1, 0, 1)
    assert (t.answered_within_t, t.abandoned_after_t) == (2, 1)
    assert t.wait_answered_s == 60 and t.talk_s == 360 and t.max_wait_s == 60
    assert m.service_level(t) == 2 / 4  # 2 within 20 s ÷ (3 answered + 1 abandoned after 20 s)
    assert m.asa(t) == 20  # (10 + 20 + 30) / 3
    assert m.aht(t) == 120  # (100 + 200 + 60) / 3, no wrap-up known
    assert m.abandonment_rate(t) == 2 / 5  # short abandon in neither
    assert m.answer_rate(t) == 3 / 9


def test_thresholds_are_configurable() -> None:
    t = m.totals_of(the_week(), MetricsConfig(sl_threshold_s=10, short_abandon_s=20))
    # within 10 s: only call 1; abandons: 3 s and 15 s are short now, 40 s is after T
    assert (t.answered_within_t, t.abandoned, t.short_abandoned, t.abandoned_after_t) == (1, 1, 2, 1)
    assert m.service_level(t) == 1 / 4


def test_no_calls_gives_no_ratios() -> None:
    t = m.totals_of([])
    assert t == m.Totals()
    assert [m.service_level(t), m.asa(t), m.aht(t), m.abandonment_rate(t), m.answer_rate(t)] == [None] * 5
    s = m.summarize([], [], start=T0, end=END)
    assert s.by_line == {} and s.by_hour_of_day() == {} and m.figures(s.totals)["service_level"] is None


def test_all_abandoned() -> None:
    t = m.totals_of([call(1, "abandoned", 25), call(2, "abandoned", 50), call(3, "abandoned", 8)])
    assert m.service_level(t) == 0.0  # 0 answered within ÷ (0 + 2 after T)
    assert m.abandonment_rate(t) == 1.0
    assert m.asa(t) is None and m.aht(t) is None
    only_quick = m.totals_of([call(1, "abandoned", 8)])
    assert m.service_level(only_quick) is None  # abandoned before T: nothing to judge
    assert m.totals_of([call(1, "abandoned", None)]).short_abandoned == 1  # unknown wait counts as 0 s


def test_a_call_spanning_midnight_belongs_to_its_arrival_hour() -> None:
    late = call(1, "answered", 5, 600, at=datetime(2026, 11, 23, 23, 59, 50, tzinfo=UTC), operator="ana")
    assert late.ended_at is not None and late.ended_at.date() == date(2026, 11, 24)
    s = m.summarize([late], [], start=T0, end=END)
    assert list(s.by_hour_of_day()) == [23] and list(s.by_weekday()) == [0]
    # In Bucharest (UTC+2) the same call arrived at 01:59 on Tuesday.
    local = m.summarize([late], [], start=T0, end=END, tz=ZoneInfo("Europe/Bucharest"))
    assert list(local.by_hour_of_day()) == [1] and list(local.by_weekday()) == [1]


def test_summary_breakdowns_and_histogram() -> None:
    calls = [*the_week(), replace_topic(call(12, "answered", 5, 40, operator="bob", line=2), "Fees")]
    s = m.summarize(calls, [], start=T0, end=END)
    assert s.totals.offered == 11 and s.by_line[2].answered == 1 and s.by_line[1].offered == 10
    assert s.by_operator["ana"].answered == 2 and s.by_operator["ana"].callbacks == 1
    assert s.by_topic == {m.UNREGISTERED: m.totals_of(calls[:3]), "Fees": m.totals_of([calls[-1]])}
    # bins: ≤10, 10–20, 20–30, 30–60, 60–120, >120
    assert s.waits == {"answered": [2, 1, 1, 0, 0, 0], "abandoned": [1, 1, 0, 1, 0, 0]}
    assert sum(t.offered for t in s.by_hour.values()) == 11
    outside = call(99, "answered", 1, 1, at=END)
    assert m.summarize([outside], [], start=T0, end=END).totals.offered == 0  # [start, end)


def replace_topic(c: CallFact, topic: str) -> CallFact:
    from dataclasses import replace

    return replace(c, topic=topic)


def presence(op: str, *entries: tuple[int, str, str | None]) -> list[PresenceFact]:
    return [PresenceFact(op, state, T0 + timedelta(minutes=minute), reason) for minute, state, reason in entries]


ANA = presence(
    "ana",
    (0, "available", None),
    (10, "on_call", None),
    (20, "wrapup", None),
    (21, "available", None),
    (30, "paused", "lunch"),
    (60, "available", None),
    (90, "offline", None),
)


def test_occupancy_from_presence_intervals() -> None:
    occ = m.occupancy_by_operator(ANA, T0, T0 + timedelta(hours=2))
    # ready: 09:00–09:30 and 10:00–10:30 = 3600 s; busy: on call 10 min + wrap-up 1 min = 660 s
    assert occ["ana"].ready_s == 3600 and occ["ana"].busy_s == 660
    assert occ["ana"].ratio == pytest.approx(660 / 3600)
    clipped = m.occupancy_by_operator(ANA, T0 + timedelta(minutes=15), T0 + timedelta(minutes=45))
    # 09:15–09:30: 5 min on call + 1 wrap-up + 9 available = 900 s ready, 360 s busy
    assert clipped["ana"].ready_s == 900 and clipped["ana"].busy_s == 360
    assert m.occupancy({}).ratio is None


def test_wrapup_is_the_operators_wrapup_time_per_answered_call() -> None:
    seconds = m.presence_seconds(ANA, T0, T0 + timedelta(hours=2))
    assert seconds["ana"] == {"available": 600 + 540 + 1800, "on_call": 600, "wrapup": 60, "paused": 1800,
                              "offline": 1800}  # fmt: skip
    two = [call(1, "answered", 0, 600, operator="ana"), call(2, "answered", 0, 300, operator="ana")]
    others = [call(3, "answered", 0, 100, operator="bob"), call(4, "abandoned", 30),
              call(5, "answered", 0, 50, operator="ana", callback_of_id=4)]  # fmt: skip
    rates = m.wrapup_rates(seconds, {"ana": 2, "bob": 1})
    assert rates == {"ana": 30.0}  # bob has no presence: his wrap-up is unknown, 0
    with_wrap = m.attach_wrapup(two + others, rates)
    assert [c.wrapup_s for c in with_wrap] == [30.0, 30.0, 0.0, 0.0, 0.0]  # the callback is not an answered call
    t = m.totals_of(with_wrap)
    assert t.wrapup_s == 60 and m.aht(t) == (600 + 300 + 100 + 60) / 3
    s = m.summarize(two + others, ANA, start=T0, end=T0 + timedelta(hours=2))
    assert s.totals.wrapup_s == 60 and s.by_operator["ana"].wrapup_s == 60
    # A line filter keeps the rate computed over every line: ana's call on line 2 still takes half her wrap-up.
    mixed = [call(1, "answered", 0, 600, operator="ana"), call(2, "answered", 0, 300, operator="ana", line=2)]
    one_line = m.summarize(mixed, ANA, start=T0, end=T0 + timedelta(hours=2), line_id=2)
    assert one_line.totals.answered == 1 and one_line.totals.wrapup_s == 30
    assert m.wrapup_rates(seconds, {}) == {}


def test_totals_add_and_merge_longest_wait() -> None:
    a, b = m.totals_of([call(1, "answered", 50, 10)]), m.totals_of([call(2, "abandoned", 70)])
    both = a + b
    assert both.offered == 2 and both.max_wait_s == 70 and both.answered == 1 and both.abandoned == 1
    assert both == m.totals_of([call(1, "answered", 50, 10), call(2, "abandoned", 70)])


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        MetricsConfig(sl_threshold_s=0)
    with pytest.raises(ValueError):
        MetricsConfig(wait_bins_s=(20, 10))


# --- costs -----------------------------------------------------------------------------------------------------------


def tariff(**kw: object) -> costs.TariffInfo:
    values: dict[str, object] = {
        "id": 1, "line_id": 1, "name": "Carrier A", "valid_from": date(2026, 1, 1),
        "monthly_fee": Decimal("30"), "price_per_minute": Decimal("0.06"), "billing_increment_s": 60,
    }  # fmt: skip
    values.update(kw)
    return costs.TariffInfo(**values)  # type: ignore[arg-type]


def test_billing_increments_round_each_call_up() -> None:
    assert costs.billed_seconds(61, 60) == 120
    assert costs.billed_seconds(60, 60) == 60
    assert costs.billed_seconds(0.4, 1) == 1
    assert costs.billed_seconds(None, 60) == 0 and costs.billed_seconds(0, 30) == 0
    hist = costs.talk_histogram([61, 61, 30, None, 0, 59.2])
    assert hist == {61: 2, 30: 1, 60: 1}
    # 60 s increments: 120 + 120 + 60 + 60 = 360 s = 6 min at 0.06 = 0.36
    assert costs.usage_cost(hist, tariff()) == Decimal("0.36")
    # 1 s increments: 61 + 61 + 30 + 60 = 212 s
    assert costs.usage_cost(hist, tariff(billing_increment_s=1)) == Decimal(212) * Decimal("0.06") / 60


def test_monthly_fee_is_prorated_by_day() -> None:
    assert costs.prorated_fee(Decimal(30), date(2026, 11, 23), date(2026, 11, 30)) == Decimal(7)  # 7/30 of 30
    # 29–30 November (2 × 30/30) and 1–2 December (2 × 31/31 of 31)
    assert costs.prorated_fee(Decimal(30), date(2026, 11, 29), date(2026, 12, 1)) == Decimal(2)
    assert costs.prorated_fee(Decimal(31), date(2026, 12, 1), date(2026, 12, 3)) == Decimal(2)


def test_line_costs_and_comparisons() -> None:
    tariffs = [
        tariff(),
        tariff(id=2, valid_from=date(2027, 1, 1), name="Later"),
        tariff(id=3, line_id=None, name="Offer B", comparison=True, monthly_fee=Decimal(0), billing_increment_s=1),
    ]
    start, end = date(2026, 11, 23), date(2026, 11, 30)
    hist = {1: {61: 2, 30: 1, 60: 1}}
    own = costs.line_costs(hist, {1: 4}, tariffs, start, end, [1, 2])
    assert list(own) == [1]  # line 2 has no tariff
    assert own[1].tariff == "Carrier A" and own[1].total == Decimal("7.36")  # 0.36 usage + 7.00 fee
    assert own[1].per_answered == Decimal("1.84")
    alt = costs.comparison_costs(hist, {1: 4}, tariffs, start, end, [1, 2])
    assert [(c.line_id, c.tariff, c.total) for c in alt] == [(1, "Offer B", Decimal("0.21")), (2, "Offer B", 0)]
    assert costs.line_costs({}, {}, tariffs, start, end, [1])[1].per_answered is None
