"""Replay recorded AMI sessions (``../shared/ami-captures/*.jsonl``) to a real client over TCP.

The captures are what a listener saw from a real Asterisk 22. Replaying them through a socket — chunked, paced or
not, cut and resumed — tests the client the way production will treat it, without an Asterisk.

Model: the ``recv`` frames after the Login response form the *replay stream*, indexed from 0. Frames that carry the
ActionID of an action the recorded listener sent (its Response and the events of its EventList) are that action's
*response group*. When the stream reaches a group, the replay waits (``action_wait`` seconds) for the client to send an
action of the same name, and writes the group with the client's ActionID; if the client never asks, the group is
skipped. ``CoreShowChannels`` and ``QueueStatus`` with no recorded answer ahead are answered from the capture itself:
the channels, queue members and waiting callers alive at the current position (:func:`pbx_state_at`), so a session
resumed mid-capture resyncs to the calls of the capture, not to unrelated ones. Other actions are answered from
``actions_reference.jsonl`` (best match on Action name and the other headers), else with Asterisk's unknown-command
error.

A test typically::

    server = ReplayServer("answered_caller_hangs_up", chunking=(1, 40), seed=7)
    port = await server.start()
    ...  # connect the client, log in
    await asyncio.wait_for(server.finished.wait(), 5)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from hotline.ami.server import (
    AmiServer,
    ServerConnection,
    build_frame,
    get_header,
    parse_action,
    unknown_action,
)

__all__ = [
    "Capture",
    "PbxState",
    "RawAmiClient",
    "ReplayFrame",
    "ReplayServer",
    "captures_dir",
    "core_show_channels_answer",
    "load_capture",
    "pbx_state_at",
    "queue_status_answer",
    "reference_answer",
]

_SESSION_ACTIONS = {"login", "logoff"}


def captures_dir() -> Path:
    """``$HOTLINE_CAPTURES_DIR``, else ``<repo>/../shared/ami-captures``."""
    env = os.environ.get("HOTLINE_CAPTURES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "ami-captures"


@dataclass(frozen=True)
class ReplayFrame:
    """One ``recv`` frame of the replay stream; ``group`` is the index of the recorded action it answers, if any."""

    t: float
    data: str
    group: int | None = None


@dataclass
class Capture:
    """A parsed capture: the replay stream, the recorded actions (Login/Logoff excluded) and how the session ended."""

    name: str
    frames: list[ReplayFrame]
    actions: list[dict[str, str]]
    login_accepted: bool
    ends_with_logoff: bool
    #: Index in ``frames`` of each action's first response frame (None when Asterisk never answered it).
    group_start: list[int | None] = field(default_factory=list)
    _parsed: list[dict[str, str]] | None = field(default=None, repr=False, compare=False)

    @property
    def parsed(self) -> list[dict[str, str]]:
        """Each frame's headers (parsed once, on first use)."""
        if self._parsed is None:
            self._parsed = [parse_action(f.data.removesuffix("\r\n\r\n")) for f in self.frames]
        return self._parsed

    @property
    def action_names(self) -> list[str]:
        return [(get_header(a, "Action") or "").lower() for a in self.actions]


def _header(data: str, name: str) -> str | None:
    prefix = name.lower() + ":"
    for line in data.split("\r\n"):
        if line.lower().startswith(prefix):
            return line[len(prefix) :].lstrip(" ")
    return None


@cache
def load_capture(name: str) -> Capture:
    """Load ``<captures_dir>/<name>.jsonl`` (or a path to a ``.jsonl`` file)."""
    path = Path(name)
    if path.suffix != ".jsonl":
        path = captures_dir() / f"{name}.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    session_ids: set[str] = set()
    actions: list[dict[str, str]] = []
    action_by_id: dict[str, int] = {}
    ends_with_logoff = False
    for rec in records:
        if rec["dir"] != "send":
            continue
        action = parse_action(rec["data"].removesuffix("\r\n\r\n"))
        name_l = (get_header(action, "Action") or "").lower()
        action_id = get_header(action, "ActionID")
        if name_l in _SESSION_ACTIONS:
            ends_with_logoff = ends_with_logoff or name_l == "logoff"
            if action_id:
                session_ids.add(action_id)
            continue
        if action_id:
            action_by_id[action_id] = len(actions)
        actions.append(action)

    frames: list[ReplayFrame] = []
    login_accepted = True
    group_start: list[int | None] = [None] * len(actions)
    banner_seen = False
    for rec in records:
        if rec["dir"] != "recv":
            continue
        data: str = rec["data"]
        if not banner_seen and not data.endswith("\r\n\r\n"):
            banner_seen = True
            continue
        action_id = _header(data, "ActionID")
        if action_id in session_ids:
            if _header(data, "Response") == "Error":
                login_accepted = False
            continue
        group = action_by_id.get(action_id) if action_id is not None else None
        if group is not None and group_start[group] is None:
            group_start[group] = len(frames)
        frames.append(ReplayFrame(t=float(rec["t"]), data=data, group=group))
    return Capture(path.stem, frames, actions, login_accepted, ends_with_logoff, group_start)


def rewrite_action_id(data: str, action_id: str | None) -> str:
    """Put the client's ActionID in a recorded frame (or drop the header when the client sent none)."""
    lines = data.split("\r\n")
    out: list[str] = []
    for line in lines:
        if line.lower().startswith("actionid:"):
            if action_id is None:
                continue
            line = f"ActionID: {action_id}"
        out.append(line)
    return "\r\n".join(out)


@cache
def _reference() -> list[tuple[dict[str, str], list[str]]]:
    capture = load_capture("actions_reference")
    groups: list[list[str]] = [[] for _ in capture.actions]
    for frame in capture.frames:
        if frame.group is not None:
            groups[frame.group].append(frame.data)
    return [(a, g) for a, g in zip(capture.actions, groups, strict=True) if g]


def reference_answer(action: dict[str, str]) -> list[str] | None:
    """Asterisk's recorded answer to the most similar action in ``actions_reference``, with the client's ActionID.

    Similarity: same Action name, then the most other headers with equal values (so ``DBGet`` of a missing key
    gets the recorded "Database entry not found"). None when the Action name was never recorded.
    """
    name = (get_header(action, "Action") or "").lower()
    best: tuple[int, list[str]] | None = None
    for recorded, frames in _reference():
        if (get_header(recorded, "Action") or "").lower() != name:
            continue
        score = 0
        for key, value in recorded.items():
            if key.lower() in ("action", "actionid"):
                continue
            client_value = get_header(action, key)
            if client_value == value:
                score += 2
            elif client_value is None:
                score -= 1
        if best is None or score > best[0]:
            best = (score, frames)
    if best is None:
        return None
    action_id = get_header(action, "ActionID")
    return [rewrite_action_id(f, action_id) for f in best[1]]


# -- the PBX state at a point of a capture, for the resync answers the capture has not recorded ------------------------

_SNAPSHOT = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
#: Which snapshot fields each channel event updates. Only these: events of different classes may reach the
#: listener slightly out of order, with an older snapshot (a ``Newexten`` still showing ``<unknown>`` caller ID).
_CHANNEL_UPDATES = {
    "newcallerid": ("CallerIDNum", "CallerIDName"),
    "newstate": ("ChannelState", "ChannelStateDesc"),
    "newconnectedline": ("ConnectedLineNum", "ConnectedLineName"),
    "newexten": ("Context", "Exten", "Priority"),
}
_MEMBER_EVENTS = {"queuememberadded", "queuememberstatus", "queuememberpause", "queuememberpenalty",
                  "queuememberringinuse"}  # fmt: skip
#: ``QueueMember`` list item field <- ``QueueMember*`` event field, in Asterisk 22's order.
_MEMBER_FIELDS = (
    ("Queue", "Queue"),
    ("Name", "MemberName"),
    ("Location", "Interface"),
    ("StateInterface", "StateInterface"),
    ("Membership", "Membership"),
    ("Penalty", "Penalty"),
    ("CallsTaken", "CallsTaken"),
    ("LastCall", "LastCall"),
    ("LastPause", "LastPause"),
    ("LoginTime", "LoginTime"),
    ("InCall", "InCall"),
    ("Status", "Status"),
    ("Paused", "Paused"),
    ("PausedReason", "PausedReason"),
    ("Wrapuptime", "Wrapuptime"),
)
_QUEUE_PARAMS = ("Max", "Strategy", "Calls", "Holdtime", "TalkTime", "Completed", "Abandoned", "ServiceLevel",
                 "ServicelevelPerf", "ServicelevelPerf2", "Weight")  # fmt: skip


def _timestamp(frame: dict[str, str]) -> float | None:
    value = frame.get("Timestamp")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _duration_seconds(value: str | None) -> int:
    try:
        h, m, sec = (int(x) for x in (value or "").split(":"))
    except ValueError:
        return 0
    return h * 3600 + m * 60 + sec


@dataclass
class PbxState:
    """What Asterisk had at one point of a capture, rebuilt from the frames before it.

    ``channels``: Uniqueid -> the fields of a ``CoreShowChannel`` item (without ActionID and Duration), in creation
    order; ``created``: Uniqueid -> the epoch it appeared. ``members``: (queue, interface) -> the latest
    ``QueueMember*`` event. ``queues``: every queue seen, with its latest recorded ``QueueParams`` if any.
    ``waiting``: queue -> Uniqueid -> (join epoch, ``QueueCallerJoin`` event). ``last_timestamp``: the latest
    ``Timestamp`` seen (None when no frame had one).
    """

    channels: dict[str, dict[str, str]] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    members: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    queues: dict[str, dict[str, str]] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    abandoned: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, dict[str, tuple[float, dict[str, str]]]] = field(default_factory=dict)
    last_timestamp: float | None = None

    def apply(self, frame: dict[str, str]) -> None:
        """Fold one frame (an event, or an item of a recorded resync answer) into the state."""
        event = (frame.get("Event") or "").lower()
        ts = _timestamp(frame)
        if ts is not None and (self.last_timestamp is None or ts > self.last_timestamp):
            self.last_timestamp = ts
        uniqueid = frame.get("Uniqueid")
        if event == "newchannel" and uniqueid:
            channel = {name: frame.get(name, "") for name in _SNAPSHOT}
            channel.update(Application="", ApplicationData="", BridgeId="")
            self.channels[uniqueid] = channel
            self.created[uniqueid] = ts if ts is not None else (self.last_timestamp or 0.0)
        elif event == "coreshowchannel" and uniqueid:
            # A recorded resync answer (reconnect_mid_call.part2): it knows channels born while nobody listened.
            channel = {name: frame.get(name, "") for name in (*_SNAPSHOT, "Application", "ApplicationData", "BridgeId")}
            self.channels[uniqueid] = channel
            self.created[uniqueid] = (self.last_timestamp or 0.0) - _duration_seconds(frame.get("Duration"))
        elif event == "hangup" and uniqueid:
            self.channels.pop(uniqueid, None)
            self.created.pop(uniqueid, None)
            for entries in self.waiting.values():
                entries.pop(uniqueid, None)
        elif uniqueid and uniqueid in self.channels:
            channel = self.channels[uniqueid]
            for name in _CHANNEL_UPDATES.get(event, ()):
                if name in frame:
                    channel[name] = frame[name]
            if event == "newexten":
                channel["Application"] = frame.get("Application", "")
                channel["ApplicationData"] = frame.get("AppData", "")
            elif event == "bridgeenter":
                channel["BridgeId"] = frame.get("BridgeUniqueid", "")
            elif event == "bridgeleave":
                channel["BridgeId"] = ""
        self._apply_queue(event, frame, ts)

    def _apply_queue(self, event: str, frame: dict[str, str], ts: float | None) -> None:
        queue = frame.get("Queue")
        if not queue:
            return
        self.queues.setdefault(queue, {})
        if event in _MEMBER_EVENTS:
            self.members[(queue, frame.get("Interface", ""))] = frame
        elif event == "queuememberremoved":
            self.members.pop((queue, frame.get("Interface", "")), None)
        elif event == "queuemember":  # a recorded QueueStatus answer
            item = {src: frame.get(dst, "") for dst, src in _MEMBER_FIELDS}
            self.members[(queue, frame.get("Location", ""))] = item
        elif event == "queueparams":
            self.queues[queue] = frame
        elif event == "queuecallerjoin" and frame.get("Uniqueid"):
            joined = ts if ts is not None else (self.last_timestamp or 0.0)
            self.waiting.setdefault(queue, {})[frame["Uniqueid"]] = (joined, frame)
        elif event == "queuecallerleave" and frame.get("Uniqueid"):
            self.waiting.get(queue, {}).pop(frame["Uniqueid"], None)
        elif event == "agentcomplete":
            self.completed[queue] = self.completed.get(queue, 0) + 1
        elif event == "queuecallerabandon":
            self.abandoned[queue] = self.abandoned.get(queue, 0) + 1


def pbx_state_at(capture: Capture, position: int) -> PbxState:
    """The state after the first ``position`` frames of the replay stream (written or skipped alike)."""
    state = PbxState()
    for frame in capture.parsed[: max(0, position)]:
        state.apply(frame)
    return state


def _list_frames(action_id: str | None, message: str, items: list[list[tuple[str, str]]], complete: str) -> list[str]:
    """A Success response opening an EventList, the items, then the ``…Complete`` event, ActionID where Asterisk
    puts it (or nowhere when the client sent none)."""
    aid = [("ActionID", action_id)] if action_id is not None else []
    frames = [build_frame([("Response", "Success"), *aid, ("EventList", "start"), ("Message", message)])]
    frames.extend(build_frame(item) for item in items)
    frames.append(build_frame([("Event", complete), *aid, ("EventList", "Complete"), ("ListItems", str(len(items)))]))
    return frames


def core_show_channels_answer(state: PbxState, action_id: str | None) -> list[str]:
    """Asterisk 22's answer to ``CoreShowChannels`` for ``state`` (the shape recorded in reconnect_mid_call.part2)."""
    aid = [("ActionID", action_id)] if action_id is not None else []
    now = state.last_timestamp or 0.0
    items: list[list[tuple[str, str]]] = []
    for uniqueid, channel in state.channels.items():
        seconds = max(0, int(now - state.created.get(uniqueid, now)))
        duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        items.append(
            [
                ("Event", "CoreShowChannel"),
                *aid,
                *((name, channel.get(name, "")) for name in _SNAPSHOT),
                ("Application", channel.get("Application", "")),
                ("ApplicationData", channel.get("ApplicationData", "")),
                ("Duration", duration),
                ("BridgeId", channel.get("BridgeId", "")),
            ]
        )
    return _list_frames(action_id, "Channels will follow", items, "CoreShowChannelsComplete")


def queue_status_answer(state: PbxState, action_id: str | None, queue: str | None = None) -> list[str]:
    """Asterisk 22's answer to ``QueueStatus`` for ``state``: per queue its ``QueueParams``, its ``QueueMember``s and
    its waiting callers (``QueueEntry``). Statistics the capture cannot know (since Asterisk started) are those of a
    recorded ``QueueParams`` if any, else counted from the capture (Completed, Abandoned) or zero."""
    aid = [("ActionID", action_id)] if action_id is not None else []
    now = state.last_timestamp or 0.0
    items: list[list[tuple[str, str]]] = []
    for name, recorded in state.queues.items():
        if queue and name != queue:
            continue
        waiting = state.waiting.get(name, {})
        params = {
            "Max": "0",
            "Strategy": "rrmemory",  # every queue of the captured PBX
            "Holdtime": "0",
            "TalkTime": "0",
            "Completed": str(state.completed.get(name, 0)),
            "Abandoned": str(state.abandoned.get(name, 0)),
            "ServiceLevel": "0",
            "ServicelevelPerf": "0.0",
            "ServicelevelPerf2": "0.0",
            "Weight": "0",
        }
        params.update({k: v for k, v in recorded.items() if k in _QUEUE_PARAMS})
        params["Calls"] = str(len(waiting))
        items.append([("Event", "QueueParams"), ("Queue", name), *((k, params[k]) for k in _QUEUE_PARAMS), *aid])
        for (member_queue, _), member in state.members.items():
            if member_queue == name:
                items.append(
                    [("Event", "QueueMember"), *((dst, member.get(src, "")) for dst, src in _MEMBER_FIELDS), *aid]
                )
        for position, (uniqueid, (joined, entry)) in enumerate(waiting.items(), start=1):
            channel = state.channels.get(uniqueid, entry)
            items.append(
                [
                    ("Event", "QueueEntry"),
                    ("Queue", name),
                    ("Position", str(position)),
                    ("Channel", channel.get("Channel", "")),
                    ("Uniqueid", uniqueid),
                    ("CallerIDNum", channel.get("CallerIDNum", "")),
                    ("CallerIDName", channel.get("CallerIDName", "")),
                    ("ConnectedLineNum", channel.get("ConnectedLineNum", "")),
                    ("ConnectedLineName", channel.get("ConnectedLineName", "")),
                    ("Wait", str(max(0, int(now - joined)))),
                    ("Priority", "0"),
                    *aid,
                ]
            )
    return _list_frames(action_id, "Queue status will follow", items, "QueueStatusComplete")


class ReplayServer(AmiServer):
    """Plays one capture, or a sequence of captures (one per session, e.g. ``reconnect_mid_call.part1``/``part2``).

    - ``scale``: pace frames by the recorded ``t`` differences × scale (0 = as fast as possible).
    - ``drop_at_frame``: cut the connection abruptly right after writing that frame index; the next session then
      resumes at the following frame (``resume_from`` is set for it; tests may set it themselves).
    - ``close_at_end``: drop the connection after the last frame. None = only when the capture ends without Logoff
      (a recorded connection loss, like part1), which also moves the next session on to the next capture.
    - ``action_wait``: seconds to wait for the client to send the action a recorded response group answers.
    - ``CoreShowChannels`` / ``QueueStatus`` with no recorded group ahead get an answer built from the capture's
      frames before the current position (:func:`pbx_state_at`), written between two replayed frames, never
      interleaved with them; after the last capture, from the end of the last one.
    - ``events_written`` counts stream frames written (all sessions); ``finished`` is set when the last frame of the
      last capture was written; ``written`` lists ``(capture, frame index)`` in write order.
    """

    def __init__(
        self,
        captures: str | Sequence[str],
        *,
        scale: float = 0.0,
        drop_at_frame: int | None = None,
        resume_from: int = 0,
        close_at_end: bool | None = None,
        action_wait: float = 5.0,
        username: str = "hotline",
        secret: str = "hotline-secret",
        chunking: tuple[int, int] | None = None,
        seed: int | None = None,
        login_failure_delay: float = 0.0,
    ) -> None:
        super().__init__(
            username=username,
            secret=secret,
            chunking=chunking,
            seed=seed,
            login_failure_delay=login_failure_delay,
        )
        names = [captures] if isinstance(captures, str) else list(captures)
        if not names:
            raise ValueError("no capture to replay")
        self.captures = [load_capture(n) for n in names]
        self.scale = scale
        self.drop_at_frame = drop_at_frame
        self.resume_from = resume_from
        self.close_at_end = close_at_end
        self.action_wait = action_wait
        self.capture_index = 0
        self.events_written = 0
        self.groups_skipped = 0
        self.written: list[tuple[str, int]] = []
        self.finished = asyncio.Event()
        self.sessions_started = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def capture(self) -> Capture:
        """The capture the next (or current) session plays."""
        return self.captures[min(self.capture_index, len(self.captures) - 1)]

    def check_login(self, username: str | None, secret: str | None) -> bool:
        """A capture of a refused Login refuses every Login, whatever the credentials."""
        return self.capture.login_accepted and super().check_login(username, secret)

    async def on_login(self, conn: ServerConnection) -> None:
        """Start this session's replay from ``resume_from`` in the current capture."""
        if self.capture_index >= len(self.captures):
            return
        self.sessions_started += 1
        capture = self.captures[self.capture_index]
        conn.state["capture"] = capture
        conn.state["claims"] = {}  # group -> client's ActionID (or None for no ActionID)
        conn.state["skipped"] = set()
        conn.state["position"] = self.resume_from
        #: Frames of the stream done with (written or skipped), and the lock that keeps answers built from them
        #: between two replayed frames.
        conn.state["done"] = self.resume_from
        conn.state["stream_lock"] = asyncio.Lock()
        conn.state["claimed_event"] = asyncio.Event()
        task = asyncio.create_task(self._replay(conn, capture, self.resume_from), name=f"replay-{conn.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        conn.state["task"] = task

    async def on_disconnect(self, conn: ServerConnection) -> None:
        task = conn.state.get("task")
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await super().stop()

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        """Claim a recorded response group still ahead in the stream, else answer from the reference."""
        capture: Capture | None = conn.state.get("capture")
        if capture is not None:
            name = (get_header(action, "Action") or "").lower()
            position: int = conn.state["position"]
            claims: dict[int, str | None] = conn.state["claims"]
            for k, recorded in enumerate(capture.action_names):
                start = capture.group_start[k]
                if (
                    recorded == name
                    and start is not None
                    and start >= position
                    and k not in claims
                    and k not in conn.state["skipped"]
                ):
                    claims[k] = get_header(action, "ActionID")
                    conn.state["claimed_event"].set()
                    return []
        synthesize = _SYNTHESIZED.get((get_header(action, "Action") or "").lower())
        if synthesize is not None:
            if capture is None:  # a login after the last capture ended: Asterisk as it was then
                last = self.captures[-1]
                return synthesize(pbx_state_at(last, len(last.frames)), action)
            async with conn.state["stream_lock"]:
                await conn.send(*synthesize(pbx_state_at(capture, conn.state["done"]), action))
            return []
        answer = reference_answer(action)
        return answer if answer is not None else [unknown_action(action)]

    async def _wait_claim(self, conn: ServerConnection, group: int) -> bool:
        claims: dict[int, str | None] = conn.state["claims"]
        event: asyncio.Event = conn.state["claimed_event"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.action_wait
        while group not in claims:
            remaining = deadline - loop.time()
            if remaining <= 0:
                conn.state["skipped"].add(group)
                self.groups_skipped += 1
                return False
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return True

    async def _replay(self, conn: ServerConnection, capture: Capture, start: int) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._replay_frames(conn, capture, start)

    async def _replay_frames(self, conn: ServerConnection, capture: Capture, start: int) -> None:
        previous_t: float | None = None
        for index in range(start, len(capture.frames)):
            frame = capture.frames[index]
            conn.state["position"] = index
            if self.scale > 0 and previous_t is not None:
                await asyncio.sleep(max(0.0, (frame.t - previous_t) * self.scale))
            previous_t = frame.t
            data = frame.data
            if frame.group is not None:
                if frame.group in conn.state["skipped"] or not await self._wait_claim(conn, frame.group):
                    conn.state["done"] = index + 1
                    continue
                data = rewrite_action_id(data, conn.state["claims"][frame.group])
            async with conn.state["stream_lock"]:
                await conn.send(data)
                conn.state["done"] = index + 1
            self.events_written += 1
            self.written.append((capture.name, index))
            conn.state["position"] = index + 1
            if self.drop_at_frame is not None and index == self.drop_at_frame:
                self.drop_at_frame = None
                self.resume_from = index + 1
                if index + 1 >= len(capture.frames):
                    self._capture_done(capture)
                conn.abort()
                return
        self._capture_done(capture)
        close = self.close_at_end if self.close_at_end is not None else not capture.ends_with_logoff
        if close:
            conn.abort()

    def _capture_done(self, capture: Capture) -> None:
        """Move the next session on to the next capture; set ``finished`` after the last one."""
        self.capture_index += 1
        self.resume_from = 0
        if self.capture_index >= len(self.captures):
            self.finished.set()


def _answer_core_show_channels(state: PbxState, action: dict[str, str]) -> list[str]:
    return core_show_channels_answer(state, get_header(action, "ActionID"))


def _answer_queue_status(state: PbxState, action: dict[str, str]) -> list[str]:
    return queue_status_answer(state, get_header(action, "ActionID"), get_header(action, "Queue"))


_SYNTHESIZED: dict[str, Callable[[PbxState, dict[str, str]], list[str]]] = {
    "coreshowchannels": _answer_core_show_channels,
    "queuestatus": _answer_queue_status,
}


class RawAmiClient:
    """A bare asyncio AMI client for tests of the servers themselves (no panoramisk in between).

    Splits the byte stream on the blank line *before* decoding, so characters cut across reads survive (invalid
    bytes become U+FFFD); ``frames``
    keeps every frame text received, in order, terminator included.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: str) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = banner
        self.frames: list[str] = []
        self.reads = 0
        self._buffer = b""
        self._ids = 0

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", within: float = 5.0) -> RawAmiClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
        banner = await asyncio.wait_for(reader.readuntil(b"\r\n"), within)
        return cls(reader, writer, banner.decode("utf-8"))

    async def send(self, action: str, **headers: str) -> str:
        """Send an action; returns its ActionID (``test-N`` unless given as ``ActionID=``)."""
        self._ids += 1
        action_id = headers.pop("ActionID", f"test-{self._ids}")
        lines = [f"Action: {action}", *(f"{k}: {v}" for k, v in headers.items()), f"ActionID: {action_id}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        await self.writer.drain()
        return action_id

    async def login(
        self, username: str = "hotline", secret: str = "hotline-secret", within: float = 5.0
    ) -> dict[str, str]:
        action_id = await self.send("Login", Username=username, Secret=secret)
        return await self.wait_for(lambda f: f.get("ActionID") == action_id and "Response" in f, within)

    async def read_frame(self, within: float = 5.0) -> str | None:
        """The next frame's text, or None at EOF."""
        while b"\r\n\r\n" not in self._buffer:
            data = await asyncio.wait_for(self.reader.read(65536), within)
            if not data:
                return None
            self.reads += 1
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        text = raw.decode("utf-8", errors="replace") + "\r\n\r\n"
        self.frames.append(text)
        return text

    async def wait_for(self, predicate: Callable[[dict[str, str]], bool], within: float = 5.0) -> dict[str, str]:
        """Read until a frame (as a dict) satisfies ``predicate``; raises TimeoutError/EOFError otherwise."""
        async with asyncio.timeout(within):
            while True:
                text = await self.read_frame(within)
                if text is None:
                    raise EOFError("connection closed")
                frame = parse_action(text.removesuffix("\r\n\r\n"))
                if predicate(frame):
                    return frame

    async def read_until_eof(self, within: float = 10.0) -> list[str]:
        """Every frame until the server closes the connection."""
        out: list[str] = []
        async with asyncio.timeout(within):
            while True:
                try:
                    text = await self.read_frame(within)
                except (ConnectionError, OSError):
                    return out
                if text is None:
                    return out
                out.append(text)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
