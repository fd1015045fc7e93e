"""A built-in PBX simulator: an AMI server that behaves like the hotline's Asterisk, without Asterisk.

For people (a demo or a console developer without a PBX) and for tests that need a PBX reacting to actions. Events
have the header sets real Asterisk 22 sent in ``../shared/ami-captures`` for the same situations — Local channel pairs
for callers and operators, ``NewCallerid`` carrying the caller, ``UserEvent HotlineRoute`` announcing routing, queue
events, ``Timestamp`` headers — so a tracker that handles the captures handles the simulator. It is not Asterisk: only
what hotline uses is modelled (dynamic queue members, pauses, AstDB, channels of hotline calls).

Time can run faster than the wall clock (``speed``): event ``Timestamp``s, HoldTime and TalkTime are in simulated
seconds, consistent with each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from hotline.ami.server import (
    AmiServer,
    ServerConnection,
    build_frame,
    get_header,
    response_frame,
    unknown_action,
)

__all__ = [
    "DEFAULT_LINES",
    "DEFAULT_OPERATORS",
    "CallHandle",
    "Member",
    "PbxSimulator",
    "run_simulator",
]

#: Line number (``${EXTEN}``) → line id, as in the captures.
DEFAULT_LINES: Mapping[str, int] = {"5551000": 1, "5552000": 2, "5553000": 3}
#: Operator username → device (queue member interface), as in the captures.
DEFAULT_OPERATORS: Mapping[str, str] = {
    "ana": "Local/101@phones/n",
    "mihai": "Local/102@phones/n",
    "ioana": "Local/103@phones/n",
    "elena": "Local/104@phones/n",
}

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
#: Asterisk device states as QueueMember ``Status``: 1 NOT_INUSE, 2 INUSE, 6 RINGING.
NOT_INUSE, INUSE, RINGING = 1, 2, 6
RING_TIMEOUT = 8.0
QUEUE_TIMEOUT = 20.0

Header = tuple[str, str]
HangupBy = Literal["caller", "agent"]

_CALLER_NAMES = [
    "Ion Popescu",
    "Maria Ionescu",
    "Dan Georgescu",
    "Elena Stan",
    "Radu Munteanu",
    "Ștefan Țăranu-Şerbănescu",
    "Ioana Dumitrescu",
    "Vlad Rusu",
    "Andreea Marin",
    "Mihai Constantin",
]


@dataclass
class Member:
    """A dynamic queue member, with the counters Asterisk reports in QueueMember / QueueMember* events."""

    queue: str
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    status: int = NOT_INUSE

    @property
    def in_call(self) -> bool:
        return self.status == INUSE

    def _state_headers(self) -> list[Header]:
        """The member's state, shared by the member events and QueueStatus (which name the first headers apart)."""
        return [
            ("StateInterface", self.state_interface),
            ("Membership", "dynamic"),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
        ]

    def event_headers(self) -> list[Header]:
        """Headers of QueueMemberAdded/Removed/Pause/Status (after Event/Privilege/Timestamp)."""
        return [("Queue", self.queue), ("MemberName", self.name), ("Interface", self.interface),
                *self._state_headers(), ("Ringinuse", "0"), ("Wrapuptime", "0")]  # fmt: skip

    def status_headers(self) -> list[Header]:
        """Headers of a QueueStatus ``QueueMember`` event (named differently from the member events)."""
        return [("Queue", self.queue), ("Name", self.name), ("Location", self.interface),
                *self._state_headers(), ("Wrapuptime", "0")]  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {
            "queue": self.queue,
            "interface": self.interface,
            "name": self.name,
            "penalty": self.penalty,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "in_call": self.in_call,
            "status": self.status,
            "calls_taken": self.calls_taken,
        }


@dataclass
class Channel:
    """A simulated channel: what Newchannel/Hangup and CoreShowChannels say about it."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    created: float
    state: int = 0
    priority: int = 1
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    application: str = ""
    app_data: str = ""
    bridge_id: str = ""

    def headers(self, prefix: str = "") -> list[Header]:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller_num),
            (f"{prefix}CallerIDName", self.caller_name),
            (f"{prefix}ConnectedLineNum", self.connected_num),
            (f"{prefix}ConnectedLineName", self.connected_name),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


@dataclass
class CallHandle:
    """A call in progress: its Linkedid, line, and a future with the outcome
    (``answered``, ``abandoned``, ``closed``, ``busy``, ``overflow``, ``timeout``)."""

    linkedid: str
    number: str
    line: int
    caller_number: str
    caller_name: str
    outcome: asyncio.Future[str]
    operator: str | None = None
    rang: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class _QueueStats:
    completed: int = 0
    abandoned: int = 0
    holdtime_total: float = 0.0
    talktime_total: float = 0.0
    waiting: list[tuple[Channel, float]] = field(default_factory=list)  # (caller ;2 channel, joined at)
    rr_last: int = -1


class PbxSimulator(AmiServer):
    """An AMI server with simulated queues, AstDB and hotline calls. See :func:`run_simulator` for the CLI side.

    ``lines``: line number → line id (one queue ``hotline-<id>`` per line). ``max_channels``: line id → concurrent
    calls allowed (beyond: ``Route: busy``). ``overflow``: line id → outside number the call goes to when the queue
    times out. ``operators``: username → interface, added to every queue at start (none by default: tests add
    members with QueueAdd). ``speed``: simulated seconds per wall-clock second.
    """

    def __init__(
        self,
        *,
        username: str = "hotline",
        secret: str = "hotline-secret",
        lines: Mapping[str, int] = DEFAULT_LINES,
        max_channels: Mapping[int, int] | None = None,
        overflow: Mapping[int, str] | None = None,
        operators: Mapping[str, str] | None = None,
        speed: float = 1.0,
        seed: int | None = None,
        chunking: tuple[int, int] | None = None,
        ring_timeout: float = RING_TIMEOUT,
        queue_timeout: float = QUEUE_TIMEOUT,
    ) -> None:
        super().__init__(username=username, secret=secret, chunking=chunking, seed=seed)
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.lines = dict(lines)
        self.max_channels = dict(max_channels or {})
        self.overflow = dict(overflow or {})
        self.speed = speed
        self.ring_timeout = ring_timeout
        self.queue_timeout = queue_timeout
        self.traffic_rng = random.Random(seed)
        self.astdb: dict[str, str] = {}
        self.actions_received: list[dict[str, str]] = []
        self.channels: dict[str, Channel] = {}
        self.calls: list[CallHandle] = []
        self._queues: dict[str, list[Member]] = {f"hotline-{line_id}": [] for line_id in self.lines.values()}
        self._stats: dict[str, _QueueStats] = {q: _QueueStats() for q in self._queues}
        self._epoch0 = time.time()
        self._loop0: float | None = None
        self._uid_seq = itertools.count(100)
        self._chan_seq = itertools.count(1)
        self._changed = asyncio.Event()
        self._call_tasks: set[asyncio.Task[None]] = set()
        self._active_by_line: dict[int, int] = {}
        self._booted = self._epoch0
        for name, interface in (operators or {}).items():
            for queue in self._queues:
                self._queues[queue].append(self._new_member(queue, interface, name))

    # -- state for tests ------------------------------------------------------------------------------------------

    def members(self, queue: str) -> list[dict[str, object]]:
        """The queue's members as plain dicts (``name``, ``interface``, ``paused``, ``paused_reason``, …)."""
        return [m.as_dict() for m in self._queues.get(queue, [])]

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    # -- clock ----------------------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated epoch seconds: starts at the wall clock, then runs ``speed`` times faster."""
        loop = asyncio.get_running_loop()
        if self._loop0 is None:
            self._loop0 = loop.time()
        return self._epoch0 + (loop.time() - self._loop0) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        self.now()
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.now()
        return await super().start(host, port)

    async def stop(self) -> None:
        for task in list(self._call_tasks):
            task.cancel()
        if self._call_tasks:
            await asyncio.wait(self._call_tasks, timeout=2.0)
        await super().stop()

    # -- events ---------------------------------------------------------------------------------------------------

    def _event(self, name: str, privilege: str, *groups: Iterable[Header]) -> str:
        headers: list[Header] = [("Event", name), ("Privilege", privilege), ("Timestamp", f"{self.now():.6f}")]
        for group in groups:
            headers.extend(group)
        return build_frame(headers)

    async def emit(self, *frames: str) -> None:
        """Send events to every logged-in listener (the simulator itself keeps no backlog)."""
        await self.broadcast(*frames)

    def _member_event(self, name: str, member: Member) -> str:
        return self._event(name, "agent,all", member.event_headers())

    def _new_member(self, queue: str, interface: str, name: str, penalty: int = 0, state_interface: str = "") -> Member:
        return Member(
            queue=queue,
            interface=interface,
            name=name or interface,
            state_interface=state_interface or interface,
            penalty=penalty,
            login_time=int(self.now()) if self._loop0 is not None else int(self._epoch0),
        )

    def _find_member(self, queue: str, interface: str) -> Member | None:
        for member in self._queues.get(queue, []):
            if member.interface.lower() == interface.lower():
                return member
        return None

    def _state_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- login ----------------------------------------------------------------------------------------------------

    async def on_login(self, conn: ServerConnection) -> None:
        """Asterisk greets every authenticated session with FullyBooted."""
        uptime = int(self.now() - self._booted)
        await conn.send(
            build_frame(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", str(uptime)),
                    ("LastReload", str(uptime)),
                    ("Status", "Fully Booted"),
                ]
            )
        )

    # -- actions --------------------------------------------------------------------------------------------------

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        """Dispatch to ``_action_<name>``; unknown actions get Asterisk's error."""
        self.actions_received.append(action)
        name = (get_header(action, "Action") or "").lower()
        handler = getattr(self, f"_action_{name}", None)
        if handler is None:
            return [unknown_action(action)]
        frames: list[str] = await handler(conn, action)
        return frames

    def _tell_others(self, conn: ServerConnection, *events: str) -> None:
        """State-change events go to every listener; the requester gets them after its response, in its frames."""
        others = [c for c in self.logged_in() if c is not conn]
        if not others or not events:
            return

        async def send() -> None:
            for other in others:
                with contextlib.suppress(ConnectionError, OSError):
                    await other.send(*events)

        self._spawn(send())

    async def _action_queueadd(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        queue = get_header(action, "Queue")
        interface = get_header(action, "Interface")
        if not queue:
            return [response_frame(action, "Error", "'Queue' not specified.")]
        if not interface:
            return [response_frame(action, "Error", "'Interface' not specified.")]
        if queue not in self._queues:
            return [response_frame(action, "Error", "Unable to add interface to queue: No such queue")]
        if self._find_member(queue, interface) is not None:
            return [response_frame(action, "Error", "Unable to add interface: Already there")]
        member = self._new_member(
            queue,
            interface,
            get_header(action, "MemberName") or "",
            int(get_header(action, "Penalty") or 0),
            get_header(action, "StateInterface") or "",
        )
        paused = (get_header(action, "Paused") or "").lower() in ("1", "true", "yes")
        if paused:
            member.paused = True
            member.paused_reason = get_header(action, "Reason") or ""
            member.last_pause = int(self.now())
        self._queues[queue].append(member)
        self._state_changed()
        event = self._member_event("QueueMemberAdded", member)
        self._tell_others(conn, event)
        return [response_frame(action, "Success", "Added interface to queue"), event]

    async def _action_queueremove(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        queue = get_header(action, "Queue") or ""
        interface = get_header(action, "Interface") or ""
        if queue not in self._queues:
            return [response_frame(action, "Error", "Unable to remove interface from queue: No such queue")]
        member = self._find_member(queue, interface)
        if member is None:
            return [response_frame(action, "Error", "Unable to remove interface: Not there")]
        self._queues[queue].remove(member)
        self._state_changed()
        event = self._member_event("QueueMemberRemoved", member)
        self._tell_others(conn, event)
        return [response_frame(action, "Success", "Removed interface from queue"), event]

    async def _action_queuepause(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        interface = get_header(action, "Interface")
        if not interface:
            return [response_frame(action, "Error", "Need 'Interface' and 'Paused' parameters.")]
        paused_value = (get_header(action, "Paused") or "").lower()
        paused = paused_value in ("1", "true", "yes", "on")
        queue = get_header(action, "Queue")
        queues = [queue] if queue else list(self._queues)
        targets = [m for q in queues if (m := self._find_member(q, interface)) is not None]
        if not targets:
            return [response_frame(action, "Error", "Interface not found")]
        reason = get_header(action, "Reason") or ""
        events: list[str] = []
        for member in targets:
            member.paused = paused
            member.paused_reason = reason if paused else ""
            member.last_pause = int(self.now()) if paused else member.last_pause
            events.append(self._member_event("QueueMemberPause", member))
        self._state_changed()
        self._tell_others(conn, *events)
        message = "Interface paused successfully" if paused else "Interface unpaused successfully"
        return [response_frame(action, "Success", message), *events]

    async def _action_queuepenalty(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        """Like app_queue: ``Interface`` and ``Penalty`` required, ``Queue`` optional (all queues otherwise)."""
        interface = get_header(action, "Interface")
        penalty_text = get_header(action, "Penalty") or ""
        if not interface or not penalty_text.lstrip("-").isdigit():
            return [response_frame(action, "Error", "Need 'Interface' and 'Penalty' parameters.")]
        queue = get_header(action, "Queue")
        queues = [queue] if queue else list(self._queues)
        targets = [m for q in queues if (m := self._find_member(q, interface)) is not None]
        if not targets or int(penalty_text) < 0:
            return [response_frame(action, "Error", "Invalid interface, queuename or penalty")]
        events = []
        for member in targets:
            member.penalty = int(penalty_text)
            events.append(self._member_event("QueueMemberPenalty", member))
        self._state_changed()
        self._tell_others(conn, *events)
        return [response_frame(action, "Success", "Interface penalty set successfully"), *events]

    async def _action_queuestatus(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        action_id = get_header(action, "ActionID")
        aid: list[Header] = [("ActionID", action_id)] if action_id is not None else []
        wanted = get_header(action, "Queue")
        member_filter = get_header(action, "Member")
        frames = [response_frame(action, "Success", "Queue status will follow", [("EventList", "start")])]
        items = 0
        now = self.now()
        for queue, members in self._queues.items():
            if wanted and queue != wanted:
                continue
            frames.append(build_frame([("Event", "QueueParams"), *self._queue_params(queue), *aid]))
            items += 1
            for member in members:
                if member_filter and member.interface != member_filter:
                    continue
                frames.append(build_frame([("Event", "QueueMember"), *member.status_headers(), *aid]))
                items += 1
            for position, (chan, joined) in enumerate(self._stats[queue].waiting, start=1):
                frames.append(
                    build_frame(
                        [
                            ("Event", "QueueEntry"),
                            ("Queue", queue),
                            ("Position", str(position)),
                            ("Channel", chan.name),
                            ("Uniqueid", chan.uniqueid),
                            ("CallerIDNum", chan.caller_num),
                            ("CallerIDName", chan.caller_name),
                            ("ConnectedLineNum", chan.connected_num),
                            ("ConnectedLineName", chan.connected_name),
                            ("Wait", str(int(now - joined))),
                            ("Priority", "0"),
                            *aid,
                        ]
                    )
                )
                items += 1
        frames.append(
            build_frame([("Event", "QueueStatusComplete"), *aid, ("EventList", "Complete"), ("ListItems", str(items))])
        )
        return frames

    def _queue_params(self, queue: str) -> list[Header]:
        stats = self._stats[queue]
        answered = stats.completed
        holdtime = round(stats.holdtime_total / answered) if answered else 0
        talktime = round(stats.talktime_total / answered) if answered else 0
        offered = answered + stats.abandoned
        perf = 100.0 * answered / offered if offered else 0.0
        return [
            ("Queue", queue),
            ("Max", "0"),
            ("Strategy", "rrmemory"),
            ("Calls", str(len(stats.waiting))),
            ("Holdtime", str(holdtime)),
            ("TalkTime", str(talktime)),
            ("Completed", str(stats.completed)),
            ("Abandoned", str(stats.abandoned)),
            ("ServiceLevel", "20"),
            ("ServicelevelPerf", f"{perf:.1f}"),
            ("ServicelevelPerf2", f"{perf:.1f}"),
            ("Weight", "0"),
        ]

    async def _action_queuesummary(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        action_id = get_header(action, "ActionID")
        aid: list[Header] = [("ActionID", action_id)] if action_id is not None else []
        wanted = get_header(action, "Queue")
        frames = [response_frame(action, "Success", "Queue summary will follow", [("EventList", "start")])]
        now = self.now()
        items = 0
        for queue, members in self._queues.items():
            if wanted and queue != wanted:
                continue
            stats = self._stats[queue]
            params = dict(self._queue_params(queue))
            longest = max((int(now - joined) for _, joined in stats.waiting), default=0)
            frames.append(
                build_frame(
                    [
                        ("Event", "QueueSummary"),
                        ("Queue", queue),
                        ("LoggedIn", str(len(members))),
                        ("Available", str(sum(1 for m in members if not m.paused and m.status == NOT_INUSE))),
                        ("Callers", str(len(stats.waiting))),
                        ("HoldTime", params["Holdtime"]),
                        ("TalkTime", params["TalkTime"]),
                        ("LongestHoldTime", str(longest)),
                        *aid,
                    ]
                )
            )
            items += 1
        frames.append(
            build_frame([("Event", "QueueSummaryComplete"), *aid, ("EventList", "Complete"), ("ListItems", str(items))])
        )
        return frames

    async def _action_dbput(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        family = get_header(action, "Family")
        key = get_header(action, "Key")
        if not family:
            return [response_frame(action, "Error", "No family specified")]
        if not key:
            return [response_frame(action, "Error", "No key specified")]
        self.astdb[f"{family}/{key}"] = get_header(action, "Val") or ""
        return [response_frame(action, "Success", "Updated database successfully")]

    async def _action_dbget(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        family = get_header(action, "Family")
        key = get_header(action, "Key")
        if not family:
            return [response_frame(action, "Error", "No family specified.")]
        if not key:
            return [response_frame(action, "Error", "No key specified.")]
        value = self.astdb.get(f"{family}/{key}")
        if value is None:
            return [response_frame(action, "Error", "Database entry not found")]
        action_id = get_header(action, "ActionID")
        aid: list[Header] = [("ActionID", action_id)] if action_id is not None else []
        return [
            response_frame(action, "Success", "Result will follow", [("EventList", "start")]),
            build_frame([("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value), *aid]),
            build_frame([("Event", "DBGetComplete"), *aid, ("EventList", "Complete"), ("ListItems", "1")]),
        ]

    async def _action_dbdel(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        path = f"{get_header(action, 'Family') or ''}/{get_header(action, 'Key') or ''}"
        if self.astdb.pop(path, None) is None:
            return [response_frame(action, "Error", "Database entry not found")]
        return [response_frame(action, "Success", "Key deleted successfully")]

    async def _action_coreshowchannels(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        action_id = get_header(action, "ActionID")
        aid: list[Header] = [("ActionID", action_id)] if action_id is not None else []
        frames = [response_frame(action, "Success", "Channels will follow", [("EventList", "start")])]
        now = self.now()
        for chan in self.channels.values():
            seconds = int(now - chan.created)
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            frames.append(
                build_frame(
                    [
                        ("Event", "CoreShowChannel"),
                        *aid,
                        *chan.headers(),
                        ("Application", chan.application),
                        ("ApplicationData", chan.app_data),
                        ("Duration", duration),
                        ("BridgeId", chan.bridge_id),
                    ]
                )
            )
        frames.append(
            build_frame(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    *aid,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(self.channels))),
                ]
            )
        )
        return frames

    async def _action_command(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        command = " ".join((get_header(action, "Command") or "").split())
        ok = [("Message", "Command output follows")]
        if command == "dialplan reload":
            return [build_frame([("Response", "Success"), *self._aid(action), *ok, ("Output", "Dialplan reloaded.")])]
        if command.startswith("module reload "):
            module = command.removeprefix("module reload ")
            reload_event = self._event("Reload", "system,all", [("Module", module), ("Status", "0")])
            self._tell_others(conn, reload_event)
            return [
                build_frame(
                    [
                        ("Response", "Success"),
                        *self._aid(action),
                        *ok,
                        ("Output", f"Module '{module}' reloaded successfully."),
                    ]
                ),
                reload_event,
            ]
        if command.startswith("queue reload"):
            return [build_frame([("Response", "Success"), *self._aid(action), *ok])]
        if command == "core show version":
            return [
                build_frame(
                    [
                        ("Response", "Success"),
                        *self._aid(action),
                        *ok,
                        ("Output", "Asterisk 22.10.1 (hotline simulator)"),
                    ]
                )
            ]
        return [
            build_frame(
                [
                    ("Response", "Error"),
                    *self._aid(action),
                    *ok,
                    (
                        "Output",
                        f"No such command '{command}' (type 'core show help {command}' for other possible commands)",
                    ),
                ]
            )
        ]

    @staticmethod
    def _aid(action: Mapping[str, str]) -> list[Header]:
        action_id = get_header(action, "ActionID")
        return [("ActionID", action_id)] if action_id is not None else []

    async def _action_redirect(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        channel = get_header(action, "Channel") or ""
        if channel not in self.channels:
            return [response_frame(action, "Error", f"Channel does not exist: {channel}")]
        return [response_frame(action, "Success", "Redirect successful")]

    async def _action_originate(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        """Originate ``Local/<line number>@hotline-inbound`` places a simulated call on that line; any other channel
        just gets a successful OriginateResponse (keep it simple)."""
        channel = get_header(action, "Channel") or ""
        caller_id = get_header(action, "CallerID") or ""
        name, _, rest = caller_id.partition("<")
        caller_number = rest.rstrip(">").strip() or f"07{self.traffic_rng.randint(10**7, 10**8 - 1)}"
        caller_name = name.strip().strip('"') or self.traffic_rng.choice(_CALLER_NAMES)
        number = channel.removeprefix("Local/").split("@", 1)[0]
        uniqueid = ""
        if channel.startswith("Local/") and number in self.lines:
            handle = self.place_call(number, caller_number, caller_name, **self._random_call_params())
            uniqueid = handle.linkedid
        response = build_frame(
            [
                ("Event", "OriginateResponse"),
                ("Privilege", "call,all"),
                ("Timestamp", f"{self.now():.6f}"),
                *self._aid(action),
                ("Response", "Success"),
                ("Channel", channel),
                ("Context", get_header(action, "Context") or ""),
                ("Exten", get_header(action, "Exten") or ""),
                ("Reason", "4"),
                ("Uniqueid", uniqueid or f"{int(self.now())}.{next(self._uid_seq)}"),
                ("CallerIDNum", caller_number),
                ("CallerIDName", caller_name),
            ]
        )
        return [response_frame(action, "Success", "Originate successfully queued"), response]

    # -- calls ----------------------------------------------------------------------------------------------------

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._call_tasks.add(task)
        task.add_done_callback(self._call_tasks.discard)
        return task

    def _uniqueid(self) -> str:
        return f"{int(self.now())}.{next(self._uid_seq)}"

    def _local_pair(self, base: str, context: str, exten: str, linkedid: str | None) -> tuple[Channel, Channel]:
        """A Local channel pair ``<base>-XXXXXXXX;1`` / ``;2`` as Asterisk names them."""
        suffix = f"{next(self._chan_seq):08x}"
        uid1 = self._uniqueid()
        one = Channel(f"{base}-{suffix};1", uid1, linkedid or uid1, context, exten, self.now(), state=0)
        two = Channel(f"{base}-{suffix};2", self._uniqueid(), linkedid or uid1, context, exten, self.now(), state=4)
        self.channels[one.name] = one
        self.channels[two.name] = two
        return one, two

    def _hangup(self, chan: Channel, cause: int = 16, cause_txt: str = "Normal Clearing") -> str:
        self.channels.pop(chan.name, None)
        return self._event("Hangup", "call,all", chan.headers(), [("Cause", str(cause)), ("Cause-txt", cause_txt)])

    def _random_call_params(self) -> dict[str, float | None]:
        rng = self.traffic_rng
        return {
            "answer_after": min(30.0, rng.lognormvariate(math.log(3.0), 0.6)),
            "patience": rng.expovariate(1 / 45.0),
            "talk": max(5.0, rng.lognormvariate(math.log(120.0), 0.7)),
        }

    def place_call(
        self,
        number: str,
        caller_number: str,
        caller_name: str,
        *,
        answer_after: float | None = 2.0,
        talk: float = 10.0,
        patience: float | None = None,
        hangup_by: HangupBy = "caller",
    ) -> CallHandle:
        """Script one call on a line: it starts now, in the background.

        ``answer_after``: seconds a ringing member takes to answer (None, or more than the ring timeout: members
        do not answer and the queue moves on, ``AgentRingNoAnswer``). ``patience``: seconds the caller waits in the
        queue before hanging up (None: until the queue times out). ``talk``: seconds of conversation.
        ``hangup_by``: who ends the conversation (AgentComplete ``Reason``). All in simulated seconds.
        """
        if number not in self.lines:
            raise ValueError(f"unknown line number {number!r}")
        loop = asyncio.get_running_loop()
        handle = CallHandle(
            linkedid="",
            number=number,
            line=self.lines[number],
            caller_number=caller_number,
            caller_name=caller_name,
            outcome=loop.create_future(),
        )
        one, two = self._local_pair(f"Local/{number}@hotline-inbound", "hotline-inbound", number, None)
        handle.linkedid = one.linkedid
        self.calls.append(handle)
        handle.task = self._spawn(self._run_call(handle, one, two, answer_after, talk, patience, hangup_by))
        return handle

    async def _run_call(
        self,
        call: CallHandle,
        one: Channel,
        two: Channel,
        answer_after: float | None,
        talk: float,
        patience: float | None,
        hangup_by: HangupBy,
    ) -> None:
        line = call.line
        self._active_by_line[line] = self._active_by_line.get(line, 0) + 1
        outcome = "failed"
        try:
            outcome = await self._call_script(call, one, two, answer_after, talk, patience, hangup_by)
        except (ConnectionError, OSError):
            pass
        finally:
            self._active_by_line[line] -= 1
            for chan in (one, two):
                self.channels.pop(chan.name, None)
            for stats in self._stats.values():
                stats.waiting = [(c, j) for c, j in stats.waiting if c is not two]
            if not call.outcome.done():
                call.outcome.set_result(outcome)
            self._state_changed()

    async def _call_script(
        self,
        call: CallHandle,
        one: Channel,
        two: Channel,
        answer_after: float | None,
        talk: float,
        patience: float | None,
        hangup_by: HangupBy,
    ) -> str:
        emit = self.emit
        await emit(
            self._event("Newchannel", "call,all", one.headers()), self._event("Newchannel", "call,all", two.headers())
        )
        for chan in (one, two):
            chan.caller_num, chan.caller_name = call.caller_number, call.caller_name
            chan.connected_num, chan.connected_name = call.caller_number, call.caller_name
        await emit(
            self._event(
                "NewCallerid",
                "call,all",
                one.headers(),
                [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
            ),
            self._event(
                "NewCallerid",
                "call,all",
                two.headers(),
                [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
            ),
        )
        two.context, two.exten, two.priority = "hotline-line", "s", 6
        line = call.line
        route_headers: list[Header] = [("UserEvent", "HotlineRoute"), ("Line", str(line))]
        limit = self.max_channels.get(line)
        if limit is not None and self._active_by_line.get(line, 0) > limit:
            two.priority = 16
            await emit(self._event("UserEvent", "user,all", two.headers(), [*route_headers, ("Route", "busy")]))
            await self.sleep(0.5)
            two.state = 7
            await emit(self._hangup(one, 0, "Unknown"), self._hangup(two, 17, "User busy"))
            return "busy"
        if self.astdb.get(f"hotline/open/{line}") == "0":
            two.priority = 12
            await emit(self._event("UserEvent", "user,all", two.headers(), [*route_headers, ("Route", "closed")]))
            await self.sleep(3.0)
            await emit(
                self._event("SoftHangupRequest", "call,all", two.headers(), [("Cause", "16")]),
                self._event("HangupRequest", "call,all", one.headers(), [("Cause", "16")]),
                self._hangup(two),
                self._hangup(one),
            )
            return "closed"
        await emit(self._event("UserEvent", "user,all", two.headers(), [*route_headers, ("Route", "queue")]))
        one.state = two.state = 6
        await emit(
            self._event("Newstate", "call,all", one.headers()), self._event("Newstate", "call,all", two.headers())
        )
        await self.sleep(0.5)
        two.priority = 8
        await emit(self._event("MixMonitorStart", "call,all", two.headers()))
        two.priority = 9
        two.application, two.app_data = "Queue", f"hotline-{line},,,,{int(self.queue_timeout)}"
        return await self._queue(call, one, two, answer_after, talk, patience, hangup_by)

    @staticmethod
    def _queue_position(stats: _QueueStats, chan: Channel) -> int:
        for index, (waiting, _) in enumerate(stats.waiting, start=1):
            if waiting is chan:
                return index
        return 1

    def _available(self, queue: str, tried_at: dict[str, float]) -> Member | None:
        """Next free, unpaused member in rrmemory order."""
        members = self._queues[queue]
        stats = self._stats[queue]
        if not members:
            return None
        n = len(members)
        for step in range(1, n + 1):
            idx = (stats.rr_last + step) % n
            member = members[idx]
            if member.paused or member.status != NOT_INUSE:
                continue
            if tried_at.get(member.interface, -1e18) > self.now() - 0.01:
                continue
            stats.rr_last = idx
            return member
        return None

    async def _queue(
        self,
        call: CallHandle,
        one: Channel,
        two: Channel,
        answer_after: float | None,
        talk: float,
        patience: float | None,
        hangup_by: HangupBy,
    ) -> str:
        queue = f"hotline-{call.line}"
        stats = self._stats[queue]
        joined = self.now()
        stats.waiting.append((two, joined))
        position = len(stats.waiting)
        q_headers: list[Header] = [("Queue", queue)]
        await self.emit(
            self._event(
                "QueueCallerJoin",
                "agent,all",
                two.headers(),
                q_headers,
                [("Position", str(position)), ("Count", str(position))],
            ),
            self._event("MusicOnHoldStart", "call,all", two.headers(), [("Class", "default")]),
        )
        timeout_at = joined + self.queue_timeout
        give_up_at = joined + patience if patience is not None else math.inf
        tried: dict[str, float] = {}
        while True:
            now = self.now()
            if now >= give_up_at or now >= timeout_at:
                break
            member = self._available(queue, tried)
            if member is None:
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), (min(give_up_at, timeout_at) - now) / self.speed)
                continue
            result = await self._ring(
                call, one, two, member, joined, answer_after, talk, min(give_up_at, timeout_at), hangup_by
            )
            if result is not None:
                return result
            tried[member.interface] = self.now()
        # Left the queue without an operator: the caller hung up, or Queue() timed out.
        hold = str(int(self.now() - joined))
        pos = [
            ("Position", str(self._queue_position(stats, two))),
            ("OriginalPosition", str(position)),
            ("HoldTime", hold),
        ]
        stats.waiting = [(c, j) for c, j in stats.waiting if c is not two]
        stats.abandoned += 1
        leave = self._event(
            "QueueCallerLeave",
            "agent,all",
            two.headers(),
            q_headers,
            [("Position", pos[0][1]), ("Count", str(len(stats.waiting)))],
        )
        if self.now() >= give_up_at and give_up_at <= timeout_at:
            await self.emit(
                self._event("HangupRequest", "call,all", two.headers(), [("Cause", "0")]),
                self._event("MusicOnHoldStop", "call,all", two.headers()),
                self._event("QueueCallerAbandon", "agent,all", two.headers(), q_headers, pos),
                leave,
                self._event("SoftHangupRequest", "call,all", two.headers(), [("Cause", "16")]),
                self._hangup(two, 0, "Unknown"),
                self._hangup(one, 0, "Unknown"),
            )
            return "abandoned"
        # Asterisk reports a queue timeout with QueueCallerAbandon too; Queue() then sets QUEUESTATUS=TIMEOUT, which
        # is how a listener tells a timeout from an abandon when no overflow follows.
        await self.emit(
            self._event("QueueCallerAbandon", "agent,all", two.headers(), q_headers, pos),
            self._event("MusicOnHoldStop", "call,all", two.headers()),
            leave,
            self._event("VarSet", "dialplan,all", two.headers(), [("Variable", "QUEUESTATUS"), ("Value", "TIMEOUT")]),
        )
        target = self.overflow.get(call.line)
        if target is None:
            await self.emit(
                self._event("SoftHangupRequest", "call,all", two.headers(), [("Cause", "16")]),
                self._event("HangupRequest", "call,all", one.headers(), [("Cause", "16")]),
                self._hangup(one),
                self._hangup(two),
            )
            return "timeout"
        two.priority = 19
        await self.emit(
            self._event(
                "UserEvent",
                "user,all",
                two.headers(),
                [("UserEvent", "HotlineRoute"), ("Line", str(call.line)), ("Route", "overflow"), ("Target", target)],
            ),
        )
        out1, out2 = self._local_pair(f"Local/{target}@outside", "outside", target, call.linkedid)
        await self.emit(
            self._event("Newchannel", "call,all", out1.headers()), self._event("Newchannel", "call,all", out2.headers())
        )
        await self.sleep(max(1.0, talk))
        await self.emit(
            self._hangup(out2),
            self._hangup(out1),
            self._event("SoftHangupRequest", "call,all", two.headers(), [("Cause", "16")]),
            self._event("HangupRequest", "call,all", one.headers(), [("Cause", "16")]),
            self._hangup(one),
            self._hangup(two),
        )
        return "overflow"

    async def _ring(
        self,
        call: CallHandle,
        one: Channel,
        two: Channel,
        member: Member,
        joined: float,
        answer_after: float | None,
        talk: float,
        deadline: float,
        hangup_by: HangupBy,
    ) -> str | None:
        """Ring one member; returns the outcome when the call ended here, None to go on queueing."""
        queue = member.queue
        stats = self._stats[queue]
        device = member.interface.removesuffix("/n")
        context = device.split("@", 1)[1] if "@" in device else "phones"
        a1, a2 = self._local_pair(device, context, "s", call.linkedid)
        a2.exten = device.removeprefix("Local/").split("@", 1)[0]
        for chan in (a1, a2):
            chan.caller_num, chan.caller_name = call.caller_number, call.caller_name
            chan.connected_num, chan.connected_name = call.caller_number, call.caller_name
        agent_q: list[Header] = [("Queue", queue), ("Interface", member.interface), ("MemberName", member.name)]
        call.rang.append(member.name)
        member.status = RINGING
        ring_start = self.now()
        await self.emit(
            self._event("Newchannel", "call,all", a1.headers()),
            self._event("Newchannel", "call,all", a2.headers()),
            self._event("AgentCalled", "agent,all", two.headers(), a1.headers("Dest"), agent_q),
            self._event("DialBegin", "call,all", two.headers(), a1.headers("Dest"), [("DialString", member.interface)]),
            self._member_event("QueueMemberStatus", member),
        )
        a1.state = 5
        ring_for = min(self.ring_timeout, answer_after if answer_after is not None else math.inf)
        ring_until = min(ring_start + ring_for, deadline)
        await self.sleep(ring_until - self.now())
        answered = (
            answer_after is not None and answer_after <= self.ring_timeout and ring_until >= ring_start + answer_after
        )
        if not answered:
            no_answer = ring_until >= ring_start + self.ring_timeout
            events = []
            if no_answer:
                events.append(
                    self._event(
                        "AgentRingNoAnswer",
                        "agent,all",
                        two.headers(),
                        a1.headers("Dest"),
                        agent_q,
                        [("RingTime", str(int((self.now() - ring_start) * 1000)))],
                    )
                )
            member.status = NOT_INUSE
            events += [
                self._event(
                    "DialEnd",
                    "call,all",
                    two.headers(),
                    a1.headers("Dest"),
                    [("DialStatus", "NOANSWER" if no_answer else "CANCEL")],
                ),
                self._hangup(a1),
                self._hangup(a2),
                self._member_event("QueueMemberStatus", member),
            ]
            await self.emit(*events)
            self._state_changed()
            return None
        # Answered.
        a1.state = a2.state = 6
        member.status = INUSE
        call.operator = member.name
        connected = self.now()
        hold = connected - joined
        stats.waiting = [(c, j) for c, j in stats.waiting if c is not two]
        bridge = f"{self.rng.getrandbits(32):08x}-sim-{next(self._chan_seq):04x}"
        two.bridge_id = a1.bridge_id = bridge
        bridge_headers: list[Header] = [
            ("BridgeUniqueid", bridge),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", "0"),
            ("BridgeVideoSourceMode", "none"),
        ]
        await self.emit(
            self._event("Newstate", "call,all", a2.headers()),
            self._event("Newstate", "call,all", a1.headers()),
            self._event("DialEnd", "call,all", two.headers(), a1.headers("Dest"), [("DialStatus", "ANSWER")]),
            self._event("MusicOnHoldStop", "call,all", two.headers()),
            self._event(
                "QueueCallerLeave",
                "agent,all",
                two.headers(),
                [("Queue", queue), ("Position", "1"), ("Count", str(len(stats.waiting)))],
            ),
            self._event(
                "AgentConnect",
                "agent,all",
                two.headers(),
                a1.headers("Dest"),
                agent_q,
                [("HoldTime", str(int(hold))), ("RingTime", str(int(connected - ring_start)))],
            ),
            self._event("BridgeCreate", "call,all", bridge_headers),
            self._event("BridgeEnter", "call,all", bridge_headers, a1.headers()),
            self._event("BridgeEnter", "call,all", bridge_headers, two.headers()),
            self._member_event("QueueMemberStatus", member),
        )
        await self.sleep(talk)
        talked = self.now() - connected
        stats.completed += 1
        stats.holdtime_total += hold
        stats.talktime_total += talked
        member.calls_taken += 1
        member.last_call = int(self.now())
        member.status = NOT_INUSE
        complete = self._event(
            "AgentComplete",
            "agent,all",
            two.headers(),
            a1.headers("Dest"),
            agent_q,
            [("HoldTime", str(int(hold))), ("TalkTime", str(int(talked))), ("Reason", hangup_by)],
        )
        first, second = ((two, one), (a2, a1)) if hangup_by == "caller" else ((a2, a1), (two, one))
        await self.emit(
            self._event(
                "HangupRequest", "call,all", first[0].headers(), [("Cause", "0" if hangup_by == "caller" else "16")]
            ),
            complete,
            self._hangup(
                first[1], 0 if hangup_by == "caller" else 16, "Unknown" if hangup_by == "caller" else "Normal Clearing"
            ),
            self._event("BridgeLeave", "call,all", bridge_headers, two.headers()),
            self._event("BridgeLeave", "call,all", bridge_headers, a1.headers()),
            self._event("BridgeDestroy", "call,all", bridge_headers),
            self._hangup(second[1]),
            self._hangup(second[0]),
            self._hangup(first[0]),
            self._member_event("QueueMemberStatus", member),
        )
        self._state_changed()
        return "answered"

    # -- random traffic -------------------------------------------------------------------------------------------

    async def generate_traffic(self, calls_per_hour: float, stop: asyncio.Event | None = None) -> None:
        """Poisson arrivals at ``calls_per_hour`` (simulated time) on random lines, until ``stop`` is set."""
        if calls_per_hour <= 0:
            return
        stop = stop or asyncio.Event()
        rng = self.traffic_rng
        numbers = list(self.lines)
        while not stop.is_set():
            gap = rng.expovariate(calls_per_hour / 3600.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), gap / self.speed)
            if stop.is_set():
                return
            params = self._random_call_params()
            self.place_call(
                rng.choice(numbers),
                f"07{rng.randint(10**7, 10**8 - 1)}",
                rng.choice(_CALLER_NAMES),
                answer_after=params["answer_after"],
                talk=params["talk"] or 60.0,
                patience=params["patience"],
                hangup_by=rng.choice(("caller", "agent")),
            )


async def run_simulator(
    host: str,
    port: int,
    *,
    username: str,
    secret: str,
    lines: Mapping[str, int] = DEFAULT_LINES,
    operators: Mapping[str, str] = DEFAULT_OPERATORS,
    calls_per_hour: float = 60.0,
    seed: int | None = None,
    stop: asyncio.Event | None = None,
    speed: float = 1.0,
    max_channels: Mapping[int, int] | None = None,
    overflow: Mapping[int, str] | None = None,
) -> None:
    """Run a simulated hotline PBX on ``host:port`` until ``stop`` is set (forever without one).

    The operators start as members of every line's queue, unpaused; hotline may then add, pause and remove them.
    """
    sim = PbxSimulator(
        username=username,
        secret=secret,
        lines=lines,
        operators=operators,
        speed=speed,
        seed=seed,
        max_channels=max_channels,
        overflow=overflow,
    )
    stop = stop or asyncio.Event()
    await sim.start(host, port)
    traffic = asyncio.create_task(sim.generate_traffic(calls_per_hour, stop))
    try:
        await stop.wait()
    finally:
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic
        await sim.stop()
