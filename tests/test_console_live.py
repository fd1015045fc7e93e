"""The console end to end: uvicorn on a free port, the PBX simulator feeding a real CallListener, WebSocket clients
(the ``websockets`` library) and HTTP: screen pop, caller history, registration, wrap-up, transfer, replay."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import websockets
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.api.routers.console import ws as ws_module
from hotline.db.models import ApiToken, Call, PresenceLog, User
from hotline.settings import Settings
from hotline.users import create_user
from test_console_support import (
    PASSWORD,
    LiveHotline,
    WsReader,
    add_call,
    add_registration,
    login,
    seed_people,
    set_presence,
    start_live,
    wait_until,
    ws_connect,
)

ANA_PHONE = "Local/101@phones/n"


@pytest.fixture
async def live(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LiveHotline]:
    users = await seed_people(sessions)
    await set_presence(sessions, users["ana"], "available")  # signed in and taking calls
    # The operators are queue members from the start (routing, not tested here, adds them in production).
    hotline, stop = await start_live(settings, operators={"ana": ANA_PHONE})
    await hotline.listener.reload_lines()
    try:
        yield hotline
    finally:
        await stop()


async def user_id(sessions: async_sessionmaker[AsyncSession], username: str) -> int:
    async with sessions() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


async def presence_states(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(select(PresenceLog).where(PresenceLog.user_id == user_id).order_by(PresenceLog.id))
        return [r.state for r in rows]


async def test_operator_gets_screen_pop_history_registers_and_leaves_wrapup(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ana_id = await user_id(sessions, "ana")
    earlier = await add_call(sessions, caller_number="0712345678", operator="ana", answered_at=None)
    await add_registration(sessions, earlier, topic_id=2, summary="asked about grants", resolution="callback")
    async with live.http() as http:
        ana_token, ana = await login(http, "ana")
        mihai_token, _ = await login(http, "mihai")
        boss_token, _ = await login(http, "boss")
        ana_ws = WsReader(await ws_connect(live.ws_url, ana_token))
        mihai_ws = WsReader(await ws_connect(live.ws_url, mihai_token))
        boss_ws = WsReader(await websockets.connect(live.ws_url, subprotocols=["bearer", boss_token]))  # type: ignore[list-item]
        assert boss_ws.ws.subprotocol == "bearer"
        call = live.simulator.place_call("5551000", "0712345678", "Ion Popescu", answer_after=1.0, talk=12.0)

        offered = await ana_ws.wait_for("call.offered", linkedid=call.linkedid)
        assert offered["data"]["caller_number"] == "0712345678" and offered["data"]["line_id"] == 1
        call_id = offered["data"]["call_id"]
        assert isinstance(call_id, int)
        history = (
            await http.get(
                "/api/console/history", headers=ana, params={"caller_number": "0712345678", "call_id": call_id}
            )
        ).json()
        assert [(h["call"]["id"], h["topic"]) for h in history] == [(earlier, "Scholarships")]

        await ana_ws.wait_for("call.answered", linkedid=call.linkedid)
        current = (await http.get("/api/console/current-call", headers=ana)).json()
        assert current["state"] == "talking" and current["call"]["id"] == call_id
        assert [h["call"]["id"] for h in current["history"]] == [earlier]

        bad_target = await http.post(f"/api/calls/{call_id}/transfer", headers=ana, json={"target": "201@evil"})
        assert bad_target.status_code == 422
        moved = await http.post(f"/api/calls/{call_id}/transfer", headers=ana, json={"contact_id": 1})
        assert moved.status_code == 200, moved.text
        assert moved.json() == {"result": "redirected", "call_id": call_id, "target": "201", "number": None,
                                "device": None}  # fmt: skip
        redirect = [a for a in live.simulator.actions_received if a.get("Action") == "Redirect"]
        assert len(redirect) == 1 and redirect[0]["Exten"] == "201" and redirect[0]["Context"] == "outside"
        assert redirect[0]["Channel"].startswith("Local/5551000@hotline-inbound-") and redirect[0]["Channel"].endswith(
            ";2"
        )

        required = await ana_ws.wait_for("registration.required", within=30, call_id=call_id)
        assert required["data"]["linkedid"] == call.linkedid
        await ana_ws.wait_for("presence.changed", state="wrapup")
        wrapping = (await http.get("/api/console/current-call", headers=ana)).json()
        assert wrapping["state"] == "wrapup" and wrapping["call"]["id"] == call_id

        body = {"topic_id": 1, "summary": "deadline question", "resolution": "resolved"}
        saved = await http.post(f"/api/calls/{call_id}/registration", headers=ana, json=body)
        assert saved.status_code == 200, saved.text
        await ana_ws.wait_for("presence.changed", state="available")
        assert (await http.get("/api/console/current-call", headers=ana)).json()["state"] == "none"

        # Authorization: mihai (line 2) saw nothing of this line-1 call; the supervisor saw it all.
        assert [e for e in mihai_ws.events() if e["type"] != "resync.required"] == []
        boss_types = {e["type"] for e in boss_ws.events()}
        assert {"call.offered", "call.answered", "call.ended", "queue.changed", "presence.changed",
                "registration.required"} <= boss_types  # fmt: skip
        ids = [e["id"] for e in boss_ws.events()]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for reader in (ana_ws, mihai_ws, boss_ws):
            await reader.stop()
    assert await presence_states(sessions, ana_id) == ["available", "wrapup", "available"]
    client_side = ("websockets.client", "httpx", "httpcore")  # the test's own clients log what they send
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(client_side))
    for secret in (ana_token, boss_token, mihai_token, PASSWORD, "ami-secret-do-not-leak"):
        assert secret not in logged


async def test_wrapup_ends_by_itself_after_the_limit(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live.console.wrapup_limit_s = 0.3
    async with live.http() as http:
        token, _ = await login(http, "ana")
    reader = WsReader(await ws_connect(live.ws_url, token))
    live.simulator.place_call("5551000", "0711000000", "Caller", answer_after=0.5, talk=2.0)
    required = await reader.wait_for("registration.required", within=30)
    assert required["data"]["wrapup_limit_s"] == 0.3
    await reader.wait_for("presence.changed", state="available")
    states = [e["data"]["state"] for e in reader.events("presence.changed")]
    assert states == ["wrapup", "available"]
    await reader.stop()


async def test_a_paused_operator_is_asked_to_register_but_stays_paused(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana_id = await user_id(sessions, "ana")
    await set_presence(sessions, ana_id, "paused")  # e.g. went on a break while talking
    async with live.http() as http:
        token, _ = await login(http, "ana")
    reader = WsReader(await ws_connect(live.ws_url, token))
    live.simulator.place_call("5551000", "0711000003", "Caller", answer_after=0.5, talk=1.0)
    required = await reader.wait_for("registration.required", within=30)
    assert required["data"]["wrapup_limit_s"] is None
    assert reader.events("presence.changed") == []
    assert await presence_states(sessions, ana_id) == ["available", "paused"]
    await reader.stop()


async def test_reconnect_with_since_gets_exactly_the_missed_events(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with live.http() as http:
        boss_token, _ = await login(http, "boss")
        ana_token, _ = await login(http, "ana")
    witness = WsReader(await ws_connect(live.ws_url, boss_token))  # stays connected throughout
    first = live.simulator.place_call("5551000", "0711000001", "First", answer_after=0.5, talk=1.0)
    boss = WsReader(await ws_connect(live.ws_url, boss_token))
    await boss.wait_for("call.ended", within=30, linkedid=first.linkedid)
    await boss.stop()
    seen = boss.events()[-1]["id"]
    second = live.simulator.place_call("5551000", "0711000002", "Second", answer_after=0.5, talk=1.0)
    await witness.wait_for("call.ended", within=30, linkedid=second.linkedid)
    await asyncio.sleep(0.3)  # let the wrap-up events of the second call be published too
    again = WsReader(await ws_connect(f"{live.ws_url}?since={seen}", boss_token))
    missed = [e for e in witness.events() if e["id"] > seen]
    await wait_until(lambda: len(again.events()) >= len(missed), 10, "replay")
    assert again.events()[: len(missed)] == missed and missed
    assert {e["type"] for e in missed} >= {"call.offered", "call.ended"}
    # An operator replaying gets only what they may see: ana's events are a subset addressed to her or line 1.
    ana = WsReader(await ws_connect(f"{live.ws_url}?since={seen}", ana_token))
    await wait_until(lambda: ana.events(), 10, "ana replay")
    assert all(e["data"].get("line_id") in (1, None) for e in ana.events())
    # since beyond the last id (the server restarted): resync.required, then live events.
    future = WsReader(await ws_connect(f"{live.ws_url}?since={10**9}", boss_token))
    resync = await future.wait_for("resync.required")
    assert resync["data"]["latest_id"] == live.console.hub.last_id or resync["data"]["latest_id"] <= 10**9
    for reader in (witness, again, ana, future):
        await reader.stop()


async def test_websocket_refuses_missing_or_query_string_tokens(live: LiveHotline) -> None:
    async with live.http() as http:
        token, _ = await login(http, "ana")
    for url in (live.ws_url, f"{live.ws_url}?token={token}"):
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"hello": "no token"}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4401
    by_message = await websockets.connect(live.ws_url)
    await by_message.send(json.dumps({"token": token}))
    ready = json.loads(await asyncio.wait_for(by_message.recv(), 10))
    assert ready["type"] == "ready" and ready["user"] == "ana"
    await by_message.close()


async def test_a_console_that_stops_reading_is_dropped_while_the_listener_keeps_ingesting(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    hub = live.console.hub
    hub.queue_size = 20
    async with live.http() as http:
        token, _ = await login(http, "boss")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", live.port))
    sock.setblocking(False)
    stuck = await ws_connect(live.ws_url, token, sock=sock, max_queue=1, compression=None)  # no deflate: real bytes
    reader = WsReader(await ws_connect(live.ws_url, token))  # a healthy console keeps up
    await asyncio.sleep(0.2)
    stuck.transport.pause_reading()  # stop reading at the TCP level: the server's sends back up
    calls = [live.simulator.place_call("5551000", f"07110001{i:02d}", "Load", answer_after=0.2, talk=0.5)
             for i in range(5)]  # fmt: skip
    padding = {"note": "x" * 8000}
    for _ in range(3000):  # fill the socket buffers with big events until the stuck console is dropped
        hub.publish("queue.changed", {"line_id": 3, "waiting": [], **padding}, line_id=3)
        await asyncio.sleep(0)
        if hub.stats.dropped_connections:
            break
    assert hub.stats.dropped_connections == 1
    await asyncio.gather(*(c.outcome for c in calls))
    await live.listener.drain(10)
    async with sessions() as session:
        stored = list(await session.scalars(select(Call).where(Call.caller_number.like("07110001%"))))
    assert len(stored) == 5 and all(c.outcome == "answered" for c in stored)
    assert reader.events("call.ended") and len(reader.events("call.ended")) == 5
    stuck.transport.resume_reading()
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(stuck.recv(), 20)
    assert stuck.close_code == 1013 and "behind" in stuck.close_reason
    await reader.stop()


async def test_call_back_originates_once_from_my_phone_and_links_the_next_call(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    abandoned = await add_call(sessions, caller_number="0755000001", outcome="abandoned", line_id=1)
    async with live.http() as http:
        _, ana = await login(http, "ana")
        _, boss = await login(http, "boss")
        no_device = await http.post(f"/api/callbacks/{abandoned}/dial", headers=boss)
        assert no_device.status_code == 422 and no_device.json()["details"]["field"] == "device"
        dialed = await http.post(f"/api/callbacks/{abandoned}/dial", headers=ana)
        assert dialed.status_code == 200, dialed.text
        assert dialed.json() == {"result": "dialing", "call_id": abandoned, "number": "0755000001",
                                 "device": ANA_PHONE, "target": None}  # fmt: skip
        originates = [a for a in live.simulator.actions_received if a.get("Action") == "Originate"]
        assert len(originates) == 1
        sent = originates[0]
        assert (sent["Channel"], sent["Exten"], sent["Context"]) == (ANA_PHONE, "0755000001", "outside")
        assert sent["Variable"] == f"HOTLINE_CALLBACK_OF={abandoned}" and sent["CallerID"] == '"Line 1" <5551000>'
        # The resulting conversation, as the tracker records it, is linked to the abandoned call.
        back = live.simulator.place_call("5551000", "0755000001", "Returning", answer_after=0.3, talk=0.5)
        await back.outcome
        await live.listener.drain(10)

        async def linked() -> bool:
            async with sessions() as session:
                row = await session.scalar(select(Call).where(Call.linkedid == back.linkedid))
                return row is not None and row.callback_of_id == abandoned

        await wait_until(linked, 10, "callback link")
        worklist = (await http.get("/api/callbacks", headers=ana)).json()
        assert abandoned not in [w["call_id"] for w in worklist]  # answered since: no longer owed


async def test_an_open_socket_is_closed_when_its_token_is_signed_out_or_expires(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with live.http() as http:
        signed_out, headers = await login(http, "ana")
        expiring, _ = await login(http, "mihai")
        first = WsReader(await ws_connect(live.ws_url, signed_out))
        second = WsReader(await ws_connect(live.ws_url, expiring))
        await wait_until(lambda: first.messages and second.messages, 10, "ready")
        assert (await http.post("/api/auth/logout", headers=headers)).status_code == 204
        # Signed out through this process: closed at the next re-check.
        await wait_until(lambda: first.closed, ws_module.RECHECK_S + 3, "closed after sign-out")
        assert first.closed[0] == ws_module.CLOSE_NOT_AUTHENTICATED and "sign in again" in (first.closed[1] or "")
        # Expired (written to the database, as another process or the clock would): closed once this process's
        # memory of the token lapses (HOTLINE_AUTH_CACHE_S) and the next re-check looks it up.
        async with sessions() as session:
            await session.execute(update(ApiToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            await session.commit()
        limit = ws_module.RECHECK_S + live.runtime.settings.auth_cache_s + 3
        await wait_until(lambda: second.closed, limit, "closed after expiry")
        assert second.closed[0] == ws_module.CLOSE_NOT_AUTHENTICATED


async def test_a_change_of_lines_applies_to_an_open_socket(
    live: LiveHotline, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        await create_user(session, username="root", password=PASSWORD, role="admin")
        await session.commit()
    mihai_id = await user_id(sessions, "mihai")  # serves line 2 only, and is no queue member here
    async with live.http() as http:
        mihai_token, _ = await login(http, "mihai")
        _, admin = await login(http, "root")
        boss_token, _ = await login(http, "boss")
        mihai = WsReader(await ws_connect(live.ws_url, mihai_token))
        witness = WsReader(await ws_connect(live.ws_url, boss_token))
        before = live.simulator.place_call("5551000", "0711000020", "Line one", answer_after=0.5, talk=0.5)
        await witness.wait_for("call.ended", within=30, linkedid=before.linkedid)
        assert not [e for e in mihai.events() if e["data"].get("linkedid") == before.linkedid]  # not his line yet
        response = await http.put(f"/api/admin/lines/1/operators/{mihai_id}", headers=admin, json={"priority": 0})
        assert response.status_code == 200, response.text
        await asyncio.sleep(ws_module.RECHECK_S + 0.5)
        after = live.simulator.place_call("5551000", "0711000021", "Line one again", answer_after=0.5, talk=0.5)
        ended = await mihai.wait_for("call.ended", within=30, linkedid=after.linkedid)  # line events: line 1 now
        assert ended["data"]["line_id"] == 1
        await mihai.stop()
        await witness.stop()
