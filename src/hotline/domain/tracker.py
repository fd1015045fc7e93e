"""The call tracker: AMI events in, call records out. Pure: standard library only, time is always an argument.

One tracker per PBX. The AMI edge feeds it every event (``handle``), and around a (re)login the channel snapshot
(``begin_resync`` / ``resync_channel`` / ``end_resync``); it returns :class:`~hotline.domain.calls.CallChange`
values that the SQL and push edges store and publish. It never does I/O and never reads the clock.

What Asterisk does that a reader would not guess (all seen in ``../shared/ami-captures``):

- A call is identified by ``Linkedid``: the ``Uniqueid`` of its oldest channel, inherited by every channel created
  for it (the queue's calls to operators' phones, the dial to an overflow number). The originating channel is the one
  whose ``Uniqueid`` equals its ``Linkedid``, and its ``Exten`` is the number that was dialled: the line.
- A call from a ``Local`` channel shows as a pair: ``;1`` (the caller's side) and ``;2`` (which runs the dialplan, so
  the queue events name ``;2``). A SIP trunk call is one channel (``PJSIP/trunk-00000001``) that does both. Both work
  here: the "caller side" is the originating channel plus, for a Local ``;1``, its ``;2`` partner.
- The caller's number and name are ``<unknown>`` in the first ``Newchannel`` of a Local pair and arrive in
  ``NewCallerid``. Other channels of the call get their own, sometimes odd, caller ids (the overflow dial's ``;1``
  shows ``CallerIDNum: s``), so only caller-side channels are believed.
- ``QueueCallerAbandon`` is also sent when the queue *times out* (``Queue()`` returns, the dialplan continues: here,
  to the overflow number). Only the end of the call tells them apart, so outcomes are decided at the last hangup.
- ``AgentComplete`` is not always sent (``load_40_calls``, the call from 0733000031): talk time then runs from
  ``AgentConnect`` to the first hangup after it.
- ``MixMonitorStart`` does not name the file; the ``VarSet`` of ``MIXMONITOR_FILENAME`` (sent just before) does.
- ``CoreShowChannel`` (the resync snapshot) carries no ``Timestamp``, only ``Duration: HH:MM:SS`` per channel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hotline.domain.calls import CallChange, CallRecord, Outcome, TimelineEntry

__all__ = ["CallTracker", "TrackerStats"]

Event = Mapping[str, str]
Handler = Callable[[Event, datetime], "CallChange | None"]

UNKNOWN = "<unknown>"
RECENTLY_ENDED_KEPT = 4096
"""How many ended Linkedids are remembered so a replayed ``Newchannel`` does not resurrect a finished call."""

_VARIABLES = frozenset({"MIXMONITOR_FILENAME", "QUEUESTATUS"})
"""The only ``VarSet`` variables the tracker reads; every other VarSet (a third of all events) is dropped early."""

_QUEUE_GAVE_UP: dict[str, Outcome] = {
    "TIMEOUT": Outcome.TIMEOUT,
    "JOINEMPTY": Outcome.TIMEOUT,
    "LEAVEEMPTY": Outcome.TIMEOUT,
    "JOINUNAVAIL": Outcome.TIMEOUT,
    "LEAVEUNAVAIL": Outcome.TIMEOUT,
    "FULL": Outcome.BUSY,
}
"""``QUEUESTATUS`` values for which ``Queue()`` returned with the caller still there and no operator: the queue
gave up (timed out, nobody to ring) or refused (full). ``CONTINUE`` (an operator hung up early) is not here."""

_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "Newchannel": ("Channel", "Exten", "CallerIDNum"),
    "NewCallerid": ("Channel", "CallerIDNum", "CallerIDName"),
    "UserEvent": ("Route", "Line", "Target"),
    "QueueCallerJoin": ("Queue", "Position"),
    "AgentCalled": ("Queue", "MemberName", "Interface"),
    "AgentRingNoAnswer": ("Queue", "MemberName", "RingTime"),
    "AgentConnect": ("Queue", "MemberName", "HoldTime", "RingTime"),
    "AgentComplete": ("Queue", "MemberName", "HoldTime", "TalkTime", "Reason"),
    "QueueCallerAbandon": ("Queue", "HoldTime", "Position"),
    "QueueCallerLeave": ("Queue", "Position"),
    "DialBegin": ("Channel", "DestChannel", "DialString"),
    "DialEnd": ("Channel", "DestChannel", "DialStatus"),
    "BridgeEnter": ("Channel", "BridgeUniqueid"),
    "BlindTransfer": ("Result", "Extension", "Context", "TransfererChannel"),
    "AttendedTransfer": ("Result", "DestType", "TransferTargetChannel"),
    "MixMonitorStart": ("Channel",),
    "VarSet": ("Channel", "Variable", "Value"),
    "Hangup": ("Channel", "Cause", "Cause-txt"),
}


@dataclass(slots=True)
class TrackerStats:
    """Counters for monitoring: ``handled`` changed a call, ``ignored`` did not (unknown event, other call, replay),
    ``failed`` raised (the exception is re-raised for the edge to log)."""

    handled: int = 0
    ignored: int = 0
    failed: int = 0


class _Call:
    """The tracker's private state of one live call: the public record plus what outcomes are decided from."""

    __slots__ = (
        "abandoned",
        "answered",
        "bridged",
        "channels",
        "completed",
        "connected_at",
        "continued",
        "dial_answered_at",
        "first",
        "first_cause",
        "gone",
        "keys",
        "operator_channel",
        "partner",
        "partner_cause",
        "partner_name",
        "queue_status",
        "queued",
        "rec",
        "talk_end",
    )

    def __init__(self, rec: CallRecord, first: str, first_name: str) -> None:
        self.rec = rec
        self.first = first
        self.partner: str | None = None
        self.partner_name = first_name[:-2] + ";2" if first_name.endswith(";1") else None
        self.channels: set[str] = {first}
        self.gone: set[str] = set()  # channels that hung up: a late, re-sent Newchannel must not revive them
        self.keys: set[str] = set()
        self.queued = False
        self.answered = False
        self.completed = False
        self.abandoned = False
        self.continued = False
        self.bridged = False
        self.queue_status: str | None = None
        self.connected_at: datetime | None = None
        self.dial_answered_at: datetime | None = None
        self.talk_end: datetime | None = None
        self.operator_channel: str | None = None
        self.first_cause: int | None = None
        self.partner_cause: int | None = None

    def caller_side(self, uniqueid: str) -> bool:
        return uniqueid == self.first or uniqueid == self.partner


def _cid(value: str | None) -> str | None:
    """Asterisk writes ``<unknown>`` (or nothing) where there is no caller id; the record says None."""
    if not value or value == UNKNOWN:
        return None
    return value


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _duration(value: str | None) -> timedelta:
    """``CoreShowChannel``'s ``Duration: HH:MM:SS`` (hours may exceed 24); zero when absent or unreadable."""
    if not value:
        return timedelta(0)
    try:
        h, m, s = value.split(":")
        return timedelta(hours=int(h), minutes=int(m), seconds=int(s))
    except ValueError:
        return timedelta(0)


def _copy(rec: CallRecord) -> CallRecord:
    """A snapshot the edges may keep: the live record (and its ``rang`` list) keeps changing."""
    return dataclasses.replace(rec, rang=list(rec.rang))


class CallTracker:
    """Turns one PBX's AMI events into call records for the calls on dedicated numbers (lines).

    ``lines`` maps a line number exactly as Asterisk sees ``${EXTEN}`` to the line id. A call belongs to a line when
    its originating channel's ``Exten`` is such a number; any other call, and all its channels, is ignored.
    """

    def __init__(self, pbx_id: str, lines: Mapping[str, int]) -> None:
        self.pbx_id = pbx_id
        self._lines: dict[str, int] = dict(lines)
        self._calls: dict[str, _Call] = {}
        self._ended: dict[str, None] = {}
        self.stats = TrackerStats()
        self._resyncing = False
        self._resync_known: dict[str, frozenset[str]] = {}
        self._resync_seen: dict[str, set[str]] = {}
        self._resync_pending: dict[str, list[Event]] = {}
        # The one table of AMI event name -> handler. Anything else is ignored after one dict lookup.
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_Newchannel,
            "NewCallerid": self._on_NewCallerid,
            "UserEvent": self._on_UserEvent,
            "VarSet": self._on_VarSet,
            "QueueCallerJoin": self._on_QueueCallerJoin,
            "AgentCalled": self._on_AgentCalled,
            "AgentRingNoAnswer": self._on_AgentRingNoAnswer,
            "AgentConnect": self._on_AgentConnect,
            "AgentComplete": self._on_AgentComplete,
            "QueueCallerAbandon": self._on_QueueCallerAbandon,
            "QueueCallerLeave": self._on_QueueCallerLeave,
            "DialBegin": self._on_DialBegin,
            "DialEnd": self._on_DialEnd,
            "BridgeEnter": self._on_BridgeEnter,
            "BlindTransfer": self._on_BlindTransfer,
            "AttendedTransfer": self._on_AttendedTransfer,
            "MixMonitorStart": self._on_MixMonitorStart,
            "Hangup": self._on_Hangup,
        }

    # ------------------------------------------------------------------ public API

    def set_lines(self, lines: Mapping[str, int]) -> None:
        """Replace the line numbers (an admin edited them). Affects calls that start from now on only."""
        self._lines = dict(lines)

    def handle(self, event: Event, received_at: datetime) -> list[CallChange]:
        """Apply one AMI event. ``received_at`` (aware UTC) stands in for a missing ``Timestamp`` header.

        Returns the changes (usually none or one). An exception from a handler is counted in ``stats.failed`` and
        re-raised: the edge logs it and goes on with the next event; the tracker's state stays usable.
        """
        handler = self._handlers.get(event.get("Event", ""))
        if handler is None:
            self.stats.ignored += 1
            return []
        try:
            change = handler(event, received_at)
        except Exception:
            self.stats.failed += 1
            raise
        if change is None:
            self.stats.ignored += 1
            return []
        self.stats.handled += 1
        return [change]

    def begin_resync(self) -> None:
        """After a (re)login, before the ``CoreShowChannels`` list: remember which calls (and channels) we believed
        live, so that ``end_resync`` can tell what vanished while we were away from what appeared since."""
        self._resyncing = True
        self._resync_known = {linkedid: frozenset(call.channels) for linkedid, call in self._calls.items()}
        self._resync_seen = {}
        self._resync_pending = {}

    def resync_channel(self, event: Event, received_at: datetime) -> list[CallChange]:
        """One ``CoreShowChannel`` of the snapshot. Known calls are only marked present; channels of unknown calls
        are held until ``end_resync``, which needs all of a call's channels (the longest ``Duration`` gives its
        arrival, the originating channel its line). Returns no changes; kept a list for a uniform edge."""
        linkedid = event.get("Linkedid", "")
        uniqueid = event.get("Uniqueid", "")
        if not linkedid or not uniqueid:
            return []
        call = self._calls.get(linkedid)
        if call is not None:
            self._resync_seen.setdefault(linkedid, set()).add(uniqueid)
            call.channels.add(uniqueid)
            if call.partner is None and event.get("Channel") == call.partner_name:
                call.partner = uniqueid
            if event.get("Application") == "Queue" and event.get("BridgeId"):
                call.answered = True
        elif linkedid not in self._ended:
            self._resync_pending.setdefault(linkedid, []).append(event)
        return []

    def end_resync(self, received_at: datetime) -> list[CallChange]:
        """``CoreShowChannelsComplete``: create the calls that began while we were away (``seen_first_in_resync``),
        forget channels that hung up meanwhile, and end calls believed live whose channels are all gone
        (``end_inferred``: the time is when we learned it, not when it happened)."""
        changes: list[CallChange] = []
        for linkedid, events in self._resync_pending.items():
            if not events:
                continue
            change = self._create_from_snapshot(linkedid, events, received_at)
            if change is not None:
                changes.append(change)
        for linkedid, before in self._resync_known.items():
            call = self._calls.get(linkedid)
            if call is None:
                continue
            seen = self._resync_seen.get(linkedid)
            if seen is None:
                changes.append(self._end(call, received_at, inferred=True, event="ResyncGone"))
            else:
                call.channels -= before - seen  # hung up while we were away; channels born since stay
        self._resyncing = False
        self._resync_known = {}
        self._resync_seen = {}
        self._resync_pending = {}
        return changes

    def end_all(self, at: datetime) -> list[CallChange]:
        """The PBX restarted (``FullyBooted`` and its channels are gone): every live call ended, inferred, at ``at``."""
        return [self._end(call, at, inferred=True, event="PbxRestart") for call in list(self._calls.values())]

    @property
    def live_count(self) -> int:
        """How many calls are in progress, without copying them (for status pages)."""
        return len(self._calls)

    def live_calls(self) -> list[CallRecord]:
        """Copies of the records of the calls in progress, in the order the tracker met them."""
        return [_copy(call.rec) for call in self._calls.values()]

    def live_records(self) -> Iterator[CallRecord]:
        """The records of the calls in progress themselves, not copies: for a reader that is done with them before
        the next event is handled (they keep changing), e.g. an API response built without awaiting."""
        return (call.rec for call in self._calls.values())

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _time(event: Event, received_at: datetime) -> datetime:
        """The event's own ``Timestamp`` (epoch seconds, UTC; needs ``timestampevents = yes``), else arrival."""
        ts = event.get("Timestamp")
        if ts:
            try:
                return datetime.fromtimestamp(float(ts), UTC)
            except (ValueError, OverflowError, OSError):
                pass
        return received_at

    def _entry(self, call: _Call, event: Event, received_at: datetime, extra: str = "") -> TimelineEntry | None:
        """The timeline entry for ``event``, or None when this very event was already applied (a replay).

        The key is built from the event's own headers, so it is the same every time the event is replayed.
        """
        name = event.get("Event", "")
        at = self._time(event, received_at)
        stamp = event.get("Timestamp") or at.isoformat()
        key = f"{name}|{event.get('Uniqueid', '')}|{stamp}|{extra}"
        if key in call.keys:
            return None
        call.keys.add(key)
        summary = {k: v for k in _SUMMARY_KEYS.get(name, ()) if (v := event.get(k))}
        return TimelineEntry(key=key, at=at, event=name, summary=summary)

    @staticmethod
    def _change(call: _Call, entry: TimelineEntry) -> CallChange:
        return CallChange(record=_copy(call.rec), timeline=(entry,))

    def _remember_ended(self, linkedid: str) -> None:
        ended = self._ended
        ended[linkedid] = None
        if len(ended) > RECENTLY_ENDED_KEPT:
            del ended[next(iter(ended))]

    def _end(
        self, call: _Call, at: datetime, *, inferred: bool, event: str = "", entry: TimelineEntry | None = None
    ) -> CallChange:
        """Close the call: decide its outcome, compute what Asterisk did not tell, drop it from the live table."""
        rec = call.rec
        rec.ended_at = at
        rec.end_inferred = inferred
        rec.outcome = self._outcome(call)
        if rec.outcome is Outcome.ANSWERED:
            start = call.connected_at or call.dial_answered_at
            if rec.talk_s is None and start is not None and not (inferred and call.talk_end is None):
                # No AgentComplete: like Asterisk's TalkTime, whole seconds from connect to the first hangup.
                rec.talk_s = float(int(((call.talk_end or at) - start).total_seconds()))
            if rec.wait_s is None and call.dial_answered_at is not None and rec.arrived_at is not None:
                rec.wait_s = float(int((call.dial_answered_at - rec.arrived_at).total_seconds()))
        cause = call.first_cause
        if not cause and call.partner_cause:
            cause = call.partner_cause  # a Local ;1 often ends with 0; its ;2 has the real cause (17 = busy)
        rec.hangup_cause = cause
        del self._calls[rec.linkedid]
        self._remember_ended(rec.linkedid)
        if entry is None:
            entry = TimelineEntry(key=f"{event}|{rec.linkedid}", at=at, event=event)
            call.keys.add(entry.key)
        return CallChange(record=_copy(rec), timeline=(entry,), ended=True)

    @staticmethod
    def _outcome(call: _Call) -> Outcome:
        """Decided once, at the end, from everything seen: the routing announcement wins, then the queue's facts.

        A queue timeout also sends ``QueueCallerAbandon``; it is told from a real abandon by ``QUEUESTATUS=TIMEOUT``
        or by the call going on in the dialplan afterwards (an overflow announcement, a new dial).
        """
        route = call.rec.route
        if route == "closed":
            return Outcome.CLOSED
        if route == "busy":
            return Outcome.BUSY
        if route == "overflow":
            return Outcome.OVERFLOW
        if call.answered:
            return Outcome.ANSWERED
        given_up = _QUEUE_GAVE_UP.get(call.queue_status or "")
        if given_up is not None:
            return given_up
        if call.abandoned and call.continued:
            return Outcome.TIMEOUT
        if call.queued or call.abandoned or route == "queue":
            return Outcome.ABANDONED
        # Not routed by our dialplan (a PBX hotline only watches): judge by the dial and the hangup cause.
        if call.dial_answered_at is not None or call.bridged:
            return Outcome.ANSWERED
        cause = call.first_cause or call.partner_cause or 0
        if cause == 17:
            return Outcome.BUSY
        if cause in (0, 16, 19, 127):
            return Outcome.ABANDONED
        return Outcome.FAILED

    def _create_from_snapshot(self, linkedid: str, events: list[Event], received_at: datetime) -> CallChange | None:
        """A call that began while the listener was away, rebuilt from its channels in the snapshot.

        Its ``AgentCalled`` events were missed, so ``rang`` stays empty; operator, wait and talk come later from
        ``AgentComplete``. A ``Queue`` channel in a bridge means an operator already answered.
        """
        origin = next((e for e in events if e.get("Uniqueid") == linkedid), None)
        if origin is None:  # the originating channel is gone: any channel still on a line number will do
            origin = next((e for e in events if e.get("Exten", "") in self._lines), None)
        if origin is None:
            return None
        number = origin.get("Exten", "")
        line_id = self._lines.get(number)
        if line_id is None:
            return None
        longest = max(_duration(e.get("Duration")) for e in events)
        rec = CallRecord(
            pbx_id=self.pbx_id,
            linkedid=linkedid,
            number=number,
            line_id=line_id,
            caller_number=_cid(origin.get("CallerIDNum")),
            caller_name=_cid(origin.get("CallerIDName")),
            arrived_at=received_at - longest,
            seen_first_in_resync=True,
        )
        call = _Call(rec, origin.get("Uniqueid", linkedid), origin.get("Channel", ""))
        for e in events:
            uniqueid = e.get("Uniqueid", "")
            call.channels.add(uniqueid)
            if e.get("Channel") == call.partner_name:
                call.partner = uniqueid
            if e.get("Application") == "Queue":
                call.queued = True
                rec.queue = e.get("ApplicationData", "").split(",", 1)[0] or None
                if e.get("BridgeId"):
                    call.answered = True
        self._calls[linkedid] = call
        entry = TimelineEntry(
            key=f"Resync|{linkedid}|{origin.get('Uniqueid', '')}",
            at=received_at,
            event="CoreShowChannel",
            summary={"Channels": str(len(events)), "Duration": str(longest)},
        )
        call.keys.add(entry.key)
        return CallChange(record=_copy(rec), timeline=(entry,))

    # ------------------------------------------------------------------ handlers, one per AMI event

    def _on_Newchannel(self, event: Event, received_at: datetime) -> CallChange | None:
        """A channel appears. The originating one (``Uniqueid == Linkedid``) starts a call when its ``Exten`` is a
        line number; later ones (queue calls to phones, overflow dials) join the call by ``Linkedid``."""
        linkedid = event.get("Linkedid", "")
        uniqueid = event.get("Uniqueid", "")
        call = self._calls.get(linkedid)
        if call is not None:
            if uniqueid not in call.channels and uniqueid not in call.gone:
                call.channels.add(uniqueid)
                if call.partner is None and event.get("Channel") == call.partner_name:
                    call.partner = uniqueid
            return None
        if uniqueid != linkedid or not uniqueid or linkedid in self._ended:
            return None
        number = event.get("Exten", "")
        line_id = self._lines.get(number)
        if line_id is None:
            return None
        at = self._time(event, received_at)
        rec = CallRecord(
            pbx_id=self.pbx_id,
            linkedid=linkedid,
            number=number,
            line_id=line_id,
            caller_number=_cid(event.get("CallerIDNum")),
            caller_name=_cid(event.get("CallerIDName")),
            arrived_at=at,
        )
        call = _Call(rec, uniqueid, event.get("Channel", ""))
        entry = self._entry(call, event, received_at)
        if entry is None:  # cannot happen: a fresh call has no keys yet
            return None
        self._calls[linkedid] = call
        return self._change(call, entry)

    def _on_NewCallerid(self, event: Event, received_at: datetime) -> CallChange | None:
        """Caller id set or changed. Believed on caller-side channels only: other channels of the call carry
        whatever their dialplan put there (``CallerIDNum: s`` on the overflow dial)."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None or not call.caller_side(event.get("Uniqueid", "")):
            return None
        number = _cid(event.get("CallerIDNum"))
        name = _cid(event.get("CallerIDName"))
        rec = call.rec
        if number == rec.caller_number and name == rec.caller_name:
            return None
        entry = self._entry(call, event, received_at)
        if entry is None:
            return None
        rec.caller_number = number
        rec.caller_name = name
        return self._change(call, entry)

    def _on_UserEvent(self, event: Event, received_at: datetime) -> CallChange | None:
        """Our dialplan's ``UserEvent(HotlineRoute, Line, Route[, Target])``: the routing decision. A second one
        (``overflow`` after ``queue``) replaces the first; the latest decision is the call's fate."""
        if event.get("UserEvent") != "HotlineRoute":
            return None
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at)
        if entry is None:
            return None
        rec = call.rec
        route = event.get("Route") or None
        if call.abandoned and route != "queue":
            call.continued = True
        rec.route = route
        if route == "overflow":
            rec.overflow_to = event.get("Target") or None
        return self._change(call, entry)

    def _on_VarSet(self, event: Event, received_at: datetime) -> CallChange | None:
        """Two variables matter: ``MIXMONITOR_FILENAME`` (the recording's path, which ``MixMonitorStart`` omits)
        and ``QUEUESTATUS`` (``TIMEOUT`` tells a queue timeout from an abandon)."""
        variable = event.get("Variable")
        if variable not in _VARIABLES:
            return None
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        value = event.get("Value", "")
        if not value:
            return None
        entry = self._entry(call, event, received_at, variable or "")
        if entry is None:
            return None
        if variable == "MIXMONITOR_FILENAME":
            call.rec.recording_path = value
        else:
            call.queue_status = value
        return self._change(call, entry)

    def _on_QueueCallerJoin(self, event: Event, received_at: datetime) -> CallChange | None:
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("Queue", ""))
        if entry is None:
            return None
        call.queued = True
        call.rec.queue = event.get("Queue") or call.rec.queue
        if call.rec.queued_at is None:
            call.rec.queued_at = entry.at
        return self._change(call, entry)

    def _on_AgentCalled(self, event: Event, received_at: datetime) -> CallChange | None:
        """An operator's phone starts ringing: appended to ``rang`` each time, so a member rung twice (ring-all
        rounds) appears twice; a replayed event is recognised by its key and not appended again."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        member = event.get("MemberName", "")
        entry = self._entry(call, event, received_at, f"{member}|{event.get('DestUniqueid', '')}")
        if entry is None:
            return None
        if member:
            call.rec.rang.append(member)
        return self._change(call, entry)

    def _on_AgentRingNoAnswer(self, event: Event, received_at: datetime) -> CallChange | None:
        """Rang for the member's timeout without answer: only the timeline records it; the queue tries the next."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("MemberName", ""))
        return None if entry is None else self._change(call, entry)

    def _on_AgentConnect(self, event: Event, received_at: datetime) -> CallChange | None:
        """An operator answered: operator, wait (``HoldTime``, whole seconds) and the start of talk."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("MemberName", ""))
        if entry is None:
            return None
        rec = call.rec
        call.answered = True
        call.connected_at = entry.at
        call.operator_channel = event.get("DestChannel", "").rsplit(";", 1)[0] or None
        rec.answered_at = entry.at
        rec.operator = event.get("MemberName") or rec.operator
        hold = _seconds(event.get("HoldTime"))
        if hold is not None:
            rec.wait_s = hold
        return self._change(call, entry)

    def _on_AgentComplete(self, event: Event, received_at: datetime) -> CallChange | None:
        """The operator's part is over: Asterisk's own ``HoldTime``/``TalkTime``. For a call first seen in a resync
        this is where operator, wait and talk come from (and the answer time, back-computed)."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("MemberName", ""))
        if entry is None:
            return None
        rec = call.rec
        call.answered = True
        call.completed = True
        rec.operator = event.get("MemberName") or rec.operator
        hold = _seconds(event.get("HoldTime"))
        if hold is not None:
            rec.wait_s = hold
        talk = _seconds(event.get("TalkTime"))
        if talk is not None:
            rec.talk_s = talk
            if rec.answered_at is None:
                rec.answered_at = entry.at - timedelta(seconds=talk)
        return self._change(call, entry)

    def _on_QueueCallerAbandon(self, event: Event, received_at: datetime) -> CallChange | None:
        """The caller left the queue unanswered: an abandon *or a queue timeout* (Asterisk sends this event for
        both); the outcome waits for the end of the call. ``HoldTime`` is the wait either way."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("Queue", ""))
        if entry is None:
            return None
        call.abandoned = True
        hold = _seconds(event.get("HoldTime"))
        if hold is not None:
            call.rec.wait_s = hold
        return self._change(call, entry)

    def _on_QueueCallerLeave(self, event: Event, received_at: datetime) -> CallChange | None:
        """Sent whenever the caller leaves the queue (answered, abandoned, timed out): timeline only."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("Queue", ""))
        return None if entry is None else self._change(call, entry)

    def _on_DialBegin(self, event: Event, received_at: datetime) -> CallChange | None:
        """A caller-side channel dials out. The queue's own dials to phones come with ``AgentCalled``; a dial after
        a ``QueueCallerAbandon`` means the dialplan went on (timeout, not abandon). The originate's dial of a Local
        ``;1`` has no ``Channel``/``Linkedid`` and is not ours to track."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None or not call.caller_side(event.get("Uniqueid", "")):
            return None
        entry = self._entry(call, event, received_at, event.get("DestUniqueid", ""))
        if entry is None:
            return None
        if call.abandoned:
            call.continued = True
        return self._change(call, entry)

    def _on_DialEnd(self, event: Event, received_at: datetime) -> CallChange | None:
        """End of a dial from a caller-side channel. Outside a queue (a PBX whose dialplan is not ours) an
        ``ANSWER`` here is the answer; inside one, ``AgentConnect`` says it better."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None or not call.caller_side(event.get("Uniqueid", "")):
            return None
        status = event.get("DialStatus", "")
        entry = self._entry(call, event, received_at, f"{event.get('DestUniqueid', '')}|{status}")
        if entry is None:
            return None
        if status == "ANSWER" and not call.queued and call.rec.route is None and call.dial_answered_at is None:
            call.dial_answered_at = entry.at
            call.rec.answered_at = entry.at
        return self._change(call, entry)

    def _on_BridgeEnter(self, event: Event, received_at: datetime) -> CallChange | None:
        """A caller-side channel joins a bridge (talks to someone): timeline, and the fallback answer signal."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None or not call.caller_side(event.get("Uniqueid", "")):
            return None
        entry = self._entry(call, event, received_at, event.get("BridgeUniqueid", ""))
        if entry is None:
            return None
        call.bridged = True
        return self._change(call, entry)

    def _on_BlindTransfer(self, event: Event, received_at: datetime) -> CallChange | None:
        """The operator sent the caller elsewhere. The event names no ``Linkedid``/``Uniqueid`` of its own, only
        ``Transferee…``/``Transferer…`` headers; the destination is ``Extension``@``Context``."""
        call = self._calls.get(event.get("TransfereeLinkedid") or event.get("TransfererLinkedid", ""))
        if call is None:
            return None
        exten, context = event.get("Extension", ""), event.get("Context", "")
        entry = self._entry(call, event, received_at, f"{event.get('TransfereeUniqueid', '')}|{exten}@{context}")
        if entry is None:
            return None
        if event.get("Result", "Success") == "Success" and exten:
            call.rec.transferred_to = f"{exten}@{context}" if context else exten
        return self._change(call, entry)

    def _on_AttendedTransfer(self, event: Event, received_at: datetime) -> CallChange | None:
        """The operator consulted someone, then joined the caller to them. The destination is the transfer
        target's dialled ``Exten``@``Context`` when it has one, else the second transferer channel's."""
        linkedid = event.get("TransfereeLinkedid") or event.get("OrigTransfererLinkedid", "")
        call = self._calls.get(linkedid)
        if call is None:
            return None
        entry = self._entry(call, event, received_at, event.get("TransferTargetUniqueid", ""))
        if entry is None:
            return None
        if event.get("Result", "Success") == "Success":
            for prefix in ("TransferTarget", "SecondTransferer"):
                exten = event.get(f"{prefix}Exten", "")
                if exten and exten != "s":
                    context = event.get(f"{prefix}Context", "")
                    call.rec.transferred_to = f"{exten}@{context}" if context else exten
                    break
        return self._change(call, entry)

    def _on_MixMonitorStart(self, event: Event, received_at: datetime) -> CallChange | None:
        """Recording started. Asterisk 22 does not say the file here (see ``_on_VarSet``); timeline only."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None:
            return None
        entry = self._entry(call, event, received_at)
        return None if entry is None else self._change(call, entry)

    def _on_Hangup(self, event: Event, received_at: datetime) -> CallChange | None:
        """A channel is gone. The first hangup of the caller's or the answering operator's channels after
        ``AgentConnect`` ends the talk (used when ``AgentComplete`` never comes; other members' phones, cancelled
        when one answered, do not count); the last channel's hangup ends the call."""
        linkedid = event.get("Linkedid", "")
        uniqueid = event.get("Uniqueid", "")
        call = self._calls.get(linkedid)
        if call is None:
            if self._resyncing and linkedid in self._resync_pending:
                # A call first met in the snapshot loses a channel before the snapshot is complete.
                pending = [e for e in self._resync_pending[linkedid] if e.get("Uniqueid") != uniqueid]
                self._resync_pending[linkedid] = pending
            return None
        entry = self._entry(call, event, received_at)
        if entry is None:
            return None
        if uniqueid == call.first:
            call.first_cause = _int(event.get("Cause"))
        elif uniqueid == call.partner:
            call.partner_cause = _int(event.get("Cause"))
        if (
            call.connected_at is not None
            and call.talk_end is None
            and (call.caller_side(uniqueid) or event.get("Channel", "").rsplit(";", 1)[0] == call.operator_channel)
        ):
            call.talk_end = entry.at
        call.channels.discard(uniqueid)
        call.gone.add(uniqueid)
        if call.channels:
            return self._change(call, entry)
        return self._end(call, entry.at, inferred=False, entry=entry)
