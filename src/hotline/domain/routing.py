"""Routing decisions: hours + shifts + presence → the PBX state we want, and the orders that get there.

Pure and standard-library only. The scheduler (an edge) calls ``desired_state`` at an instant, reads the
actual state from Asterisk (``QueueStatus`` members, AstDB ``hotline/open/<line id>``) into a ``PbxState``,
sends the actions ``diff`` returns, and sleeps until ``next_boundary`` or the next presence/call event.

Membership rules (the DESIGN contract):

* An operator is a member of the queue ``hotline-<line id>`` of every line they serve (penalty = their
  priority on that line) while **on shift and logged in** (presence other than ``offline``). Membership does
  not depend on the line's hours: the dialplan reads the open flag, the queue stays staffed.
* A member is paused, with a reason, while: the operator paused themselves (``lunch``/``break``/``manual``,
  which wins), else a planned break of the shift is in progress (the plan pauses them with its kind, even
  mid-call — pausing never drops the current call), else they are in wrap-up (``wrapup``).
* Off shift or logged out → removed, **except while on a call**: a member whose operator is on a call
  (presence ``on_call`` or the device's live call reported by the caller) is held — left exactly as Asterisk
  has it — until the call ends. A held operator who is not a member is not added.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hotline.domain.hours import Schedule, evaluate
from hotline.domain.shifts import Presence, PresenceState, Shift
from hotline.errors import InvalidInput

__all__ = [
    "Action",
    "DesiredState",
    "Line",
    "LinePlan",
    "Member",
    "Operator",
    "PbxState",
    "QueueAdd",
    "QueuePause",
    "QueuePenalty",
    "QueueRemove",
    "RoutingError",
    "SetOpen",
    "apply_actions",
    "desired_state",
    "diff",
    "next_boundary",
    "queue_name",
]


class RoutingError(InvalidInput, ValueError):
    """Inconsistent routing input (two operators on one device, …); a ``ValueError`` for the domain."""

    error_id = "invalid-routing-input"


def queue_name(line_id: int) -> str:
    """The Asterisk queue of a line, as rendered in the queues include."""
    return f"hotline-{line_id}"


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    schedule: Schedule

    @property
    def queue(self) -> str:
        return queue_name(self.id)


@dataclass(frozen=True, slots=True)
class Operator:
    """``penalties`` maps each served line id to the operator's penalty there (lower rings first)."""

    username: str
    interface: str
    penalties: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.username:
            raise RoutingError("an operator needs a username (the queue MemberName)")
        if "/" not in self.interface:
            raise RoutingError(
                f"{self.username}: interface must look like TECH/resource, got {self.interface!r}"
            )
        object.__setattr__(self, "penalties", dict(self.penalties))
        for line_id, penalty in self.penalties.items():
            if isinstance(penalty, bool) or not isinstance(penalty, int) or penalty < 0:
                raise RoutingError(
                    f"{self.username}: penalty on line {line_id} must be an int >= 0, got {penalty!r}"
                )


@dataclass(frozen=True, slots=True)
class Member:
    """A queue member as we want it or as ``QueueStatus`` reports it.

    An unpaused member has no reason (Asterisk keeps the last ``PausedReason`` around or reports it empty;
    neither means anything once unpaused), so ``reason`` is normalised to None unless ``paused``.
    """

    interface: str
    member_name: str
    penalty: int = 0
    paused: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.paused or self.reason == "":
            object.__setattr__(self, "reason", None)


@dataclass(frozen=True, slots=True)
class LinePlan:
    """One line as wanted: open flag (and why), its queue's members, and who is held on a call."""

    line_id: int
    queue: str
    open: bool
    reason: str
    members: tuple[Member, ...]
    held: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DesiredState:
    at: datetime
    lines: tuple[LinePlan, ...]

    def line(self, line_id: int) -> LinePlan:
        return next(p for p in self.lines if p.line_id == line_id)


@dataclass(frozen=True, slots=True)
class PbxState:
    """What Asterisk has: AstDB open flags by line id (a missing key is absent) and members by queue name."""

    open: Mapping[int, bool] = field(default_factory=dict)
    queues: Mapping[str, tuple[Member, ...]] = field(default_factory=dict)


# --- actions: orders for the AMI edge -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueAdd:
    queue: str
    interface: str
    member_name: str
    penalty: int
    paused: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class QueueRemove:
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class QueuePause:
    queue: str
    interface: str
    paused: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class QueuePenalty:
    queue: str
    interface: str
    penalty: int


@dataclass(frozen=True, slots=True)
class SetOpen:
    """AstDB ``hotline/open/<line_id>`` = "1" or "0"."""

    line_id: int
    open: bool

    @property
    def key(self) -> str:
        return f"hotline/open/{self.line_id}"

    @property
    def value(self) -> str:
        return "1" if self.open else "0"


Action = QueueAdd | QueueRemove | QueuePause | QueuePenalty | SetOpen


# --- decisions ----------------------------------------------------------------------------------------------


def _aware(at: object) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise RoutingError(f"at must be a timezone-aware datetime, got {at!r}")
    return at


def _pause_reason(presence: Presence, shift: Shift, at: datetime) -> str | None:
    if presence.state is PresenceState.PAUSED:
        return str(presence.reason)
    planned = shift.break_at(at)
    if planned is not None:
        return str(planned.kind)
    return presence.queue_pause  # wrapup or None


def desired_state(
    lines: Iterable[Line],
    operators: Iterable[Operator],
    shifts: Iterable[Shift],
    presence: Mapping[str, Presence],
    at: datetime,
    on_call: Collection[str] = (),
) -> DesiredState:
    """The open flags and queue members wanted at ``at``.

    ``presence`` by username (missing = offline); ``on_call`` = usernames whose device has a live call now, as
    the PBX reports it (presence ``on_call`` counts too). Shifts are matched to operators by username.
    """
    _aware(at)
    line_list = sorted(lines, key=lambda line: line.id)
    if len({line.id for line in line_list}) != len(line_list):
        raise RoutingError("two lines share an id")
    ops = sorted(operators, key=lambda o: o.username)
    seen_users: set[str] = set()
    seen_devices: dict[str, str] = {}
    for op in ops:
        if op.username in seen_users:
            raise RoutingError(f"operator {op.username} is listed twice")
        if op.interface in seen_devices:
            raise RoutingError(
                f"{op.username} and {seen_devices[op.interface]} share the device {op.interface}"
            )
        seen_users.add(op.username)
        seen_devices[op.interface] = op.username
    shifts_of: dict[str, list[Shift]] = {}
    for s in shifts:
        shifts_of.setdefault(s.operator, []).append(s)

    members: dict[int, list[Member]] = {line.id: [] for line in line_list}
    held: dict[int, set[str]] = {line.id: set() for line in line_list}
    for op in ops:
        pres = presence.get(op.username)
        shift = next((s for s in shifts_of.get(op.username, ()) if s.covers(at)), None)
        calling = op.username in on_call or (pres is not None and pres.state is PresenceState.ON_CALL)
        wanted = shift is not None and pres is not None and pres.logged_in
        reason = _pause_reason(pres, shift, at) if shift is not None and pres is not None else None
        for line_id, penalty in sorted(op.penalties.items()):
            if line_id not in members:
                continue
            if wanted:
                members[line_id].append(
                    Member(op.interface, op.username, penalty, reason is not None, reason)
                )
            elif calling:
                held[line_id].add(op.interface)

    plans = []
    for line in line_list:
        status = evaluate(line.schedule, at)
        plans.append(
            LinePlan(
                line_id=line.id,
                queue=line.queue,
                open=status.open,
                reason=status.reason,
                members=tuple(sorted(members[line.id], key=lambda m: m.interface)),
                held=frozenset(held[line.id]),
            )
        )
    return DesiredState(at, tuple(plans))


def diff(desired: DesiredState, actual: PbxState) -> list[Action]:
    """Only the orders that turn ``actual`` into ``desired``, in a fixed order.

    Order: close flags first (stop routing to a line before touching it), then additions, pauses, penalties,
    removals, re-additions of renamed members, and open flags last (staff a line before callers are let in).
    Additions come before removals so a queue never empties during a shift handover: with ``leavewhenempty``
    Asterisk would eject the callers waiting in it. Within a phase: by line id, then interface. Queues of
    lines not in ``desired`` are left alone (the PBX may have queues hotline does not own); held members (on a
    call, no longer wanted) are never removed nor changed.
    """
    closing: list[Action] = []
    adds: list[Action] = []
    pauses: list[Action] = []
    penalties: list[Action] = []
    removes: list[Action] = []
    readds: list[Action] = []
    opening: list[Action] = []
    for plan in desired.lines:
        current = actual.open.get(plan.line_id)
        if current is None or current != plan.open:
            (opening if plan.open else closing).append(SetOpen(plan.line_id, plan.open))
        have = {m.interface: m for m in actual.queues.get(plan.queue, ())}
        want = {m.interface: m for m in plan.members}
        for iface in sorted(want):
            w = want[iface]
            add = QueueAdd(plan.queue, iface, w.member_name, w.penalty, w.paused, w.reason)
            h = have.get(iface)
            if h is None:
                adds.append(add)
            elif h.member_name != w.member_name:  # the device changed hands: Asterisk cannot rename a member
                removes.append(QueueRemove(plan.queue, iface))
                readds.append(add)
            else:
                if (h.paused, h.reason) != (w.paused, w.reason):
                    pauses.append(QueuePause(plan.queue, iface, w.paused, w.reason))
                if h.penalty != w.penalty:
                    penalties.append(QueuePenalty(plan.queue, iface, w.penalty))
        for iface in sorted(set(have) - set(want) - plan.held):
            removes.append(QueueRemove(plan.queue, iface))
    return closing + adds + pauses + penalties + removes + readds + opening


def apply_actions(state: PbxState, actions: Sequence[Action]) -> PbxState:
    """What Asterisk would hold after the actions, strictly: adding a present or removing an absent member
    raises.

    A fake PBX for tests and dry runs; strictness catches a diff that would make Asterisk answer an error.
    """
    flags = dict(state.open)
    queues = {q: {m.interface: m for m in members} for q, members in state.queues.items()}
    for action in actions:
        if isinstance(action, SetOpen):
            flags[action.line_id] = action.open
            continue
        queue = queues.setdefault(action.queue, {})
        if isinstance(action, QueueAdd):
            if action.interface in queue:
                raise RoutingError(f"{action.interface} is already a member of {action.queue}")
            queue[action.interface] = Member(
                action.interface, action.member_name, action.penalty, action.paused, action.reason
            )
            continue
        if action.interface not in queue:
            raise RoutingError(f"{action.interface} is not a member of {action.queue}")
        if isinstance(action, QueueRemove):
            del queue[action.interface]
        elif isinstance(action, QueuePause):
            queue[action.interface] = replace(
                queue[action.interface], paused=action.paused, reason=action.reason
            )
        elif isinstance(action, QueuePenalty):
            queue[action.interface] = replace(queue[action.interface], penalty=action.penalty)
    return PbxState(
        open=flags,
        queues={
            q: tuple(sorted(members.values(), key=lambda m: m.interface)) for q, members in queues.items()
        },
    )


def next_boundary(lines: Iterable[Line], shifts: Iterable[Shift], at: datetime) -> datetime | None:
    """The earliest instant (UTC) after ``at`` when the desired state can change without an event.

    Hours changes, shift starts and ends, planned break starts and ends. Presence and call changes are events;
    the scheduler also wakes on those.
    """
    _aware(at)
    candidates = [change for line in lines if (change := evaluate(line.schedule, at).next_change) is not None]
    candidates += [point for s in shifts for point in s.boundaries() if point > at]
    return min(candidates).astimezone(UTC) if candidates else None
