"""merge_records: overlapping sightings of one call never lose a fact nor reopen an ended call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline.domain.call_merge import merge_records
from hotline.domain.calls import CallRecord, Outcome

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _record(**kwargs: object) -> CallRecord:
    base: dict[str, object] = {"pbx_id": "pbx1", "linkedid": "1.1", "number": "5551000", "arrived_at": T0}
    base.update(kwargs)
    return CallRecord(**base)  # type: ignore[arg-type]


def test_nothing_stored_takes_the_new_record() -> None:
    new = _record(operator="ana")
    assert merge_records(None, new) is new


def test_facts_known_on_one_side_are_kept() -> None:
    stored = _record(caller_number="0712000001", rang=["ana"], queued_at=T0 + timedelta(seconds=1))
    new = _record(
        arrived_at=T0 + timedelta(seconds=3), operator="ana", talk_s=7.0, outcome=Outcome.ANSWERED,
        seen_first_in_resync=True,
    )
    merged = merge_records(stored, new)
    assert merged.caller_number == "0712000001"
    assert merged.rang == ["ana"]
    assert merged.arrived_at == T0
    assert merged.queued_at == T0 + timedelta(seconds=1)
    assert merged.operator == "ana" and merged.talk_s == 7.0
    assert merged.outcome is Outcome.ANSWERED
    assert merged.seen_first_in_resync is False


def test_an_ended_call_is_not_reopened_by_an_older_partial_stream() -> None:
    stored = _record(outcome=Outcome.ABANDONED, ended_at=T0 + timedelta(seconds=9), wait_s=9.0)
    merged = merge_records(stored, _record())
    assert merged.outcome is Outcome.ABANDONED
    assert merged.ended_at == T0 + timedelta(seconds=9)
    assert merged.wait_s == 9.0


def test_a_real_end_wins_over_an_inferred_one() -> None:
    inferred = _record(outcome=Outcome.FAILED, end_inferred=True, ended_at=T0 + timedelta(seconds=30))
    real = _record(outcome=Outcome.ANSWERED, ended_at=T0 + timedelta(seconds=20), talk_s=12.0)
    assert merge_records(inferred, real).outcome is Outcome.ANSWERED
    assert merge_records(inferred, real).end_inferred is False
    kept = merge_records(real, inferred)
    assert kept.outcome is Outcome.ANSWERED and kept.end_inferred is False and kept.talk_s == 12.0


def test_merge_is_idempotent() -> None:
    stored = _record(caller_number="0712000001", rang=["ana", "mihai"], outcome=Outcome.ANSWERED, operator="mihai")
    once = merge_records(stored, stored)
    assert merge_records(once, stored) == once == stored


def test_end_stale_infers_the_best_outcome_the_facts_allow() -> None:
    from hotline.domain.call_merge import end_stale

    at = T0 + timedelta(minutes=5)
    assert end_stale(_record(route="closed"), at).outcome is Outcome.CLOSED
    talking = end_stale(_record(route="queue", answered_at=T0, operator="ana"), at)
    assert talking.outcome is Outcome.ANSWERED and talking.end_inferred and talking.ended_at == at
    assert end_stale(_record(route="queue", queued_at=T0), at).outcome is Outcome.ABANDONED
    assert end_stale(_record(), at).outcome is Outcome.FAILED
    done = _record(outcome=Outcome.BUSY, ended_at=T0)
    assert end_stale(done, at) is done


def test_a_routing_decision_seen_only_by_the_first_listener_decides_the_outcome() -> None:
    stored = _record(route="closed", caller_number="0712000001")
    resynced = _record(outcome=Outcome.ABANDONED, ended_at=T0 + timedelta(seconds=9), seen_first_in_resync=True)
    merged = merge_records(stored, resynced)
    assert merged.outcome is Outcome.CLOSED and merged.route == "closed"
    queued = merge_records(_record(route="queue"), resynced)
    assert queued.outcome is Outcome.ABANDONED
