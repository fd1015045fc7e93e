"""Routing: desired PBX state from hours, shifts and presence; the diff with Asterisk; when to wake."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.domain.hours import FRI, MON, THU, TUE, WED, Schedule, WeeklyRange
from hotline.domain.routing import (
    Action,
    Line,
    Member,
    Operator,
    PbxState,
    QueueAdd,
    QueuePause,
    QueuePenalty,
    QueueRemove,
    RoutingError,
    SetOpen,
    apply_actions,
    desired_state,
    diff,
    next_boundary,
)
from hotline.domain.shifts import (
    Break,
    BreakKind,
    PauseReason,
    Presence,
    PresenceState,
    Shift,
)

TZ = ZoneInfo("Europe/Bucharest")
S = PresenceState
H1, H2 = "hotline-1", "hotline-2"
ANA, BOB, CY = "PJSIP/op101", "PJSIP/op102", "PJSIP/op103"


def at(h: int, m: int = 0, d: int = 23) -> datetime:
    """Monday 23 November 2026, Bucharest (UTC+2)."""
    return datetime(2026, 11, d, h, m, tzinfo=TZ)


LINES = [
    Line(
        1, Schedule(tz=TZ, weekly=tuple(WeeklyRange(d, time(8), time(18)) for d in (MON, TUE, WED, THU, FRI)))
    ),
    Line(2, Schedule(tz=TZ, always_open=True)),
]
OPERATORS = [
    Operator("ana", ANA, {1: 0, 2: 5}),
    Operator("bob", BOB, {1: 1}),
    Operator("cy", CY, {2: 0, 99: 0}),  # line 99 is not routed here: ignored
]
SHIFTS = [
    Shift(
        "ana",
        at(8),
        at(16),
        (Break(BreakKind.BREAK, at(10), at(10, 15)), Break(BreakKind.LUNCH, at(12), at(12, 45))),
    ),
    Shift("bob", at(10), at(18), (Break(BreakKind.LUNCH, at(13), at(13, 30)),)),
    Shift("cy", at(6), at(14)),
]


class FakePbx:
    """Asterisk as the diff sees it: the state, changed only by the actions we send."""

    def __init__(self) -> None:
        self.state = PbxState()
        self.presence: dict[str, Presence] = {}
        self.on_call: set[str] = set()

    def set(self, user: str, state: PresenceState, when: datetime, reason: PauseReason | None = None) -> None:
        self.presence[user] = Presence(state, when, reason)

    def reconcile(self, when: datetime) -> list[Action]:
        desired = desired_state(LINES, OPERATORS, SHIFTS, self.presence, when, on_call=self.on_call)
        actions = diff(desired, self.state)
        self.state = apply_actions(self.state, actions)
        assert diff(desired, self.state) == [], "applying the diff reaches the desired state"
        return actions


def pause(queue: str, iface: str, reason: str | None) -> QueuePause:
    return QueuePause(queue, iface, reason is not None, reason)


def test_a_simulated_day_step_by_step() -> None:
    pbx = FakePbx()
    # 05:00: nobody is on shift; AstDB has no keys yet, so both flags are set (closing first, opening last).
    assert pbx.reconcile(at(5)) == [SetOpen(1, False), SetOpen(2, True)]
    assert pbx.reconcile(at(5, 30)) == []

    pbx.set("cy", S.AVAILABLE, at(6))
    assert pbx.reconcile(at(6)) == [QueueAdd(H2, CY, "cy", 0, False, None)]

    pbx.set("ana", S.AVAILABLE, at(7, 55))  # logged in early: not a member before her shift
    assert pbx.reconcile(at(7, 55)) == []
    assert pbx.reconcile(at(8)) == [
        QueueAdd(H1, ANA, "ana", 0, False, None),
        QueueAdd(H2, ANA, "ana", 5, False, None),
        SetOpen(1, True),  # staffed before callers are let in
    ]

    # 10:00 the planned short break pauses ana in both queues; bob's shift starts but he is not logged in.
    assert pbx.reconcile(at(10)) == [pause(H1, ANA, "break"), pause(H2, ANA, "break")]
    pbx.set("bob", S.AVAILABLE, at(10, 5))
    assert pbx.reconcile(at(10, 5)) == [QueueAdd(H1, BOB, "bob", 1, False, None)]
    assert pbx.reconcile(at(10, 15)) == [pause(H1, ANA, None), pause(H2, ANA, None)]

    pbx.set("bob", S.PAUSED, at(11), PauseReason.MANUAL)
    assert pbx.reconcile(at(11)) == [pause(H1, BOB, "manual")]
    pbx.set("bob", S.AVAILABLE, at(11, 20))
    assert pbx.reconcile(at(11, 20)) == [pause(H1, BOB, None)]

    assert pbx.reconcile(at(12)) == [pause(H1, ANA, "lunch"), pause(H2, ANA, "lunch")]
    assert pbx.reconcile(at(12, 45)) == [pause(H1, ANA, None), pause(H2, ANA, None)]
    assert pbx.reconcile(at(13)) == [pause(H1, BOB, "lunch")]
    assert pbx.reconcile(at(13, 30)) == [pause(H1, BOB, None)]

    # cy's shift ends at 14:00 in the middle of a call: held until the call ends, then removed.
    pbx.set("cy", S.ON_CALL, at(13, 50))
    assert pbx.reconcile(at(13, 50)) == []
    assert pbx.reconcile(at(14)) == []
    assert CY in {m.interface for m in pbx.state.queues[H2]}
    pbx.set("cy", S.WRAPUP, at(14, 10))
    assert pbx.reconcile(at(14, 10)) == [QueueRemove(H2, CY)]

    pbx.set("ana", S.OFFLINE, at(15))  # logs out an hour early
    assert pbx.reconcile(at(15)) == [QueueRemove(H1, ANA), QueueRemove(H2, ANA)]
    assert pbx.reconcile(at(16)) == []

    pbx.set("bob", S.ON_CALL, at(16, 50))
    assert pbx.reconcile(at(16, 50)) == []
    pbx.set("bob", S.WRAPUP, at(17))
    assert pbx.reconcile(at(17)) == [pause(H1, BOB, "wrapup")]
    pbx.set("bob", S.AVAILABLE, at(17, 2))
    assert pbx.reconcile(at(17, 2)) == [pause(H1, BOB, None)]

    # 18:00 line 1 closes (flag first) and bob's shift ends.
    assert pbx.reconcile(at(18)) == [SetOpen(1, False), QueueRemove(H1, BOB)]
    assert pbx.state == PbxState(open={1: False, 2: True}, queues={H1: (), H2: ()})


def test_next_boundary_wakes_exactly_at_every_change_of_the_day() -> None:
    wakes = []
    when: datetime | None = at(5)
    while when is not None and when < at(8, d=24):
        wakes.append(when)
        when = next_boundary(LINES, SHIFTS, when)
    assert wakes[1:] == [
        t.astimezone(UTC)
        for t in (
            at(6),
            at(8),
            at(10),
            at(10, 15),
            at(12),
            at(12, 45),
            at(13),
            at(13, 30),
            at(14),
            at(16),
            at(18),
        )
    ]
    assert when == at(8, d=24)  # line 1 opens on Tuesday
    assert all(w.tzinfo is UTC for w in wakes[1:])


def test_next_boundary_without_anything_to_wait_for() -> None:
    assert next_boundary([LINES[1]], [], at(12)) is None


def test_a_member_on_a_call_is_not_removed_until_the_call_ends() -> None:
    pbx = FakePbx()
    pbx.set("ana", S.AVAILABLE, at(8))
    pbx.reconcile(at(8))
    # Ana logs out in the console while her phone is still bridged (the PBX reports the live call).
    pbx.set("ana", S.OFFLINE, at(9))
    pbx.on_call.add("ana")
    assert pbx.reconcile(at(9)) == []
    assert pbx.reconcile(at(16, 30)) == []  # past her shift too
    desired = desired_state(LINES, OPERATORS, SHIFTS, pbx.presence, at(16, 30), on_call=pbx.on_call)
    assert desired.line(1).held == frozenset({ANA}) and desired.line(1).members == ()
    pbx.on_call.clear()
    assert pbx.reconcile(at(16, 31)) == [QueueRemove(H1, ANA), QueueRemove(H2, ANA)]


def test_a_held_operator_who_is_not_a_member_is_not_added() -> None:
    desired = desired_state(LINES, OPERATORS, SHIFTS, {"cy": Presence(S.ON_CALL, at(19))}, at(20))
    assert diff(desired, PbxState(open={1: False, 2: True})) == []


def test_a_planned_break_pauses_even_mid_call_and_an_explicit_pause_reason_wins() -> None:
    presence = {"ana": Presence(S.ON_CALL, at(9, 55)), "bob": Presence(S.PAUSED, at(13), PauseReason.MANUAL)}
    desired = desired_state(LINES, OPERATORS, SHIFTS, presence, at(10, 5))
    assert desired.line(1).members == (
        Member(ANA, "ana", 0, True, "break"),
        Member(BOB, "bob", 1, True, "manual"),
    )
    desired = desired_state(LINES, OPERATORS, SHIFTS, presence, at(13, 10))  # bob's planned lunch
    assert desired.line(1).members[1] == Member(BOB, "bob", 1, True, "manual")


def test_open_flags_and_reasons() -> None:
    desired = desired_state(LINES, OPERATORS, SHIFTS, {}, at(12))
    assert [(p.line_id, p.queue, p.open, p.reason) for p in desired.lines] == [
        (1, H1, True, "weekly Mon 08:00–18:00"),
        (2, H2, True, "24/7"),
    ]


# --- diff ---------------------------------------------------------------------------------------------------


def _desired_ana(penalty: int = 0) -> PbxState:
    return PbxState(open={1: True}, queues={H1: (Member(ANA, "ana", penalty),)})


def test_diff_penalty_rename_stale_reason_and_foreign_queues() -> None:
    desired = desired_state(LINES[:1], OPERATORS[:1], SHIFTS, {"ana": Presence(S.AVAILABLE, at(8))}, at(9))
    actual = PbxState(
        open={1: True, 7: False},
        queues={
            H1: (Member(ANA, "ana", 3, paused=False, reason="lunch"),),  # stale reason on an unpaused member
            "support": (Member("PJSIP/x", "x"),),  # not ours
        },
    )
    assert actual.queues[H1][0].reason is None
    assert diff(desired, actual) == [QueuePenalty(H1, ANA, 0)]
    renamed = PbxState(open={1: True}, queues={H1: (Member(ANA, "old-owner", 0),)})
    assert diff(desired, renamed) == [QueueRemove(H1, ANA), QueueAdd(H1, ANA, "ana", 0, False, None)]
    assert diff(desired, PbxState(queues={H1: (Member(ANA, "ana", 0),)})) == [SetOpen(1, True)]  # missing key


def test_handover_adds_before_it_removes() -> None:
    """With leavewhenempty, a queue that empties for a moment ejects its waiting callers."""
    presence = {"bob": Presence(S.AVAILABLE, at(16))}
    desired = desired_state(LINES[:1], OPERATORS, SHIFTS, presence, at(16))
    actual = PbxState(open={1: True}, queues={H1: (Member(ANA, "ana", 0),)})
    assert diff(desired, actual) == [QueueAdd(H1, BOB, "bob", 1, False, None), QueueRemove(H1, ANA)]


def test_apply_actions_is_strict_like_asterisk() -> None:
    state = PbxState(queues={H1: (Member(ANA, "ana"),)})
    with pytest.raises(RoutingError, match="already a member"):
        apply_actions(state, [QueueAdd(H1, ANA, "ana", 0, False, None)])
    with pytest.raises(RoutingError, match="not a member"):
        apply_actions(state, [QueuePause(H1, BOB, True, "manual")])
    assert SetOpen(4, True).key == "hotline/open/4" and SetOpen(4, False).value == "0"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Operator("", ANA), "username"),
        (lambda: Operator("ana", "op101"), "TECH/resource"),
        (lambda: Operator("ana", ANA, {1: -1}), "penalty"),
        (
            lambda: desired_state([], [Operator("a", ANA), Operator("b", ANA)], [], {}, at(9)),
            "share the device",
        ),
        (lambda: desired_state([], [Operator("a", ANA), Operator("a", BOB)], [], {}, at(9)), "twice"),
        (lambda: desired_state(LINES + LINES[:1], [], [], {}, at(9)), "share an id"),
        (lambda: desired_state(LINES, [], [], {}, datetime(2026, 11, 23, 9)), "timezone-aware"),
    ],
)
def test_invalid_routing_input(make: object, message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        make()  # type: ignore[operator]


def _random_member(rng: random.Random, iface: str) -> Member:
    paused = rng.random() < 0.5
    return Member(
        iface,
        rng.choice(["ana", "bob", "cy", "someone"]),
        rng.randrange(3),
        paused,
        rng.choice([None, "", "lunch", "break", "wrapup", "manual"]) if paused else rng.choice([None, ""]),
    )


def test_diff_then_apply_reaches_the_desired_state_from_any_actual_state() -> None:
    rng = random.Random(20261123)
    instants = [at(5) + timedelta(minutes=17 * i) for i in range(90)]
    states = list(PresenceState)
    checked = 0
    for when in instants:
        presence = {}
        for user in ("ana", "bob", "cy"):
            state = rng.choice(states)
            reason = (
                rng.choice([PauseReason.LUNCH, PauseReason.BREAK, PauseReason.MANUAL])
                if state is S.PAUSED
                else None
            )
            presence[user] = Presence(state, at(5), reason)
        on_call = {u for u in ("ana", "bob", "cy") if rng.random() < 0.2}
        desired = desired_state(LINES, OPERATORS, SHIFTS, presence, when, on_call=on_call)
        for _ in range(5):
            actual = PbxState(
                open={line: rng.choice([True, False]) for line in (1, 2) if rng.random() < 0.8},
                queues={
                    q: tuple(
                        _random_member(rng, i) for i in (ANA, BOB, CY, "PJSIP/op199") if rng.random() < 0.5
                    )
                    for q in (H1, H2, "hotline-99")
                },
            )
            actions = diff(desired, actual)
            assert actions == diff(desired, actual)  # deterministic
            after = apply_actions(actual, actions)
            assert diff(desired, after) == []
            for plan in desired.lines:
                assert after.open[plan.line_id] is plan.open
                have = {m.interface: m for m in after.queues[plan.queue]}
                assert {i: have[i] for i in (m.interface for m in plan.members)} == {
                    m.interface: m for m in plan.members
                }
                # Only held interfaces may stay beyond the wanted ones, untouched.
                extra = set(have) - {m.interface for m in plan.members}
                assert extra <= plan.held
                before = {m.interface: m for m in actual.queues[plan.queue]}
                assert all(have[i] == before[i] for i in extra)
            assert after.queues["hotline-99"] == actual.queues["hotline-99"]
            checked += 1
    assert checked == 450


def test_the_day_over_dst_keeps_queue_membership_in_utc() -> None:
    """A night shift over the autumn change is 9 real hours; membership follows the instants, not the wall."""
    night = Shift("cy", datetime(2026, 10, 24, 22, tzinfo=TZ), datetime(2026, 10, 25, 6, tzinfo=TZ))
    presence = {"cy": Presence(S.AVAILABLE, datetime(2026, 10, 24, 21, tzinfo=TZ))}
    second_0530 = datetime(2026, 10, 25, 5, 30, tzinfo=TZ)
    desired = desired_state(LINES[1:], OPERATORS[2:], [night], presence, second_0530)
    assert [m.interface for m in desired.line(2).members] == [CY]
    assert next_boundary(LINES[1:], [night], datetime(2026, 10, 25, 3, 30, tzinfo=TZ, fold=1)) == datetime(
        2026, 10, 25, 4, tzinfo=UTC
    )
    assert date(2026, 10, 25).weekday() == 6
