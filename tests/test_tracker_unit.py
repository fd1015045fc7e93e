"""The tracker on small hand-built AMI streams: the cases where Asterisk surprises (see the module docstring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline.domain.calls import CallChange, CallRecord, Outcome
from hotline.domain.tracker import CallTracker

LINES = {"5551000": 1, "5553000": 3}
T0 = 1_800_000_000.0
TRUNK = "PJSIP/trunk-00000001"
CALL = "1800000000.10"


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def ev(name: str, offset: float, **headers: str) -> dict[str, str]:
    """An AMI event as the frame parser gives it, timestamped ``offset`` seconds after T0."""
    event = {"Event": name, "Privilege": "call,all", "Timestamp": f"{T0 + offset:.6f}"}
    event.update(headers)
    return event


def chan(channel: str, uniqueid: str, linkedid: str = CALL, exten: str = "s", **more: str) -> dict[str, str]:
    return {"Channel": channel, "Uniqueid": uniqueid, "Linkedid": linkedid, "Exten": exten, **more}


def trunk(**more: str) -> dict[str, str]:
    """The single channel of a SIP trunk call: it is the caller *and* runs the dialplan."""
    return chan(TRUNK, CALL, exten="5551000", CallerIDNum="0712345678", CallerIDName="Maria Ionescu", **more)


def queue(**more: str) -> dict[str, str]:
    return {**trunk(), "Queue": "hotline-1", **more}


def phone(n: int, side: int = 1, linkedid: str = CALL) -> dict[str, str]:
    return chan(f"Local/10{n}@phones-0000000{n};{side}", f"1800000000.{20 + 2 * n + side}", linkedid, exten=f"10{n}")


def feed(tracker: CallTracker, events: list[dict[str, str]], received: float = 0.0) -> list[CallChange]:
    changes: list[CallChange] = []
    for event in events:
        changes.extend(tracker.handle(event, at(received)))
    return changes


def ended(changes: list[CallChange]) -> list[CallRecord]:
    return [c.record for c in changes if c.ended]


def sip_answered_call() -> list[dict[str, str]]:
    """A SIP trunk call: one caller channel, queued, ana answers after 3 s, 12 s of talk, caller hangs up."""
    return [
        ev("Newchannel", 0.0, **trunk()),
        ev("UserEvent", 0.1, **trunk(), UserEvent="HotlineRoute", Line="1", Route="queue"),
        ev("VarSet", 0.2, **trunk(), Variable="MIXMONITOR_FILENAME", Value="/rec/hotline-1.wav"),
        ev("MixMonitorStart", 0.2, **trunk()),
        ev("QueueCallerJoin", 0.3, **queue(), Position="1"),
        ev("Newchannel", 0.4, **phone(1)),
        ev("Newchannel", 0.4, **phone(1, 2)),
        ev(
            "AgentCalled",
            0.5,
            **queue(),
            MemberName="ana",
            DestChannel=phone(1)["Channel"],
            DestUniqueid=phone(1)["Uniqueid"],
        ),
        ev("DialBegin", 0.5, **trunk(), DestChannel=phone(1)["Channel"], DestUniqueid=phone(1)["Uniqueid"]),
        ev(
            "DialEnd",
            3.3,
            **trunk(),
            DestChannel=phone(1)["Channel"],
            DestUniqueid=phone(1)["Uniqueid"],
            DialStatus="ANSWER",
        ),
        ev("QueueCallerLeave", 3.3, **queue(), Position="1"),
        ev(
            "AgentConnect",
            3.3,
            **queue(),
            MemberName="ana",
            HoldTime="3",
            RingTime="3",
            DestChannel=phone(1)["Channel"],
        ),
        ev("BridgeEnter", 3.4, **trunk(), BridgeUniqueid="b-1"),
        ev(
            "AgentComplete",
            15.3,
            **queue(),
            MemberName="ana",
            HoldTime="3",
            TalkTime="12",
            Reason="caller",
            DestChannel=phone(1)["Channel"],
        ),
        ev("Hangup", 15.4, **trunk(), Cause="16"),
        ev("Hangup", 15.5, **phone(1), Cause="16"),
        ev("Hangup", 15.5, **phone(1, 2), Cause="16"),
    ]


def test_sip_single_channel_call_is_tracked_end_to_end() -> None:
    tracker = CallTracker("pbx1", LINES)
    changes = feed(tracker, sip_answered_call())

    [record] = ended(changes)
    assert changes[-1].ended and sum(c.ended for c in changes) == 1
    assert (record.pbx_id, record.linkedid, record.line_id, record.number) == ("pbx1", CALL, 1, "5551000")
    assert (record.caller_number, record.caller_name) == ("0712345678", "Maria Ionescu")
    assert record.outcome is Outcome.ANSWERED
    assert (record.operator, record.wait_s, record.talk_s, record.rang) == ("ana", 3.0, 12.0, ["ana"])
    assert record.arrived_at == at(0.0)
    assert record.queued_at == at(0.3)
    assert record.answered_at == at(3.3)
    assert record.ended_at == at(15.5)
    assert record.hangup_cause == 16
    assert record.recording_path == "/rec/hotline-1.wav"
    assert (record.queue, record.route, record.end_inferred) == ("hotline-1", "queue", False)
    assert tracker.live_calls() == []
    assert tracker.stats.failed == 0


def test_unknown_caller_id_is_none_until_newcallerid_on_the_caller_side() -> None:
    tracker = CallTracker("pbx1", LINES)
    one = chan("Local/5551000@hotline-inbound-00000001;1", CALL, exten="5551000")
    two = chan("Local/5551000@hotline-inbound-00000001;2", "1800000000.11", exten="5551000")
    unknown = {"CallerIDNum": "<unknown>", "CallerIDName": "<unknown>"}
    feed(tracker, [ev("Newchannel", 0, **one, **unknown), ev("Newchannel", 0, **two, **unknown)])
    assert (tracker.live_calls()[0].caller_number, tracker.live_calls()[0].caller_name) == (None, None)

    feed(
        tracker,
        [
            ev("NewCallerid", 0.1, **one, CallerIDNum="0712000001", CallerIDName="Ion Popescu"),
            # another channel of the same call with a dialplan-made caller id: not the caller
            ev("NewCallerid", 0.2, **phone(1), CallerIDNum="s", CallerIDName="x"),
        ],
    )
    [live] = tracker.live_calls()
    assert (live.caller_number, live.caller_name) == ("0712000001", "Ion Popescu")


def caller_in_queue(extra: list[dict[str, str]], line: str = "5551000") -> CallRecord | None:
    """A SIP caller queued for 20 s with nobody answering, then ``extra`` events, then the caller's hangup."""
    tracker = CallTracker("pbx1", LINES)
    base = {**trunk(), "Exten": line}
    events = [
        ev("Newchannel", 0, **base),
        ev("UserEvent", 0.1, **base, UserEvent="HotlineRoute", Line="1", Route="queue"),
        ev("QueueCallerJoin", 0.2, **queue(), Position="1"),
        ev("QueueCallerAbandon", 20.2, **queue(), HoldTime="20", Position="1", OriginalPosition="1"),
        ev("QueueCallerLeave", 20.2, **queue(), Position="1"),
        *extra,
        ev("Hangup", 30, **base, Cause="16"),
    ]
    records = ended(feed(tracker, events))
    return records[0] if records else None


def test_queue_caller_abandon_followed_by_hangup_is_an_abandon() -> None:
    record = caller_in_queue([])
    assert record is not None
    assert (record.outcome, record.wait_s, record.operator) == (Outcome.ABANDONED, 20.0, None)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("TIMEOUT", Outcome.TIMEOUT), ("LEAVEEMPTY", Outcome.TIMEOUT), ("FULL", Outcome.BUSY), ("", Outcome.ABANDONED)],
)
def test_queue_timeout_is_not_an_abandon_when_queuestatus_says_so(status: str, outcome: Outcome) -> None:
    record = caller_in_queue([ev("VarSet", 20.3, **trunk(), Variable="QUEUESTATUS", Value=status)])
    assert record is not None
    assert (record.outcome, record.wait_s) == (outcome, 20.0)


def test_queue_timeout_is_recognised_by_the_dialplan_going_on_without_queuestatus() -> None:
    """With VarSet filtered out at the PBX, a dial after the "abandon" still shows the caller was still there."""
    record = caller_in_queue(
        [ev("DialBegin", 20.4, **trunk(), DestChannel="Local/200@outside-1;1", DestUniqueid="1800000020.1")]
    )
    assert record is not None
    assert record.outcome is Outcome.TIMEOUT


def test_queue_timeout_then_overflow_announcement_is_an_overflow() -> None:
    record = caller_in_queue(
        [
            ev("VarSet", 20.3, **trunk(), Variable="QUEUESTATUS", Value="TIMEOUT"),
            ev("UserEvent", 20.3, **trunk(), UserEvent="HotlineRoute", Line="1", Route="overflow", Target="0219990000"),
        ]
    )
    assert record is not None
    assert (record.outcome, record.overflow_to, record.wait_s) == (Outcome.OVERFLOW, "0219990000", 20.0)


@pytest.mark.parametrize(("route", "outcome"), [("closed", Outcome.CLOSED), ("busy", Outcome.BUSY)])
def test_routing_announcement_decides_calls_that_never_queue(route: str, outcome: Outcome) -> None:
    tracker = CallTracker("pbx1", LINES)
    records = ended(
        feed(
            tracker,
            [
                ev("Newchannel", 0, **trunk()),
                ev("UserEvent", 0.1, **trunk(), UserEvent="HotlineRoute", Line="1", Route=route),
                ev("UserEvent", 0.1, **trunk(), UserEvent="SomethingElse"),
                ev("Hangup", 5, **trunk(), Cause="17" if route == "busy" else "16"),
            ],
        )
    )
    assert [(r.outcome, r.wait_s, r.talk_s, r.operator) for r in records] == [(outcome, None, None, None)]


def test_missing_agent_complete_talk_runs_from_connect_to_first_relevant_hangup() -> None:
    """Asterisk sometimes sends no AgentComplete; another member's phone, cancelled when ana answered, hangs up
    right after AgentConnect and must not end the talk."""
    tracker = CallTracker("pbx1", LINES)
    events = [e for e in sip_answered_call() if e["Event"] != "AgentComplete"]
    cancelled = ev("Hangup", 3.35, **phone(2), Cause="26")
    events.insert(next(i for i, e in enumerate(events) if e["Event"] == "AgentConnect") + 1, cancelled)
    events[events.index(next(e for e in events if e["Event"] == "Hangup" and e["Channel"] == TRUNK))] = ev(
        "Hangup", 5.9, **trunk(), Cause="16"
    )
    [record] = ended(feed(tracker, events))
    assert record.outcome is Outcome.ANSWERED
    assert record.wait_s == 3.0
    assert record.talk_s == 2.0  # 3.3 -> 5.9 is 2.6 s; whole seconds like Asterisk's TalkTime


def test_calls_on_numbers_that_are_not_lines_are_ignored_with_all_their_channels() -> None:
    tracker = CallTracker("pbx1", LINES)
    other = "1800000000.99"
    internal = chan("PJSIP/op101-00000009", other, other, exten="201")
    changes = feed(
        tracker,
        [
            ev("Newchannel", 0, **internal),
            ev("Newchannel", 0.1, **phone(1, linkedid=other)),
            ev("QueueCallerJoin", 0.2, **internal, Queue="hotline-1"),
            ev("AgentCalled", 0.3, **internal, Queue="hotline-1", MemberName="ana"),
            ev("Hangup", 1, **phone(1, linkedid=other), Cause="16"),
            ev("Hangup", 2, **internal, Cause="16"),
        ],
    )
    assert changes == []
    assert tracker.live_calls() == []
    assert (tracker.stats.handled, tracker.stats.ignored) == (0, 6)


def test_set_lines_applies_to_calls_that_start_afterwards() -> None:
    tracker = CallTracker("pbx1", {})
    assert feed(tracker, [ev("Newchannel", 0, **trunk())]) == []
    tracker.set_lines(LINES)
    feed(tracker, [ev("Newchannel", 0, **{**trunk(), "Uniqueid": "1800000001.1", "Linkedid": "1800000001.1"})])
    assert [c.linkedid for c in tracker.live_calls()] == ["1800000001.1"]


def test_replayed_events_do_not_double_rang_or_timeline() -> None:
    tracker = CallTracker("pbx1", LINES)
    changes: list[CallChange] = []
    for event in sip_answered_call():
        changes.extend(tracker.handle(event, at(0)))
        changes.extend(tracker.handle(dict(event), at(1)))  # the same event again, e.g. overlapping streams
    [record] = ended(changes)
    assert record.rang == ["ana"]
    keys = [entry.key for change in changes for entry in change.timeline]
    assert len(keys) == len(set(keys))
    # A replay of the whole call after it ended does not resurrect it.
    assert feed(tracker, sip_answered_call()) == []
    assert tracker.live_calls() == []


def test_a_member_rung_twice_appears_twice() -> None:
    tracker = CallTracker("pbx1", LINES)
    feed(tracker, sip_answered_call()[:6])
    for offset, dest in ((1.0, "1800000000.41"), (9.0, "1800000000.43")):
        feed(tracker, [ev("AgentCalled", offset, **queue(), MemberName="ana", DestUniqueid=dest)])
    assert tracker.live_calls()[0].rang == ["ana", "ana"]


def test_changes_carry_copies_never_the_live_record() -> None:
    tracker = CallTracker("pbx1", LINES)
    events = sip_answered_call()
    changes = feed(tracker, events[:8])  # up to AgentCalled
    called = changes[-1].record
    assert called.rang == ["ana"] and called.operator is None

    called.rang.append("intruder")
    called.operator = "intruder"
    live = tracker.live_calls()[0]
    assert live.rang == ["ana"] and live.operator is None

    live.rang.clear()
    later = feed(tracker, events[8:])
    assert ended(later)[0].rang == ["ana"]
    assert called.outcome is Outcome.IN_PROGRESS  # the earlier snapshot did not move with the call
    assert all(c.record is not ended(later)[0] for c in later[:-1])


def test_event_without_timestamp_uses_received_at() -> None:
    tracker = CallTracker("pbx1", LINES)
    event = ev("Newchannel", 0, **trunk())
    del event["Timestamp"]
    [change] = tracker.handle(event, at(42))
    assert change.record.arrived_at == at(42)
    assert change.timeline[0].at == at(42)


def test_blind_transfer_names_the_destination() -> None:
    tracker = CallTracker("pbx1", LINES)
    events = [e for e in sip_answered_call() if e["Event"] != "Hangup"]
    events.append(
        ev(
            "BlindTransfer",
            5,
            Result="Success",
            TransfererChannel=phone(1)["Channel"],
            TransfererLinkedid=CALL,
            TransfereeChannel=TRUNK,
            TransfereeUniqueid=CALL,
            TransfereeLinkedid=CALL,
            Context="specialists",
            Extension="201",
            IsExternal="Yes",
        )
    )
    feed(tracker, events)
    assert tracker.live_calls()[0].transferred_to == "201@specialists"


def snapshot(channel: dict[str, str], duration: str, action_id: str = "resync-1", **more: str) -> dict[str, str]:
    return {"Event": "CoreShowChannel", "ActionID": action_id, **channel, "Duration": duration, **more}


def test_resync_creates_calls_begun_while_away_and_ends_those_gone() -> None:
    tracker = CallTracker("pbx1", LINES)
    gone = {**trunk(), "Uniqueid": "1800000000.50", "Linkedid": "1800000000.50", "Channel": "PJSIP/trunk-2"}
    kept = sip_answered_call()[:12]  # up to AgentConnect: a call in progress
    feed(tracker, [ev("Newchannel", 0, **gone), *kept])

    tracker.begin_resync()
    received = at(100)
    new = "1800000090.70"
    new_caller = chan("PJSIP/trunk-3", new, new, exten="5553000", CallerIDNum="0799", CallerIDName="Late")
    assert tracker.resync_channel(snapshot(phone(3, linkedid=new), "00:00:05", Application="AppQueue"), received) == []
    assert (
        tracker.resync_channel(
            snapshot(new_caller, "00:00:08", Application="Queue", ApplicationData="hotline-3,,,,20", BridgeId="b-9"),
            received,
        )
        == []
    )
    tracker.resync_channel(snapshot(trunk(), "00:01:40", Application="Queue", BridgeId="b-1"), received)
    changes = tracker.end_resync(received)

    by_id = {c.record.linkedid: c for c in changes}
    assert set(by_id) == {new, "1800000000.50"}
    assert by_id["1800000000.50"].ended and by_id["1800000000.50"].record.end_inferred
    created = by_id[new]
    assert not created.ended
    assert created.record.seen_first_in_resync
    assert (created.record.line_id, created.record.caller_number, created.record.queue) == (3, "0799", "hotline-3")
    assert created.record.arrived_at == received - timedelta(seconds=8)
    assert created.record.rang == []
    assert sorted(c.linkedid for c in tracker.live_calls()) == sorted([CALL, new])

    # The call known before keeps its facts; the operator's phone (absent from the snapshot) is forgotten, so the
    # caller's hangup ends the call.
    [done] = ended(feed(tracker, [ev("Hangup", 101, **trunk(), Cause="16")]))
    assert (done.linkedid, done.operator, done.rang, done.end_inferred) == (CALL, "ana", ["ana"], False)

    # Facts missed while away arrive with AgentComplete.
    new_queue = {**new_caller, "Queue": "hotline-3"}
    final = ended(
        feed(
            tracker,
            [
                ev("AgentComplete", 110, **new_queue, MemberName="mihai", HoldTime="2", TalkTime="7", Reason="caller"),
                ev("Hangup", 110.1, **phone(3, linkedid=new), Cause="16"),
                ev("Hangup", 110.2, **new_caller, Cause="16"),
            ],
        )
    )
    assert [(r.outcome, r.operator, r.wait_s, r.talk_s, r.seen_first_in_resync) for r in final] == [
        (Outcome.ANSWERED, "mihai", 2.0, 7.0, True)
    ]


def test_resync_ignores_snapshot_calls_not_on_a_line() -> None:
    tracker = CallTracker("pbx1", LINES)
    tracker.begin_resync()
    other = chan("PJSIP/op101-1", "1800000000.80", "1800000000.80", exten="201")
    tracker.resync_channel(snapshot(other, "00:00:03"), at(0))
    assert tracker.end_resync(at(0)) == []
    assert tracker.live_calls() == []


def test_end_all_ends_every_live_call_as_inferred() -> None:
    tracker = CallTracker("pbx1", LINES)
    feed(tracker, sip_answered_call()[:12])
    [change] = tracker.end_all(at(50))
    assert change.ended and change.record.end_inferred and change.record.ended_at == at(50)
    assert change.record.outcome is Outcome.ANSWERED
    assert change.record.talk_s is None  # the end time is a guess: no talk time is invented
    assert tracker.live_calls() == []


def test_a_failing_handler_is_counted_and_reraised() -> None:
    tracker = CallTracker("pbx1", LINES)

    def boom(event: object, received_at: datetime) -> None:
        raise RuntimeError("bug")

    tracker._handlers["Newchannel"] = boom  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        tracker.handle(ev("Newchannel", 0, **trunk()), at(0))
    assert tracker.stats.failed == 1


def test_channels_born_during_the_resync_are_kept_and_calls_gone_during_it_are_not_created() -> None:
    tracker = CallTracker("pbx1", LINES)
    feed(tracker, sip_answered_call()[:5])  # queued, no phone rung yet
    tracker.begin_resync()
    feed(tracker, [ev("Newchannel", 0.4, **phone(1))])  # after the snapshot was taken
    tracker.resync_channel(snapshot(trunk(), "00:00:01", Application="Queue"), at(1))
    brief = chan("PJSIP/trunk-7", "1800000000.90", "1800000000.90", exten="5551000")
    tracker.resync_channel(snapshot(brief, "00:00:01", Application="Queue"), at(1))
    feed(tracker, [ev("Hangup", 0.9, **brief, Cause="16")])
    assert tracker.end_resync(at(1)) == []
    assert tracker.live_count == 1
    # The phone channel is still counted: the caller hanging up first does not end the call.
    assert ended(feed(tracker, [ev("Hangup", 2, **trunk(), Cause="16")])) == []
    [record] = ended(feed(tracker, [ev("Hangup", 2.1, **phone(1), Cause="16")]))
    assert record.outcome is Outcome.ABANDONED


def test_a_late_resent_newchannel_does_not_revive_a_channel_that_hung_up() -> None:
    """Overlapping sessions can deliver a channel's Newchannel again after its Hangup; the call must still end."""
    from datetime import UTC, datetime

    from hotline.domain.tracker import CallTracker

    t = CallTracker("pbx1", {"5551000": 1})
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    one = {"Event": "Newchannel", "Channel": "PJSIP/trunk-1", "Exten": "5551000", "Uniqueid": "9.1", "Linkedid": "9.1",
           "Timestamp": "1795618000.0"}  # fmt: skip
    two = {"Event": "Newchannel", "Channel": "PJSIP/op-2", "Exten": "s", "Uniqueid": "9.2", "Linkedid": "9.1",
           "Timestamp": "1795618001.0"}  # fmt: skip
    t.handle(one, at)
    t.handle(two, at)
    t.handle({"Event": "Hangup", "Uniqueid": "9.2", "Linkedid": "9.1", "Cause": "16", "Timestamp": "1795618005.0"}, at)
    t.handle(dict(two), at)  # late duplicate
    changes = t.handle(
        {"Event": "Hangup", "Uniqueid": "9.1", "Linkedid": "9.1", "Cause": "16", "Timestamp": "1795618006.0"}, at
    )
    assert [c.ended for c in changes] == [True]
    assert t.live_calls() == []
