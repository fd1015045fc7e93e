"""Routing API over real HTTP: line status, schedules, presence — roles, validation, and the poke that makes the
PBX follow a presence change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.simulator import PbxSimulator
from hotline.db.models import HoursException, Line, OperatorLine, PresenceLog, ShiftBreak
from hotline.db.models import Shift as ShiftRow
from hotline.services import routing_sync
from hotline.services.call_listener import CallListener
from hotline.settings import PbxSettings
from hotline.users import create_user

PASSWORD = "a long enough password"
ANA = "Local/101@phones/n"
BOB = "Local/102@phones/n"


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Line 1 24/7 (ana serves it), line 2 24/7 but closed by a holiday from yesterday to tomorrow (bob)."""
    today = datetime.now(UTC).date()
    now = datetime.now(UTC).replace(microsecond=0)
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support", timezone="UTC", always_open=True))
        session.add(Line(id=2, number="5552000", name="Sales", timezone="UTC", always_open=True))
        await session.flush()
        session.add(
            HoursException(
                line_id=2, start_date=today - timedelta(days=1), end_date=today + timedelta(days=1), reason="Holiday"
            )
        )
        users = {}
        for name, role, device in (
            ("ana", "operator", ANA),
            ("bob", "operator", BOB),
            ("boss", "supervisor", None),
            ("root", "admin", None),
        ):
            user = await create_user(session, username=name, password=PASSWORD, role=role, device=device)
            users[name] = user.id
        session.add(OperatorLine(user_id=users["ana"], line_id=1, priority=0))
        session.add(OperatorLine(user_id=users["bob"], line_id=2, priority=0))
        shift = ShiftRow(user_id=users["ana"], starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=7))
        session.add(shift)
        session.add(ShiftRow(user_id=users["bob"], starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2)))
        await session.flush()
        session.add(
            ShiftBreak(
                shift_id=shift.id,
                kind="lunch",
                starts_at=now + timedelta(hours=3),
                ends_at=now + timedelta(hours=3, minutes=30),
            )
        )
        await session.commit()
    return users


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def users(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    ids = await seed(sessions)
    return {"ids": ids, **{name: await login(client, name) for name in ids}}


async def test_everything_needs_a_token(client: httpx.AsyncClient) -> None:
    for method, url in (
        ("GET", "/api/lines/1/status"),
        ("GET", "/api/operators/1/schedule"),
        ("GET", "/api/operators/1/presence"),
        ("POST", "/api/operators/1/presence"),
        ("GET", "/api/routing/status"),
    ):
        response = await client.request(method, url, json={"state": "available"})
        assert response.status_code == 401, url


async def test_line_status_says_open_why_and_next_change(client: httpx.AsyncClient, users: dict[str, Any]) -> None:
    open_line = await client.get("/api/lines/1/status", headers=users["ana"])
    assert open_line.status_code == 200
    body = open_line.json()
    assert (body["open"], body["why"], body["next_change"], body["queue"]) == (True, "24/7", None, "hotline-1")
    assert body["active"] is True
    assert body["members"] == [] and body["members_read_at"] is None  # no PBX in this process

    closed = (await client.get("/api/lines/2/status", headers=users["boss"])).json()
    assert (closed["open"], closed["why"]) == (False, "exception Holiday (closed)")
    reopens = datetime.combine(datetime.now(UTC).date() + timedelta(days=2), time(0), tzinfo=UTC)
    assert datetime.fromisoformat(closed["next_change"]) == reopens

    forbidden = await client.get("/api/lines/2/status", headers=users["ana"])  # ana does not serve line 2
    assert forbidden.status_code == 403 and forbidden.json()["error_id"] == "forbidden"
    assert (await client.get("/api/lines/2/status", headers=users["root"])).status_code == 200
    missing = await client.get("/api/lines/99/status", headers=users["boss"])
    assert missing.status_code == 404 and missing.json()["error_id"] == "not-found"


async def test_schedule_own_for_operators_anyone_for_staff(client: httpx.AsyncClient, users: dict[str, Any]) -> None:
    ana, bob = users["ids"]["ana"], users["ids"]["bob"]
    own = await client.get(f"/api/operators/{ana}/schedule", headers=users["ana"])
    assert own.status_code == 200
    shifts = own.json()["shifts"]
    assert len(shifts) == 1 and [b["kind"] for b in shifts[0]["breaks"]] == ["lunch"]

    other = await client.get(f"/api/operators/{bob}/schedule", headers=users["ana"])
    assert other.status_code == 404 and "operators see only themselves" in other.json()["message"]
    as_boss = await client.get(f"/api/operators/{bob}/schedule", headers=users["boss"])
    assert as_boss.status_code == 200 and len(as_boss.json()["shifts"]) == 1
    tomorrow_only = await client.get(
        f"/api/operators/{bob}/schedule",
        headers=users["boss"],
        params={"from": datetime.now(UTC).isoformat(), "to": (datetime.now(UTC) + timedelta(hours=12)).isoformat()},
    )
    assert tomorrow_only.json()["shifts"] == []

    naive = await client.get(
        f"/api/operators/{ana}/schedule", headers=users["ana"], params={"from": "2026-11-23T08:00:00"}
    )
    assert naive.status_code == 422 and "time zone" in naive.json()["message"]
    backwards = await client.get(
        f"/api/operators/{ana}/schedule",
        headers=users["ana"],
        params={"from": "2026-11-24T08:00:00Z", "to": "2026-11-23T08:00:00Z"},
    )
    assert backwards.status_code == 422 and "after" in backwards.json()["message"]
    assert (await client.get("/api/operators/9999/schedule", headers=users["boss"])).status_code == 404


async def test_presence_transitions_are_validated(
    client: httpx.AsyncClient, users: dict[str, Any], sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana, bob, boss = users["ids"]["ana"], users["ids"]["bob"], users["ids"]["boss"]
    never = (await client.get(f"/api/operators/{ana}/presence", headers=users["ana"])).json()
    assert (never["state"], never["since"]) == ("offline", None)

    url = f"/api/operators/{ana}/presence"
    bad = await client.post(url, headers=users["ana"], json={"state": "paused", "reason": "lunch"})
    assert bad.status_code == 422
    assert bad.json()["error_id"] == "invalid-presence-transition"
    assert bad.json()["message"] == "cannot go from offline to paused"

    ok = await client.post(url, headers=users["ana"], json={"state": "available"})
    assert ok.status_code == 200 and ok.json()["state"] == "available"
    no_reason = await client.post(url, headers=users["ana"], json={"state": "paused"})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["message"]
    wrong_reason = await client.post(url, headers=users["ana"], json={"state": "paused", "reason": "wrapup"})
    assert wrong_reason.status_code == 422
    on_call = await client.post(url, headers=users["ana"], json={"state": "on_call"})
    assert on_call.status_code == 422  # the PBX says who is on a call, not the operator
    paused = await client.post(url, headers=users["ana"], json={"state": "paused", "reason": "lunch"})
    assert (paused.json()["state"], paused.json()["reason"]) == ("paused", "lunch")
    again = await client.post(url, headers=users["ana"], json={"state": "paused", "reason": "lunch"})
    assert again.status_code == 422 and again.json()["message"] == "already paused for lunch"
    reason_without_pause = await client.post(url, headers=users["ana"], json={"state": "available", "reason": "lunch"})
    assert reason_without_pause.status_code == 422

    # Roles: an operator only for themselves (others do not exist for them); staff for anyone; only operators have
    # a presence.
    assert (
        await client.post(f"/api/operators/{bob}/presence", headers=users["ana"], json={"state": "available"})
    ).status_code == 404
    assert (await client.get(f"/api/operators/{bob}/presence", headers=users["ana"])).status_code == 404
    by_boss = await client.post(f"/api/operators/{bob}/presence", headers=users["boss"], json={"state": "available"})
    assert by_boss.status_code == 200
    assert (await client.get(f"/api/operators/{bob}/presence", headers=users["root"])).json()["state"] == "available"
    not_operator = await client.post(
        f"/api/operators/{boss}/presence", headers=users["boss"], json={"state": "available"}
    )
    assert not_operator.status_code == 422 and "not an operator" in not_operator.json()["message"]

    current = (await client.get(url, headers=users["boss"])).json()
    assert (current["state"], current["reason"]) == ("paused", "lunch")
    async with sessions() as session:  # refused changes wrote nothing: available, paused (ana) + available (bob)
        assert await session.scalar(select(func.count()).select_from(PresenceLog)) == 3


@pytest.fixture
async def pbx_in_runtime(client: httpx.AsyncClient) -> AsyncIterator[tuple[PbxSimulator, CallListener]]:
    """The simulator and a listener started in the app's runtime, then routing started the way bootstrap does."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    sim = PbxSimulator(seed=5)
    port = await sim.start()
    settings = PbxSettings(id="pbx1", host="127.0.0.1", port=port, username="hotline", secret="hotline-secret")
    listener = CallListener(settings, runtime.sessions, connection_options={"backoff_base": 0.02, "backoff_cap": 0.2})
    await listener.start()
    runtime.listeners["pbx1"] = listener
    yield sim, listener
    await routing_sync.stop_all(runtime)
    await listener.stop()
    await sim.stop()


async def _until(condition: Any, what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def test_a_presence_change_moves_the_pbx(
    client: httpx.AsyncClient, users: dict[str, Any], pbx_in_runtime: tuple[PbxSimulator, CallListener]
) -> None:
    sim, listener = pbx_in_runtime
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    await routing_sync.start(runtime)
    sync = runtime.routing["pbx1"]
    await _until(lambda: sim.astdb.get("hotline/open/2") == "0", "first pass")
    assert sim.members("hotline-1") == []  # ana is on shift but not logged in

    ana = users["ids"]["ana"]
    await client.post(f"/api/operators/{ana}/presence", headers=users["ana"], json={"state": "available"})
    await _until(lambda: [m["name"] for m in sim.members("hotline-1")] == ["ana"], "ana added")
    await client.post(
        f"/api/operators/{ana}/presence", headers=users["ana"], json={"state": "paused", "reason": "manual"}
    )
    await _until(lambda: sim.members("hotline-1")[0]["paused_reason"] == "manual", "ana paused")
    await _until(lambda: sync.queue_status["hotline-1"][0].paused, "the pass read the PBX back")

    status = (await client.get("/api/lines/1/status", headers=users["ana"])).json()
    assert [(m["name"], m["interface"], m["paused"], m["reason"]) for m in status["members"]] == [
        ("ana", ANA, True, "manual")
    ]
    assert status["members_read_at"] is not None

    assert (await client.get("/api/routing/status", headers=users["ana"])).status_code == 403
    routing = (await client.get("/api/routing/status", headers=users["boss"])).json()["pbx"][0]
    assert routing["pbx_id"] == "pbx1" and routing["running"] is True
    assert routing["recent_actions"][0]["action"]["Action"] == "QueuePause"
    assert {a["result"] for a in routing["recent_actions"]} == {"ok"}

    # An admin edit elsewhere reaches routing through the runtime's config hook.
    before = sync.passes
    for hook in runtime.config_changed_hooks:
        await hook("shift")
    await sync.wait_passes(before + 1)

    # The listener is released (the lease went to another process): this process stops driving the PBX.
    runtime.listeners.pop("pbx1")
    await _until(lambda: not sync.status()["running"], "routing stopped")
    assert listener.connection.connected  # the listener itself is left to whoever released it
