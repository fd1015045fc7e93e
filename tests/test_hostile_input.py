"""Hostile input over HTTP: oversized and deeply nested bodies, SQL injection attempts — clear 4xx, nothing changed,
never a 500."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Call, User
from test_calls_api import PASSWORD, login, seed


async def test_an_oversized_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    response = await client.post("/api/auth/login", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error_id"] == "body-too-large"

    async def chunks():  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"a" * 65536

    streamed = await client.post("/api/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


async def test_deeply_nested_json_is_a_client_error(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "root")
    deep = "[" * 200_000 + "]" * 200_000
    response = await client.post(
        "/api/admin/lines", content=deep, headers={**headers, "content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error_id"] in {"invalid-request", "invalid-input"}


async def test_sql_injection_attempts_are_just_strings(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "boss")
    for attempt in ("' OR '1'='1", "0712000001'; DROP TABLE calls; --", '" OR ""="', "1) OR (1=1"):
        response = await client.get("/api/calls", params={"caller_number": attempt}, headers=headers)
        assert response.status_code == 200 and response.json()["items"] == []
        response = await client.get("/api/calls", params={"operator": attempt}, headers=headers)
        assert response.status_code in (200, 422) and response.json().get("items", []) == []
        bad_login = await client.post("/api/auth/login", json={"username": attempt, "password": attempt})
        assert bad_login.status_code in (401, 429)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 30
        assert await session.scalar(select(func.count()).select_from(User)) == 3
    assert (await client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})).status_code == 200


async def test_dates_out_of_range_are_422_not_500(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Found by schemathesis: year 1 at +01:00 is before year 1 in UTC, and date arithmetic overflowed."""
    await seed(sessions)
    headers = await login(client, "root")
    body = {"ends_at": "0179-04-22T09:39:51Z", "starts_at": "0001-01-01T00:00:01+01:00", "user_id": 2}
    response = await client.post("/api/admin/shifts", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error_id"] in {"out-of-range", "invalid-request", "invalid-input", "invalid-shift"}
    listed = await client.get("/api/calls", params={"from": "0001-01-01T00:00:01+01:00"}, headers=headers)
    assert listed.status_code in (200, 422)
