"""One supervised AMI connection to one PBX, on top of panoramisk (the only module that imports it).

What panoramisk 1.4 does and hotline cannot accept, and what this module does instead:

- ``AMIProtocol.data_received`` decodes each TCP read on its own with ``errors="ignore"``: a UTF-8 character split
  across two reads vanishes from the caller's name. Reads go through :class:`~hotline.ami.frames.FrameDecoder`
  (incremental UTF-8, bounded frames, malformed frames counted).
- Its pinger sends ``Ping`` and never looks at the answer, so a silent peer (a half-open TCP connection after a
  network cut) is never noticed. Here every ping waits for its ``Pong``; no answer within ``ping_timeout`` closes the
  connection.
- It reconnects after a fixed 2 s, forever in lockstep with every other client. Here: exponential backoff with full
  jitter, capped, reset after a successful login.
- It re-sends, after a reconnect, every action that had not been answered — an ``Originate`` or ``Redirect`` then
  happens twice. Here only actions in :data:`IDEMPOTENT_ACTIONS` may be re-sent; the others fail with
  :class:`ConnectionLost` and the caller decides.
- Its event callbacks run inside ``data_received``. Here events only go on a queue (:class:`EventSink`); one consumer
  task elsewhere does the work. When the consumer falls behind, reading from the socket pauses instead of dropping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from hotline.ami.frames import FrameDecoder, format_action
from hotline.settings import PbxSettings

log = logging.getLogger(__name__)

#: Actions panoramisk mistakes for the start of an event list ("Added interface to queue" looks like Asterisk 1.x's
#: list preamble to its ``multi`` guess): they answer with one frame, so they must not wait for a list end.
SINGLE_RESPONSE_ACTIONS = frozenset({"queueadd"})

IDEMPOTENT_ACTIONS = frozenset(
    {"ping", "queuestatus", "queuesummary", "coreshowchannels", "dbget", "dbput", "queuepause", "status"}
)


class ConnectionLost(ConnectionError):
    """The connection dropped before the PBX answered this action; it was not re-sent."""


class ActionRefused(Exception):
    """The PBX answered ``Response: Error`` (the message says why)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class EventSink(Protocol):
    """Where frames go: the listener's queue. ``put`` must not block or raise; it returns False when full."""

    def put(self, kind: str, frame: dict[str, str], received_at: datetime) -> bool: ...


@dataclass
class ConnectionStatus:
    """Visible at ``/health`` and ``GET /api/pbx``."""

    pbx_id: str
    host: str | None
    port: int
    state: str = "starting"  # starting | connecting | connected | backoff | auth-failed | stopped
    since: datetime | None = None
    last_event_at: datetime | None = None
    last_error: str | None = None
    reconnects: int = 0
    events_received: int = 0
    frames_malformed: int = 0
    frames_oversize: int = 0
    reading_paused: bool = False
    pauses: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pbx_id": self.pbx_id,
            "host": self.host,
            "port": self.port,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "last_error": self.last_error,
            "reconnects": self.reconnects,
            "events_received": self.events_received,
            "frames_malformed": self.frames_malformed,
            "frames_oversize": self.frames_oversize,
            "reading_paused": self.reading_paused,
            "pauses": self.pauses,
            **self.extra,
        }


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)], never below 50 ms."""
    return max(0.05, rng.uniform(0, min(cap, base * (2 ** min(attempt, 30)))))


class _HotlineProtocol(AMIProtocol):
    """panoramisk's protocol with hotline's decoder: action responses go to panoramisk's futures, events (and
    the items of streamed action responses, in wire order) go to the sink."""

    def __init__(self, manager: _Manager) -> None:
        super().__init__()
        self._manager = manager

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # resets ``factory``: set it again before the first read can arrive
        self.factory = self._manager
        self.encoding = "utf-8"
        self.decoder = FrameDecoder()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.streamed: set[str] = set()

    def send(self, data: Any, as_list: bool = False) -> asyncio.Future[Any]:
        if not isinstance(data, Action):
            data = Action(data, as_list=as_list)
        data.as_list = as_list
        payload = format_action({k: v for k, v in data.items()})  # refuses CR/LF injection
        self.responses[data.id] = data
        self.transport.write(payload)  # type: ignore[attr-defined]
        return data.future  # type: ignore[no-any-return]

    def data_received(self, data: bytes) -> None:
        owner: AmiConnection = self.factory.owner  # type: ignore[attr-defined]
        decoder = self.decoder
        frames = decoder.feed(data)
        owner._count_decoder(decoder)
        if not frames:
            return
        received_at = datetime.now(UTC)
        for frame in frames:
            action_id = frame.get("ActionID")
            if action_id is not None and action_id in self.responses:
                if action_id in self.streamed:
                    owner._deliver("response-item", frame, received_at)
                message = Message(frame)
                self.handle_message(message)
            elif "Event" in frame:
                if frame["Event"] == "Shutdown":
                    owner._deliver("event", frame, received_at)
                    self.transport.close()  # type: ignore[attr-defined]
                    continue
                owner._deliver("event", frame, received_at)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending = list(self.responses.values())
        self.responses.clear()
        for action in {id(a): a for a in pending}.values():
            if not action.future.done():
                action.future.set_exception(ConnectionLost(f"connection lost before {action['Action']} was answered"))
        if not self.lost.done():
            self.lost.set_result(None)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager kept only as the protocol's factory; the connection loop is :class:`AmiConnection`."""

    def __init__(self, owner: AmiConnection, **config: Any) -> None:
        super().__init__(**config)
        self.owner = owner

    def connection_lost(self, exc: Any) -> None:  # the protocol reports through its ``lost`` future instead
        pass

    def dispatch(self, event: Any) -> list[str]:  # events never reach panoramisk's callback machinery
        return []


class AmiConnection:
    """Connect, log in, keep alive, reconnect; frames to the sink; actions with answers or clear errors."""

    def __init__(
        self,
        pbx: PbxSettings,
        sink: EventSink,
        *,
        ping_interval: float = 3.0,
        ping_timeout: float = 10.0,
        action_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        on_login: Callable[[AmiConnection], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pbx = pbx
        self.sink = sink
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.on_login = on_login
        self.status = ConnectionStatus(pbx_id=pbx.id, host=pbx.host, port=pbx.port)
        self._rng = rng or random.Random()
        self._manager = _Manager(self, host=pbx.host, port=pbx.port, encoding="utf-8")
        self._protocol: _HotlineProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._logged_in = asyncio.Event()
        self._paused = False
        self._connects = 0
        self._last_pong = time.monotonic()
        self._login_task: asyncio.Task[Any] | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-{self.pbx.id}")

    async def stop(self) -> None:
        self._stopping = True
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(protocol.send({"Action": "Logoff"}), 1.0)
            protocol.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._set_state("stopped")

    async def wait_logged_in(self, timeout: float) -> None:
        await asyncio.wait_for(self._logged_in.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    def drop(self) -> None:
        """Close the TCP connection abruptly (tests, and the silent-peer detector)."""
        if self._protocol is not None and not self._protocol.closed:
            self._protocol.transport.close()

    # --- flow control (called by the sink's owner) ----------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading from the PBX: the consumer is behind. Asterisk buffers; nothing is dropped here."""
        if not self._paused and self._protocol is not None and not self._protocol.closed:
            self._protocol.transport.pause_reading()  # type: ignore[attr-defined]
            self._paused = True
            self.status.reading_paused = True
            self.status.pauses += 1

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self.status.reading_paused = False
            if self._protocol is not None and not self._protocol.closed:
                self._protocol.transport.resume_reading()  # type: ignore[attr-defined]

    # --- actions --------------------------------------------------------------------------------------------------

    async def send(self, action: Mapping[str, str], *, stream: bool = False, timeout: float | None = None) -> Any:
        """Send an action and wait for its answer: a Message, or a list of them for EventList actions.

        ``stream=True`` also delivers each item of the answer to the sink, in wire order with the events, as
        ``response-item`` (this is how resync snapshots stay ordered with live events). Raises
        :class:`ActionRefused` on ``Response: Error``, :class:`ConnectionLost` if the connection drops first (the
        action is re-sent after reconnect only if it is idempotent), ``TimeoutError`` after ``timeout``.
        """
        name = str(action.get("Action", ""))
        format_action(action)  # validate before anything is queued
        await asyncio.wait_for(self._logged_in.wait(), timeout or self.action_timeout)
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise ConnectionLost(f"not connected: {name} not sent")
        as_list: bool | None = True if stream else (False if name.lower() in SINGLE_RESPONSE_ACTIONS else None)
        panoramisk_action = Action(dict(action), as_list=as_list)
        if stream:
            protocol.streamed.add(panoramisk_action.id)
        try:
            future = protocol.send(panoramisk_action, as_list=as_list)
            try:
                result = await asyncio.wait_for(asyncio.shield(future), timeout or self.action_timeout)
            except ConnectionLost:
                if name.lower() in IDEMPOTENT_ACTIONS and not self._stopping:
                    await asyncio.wait_for(self._logged_in.wait(), timeout or self.action_timeout)
                    return await self.send(action, stream=stream, timeout=timeout)
                raise
        finally:
            protocol.streamed.discard(panoramisk_action.id)
        first = result[0] if isinstance(result, list) else result
        if getattr(first, "response", None) == "Error":
            raise ActionRefused(name, str(first.get("Message", "")))
        return result

    # --- internals ------------------------------------------------------------------------------------------------

    def _deliver(self, kind: str, frame: dict[str, str], received_at: datetime) -> None:
        self.status.events_received += 1
        self.status.last_event_at = received_at
        if not self.sink.put(kind, frame, received_at):
            self.pause_reading()

    def _count_decoder(self, decoder: FrameDecoder) -> None:
        self.status.frames_malformed = self._malformed_before + decoder.malformed
        self.status.frames_oversize = self._oversize_before + decoder.oversize

    _malformed_before = 0
    _oversize_before = 0

    def _set_state(self, state: str, error: str | None = None) -> None:
        if state != self.status.state:
            self.status.since = datetime.now(UTC)
        self.status.state = state
        if error is not None:
            self.status.last_error = error

    async def _run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._set_state("connecting")
            try:
                _transport, protocol = await asyncio.wait_for(
                    loop.create_connection(lambda: _HotlineProtocol(self._manager), self.pbx.host, self.pbx.port),
                    self.action_timeout,
                )
            except (OSError, TimeoutError) as exc:
                await self._backoff(attempt, f"connect failed: {exc}")
                attempt += 1
                continue
            assert isinstance(protocol, _HotlineProtocol)
            self._protocol = protocol
            self._paused = False
            self.status.reading_paused = False
            try:
                ok = await self._login(protocol)
            except (ConnectionLost, TimeoutError, OSError) as exc:
                self._close_protocol(protocol)
                await self._backoff(attempt, f"login failed: {exc}")
                attempt += 1
                continue
            if not ok:
                self._close_protocol(protocol)
                self._set_state("auth-failed", "the PBX refused the AMI username or secret")
                log.error("AMI %s: authentication refused for user %r", self.pbx.id, self.pbx.username)
                await self._backoff(max(attempt, 4), None, state="auth-failed")
                attempt += 1
                continue
            attempt = 0
            self._connects += 1
            if self._connects > 1:
                self.status.reconnects += 1
            self._set_state("connected")
            self.status.last_error = None
            self._logged_in.set()
            log.info("AMI %s: logged in to %s:%s", self.pbx.id, self.pbx.host, self.pbx.port)
            self.sink.put("connected", {"Connects": str(self._connects)}, datetime.now(UTC))
            if self.on_login is not None:
                result = self.on_login(self)
                if asyncio.iscoroutine(result):
                    self._login_task = asyncio.create_task(result)
            await self._keepalive(protocol)
            self._logged_in.clear()
            self._malformed_before += protocol.decoder.malformed
            self._oversize_before += protocol.decoder.oversize
            if self._stopping:
                break
            self.sink.put("disconnected", {}, datetime.now(UTC))
            await self._backoff(0, "connection lost")
            attempt = 1

    async def _login(self, protocol: _HotlineProtocol) -> bool:
        secret = self.pbx.secret.get_secret_value()
        future = protocol.send({"Action": "Login", "Username": self.pbx.username, "Secret": secret, "Events": "on"})
        response = await asyncio.wait_for(future, self.action_timeout)
        return getattr(response, "response", None) == "Success"

    async def _keepalive(self, protocol: _HotlineProtocol) -> None:
        """Ping every ``ping_interval``; a peer that answers nothing for ``ping_timeout`` is treated as gone."""
        while not protocol.closed:
            done, _ = await asyncio.wait({protocol.lost}, timeout=self.ping_interval)
            if done or protocol.closed:
                return
            if self._paused:  # we stopped reading on purpose: the Pong may sit unread in the socket buffer
                continue
            try:
                await asyncio.wait_for(protocol.send({"Action": "Ping"}), self.ping_timeout)
            except TimeoutError:
                log.warning("AMI %s: no answer to Ping for %.0f s; reconnecting", self.pbx.id, self.ping_timeout)
                self.status.last_error = "ping timeout"
                self._close_protocol(protocol)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(protocol.lost, 2)
                return
            except ConnectionLost:
                return

    def _close_protocol(self, protocol: _HotlineProtocol) -> None:
        if not protocol.closed:
            protocol.transport.abort()  # type: ignore[attr-defined]
            protocol.connection_lost(None)

    async def _backoff(self, attempt: int, error: str | None, *, state: str = "backoff") -> None:
        delay = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)
        self._set_state(state, error)
        if error:
            log.info("AMI %s: %s; retrying in %.1f s", self.pbx.id, error, delay)
        await asyncio.sleep(delay)
