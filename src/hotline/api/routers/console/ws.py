"""``/api/ws``: the live push to consoles.

Authentication, never in the URL (URLs end up in access logs): an ``Authorization: Bearer <token>`` header, or the
subprotocols ``["bearer", "<token>"]`` (browsers cannot set headers; the server answers with ``bearer``), or a first
message ``{"token": "<token>"}`` within :data:`AUTH_TIMEOUT_S`. Then the server sends ``{"type": "ready", "last_id":
N}`` and events ``{"id", "type", "at", "data"}``. Reconnect with ``?since=<last id seen>`` to get what was missed
(or one ``resync.required`` event when the buffer no longer holds it: reload the state over REST). A console that
falls :data:`~hotline.services.push.QUEUE_SIZE` events behind is unsubscribed at once (its queue freed) and closed
with 1013 and a reason as soon as its one pending send completes (a peer that never reads again is cut by uvicorn's
ping timeout). The token is checked when the socket opens and again every :data:`RECHECK_S` seconds while it stays
open (through the same per-process memory as REST requests, see ``api/security.py``): a console whose token expires,
is signed out or revoked, or whose user is deactivated, is closed with 4401 and a reason; a change of role or lines
applies to the events sent from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from hotline.api.security import Principal, principal_for_token
from hotline.errors import NotAuthenticated
from hotline.services.console import console_service
from hotline.services.push import CLOSE_TOO_SLOW, Subscription, Viewer

router = APIRouter(tags=["console"])
log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
RECHECK_S = 2.0
"""How often an open socket's token is checked again: a sign-out through this process closes it within this time,
through another process within this plus ``HOTLINE_AUTH_CACHE_S``."""
CLOSE_NOT_AUTHENTICATED = 4401


def _offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept) from the header or the subprotocol list."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(protocols) >= 2 and protocols[0] == "bearer":
        return protocols[1], "bearer"
    return None, None


async def _viewer(websocket: WebSocket, token: str) -> Viewer | None:
    try:
        principal = await principal_for_token(websocket.app.state.runtime, token)
    except NotAuthenticated:
        return None
    return _as_viewer(principal)


def _as_viewer(principal: Principal) -> Viewer:
    return Viewer(username=principal.username, is_staff=principal.is_staff, line_ids=principal.line_ids or frozenset())


async def _watch_token(websocket: WebSocket, token: str, sub: Subscription) -> None:
    """Returns when the token no longer holds; meanwhile keeps the subscription's viewer current."""
    while True:
        await asyncio.sleep(RECHECK_S)
        try:
            viewer = await _viewer(websocket, token)
        except Exception as exc:  # the database is away: keep the console (it was signed in), ask again later
            log.warning("push: could not re-check a console's token (%s); keeping it open", type(exc).__name__)
            continue
        if viewer is None:
            return
        if viewer != sub.viewer:
            sub.viewer = viewer


async def _send_events(websocket: WebSocket, sub: Subscription) -> None:
    while True:
        event = await sub.next()
        if event is None:
            return
        await websocket.send_text(event.wire())


async def _read_until_closed(websocket: WebSocket) -> None:
    """Consoles send nothing after signing in; reading only notices the disconnect."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.websocket("/api/ws")
async def push_socket(websocket: WebSocket, since: Annotated[int | None, Query(ge=0)] = None) -> None:
    service = console_service(websocket.app.state.runtime)
    token, subprotocol = _offered_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    if token is None:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
            token = json.loads(first).get("token")
        except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect, KeyError, RuntimeError):
            token = None
    viewer = await _viewer(websocket, token) if isinstance(token, str) and token else None
    if viewer is None:
        with contextlib.suppress(Exception):
            await websocket.close(CLOSE_NOT_AUTHENTICATED, "sign in first: a valid bearer token is needed")
        return
    sub = service.hub.subscribe(viewer, since)
    try:
        await websocket.send_text(json.dumps({"type": "ready", "last_id": service.hub.last_id,
                                              "user": viewer.username}))  # fmt: skip
        sender = asyncio.create_task(_send_events(websocket, sub))
        reader = asyncio.create_task(_read_until_closed(websocket))
        watcher = asyncio.create_task(_watch_token(websocket, token, sub))
        done, pending = await asyncio.wait({sender, reader, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in done:
            with contextlib.suppress(Exception):
                task.result()
        if watcher in done and not watcher.cancelled() and watcher.exception() is None:
            with contextlib.suppress(Exception):
                await websocket.close(CLOSE_NOT_AUTHENTICATED, "the token expired or was revoked; sign in again")
        elif sub.dropped_reason is not None:
            with contextlib.suppress(Exception):
                await websocket.close(CLOSE_TOO_SLOW, sub.dropped_reason[:120])
    except WebSocketDisconnect:
        pass
    finally:
        service.hub.unsubscribe(sub)
