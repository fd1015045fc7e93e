"""The console's background side: wrap-up after answered calls, callbacks (Originate and linking), transfers, and
the push hub wiring.

Wrap-up: when an answered call ends, its operator gets a ``registration.required`` event and, if they were available
(or on a call), a ``PresenceLog`` row ``wrapup`` (routing, poked after the commit, turns it into a ``QueuePause``
with reason ``wrapup``); a pause or log-out chosen during the call is left alone. Saving the registration, or
``wrapup_limit_s`` passing, writes ``available`` again. That database work runs in this service's own task, never in
the listener's commit hook, so a slow database here cannot slow call ingestion.

Callbacks: ``Originate`` from the operator's device to the caller is sent once; the AMI client refuses to re-send it
after a reconnect, and nothing here retries. The call it produces is linked (``callback_of_id``) when a call whose
caller number or dialled number is the called-back number ends within :data:`CALLBACK_LINK_WINDOW_S` after the dial
(the ``Originate`` also carries ``HOTLINE_CALLBACK_OF=<call id>`` for a dialplan or CDR that wants the exact link;
the tracker does not read that variable today).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.ami.connection import ActionRefused, ConnectionLost
from hotline.db.after_commit import after_commit
from hotline.db.models import Call
from hotline.db.repositories import console as console_repo
from hotline.domain.calls import CallRecord
from hotline.errors import Conflict, InvalidInput, Unavailable
from hotline.services.push import CallFeed, PushHub

if TYPE_CHECKING:
    from hotline.bootstrap import Runtime
    from hotline.services.call_listener import CallListener

log = logging.getLogger(__name__)

WRAPUP_LIMIT_S = 60.0
"""Seconds an operator may stay in wrap-up before being made available again. Should be ``Settings.wrapup_limit_s``
(not there yet); :attr:`ConsoleService.wrapup_limit_s` can be changed at run time."""
OUTBOUND_CONTEXT = "outside"
"""Dialplan context for transfers and callbacks, as the static dialplan's default ``HOTLINE_OUTBOUND_CONTEXT``."""
CALLBACK_LINK_WINDOW_S = 600.0
AMI_TIMEOUT_S = 10.0
ORIGINATE_TIMEOUT_S = 40.0
"""The Originate's answer waits for the operator's phone (``Timeout`` 30 s) plus margin."""
WORK_QUEUE_SIZE = 10_000
WRAPUP_FROM = ("available", "on_call", "wrapup")
"""Presence states after which an answered call puts the operator in wrap-up (not paused, not offline)."""

TARGET = re.compile(r"^\+?[0-9]{2,20}$")

PresenceHook = Callable[[int, str, str, "str | None"], "Awaitable[None] | None"]


def validate_target(target: str, field: str = "target") -> str:
    """A number or extension for the dialplan: digits, optionally one leading ``+``; nothing else reaches AMI."""
    target = target.strip()
    if not TARGET.match(target):
        raise InvalidInput(f"{field} must be 2-20 digits, optionally starting with '+'", details={"field": field})
    return target


def dialplan_channel(channel: str) -> str:
    """The channel to redirect: for a Local pair the ``;2`` half runs the dialplan and sits in the bridge."""
    return channel[:-2] + ";2" if channel.startswith("Local/") and channel.endswith(";1") else channel


@dataclass
class PendingCallback:
    call_id: int
    number: str
    dialed_at: datetime


class ConsoleService:
    def __init__(self, runtime: Runtime, hub: PushHub) -> None:
        self.runtime = runtime
        self.hub = hub
        self.wrapup_limit_s = getattr(runtime.settings, "wrapup_limit_s", WRAPUP_LIMIT_S)
        self.presence_hooks: list[PresenceHook] = []
        self._feeds: dict[int, CallFeed] = {}
        self._work: asyncio.Queue[tuple[CallRecord, int | None]] = asyncio.Queue(WORK_QUEUE_SIZE)
        self._worker: asyncio.Task[None] | None = None
        self._resume: asyncio.Task[None] | None = None
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._callbacks: list[PendingCallback] = []

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="console-wrapup")
            self._resume = asyncio.create_task(self._resume_wrapups(), name="console-resume-wrapups")

    async def _resume_wrapups(self) -> None:
        """Wrap-up timers live in memory: after a restart, operators left in ``wrapup`` get a timer for what
        remains of their limit (none left: made available at once), so nobody stays paused for ever."""
        try:
            async with self.runtime.sessions() as session:
                open_ = await console_repo.open_wrapups(session)
        except Exception:
            log.exception("could not read the wrap-ups to resume")
            return
        now = datetime.now(UTC)
        for user_id, username, since in open_:
            if user_id in self._timers:
                continue
            remaining = max(0.0, self.wrapup_limit_s - (now - since).total_seconds())
            self._timers[user_id] = asyncio.create_task(self._wrapup_timer(user_id, username, since, remaining))

    async def stop(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
        for task in [*self._timers.values(), *([self._worker] if self._worker else [])]:
            task.cancel()
        for task in [*self._timers.values(), *([self._worker] if self._worker else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        self._worker = None
        self.hub.close()

    def attach_listeners(self) -> None:
        """Hook every listener of the runtime not hooked yet (idempotent; listeners may start later)."""
        for listener in self.runtime.listeners.values():
            if id(listener) not in self._feeds:
                self.attach(listener)

    def attach(self, listener: CallListener) -> CallFeed:
        feed = CallFeed(self.hub, listener, on_ended=[self._on_call_ended])
        feed.attach()
        self._feeds[id(listener)] = feed
        return feed

    # --- presence -------------------------------------------------------------------------------------------------

    def publish_presence(self, user_id: int, username: str, state: str, reason: str | None, at: datetime) -> None:
        """Publish ``presence.changed``; call it after the commit that wrote the PresenceLog row."""
        data = {"user_id": user_id, "username": username, "state": state, "reason": reason, "at": at}
        self.hub.publish("presence.changed", data, user=username)

    async def _presence_written(
        self, user_id: int, username: str, state: str, reason: str | None, at: datetime
    ) -> None:
        """After the commit of a presence row: push it, and ask routing for a pass (it pauses wrap-up)."""
        self.publish_presence(user_id, username, state, reason, at)
        try:
            from hotline.services.routing_sync import poke_all
        except ImportError:  # a build without routing
            pass
        else:
            poke_all(self.runtime, f"presence {username}")
        for hook in self.presence_hooks:
            try:
                result = hook(user_id, username, state, reason)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a presence hook failed")

    # --- wrap-up --------------------------------------------------------------------------------------------------

    def _on_call_ended(self, record: CallRecord, call_id: int | None) -> None:
        """Listener commit hook side: enqueue only (no I/O here)."""
        try:
            self._work.put_nowait((record, call_id))
        except asyncio.QueueFull:
            log.warning("console: wrap-up queue full; call %s skipped", record.linkedid)

    async def _run(self) -> None:
        """Ended calls in batches: one session and one commit per batch, so this writer takes the (SQLite) write
        lock as rarely as possible while the listener commits."""
        while True:
            batch = [await self._work.get()]
            while not self._work.empty() and len(batch) < 500:
                batch.append(self._work.get_nowait())
            try:
                await self._after_calls(batch)
            except Exception:
                log.exception("console: post-call work failed for %d call(s)", len(batch))

    async def _after_calls(self, batch: list[tuple[CallRecord, int | None]]) -> None:
        """Answered calls put their operator in wrap-up (unless already registered); every ended call may be the
        callback some abandoned call waited for. Calls with neither are skipped without touching the database."""
        batch = [(r, i) for r, i in batch if (r.answered_at is not None and r.operator) or self._callbacks]
        if not batch:
            return
        now = datetime.now(UTC)
        started: list[tuple[CallRecord, int | None, int, str, bool]] = []
        async with self.runtime.sessions() as session:
            resolved: list[tuple[CallRecord, int | None]] = []
            for record, call_id in batch:
                if call_id is None:
                    row = await console_repo.call_by_key(session, record.pbx_id, record.linkedid)
                    call_id = row.id if row else None
                resolved.append((record, call_id))
                if call_id is not None and self._callbacks:
                    await self._link_callback(session, record, call_id)
            answered = [(r, i) for r, i in resolved if r.answered_at is not None and r.operator]
            registered = await console_repo.registered_call_ids(session, [i for _, i in answered if i is not None])
            users = await console_repo.users_by_username(session, [r.operator or "" for r, _ in answered])
            for record, call_id in answered:
                user = users.get(record.operator or "")
                if user is None or (call_id is not None and call_id in registered):
                    continue
                latest = await console_repo.latest_presence(session, user.id)
                # Wrap-up follows a call taken while working; a pause or log-out chosen meanwhile is kept.
                wrapup = latest is not None and latest.state in WRAPUP_FROM
                if wrapup:
                    await console_repo.add_presence(session, user.id, "wrapup", now)
                started.append((record, call_id, user.id, user.username, wrapup))
            await session.commit()
        for record, call_id, user_id, username, wrapup in started:
            if wrapup:
                await self._presence_written(user_id, username, "wrapup", None, now)
            self.hub.publish(
                "registration.required",
                {"call_id": call_id, "linkedid": record.linkedid, "line_id": record.line_id,
                 "caller_number": record.caller_number, "wrapup_limit_s": self.wrapup_limit_s if wrapup else None},
                user=username,
            )  # fmt: skip
            if wrapup:
                old = self._timers.pop(user_id, None)
                if old is not None:
                    old.cancel()
                self._timers[user_id] = asyncio.create_task(self._wrapup_timer(user_id, username, now))

    async def _wrapup_timer(self, user_id: int, username: str, since: datetime, delay: float | None = None) -> None:
        await asyncio.sleep(self.wrapup_limit_s if delay is None else delay)
        self._timers.pop(user_id, None)
        async with self.runtime.sessions() as session:
            latest = await console_repo.latest_presence(session, user_id)
            if latest is None or latest.state != "wrapup" or latest.at > since:
                return
            now = datetime.now(UTC)
            await console_repo.add_presence(session, user_id, "available", now)
            await session.commit()
        await self._presence_written(user_id, username, "available", None, now)

    async def end_wrapup(self, session: AsyncSession, user_id: int, username: str) -> bool:
        """The operator saved a registration: back to available (after the commit) if they were in wrap-up."""
        latest = await console_repo.latest_presence(session, user_id)
        if latest is None or latest.state != "wrapup":
            return False
        now = datetime.now(UTC)
        await console_repo.add_presence(session, user_id, "available", now)
        timer = self._timers.pop(user_id, None)

        async def published() -> None:
            if timer is not None:
                timer.cancel()
            await self._presence_written(user_id, username, "available", None, now)

        after_commit(session, published)
        return True

    # --- transfer and callback ------------------------------------------------------------------------------------

    def _listener(self, pbx_id: str) -> CallListener:
        listener = self.runtime.listeners.get(pbx_id)
        if listener is None:
            raise Unavailable(f"No connection to PBX {pbx_id}.", details={"pbx_id": pbx_id})
        return listener

    async def _send(self, pbx_id: str, action: dict[str, str], timeout: float = AMI_TIMEOUT_S) -> Any:
        """Send once; report, never retry (a lost answer may mean the PBX did it)."""
        listener = self._listener(pbx_id)
        name = action["Action"]
        if not listener.connection.connected:
            raise Unavailable(f"PBX {pbx_id} is not connected; {name} was not sent.", details={"pbx_id": pbx_id})
        try:
            return await listener.connection.send(action, timeout=timeout)
        except ActionRefused as exc:
            raise Conflict(f"The PBX refused {name}: {exc.message}", error_id="pbx-refused",
                           details={"action": name, "pbx_message": exc.message}) from None  # fmt: skip
        except (ConnectionLost, TimeoutError) as exc:
            raise Unavailable(
                f"{name} may not have reached the PBX ({type(exc).__name__}); it is not re-sent. Check the call "
                "before trying again.",
                details={"action": name},
            ) from None

    async def transfer(self, session: AsyncSession, call: Call, target: str) -> dict[str, Any]:
        target = validate_target(target)
        if call.outcome != "in_progress" or call.answered_at is None:
            raise Conflict("Only a call being talked can be transferred.", details={"call_id": call.id})
        channel = await console_repo.caller_channel(session, call.id)
        if channel is None:
            raise Conflict("The caller's channel is not known for this call.", details={"call_id": call.id})
        channel = dialplan_channel(channel)
        await self._send(call.pbx_id, {"Action": "Redirect", "Channel": channel, "Context": OUTBOUND_CONTEXT,
                                       "Exten": target, "Priority": "1"})  # fmt: skip
        return {"result": "redirected", "call_id": call.id, "target": target}

    async def dial_callback(self, call: Call, device: str, caller_id: str) -> dict[str, Any]:
        number = validate_target(call.caller_number or "", "caller_number")
        answer = await self._send(call.pbx_id, {
            "Action": "Originate", "Channel": device, "Context": OUTBOUND_CONTEXT, "Exten": number, "Priority": "1",
            "CallerID": caller_id, "Timeout": "30000", "Async": "true", "Variable": f"HOTLINE_CALLBACK_OF={call.id}",
        }, timeout=ORIGINATE_TIMEOUT_S)  # fmt: skip
        now = datetime.now(UTC)
        self._callbacks = [c for c in self._callbacks if now - c.dialed_at < timedelta(seconds=CALLBACK_LINK_WINDOW_S)]
        # panoramisk waits for the OriginateResponse of an async Originate: it says whether the operator's phone
        # answered (Success, the caller is being dialled) or not (Failure); it comes within the 30 s Timeout.
        last = answer[-1] if isinstance(answer, list) else answer
        if str(last.get("Response", "")).lower() == "failure":
            return {"result": "failed", "call_id": call.id, "number": number, "device": device}
        self._callbacks.append(PendingCallback(call.id, number, now))
        return {"result": "dialing", "call_id": call.id, "number": number, "device": device}

    async def _link_callback(self, session: AsyncSession, record: CallRecord, call_id: int) -> None:
        arrived = record.arrived_at or datetime.now(UTC)
        for pending in list(self._callbacks):
            age = (arrived - pending.dialed_at).total_seconds()
            if pending.number in (record.caller_number, record.number) and -5 <= age <= CALLBACK_LINK_WINDOW_S:
                if await console_repo.link_callback(session, call_id, pending.call_id):
                    self._callbacks.remove(pending)
                return


def console_service(runtime: Runtime) -> ConsoleService:
    """The runtime's console service, built on first use and hooked to every listener started so far.

    Until bootstrap wires :func:`start`, the first console request or WebSocket builds it; calls before that are not
    pushed (their records are still stored)."""
    service: ConsoleService | None = getattr(runtime, "console_service", None)
    if service is None:
        service = ConsoleService(runtime, PushHub())
        runtime.console_service = service  # type: ignore[attr-defined]
        runtime.on_stop(service.stop)
        service.start()
    service.attach_listeners()
    return service


async def start(runtime: Runtime) -> ConsoleService:
    """For bootstrap: call after the PBX listeners started, so pushes flow from the first call. With
    ``push_redis_url`` set, events go through Redis so consoles on every process receive them."""
    url = runtime.settings.push_redis_url
    if getattr(runtime, "console_service", None) is None and url:
        from hotline.services.push_redis import RedisBackend

        backend = RedisBackend(url)
        await backend.start()
        runtime.on_stop(backend.stop)
        service = ConsoleService(runtime, PushHub(backend))
        runtime.console_service = service
        runtime.on_stop(service.stop)
        service.start()
    return console_service(runtime)
