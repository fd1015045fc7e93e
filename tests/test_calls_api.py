"""Sign-in and the calls API over real HTTP against the real app and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.api.schemas.calls import CallOut, CallPage
from hotline.db.models import Call, CallEvent, Line, OperatorLine
from hotline.db.repositories.calls import encode_cursor
from hotline.users import create_user

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough password"


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        session.add_all([Line(id=1, number="5551000", name="Support"), Line(id=2, number="5552000", name="Sales")])
        await session.flush()
        users = {}
        for name, role in (("boss", "supervisor"), ("ana", "operator"), ("root", "admin")):
            users[name] = (await create_user(session, username=name, password=PASSWORD, role=role)).id
        session.add(OperatorLine(user_id=users["ana"], line_id=1, priority=0))
        for i in range(30):
            session.add(
                Call(pbx_id="pbx1", linkedid=f"1.{i}", line_id=1 + i % 2, number="5551000" if i % 2 == 0 else "5552000",
                     caller_number=f"07120000{i:02d}", arrived_at=T0 + timedelta(minutes=i),
                     outcome="answered" if i % 3 else "abandoned", operator="ana" if i % 3 else None, rang=["ana"])
            )  # fmt: skip
        await session.flush()
        session.add(CallEvent(call_id=1, key="k1", at=T0, event="Newchannel", summary={"Exten": "5551000"}))
        await session.commit()
    return users


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_calls_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/calls")
    assert response.status_code == 401
    assert response.json()["error_id"] == "not-authenticated"
    bad = await client.get("/api/calls", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_login_me_logout(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed(sessions)
    wrong = await client.post("/api/auth/login", json={"username": "ana", "password": "wrong password"})
    assert wrong.status_code == 401 and PASSWORD not in wrong.text
    headers = await login(client, "ana")
    me = await client.get("/api/me", headers=headers)
    assert me.json()["username"] == "ana" and me.json()["role"] == "operator"
    assert "password" not in me.text
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/me", headers=headers)).status_code == 401


async def test_repeated_wrong_passwords_are_rate_limited(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    codes = []
    for _ in range(10):
        r = await client.post("/api/auth/login", json={"username": "ana", "password": "not the password"})
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    locked = await client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})
    assert locked.json()["error_id"] == "too-many-attempts"


async def test_list_is_newest_first_with_cursor_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "boss")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/calls", params=params, headers=headers)).json()
        seen += [c["linkedid"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"1.{i}" for i in reversed(range(30))]
    abandoned = (await client.get("/api/calls", params={"outcome": "abandoned"}, headers=headers)).json()
    assert {c["outcome"] for c in abandoned["items"]} == {"abandoned"} and len(abandoned["items"]) == 10
    window = await client.get(
        "/api/calls",
        params={"from": (T0 + timedelta(minutes=10)).isoformat(), "to": (T0 + timedelta(minutes=12)).isoformat()},
        headers=headers,
    )
    assert [c["linkedid"] for c in window.json()["items"]] == ["1.11", "1.10"]


async def test_bad_filters_are_clear_422s(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "boss")
    for params in ({"outcome": "exploded"}, {"cursor": "garbage!"}, {"limit": 0}, {"from": "2026-11-23T09:00:00"}):
        response = await client.get("/api/calls", params=params, headers=headers)
        assert response.status_code == 422, params
        assert response.json()["error_id"] in {"invalid-input", "invalid-request"}
        assert response.json()["message"]


async def test_operators_see_only_the_lines_they_serve(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "ana")
    items = (await client.get("/api/calls", params={"limit": 100}, headers=headers)).json()["items"]
    assert items and {c["line_id"] for c in items} == {1}
    assert (await client.get("/api/calls", params={"line": 2}, headers=headers)).status_code == 403
    other_line_call = next(i for i in range(1, 31) if i % 2 == 0)  # ids are 1-based; even ids are on line 2
    assert (await client.get(f"/api/calls/{other_line_call}", headers=headers)).status_code == 404
    assert (await client.get("/api/pbx", headers=headers)).status_code == 403


async def test_one_call_with_its_timeline(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "boss")
    call = (await client.get("/api/calls/1", headers=headers)).json()
    assert call["linkedid"] == "1.0"
    assert call["timeline"] == [{"at": "2026-11-23T09:00:00Z", "event": "Newchannel", "summary": {"Exten": "5551000"}}]
    missing = await client.get("/api/calls/999999", headers=headers)
    assert missing.status_code == 404 and missing.json()["error_id"] == "not-found"
    assert (await client.get("/api/calls/live", headers=headers)).json() == []


async def test_the_list_is_byte_for_byte_what_the_response_model_sends(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The list is serialised from plain rows; it must be exactly the JSON of ``CallPage`` over the same calls."""
    await seed(sessions)
    async with sessions() as session:
        session.add(
            Call(pbx_id="pbx2", linkedid="9.1", line_id=1, number="5551000", caller_number="0700000000",
                 caller_name="Ion Pop", arrived_at=T0 + timedelta(hours=2, microseconds=123456),
                 queued_at=T0 + timedelta(hours=2, seconds=1), answered_at=T0 + timedelta(hours=2, seconds=9.5),
                 ended_at=T0 + timedelta(hours=2, seconds=70), wait_s=8.5, talk_s=float("nan"), operator="ana",
                 rang=["mihai", "ana"], outcome="answered", route="queue", queue="hotline-1", hangup_cause=16,
                 transferred_to="201", overflow_to="0800000000", recording_path="/var/rec/9.1.wav",
                 end_inferred=True, seen_first_in_resync=True)
        )  # fmt: skip
        await session.commit()
    headers = await login(client, "boss")
    response = await client.get("/api/calls", params={"limit": 5}, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    async with sessions() as session:
        rows = list(await session.scalars(select(Call).order_by(Call.arrived_at.desc(), Call.id.desc()).limit(6)))
    expected = CallPage(
        items=[CallOut.model_validate(r) for r in rows[:5]], next_cursor=encode_cursor(rows[4].arrived_at, rows[4].id)
    )
    assert response.content == expected.model_dump_json().encode()
    first = response.json()["items"][0]
    assert first["linkedid"] == "9.1" and first["talk_s"] is None and first["arrived_at"].endswith(".123456Z")


async def test_the_fast_endpoints_keep_their_documented_response_models(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    listed = paths["/api/calls"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/CallPage"}
    live = paths["/api/calls/live"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert live["type"] == "array" and live["items"] == {"$ref": "#/components/schemas/LiveCallOut"}
