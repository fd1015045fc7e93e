"""Each findings rule fires on a data set built to trigger it and stays silent on one built not to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hotline.domain import metrics as m
from hotline.domain.costs import LineCost
from hotline.domain.findings import Finding, FindingsInput, LineInfo, StaffShift, find, staffing_by_hour
from hotline.domain.metrics import CallFact, PresenceFact

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 09:00 UTC
END = T0 + timedelta(days=7)
LINES = {1: LineInfo(1, "Radio", "5551000", "radio"), 2: LineInfo(2, "Flyers", "5552000", "flyers")}
_ids = iter(range(1, 1_000_000))


def calls(
    n: int, outcome: str, *, at: datetime = T0, wait: float = 5, talk: float = 60, **kw: object
) -> list[CallFact]:
    return [
        CallFact(
            id=next(_ids), line_id=kw.get("line", 1), arrived_at=at + timedelta(seconds=i), outcome=outcome,  # type: ignore[arg-type]
            wait_s=wait, talk_s=talk if outcome == "answered" else None, operator=kw.get("operator"),  # type: ignore[arg-type]
            topic=kw.get("topic"),  # type: ignore[arg-type]
        )
        for i in range(n)
    ]  # fmt: skip


def run(facts: list[CallFact], presence: list[PresenceFact] = (), **kw: object) -> list[Finding]:  # type: ignore[assignment]
    summary = m.summarize(facts, presence, start=T0, end=END)
    found = find(FindingsInput(summary=summary, lines=LINES, presence=presence, **kw))  # type: ignore[arg-type]
    return found["strengths"] + found["weaknesses"]


def rules(found: list[Finding]) -> set[str]:
    return {f.rule for f in found}


def by_rule(found: list[Finding], rule: str) -> list[Finding]:
    return [f for f in found if f.rule == rule]


def test_hour_under_target_names_the_staffing() -> None:
    bad_hour = T0 + timedelta(hours=3)
    facts = (
        calls(10, "answered", wait=5)
        + calls(4, "answered", at=bad_hour, wait=60)
        + calls(2, "answered", at=bad_hour + timedelta(minutes=5), wait=3)
    )
    staffing = {m.hour_bucket(bad_hour): 1.5}
    found = by_rule(run(facts, staffing=staffing), "sl_hour")
    assert len(found) == 1
    f = found[0]
    assert f.kind == "weakness" and "Mon 23 Nov 12:00–13:00" in f.text and "1.5 operator" in f.text
    assert f.evidence["service_level"] == round(2 / 6, 4) and f.impact == 4
    assert f.calls["from"] == bad_hour.isoformat() and f.calls["to"] == (bad_hour + timedelta(hours=1)).isoformat()
    assert by_rule(run(calls(10, "answered", wait=5), staffing=staffing), "sl_hour") == []
    assert by_rule(run(calls(3, "answered", wait=60)), "sl_hour") == []  # too few calls to judge


def test_overall_service_level_and_low_abandonment_are_strengths() -> None:
    good = run(calls(40, "answered", wait=5))
    assert {"sl_overall", "low_abandonment"} <= rules(good)
    assert all(f.kind == "strength" for f in by_rule(good, "sl_overall"))
    poor = run(calls(10, "answered", wait=40) + calls(5, "abandoned", wait=30))
    assert not {"sl_overall", "low_abandonment"} & rules(poor)


def test_demand_while_closed_says_when() -> None:
    evening = datetime(2026, 11, 24, 18, 10, tzinfo=UTC)
    facts = calls(20, "answered") + calls(6, "closed", at=evening) + calls(2, "closed", at=evening + timedelta(hours=1))
    found = by_rule(run(facts), "closed_demand")
    assert len(found) == 1
    f = found[0]
    assert f.text.startswith("8 calls arrived while the line was closed") and "18:00–19:00 (6)" in f.text
    assert f.evidence["by_weekday"] == {"Tue": 8} and f.calls["outcome"] == "closed"
    assert by_rule(run(calls(20, "answered") + calls(2, "closed", at=evening)), "closed_demand") == []


def test_sources_most_calls_and_best_answered() -> None:
    facts = (
        calls(30, "answered", line=1) + calls(10, "abandoned", line=1, wait=30)  # radio: 40 calls, 75% answered
        + calls(10, "answered", line=2)  # flyers: 10 calls, all answered
    )  # fmt: skip
    found = run(facts)
    top = by_rule(found, "top_source")[0]
    assert "Radio (5551000, radio) brings the most calls: 40 of 50 (80%)" in top.text and top.calls["line"] == 1
    best = by_rule(found, "best_answered_source")[0]
    assert best.evidence["line"] == 2 and best.evidence["answer_rate"] == 1.0
    worst = by_rule(found, "worst_answered_source")[0]
    assert worst.evidence["line"] == 1 and worst.impact == 10
    one_line = run(calls(30, "answered", line=1) + calls(2, "answered", line=2))  # flyers too small to judge
    assert not {"top_source", "best_answered_source", "worst_answered_source"} & rules(one_line)


def shift_presence(op: str, busy_minutes: int, *, day_hours: int = 4) -> list[PresenceFact]:
    """Logged in ``day_hours``: ``busy_minutes`` on calls at the start, then available, then offline."""
    return [
        PresenceFact(op, "available", T0),
        PresenceFact(op, "on_call", T0 + timedelta(minutes=1)),
        PresenceFact(op, "available", T0 + timedelta(minutes=1 + busy_minutes)),
        PresenceFact(op, "offline", T0 + timedelta(hours=day_hours)),
    ]


def test_occupancy_far_from_the_team() -> None:
    presence = shift_presence("ana", 200) + shift_presence("bob", 100) + shift_presence("cris", 20)
    found = run(calls(10, "answered", operator="ana"), presence)
    high, low = by_rule(found, "occupancy_high"), by_rule(found, "occupancy_low")
    # team: 320 busy min of 720 ready = 44%; ana 83%, bob 42%, cris 8%
    assert [f.evidence["operator"] for f in high] == ["ana"] and [f.evidence["operator"] for f in low] == ["cris"]
    assert high[0].calls["operator"] == "ana" and high[0].evidence["team_occupancy"] == round(320 / 720, 4)
    even = shift_presence("ana", 100) + shift_presence("bob", 110)
    assert not {"occupancy_high", "occupancy_low"} & rules(run([], even))


def cost(line: int, total: str, answered: int, tariff: str = "Carrier A") -> LineCost:
    return LineCost(line, tariff, "EUR", Decimal(total), Decimal(0), answered)


def test_cost_per_answered_call_that_stands_out_and_a_cheaper_offer() -> None:
    costs = {1: cost(1, "20", 100), 2: cost(2, "30", 20)}  # 0.20 vs 1.50 per answered call
    found = run([], costs=costs, comparisons=[cost(2, "12", 20, "Offer C"), cost(1, "19.50", 100, "Offer C")])
    outlier = by_rule(found, "cost_outlier")
    assert [f.evidence["line"] for f in outlier] == [2] and outlier[0].evidence["per_answered"] == "1.50"
    cheaper = by_rule(found, "cheaper_tariff")
    assert [f.evidence["line"] for f in cheaper] == [2]  # 19.50 instead of 20 is not worth a change
    assert "18.00 less" in cheaper[0].text
    calm = run([], costs={1: cost(1, "20", 100), 2: cost(2, "25", 100)}, comparisons=[cost(1, "19", 100)])
    assert not {"cost_outlier", "cheaper_tariff"} & rules(calm)


def test_topics_with_the_most_talk_time() -> None:
    facts = calls(10, "answered", talk=600, topic="Admissions") + calls(10, "answered", talk=60, topic="Fees")
    found = by_rule(run(facts + calls(30, "answered", talk=900)), "topic_talk_time")  # unregistered: not a topic
    assert [f.evidence["topic"] for f in found] == ["Admissions"] and found[0].evidence["share"] == round(10 / 11, 4)
    assert "prepared answer" in found[0].text and found[0].calls["topic"] == "Admissions"
    spread = [c for t in ("A", "B", "C", "D", "E", "F") for c in calls(5, "answered", topic=t)]
    assert by_rule(run(spread), "topic_talk_time") == []


def test_breaks_that_overran() -> None:
    lunch = [
        PresenceFact("ana", "available", T0),
        PresenceFact("ana", "paused", T0 + timedelta(hours=3), "lunch"),
        PresenceFact("ana", "available", T0 + timedelta(hours=3, minutes=75)),
        PresenceFact("ana", "paused", T0 + timedelta(hours=5), "break"),
        PresenceFact("ana", "available", T0 + timedelta(hours=5, minutes=15)),
        PresenceFact("ana", "offline", T0 + timedelta(hours=8)),
    ]
    found = by_rule(run([], lunch), "break_overrun")
    assert len(found) == 1 and found[0].evidence["overruns"] == 1 and found[0].evidence["minutes_over"] == 15
    assert "a lunch of 75 min planned for 60" in found[0].text
    on_time = list(lunch)
    on_time[2] = PresenceFact("ana", "available", T0 + timedelta(hours=3, minutes=61))  # within 2 min grace
    assert by_rule(run([], on_time), "break_overrun") == []


def test_abandons_clustered_after_a_wait_length() -> None:
    facts = calls(20, "answered") + calls(8, "abandoned", wait=45) + calls(2, "abandoned", wait=8)
    found = by_rule(run(facts), "abandon_cluster")
    assert len(found) == 1 and "8 of 10" in found[0].text and "30–60 s" in found[0].text
    assert found[0].calls["outcome"] == "abandoned"
    spread = calls(20, "answered") + [c for w in (8, 15, 25, 45, 90) for c in calls(2, "abandoned", wait=w)]
    assert by_rule(run(spread), "abandon_cluster") == []


def test_findings_are_split_and_ranked_by_impact() -> None:
    evening = datetime(2026, 11, 24, 18, 10, tzinfo=UTC)
    facts = calls(30, "answered", line=1) + calls(12, "closed", at=evening) + calls(8, "abandoned", wait=45)
    found = find(FindingsInput(summary=m.summarize(facts, [], start=T0, end=END), lines=LINES, line_id=1))
    weak = found["weaknesses"]
    assert [f.impact for f in weak] == sorted((f.impact for f in weak), reverse=True)
    assert all(f.kind == "weakness" for f in weak) and all(f.kind == "strength" for f in found["strengths"])
    assert all(f.calls["line"] == 1 for f in weak)  # the report's line filter travels with every finding
    assert find(FindingsInput(summary=m.summarize([], [], start=T0, end=END))) == {"strengths": [], "weaknesses": []}


def test_staffing_by_hour_counts_breaks_as_away() -> None:
    lunch = (("lunch", T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)),)
    shifts = [StaffShift("ana", T0, T0 + timedelta(hours=8), lunch), StaffShift("bob", T0, T0 + timedelta(hours=1))]
    b = m.hour_bucket(T0)
    assert staffing_by_hour(shifts, [b - 1, b, b + 1]) == {b - 1: 0, b: 1.5, b + 1: 1}
