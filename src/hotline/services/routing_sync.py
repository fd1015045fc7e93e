"""Keeps one PBX's queues and open flags where hours, shifts, breaks and presence say they should be.

One :class:`RoutingSync` per PBX, for that PBX's lines only. Each pass: load the inputs from SQL, compute
``desired_state`` (pure domain), read what Asterisk has (``QueueStatus``, ``DBGet hotline/open/<line id>``),
``diff``, and send only the difference. Nothing is remembered between passes but the log of what was sent: every
pass starts from what the PBX says, so a pass after a reconnect or a crash converges like any other, and nothing
flaps (the same inputs give no actions).

When a pass runs:

* at every boundary: the service sleeps exactly until ``next_boundary`` (hours change, shift start/end, planned
  break start/end), capped at ``max_sleep_s`` as a safety net for edits made without a poke;
* after every (re)connect of the AMI connection (a watcher polls the connection's reconnect counter);
* when poked (:meth:`RoutingSync.poke`): after an admin edit, a presence change, or a call with an operator
  ending (a held member may now be removed);
* after a failure (an action refused, the PBX unreachable, the database down), with exponential backoff.

Asterisk quirks handled here:

* ``DBGet`` of a missing key answers ``Response: Error`` / ``Database entry not found``: that is "no flag yet",
  not a failure.
* ``QueueAdd``'s answer ("Added interface to queue") looks to panoramisk like the start of an event list;
  :class:`~hotline.ami.connection.AmiConnection` sends it as a single-response action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.connection import ActionRefused, AmiConnection, ConnectionLost
from hotline.db.repositories import routing as routing_repo
from hotline.domain.routing import (
    Action,
    DesiredState,
    Member,
    PbxState,
    QueueAdd,
    QueuePause,
    QueuePenalty,
    QueueRemove,
    SetOpen,
    desired_state,
    diff,
    next_boundary,
)

if TYPE_CHECKING:
    from hotline.bootstrap import Runtime
    from hotline.domain.calls import CallRecord
    from hotline.services.call_listener import CallListener

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
OPEN_FAMILY = "hotline/open"


class AmiPort(Protocol):
    """What the service needs from the PBX: send one action, get its answer (a message or a list of them).

    Raises ``ActionRefused`` on ``Response: Error``, ``ConnectionLost`` / ``TimeoutError`` when unanswered.
    """

    async def send(self, action: Mapping[str, str]) -> Any: ...


class ConnectionPort:
    """:class:`AmiPort` over an :class:`AmiConnection`."""

    def __init__(self, connection: AmiConnection, timeout: float = 10.0) -> None:
        self.connection = connection
        self.timeout = timeout

    async def send(self, action: Mapping[str, str]) -> Any:
        return await self.connection.send(action, timeout=self.timeout)


# --- action ↔ AMI -------------------------------------------------------------------------------------------


def ami_action(action: Action) -> dict[str, str]:
    """The AMI headers of a domain action (the Asterisk contract in DESIGN.md)."""
    if isinstance(action, QueueAdd):
        headers = {
            "Action": "QueueAdd",
            "Queue": action.queue,
            "Interface": action.interface,
            "MemberName": action.member_name,
            "Penalty": str(action.penalty),
            "Paused": "true" if action.paused else "false",
            "StateInterface": action.interface,
        }
        if action.paused and action.reason:
            headers["Reason"] = action.reason
        return headers
    if isinstance(action, QueueRemove):
        return {"Action": "QueueRemove", "Queue": action.queue, "Interface": action.interface}
    if isinstance(action, QueuePause):
        headers = {
            "Action": "QueuePause",
            "Queue": action.queue,
            "Interface": action.interface,
            "Paused": "true" if action.paused else "false",
        }
        if action.paused and action.reason:
            headers["Reason"] = action.reason
        return headers
    if isinstance(action, QueuePenalty):
        return {
            "Action": "QueuePenalty",
            "Queue": action.queue,
            "Interface": action.interface,
            "Penalty": str(action.penalty),
        }
    if isinstance(action, SetOpen):
        return {"Action": "DBPut", "Family": OPEN_FAMILY, "Key": str(action.line_id), "Val": action.value}
    raise TypeError(f"not a routing action: {action!r}")


def _messages(result: Any) -> list[Mapping[str, str]]:
    return list(result) if isinstance(result, list) else [result]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class QueueMemberStatus:
    """A member as the last ``QueueStatus`` reported it (for the status API)."""

    queue: str
    interface: str
    name: str
    penalty: int
    paused: bool
    reason: str | None
    in_call: bool
    status: int | None

    @property
    def member(self) -> Member:
        return Member(self.interface, self.name, self.penalty, self.paused, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "interface": self.interface,
            "name": self.name,
            "penalty": self.penalty,
            "paused": self.paused,
            "reason": self.reason if self.paused else None,
            "in_call": self.in_call,
            "status": self.status,
        }


def parse_queue_status(result: Any) -> dict[str, list[QueueMemberStatus]]:
    """``QueueStatus`` answer → members by queue (every queue listed, members or not)."""
    queues: dict[str, list[QueueMemberStatus]] = {}
    for message in _messages(result):
        event = message.get("Event")
        queue = message.get("Queue", "")
        if event == "QueueParams":
            queues.setdefault(queue, [])
        elif event == "QueueMember":
            try:
                penalty = int(message.get("Penalty") or 0)
            except ValueError:
                penalty = 0
            status = message.get("Status")
            queues.setdefault(queue, []).append(
                QueueMemberStatus(
                    queue=queue,
                    interface=message.get("Location") or message.get("Interface") or "",
                    name=message.get("Name") or message.get("MemberName") or "",
                    penalty=penalty,
                    paused=_truthy(message.get("Paused")),
                    reason=message.get("PausedReason") or None,
                    in_call=_truthy(message.get("InCall")),
                    status=int(status) if status and status.isdigit() else None,
                )
            )
    return queues


# --- the service --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentAction:
    """One action sent to the PBX and what came of it; ``result``: ok | refused | lost."""

    at: datetime
    action: dict[str, str]
    result: str
    message: str | None = None
    attempt: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": dict(self.action),
            "result": self.result,
            "message": self.message,
            "attempt": self.attempt,
        }


@dataclass
class SyncResult:
    """One pass: when, why, what was sent, and whether it fully converged."""

    at: datetime
    trigger: str
    sent: list[SentAction] = field(default_factory=list)
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    next_boundary: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.result == "ok" for s in self.sent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "trigger": self.trigger,
            "ok": self.ok,
            "actions": len(self.sent),
            "failed": sum(1 for s in self.sent if s.result != "ok"),
            "error": self.error,
            "problems": list(self.problems),
            "next_boundary": self.next_boundary.isoformat() if self.next_boundary else None,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RoutingSync:
    """Recompute, diff, apply — for one PBX and only its lines (``Line.pbx_id``): the queues and open flags of
    another PBX's lines do not exist here, and asking for them would only earn refusals retried for ever. See the
    module docstring for when it runs. ``first_pbx`` (default: a sync on its own is a one-PBX hotline's): this is
    the first configured PBX, which also owns the lines stored without a PBX."""

    def __init__(
        self,
        pbx_id: str,
        sessions: async_sessionmaker[AsyncSession],
        ami: AmiPort,
        *,
        first_pbx: bool = True,
        on_call: Callable[[], Collection[str]] = frozenset,
        reconnects: Callable[[], int] | None = None,
        clock: Clock = _utcnow,
        sleep: Sleep = asyncio.sleep,
        history: int = 200,
        retry_base_s: float = 1.0,
        retry_cap_s: float = 300.0,
        max_sleep_s: float = 3600.0,
        reconnect_poll_s: float = 0.5,
    ) -> None:
        self.pbx_id = pbx_id
        #: This PBX is the first configured: the lines stored without a PBX are its own too (``Line.pbx_id``).
        self.first_pbx = first_pbx
        self.sessions = sessions
        self.ami = ami
        self.on_call = on_call
        self.reconnects = reconnects
        self.clock = clock
        self.sleep = sleep
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.max_sleep_s = max_sleep_s
        self.reconnect_poll_s = reconnect_poll_s
        self.actions: deque[SentAction] = deque(maxlen=history)
        self.last: SyncResult | None = None
        self.last_desired: DesiredState | None = None
        self.queue_status: dict[str, list[QueueMemberStatus]] = {}
        self.queue_status_at: datetime | None = None
        self.passes = 0
        self.failures = 0  # consecutive passes that did not fully converge
        self.next_wake_at: datetime | None = None
        self._attempts: dict[tuple[str, ...], int] = {}
        self._poked = asyncio.Event()
        self._triggers: list[str] = []
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._passed = asyncio.Condition()
        #: False once this process no longer drives the PBX (its listener was released): the sync then stops.
        self.alive: Callable[[], bool] = lambda: True
        self.listener: CallListener | None = None

    # --- triggers -----------------------------------------------------------------------------------------

    def poke(self, reason: str = "poke") -> None:
        """Ask for a pass as soon as possible (pokes during a pass cause one more pass after it)."""
        self._triggers.append(reason)
        self._poked.set()

    def on_calls_committed(self, records: list[CallRecord]) -> None:
        """The listener's commit hook: a call with an operator ended, so a held member may go now."""
        if any(r.operator and not r.live for r in records):
            self.poke("call ended")

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self._run(), name=f"routing-{self.pbx_id}"))
            if self.reconnects is not None:
                self._tasks.append(asyncio.create_task(self._watch_reconnects(), name=f"routing-watch-{self.pbx_id}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def wait_passes(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` passes have completed in total (tests, and callers who must see it)."""
        async with asyncio.timeout(timeout), self._passed:
            await self._passed.wait_for(lambda: self.passes >= count)

    # --- one pass -----------------------------------------------------------------------------------------

    async def sync_once(self, trigger: str = "manual") -> SyncResult:
        """Load, compute, read the PBX, send the difference. Never raises: failures are in the result."""
        async with self._lock:
            at = self.clock()
            result = SyncResult(at=at, trigger=trigger)
            try:
                await self._pass(at, result)
            except Exception as exc:  # the PBX or the database: reported, retried with backoff
                result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("routing %s: pass failed (%s)", self.pbx_id, result.error)
            self.failures = 0 if result.ok else self.failures + 1
            self.last = result
        async with self._passed:
            self.passes += 1
            self._passed.notify_all()
        return result

    async def _pass(self, at: datetime, result: SyncResult) -> None:
        lookahead = at + timedelta(seconds=self.max_sleep_s) + timedelta(minutes=1)
        async with self.sessions() as session:
            inputs = await routing_repo.routing_inputs(
                session, at, lookahead, pbx_id=self.pbx_id, first_pbx=self.first_pbx
            )
        result.problems = inputs.problems
        for problem in inputs.problems:
            log.warning("routing %s: %s", self.pbx_id, problem)
        result.next_boundary = next_boundary(inputs.lines, inputs.shifts, at)
        desired = desired_state(
            inputs.lines, inputs.operators, inputs.shifts, inputs.presence, at, on_call=set(self.on_call())
        )
        self.last_desired = desired
        actual = await self._read_actual(desired)
        for action in diff(desired, actual):
            result.sent.append(await self._send(action))
        failed = {tuple(s.action.values()) for s in result.sent if s.result != "ok"}
        self._attempts = {key: n for key, n in self._attempts.items() if key in failed}  # forget what is not wanted
        if result.sent:  # the status API shows members as the PBX has them now, not as before this pass
            with contextlib.suppress(ActionRefused, ConnectionLost, TimeoutError, OSError):
                await self._read_queue_status()

    async def _read_actual(self, desired: DesiredState) -> PbxState:
        status = await self._read_queue_status()
        flags: dict[int, bool] = {}
        for plan in desired.lines:
            try:
                answer = await self.ami.send({"Action": "DBGet", "Family": OPEN_FAMILY, "Key": str(plan.line_id)})
            except ActionRefused as exc:
                if "not found" in exc.message.lower():
                    continue  # no flag yet: the dialplan routes as open; the diff sets it
                raise
            value = next((m.get("Val") for m in _messages(answer) if m.get("Event") == "DBGetResponse"), None)
            if value in ("0", "1"):
                flags[plan.line_id] = value == "1"
        queues = {queue: tuple(m.member for m in members) for queue, members in status.items()}
        return PbxState(open=flags, queues=queues)

    async def _read_queue_status(self) -> dict[str, list[QueueMemberStatus]]:
        status = parse_queue_status(await self.ami.send({"Action": "QueueStatus"}))
        self.queue_status = status
        self.queue_status_at = self.clock()
        return status

    async def _send(self, action: Action) -> SentAction:
        headers = ami_action(action)
        key = tuple(headers.values())
        attempt = self._attempts.get(key, 0) + 1
        try:
            await self.ami.send(headers)
        except ActionRefused as exc:
            sent = SentAction(self.clock(), headers, "refused", exc.message, attempt)
        except (ConnectionLost, TimeoutError, OSError) as exc:
            sent = SentAction(self.clock(), headers, "lost", str(exc) or type(exc).__name__, attempt)
        else:
            sent = SentAction(self.clock(), headers, "ok", None, attempt)
        if sent.result == "ok":
            self._attempts.pop(key, None)
            log.info("routing %s: %s", self.pbx_id, _describe(headers))
        else:
            self._attempts[key] = attempt
            log.warning(
                "routing %s: %s %s (%s), attempt %d",
                self.pbx_id,
                _describe(headers),
                sent.result,
                sent.message,
                attempt,
            )
        self.actions.append(sent)
        return sent

    # --- the loop -----------------------------------------------------------------------------------------

    def retry_delay(self) -> float | None:
        """Seconds until the retry after ``failures`` consecutive failed passes: base · 2^(n-1), capped."""
        if self.failures == 0:
            return None
        return min(self.retry_cap_s, self.retry_base_s * 2 ** min(self.failures - 1, 30))

    def _wake_in(self, result: SyncResult) -> float:
        waits = [self.max_sleep_s]
        if result.next_boundary is not None:
            waits.append(max(0.0, (result.next_boundary - result.at).total_seconds()))
        retry = self.retry_delay()
        if retry is not None:
            waits.append(retry)
        return min(waits)

    async def _run(self) -> None:
        trigger = "start"
        while self.alive():
            self._poked.clear()
            self._triggers.clear()
            result = await self.sync_once(trigger)
            seconds = self._wake_in(result)
            self.next_wake_at = result.at + timedelta(seconds=seconds)
            woke_by_sleep = await self._wait(seconds)
            if woke_by_sleep:
                trigger = "retry" if self.failures and seconds == self.retry_delay() else "boundary"
            else:
                trigger = ", ".join(dict.fromkeys(self._triggers)) or "poke"

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (the injected sleep) unless poked first; True when the sleep ran out."""
        if self._poked.is_set():
            return False
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        poked = asyncio.ensure_future(self._poked.wait())
        try:
            done, _ = await asyncio.wait({sleeper, poked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, poked):
                task.cancel()
            for task in (sleeper, poked):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return sleeper in done and not self._poked.is_set()

    async def _watch_reconnects(self) -> None:
        """Poke after every reconnect: Asterisk may have restarted and lost its dynamic members and AstDB."""
        assert self.reconnects is not None
        seen = self.reconnects()
        while True:
            await asyncio.sleep(self.reconnect_poll_s)  # real time: it watches a real connection
            if not self.alive():
                log.info("routing %s: this process no longer listens to the PBX; routing stops here", self.pbx_id)
                for task in self._tasks:
                    if task is not asyncio.current_task():
                        task.cancel()
                return
            now = self.reconnects()
            if now != seen:
                seen = now
                self.poke("reconnect")

    # --- status -------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "pbx_id": self.pbx_id,
            "running": any(not t.done() for t in self._tasks),
            "passes": self.passes,
            "consecutive_failures": self.failures,
            "retry_in_s": self.retry_delay(),
            "next_wake_at": self.next_wake_at.isoformat() if self.next_wake_at else None,
            "last_pass": self.last.as_dict() if self.last else None,
            "recent_actions": [a.as_dict() for a in reversed(self.actions)],
        }


def _describe(headers: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in headers.items())


def sync_for_listener(
    listener: CallListener, sessions: async_sessionmaker[AsyncSession], **options: Any
) -> RoutingSync:
    """A RoutingSync wired to a listener: its connection, its live calls, its reconnects and call commits."""
    connection = listener.connection

    def on_call() -> set[str]:
        return {r.operator for r in listener.tracker.live_calls() if r.operator and r.answered_at is not None}

    sync = RoutingSync(
        listener.pbx.id,
        sessions,
        ConnectionPort(connection, timeout=connection.action_timeout),
        first_pbx=listener.first_pbx,
        on_call=on_call,
        reconnects=lambda: connection.status.reconnects,
        **options,
    )
    listener.commit_hooks.append(sync.on_calls_committed)
    return sync


async def start(runtime: Runtime, *, include_simulated: bool = True) -> None:
    """Routing for every PBX this process listens to, now and later; call after the PBX services start.

    Keeps ``runtime.routing`` (pbx id → RoutingSync). A sync follows its listener: one is made whenever a listener
    starts (``runtime.listener_hooks``: at start-up, or when this process takes the PBX's lease over) and it stops by
    itself when that listener is no longer the runtime's (the lease went elsewhere), so only the process that listens
    to a PBX drives its queues. Admin edits (``runtime.config_changed_hooks``) and the console's presence changes
    poke every sync.

    ``include_simulated=False`` leaves the built-in simulator's pre-seeded demo members alone: with no operators and
    shifts in the database, routing would (rightly) empty its queues and the demo's calls would go unanswered.
    """
    syncs: dict[str, RoutingSync] = getattr(runtime, "routing", None) or {}
    runtime.routing = syncs  # type: ignore[attr-defined]  # see the report: a field on Runtime is requested

    async def follow(listener: CallListener) -> None:
        pbx_id = listener.pbx.id
        if not include_simulated and listener.connection.status.extra.get("simulated"):
            return
        old = syncs.get(pbx_id)
        if old is not None:
            if old.listener is listener:
                return
            await old.stop()
        sync = sync_for_listener(listener, runtime.sessions)
        sync.listener = listener
        sync.alive = lambda: runtime.listeners.get(pbx_id) is listener
        syncs[pbx_id] = sync
        sync.start()

    async def config_changed(entity: str) -> None:
        poke_all(runtime, f"{entity} changed")

    for listener in list(runtime.listeners.values()):
        await follow(listener)
    runtime.listener_hooks.append(follow)
    runtime.config_changed_hooks.append(config_changed)
    console = getattr(runtime, "console_service", None)
    if console is not None:
        console.presence_hooks.append(lambda _uid, username, _state, _reason: poke_all(runtime, f"presence {username}"))
    runtime.on_stop(lambda: stop_all(runtime))


async def stop_all(runtime: Runtime) -> None:
    """Stop every PBX's routing (registered with ``runtime.on_stop`` by :func:`start`)."""
    for sync in list((getattr(runtime, "routing", None) or {}).values()):
        await sync.stop()


def poke_all(runtime: Runtime, reason: str) -> None:
    """Ask every PBX's routing for a pass (after an admin edit or a presence change)."""
    for sync in (getattr(runtime, "routing", None) or {}).values():
        sync.poke(reason)
