"""Users over HTTP: create, change, password reset, delete; secrets never returned nor audited."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import PASSWORD, assert_error, audit, login, sign_in_staff
from hotline.db.models import AuditEntry, User

NEW_PASSWORD = "correct horse battery staple"


async def test_user_crud_never_exposes_secrets(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    created = await client.post(
        "/api/admin/users",
        json={
            "username": "mira",
            "password": PASSWORD,
            "role": "operator",
            "full_name": "Mira P",
            "device": "PJSIP/op102",
        },
        headers=staff.admin,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["device"] == "PJSIP/op102" and user["active"] is True
    assert "password" not in created.text and "argon2" not in created.text
    listed = await client.get("/api/admin/users", params={"role": "operator"}, headers=staff.supervisor)
    assert [u["username"] for u in listed.json()] == ["ana", "mira"] and "argon2" not in listed.text

    changed = await client.patch(
        f"/api/admin/users/{user['id']}", json={"role": "supervisor", "device": None}, headers=staff.admin
    )
    assert changed.status_code == 200 and changed.json()["role"] == "supervisor" and changed.json()["device"] is None

    mira = await login(client, "mira")
    reset = await client.put(
        f"/api/admin/users/{user['id']}/password", json={"password": NEW_PASSWORD}, headers=staff.admin
    )
    assert reset.status_code == 204
    assert_error(await client.get("/api/me", headers=mira), 401)  # signed out everywhere
    assert (await client.post("/api/auth/login", json={"username": "mira", "password": PASSWORD})).status_code == 401
    await login(client, "mira", NEW_PASSWORD)

    assert (await client.delete(f"/api/admin/users/{user['id']}", headers=staff.admin)).status_code == 204
    assert_error(await client.get(f"/api/admin/users/{user['id']}", headers=staff.admin), 404)

    entries = await audit(client, staff, entity="user", entity_id=str(user["id"]))
    assert [e["action"] for e in entries] == ["delete", "update", "update", "create"]
    assert entries[1]["after"]["password_changed"] is True
    async with sessions() as session:
        stored = list(await session.scalars(select(AuditEntry)))
        hashes = [u.password_hash for u in await session.scalars(select(User))]
    text = repr([(e.before, e.after) for e in stored])
    assert stored and "password_hash" not in text and "argon2" not in text
    assert PASSWORD not in text and NEW_PASSWORD not in text
    assert not any(h in text for h in hashes)


async def test_user_validation_and_conflicts(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    base = {"username": "mira", "password": PASSWORD, "role": "operator"}
    assert_error(await client.post("/api/admin/users", json=base | {"username": "ana"}, headers=staff.admin), 409)
    for bad in ({"username": "Mira!"}, {"password": "short"}, {"role": "king"}, {"device": "phone 12"}):
        assert_error(await client.post("/api/admin/users", json=base | bad, headers=staff.admin), 422)
    ana = staff.ids["ana"]
    assert_error(await client.patch(f"/api/admin/users/{ana}", json={"device": "nonsense"}, headers=staff.admin), 422)
    assert_error(await client.patch(f"/api/admin/users/{ana}", json={"role": None}, headers=staff.admin), 422)
    assert_error(await client.put(f"/api/admin/users/{ana}/password", json={"password": "x"}, headers=staff.admin), 422)
    assert_error(await client.patch("/api/admin/users/999", json={"full_name": "x"}, headers=staff.admin), 404)
    assert await audit(client, staff, entity="user") == []


async def test_last_admin_and_roles(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    root = staff.ids["root"]
    assert_error(await client.patch(f"/api/admin/users/{root}", json={"role": "operator"}, headers=staff.admin), 409)
    assert_error(await client.patch(f"/api/admin/users/{root}", json={"active": False}, headers=staff.admin), 409)
    assert_error(await client.delete(f"/api/admin/users/{root}", headers=staff.admin), 409)
    body = {"username": "mira", "password": PASSWORD, "role": "admin"}
    for who in (staff.supervisor, staff.operator):
        assert_error(await client.post("/api/admin/users", json=body, headers=who), 403)
        assert_error(
            await client.put(f"/api/admin/users/{root}/password", json={"password": NEW_PASSWORD}, headers=who), 403
        )
    assert_error(await client.get("/api/admin/users", headers=staff.operator), 403)
    second = (await client.post("/api/admin/users", json=body, headers=staff.admin)).json()
    demoted = await client.patch(f"/api/admin/users/{root}", json={"role": "supervisor"}, headers=staff.admin)
    assert demoted.status_code == 200
    # root's token now carries the supervisor role: the next admin call is refused
    assert_error(await client.post("/api/admin/users", json=body | {"username": "x2"}, headers=staff.admin), 403)
    assert second["role"] == "admin"
    off = await client.patch(
        f"/api/admin/users/{staff.ids['ana']}", json={"active": False}, headers=await login(client, "mira")
    )
    assert off.status_code == 200 and off.json()["active"] is False
    assert_error(await client.get("/api/me", headers=staff.operator), 401)  # a deactivated user is signed out
