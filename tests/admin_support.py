"""Helpers for the admin API tests: three signed-in users (admin, supervisor, operator) and audit reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.users import create_user

PASSWORD = "a long enough password"


@dataclass
class Staff:
    ids: dict[str, int]
    admin: dict[str, str]
    supervisor: dict[str, str]
    operator: dict[str, str]


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def sign_in_staff(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Staff:
    ids = {}
    async with sessions() as session:
        for name, role in (("root", "admin"), ("boss", "supervisor"), ("ana", "operator")):
            ids[name] = (await create_user(session, username=name, password=PASSWORD, role=role)).id
        await session.commit()
    return Staff(ids, await login(client, "root"), await login(client, "boss"), await login(client, "ana"))


async def audit(client: httpx.AsyncClient, staff: Staff, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/audit", params={"limit": 500} | params, headers=staff.admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def assert_error(response: httpx.Response, status: int, error_id: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["message"]
    if error_id is not None:
        assert body["error_id"] == error_id, body
    return body  # type: ignore[no-any-return]
