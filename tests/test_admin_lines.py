"""Lines and operator assignments over HTTP: CRUD, validation, roles, audit, and the after-commit notification."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff
from hotline.db.models import Call

LINE = {"number": "+40215551000", "name": "Support", "timezone": "Europe/Bucharest", "source": "radio"}


class FakeListener:
    def __init__(self) -> None:
        self.reloads = 0

    async def reload_lines(self) -> None:
        self.reloads += 1


async def test_line_crud_with_audit(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    created = await client.post("/api/admin/lines", json=LINE, headers=staff.admin)
    assert created.status_code == 201, created.text
    line = created.json()
    assert line["number"] == "+40215551000" and line["closed_action"] == "hangup" and line["strategy"] == "rrmemory"
    line_id = line["id"]

    listed = await client.get("/api/admin/lines", headers=staff.supervisor)
    assert [item["id"] for item in listed.json()] == [line_id]
    changed = await client.patch(
        f"/api/admin/lines/{line_id}",
        json={"closed_action": "forward", "forward_to": "0215559999", "max_channels": 4, "source": None},
        headers=staff.admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["forward_to"] == "0215559999" and changed.json()["source"] is None
    assert (await client.get(f"/api/admin/lines/{line_id}", headers=staff.admin)).json()["max_channels"] == 4

    assert (await client.delete(f"/api/admin/lines/{line_id}", headers=staff.admin)).status_code == 204
    assert_error(await client.get(f"/api/admin/lines/{line_id}", headers=staff.admin), 404, "not-found")

    entries = await audit(client, staff, entity="line", entity_id=str(line_id))
    assert [e["action"] for e in entries] == ["delete", "update", "create"]  # newest first
    update = entries[1]
    assert update["before"]["closed_action"] == "hangup" and update["after"]["closed_action"] == "forward"
    assert update["before"]["source"] == "radio" and update["after"]["source"] is None
    assert update["user_id"] == staff.ids["root"] and update["username"] == "root"
    assert entries[0]["after"] is None and entries[0]["before"]["number"] == "+40215551000"


async def test_line_validation_and_conflicts_change_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = (await client.post("/api/admin/lines", json=LINE, headers=staff.admin)).json()["id"]
    bad = [
        {"number": "555-1000"},
        {"number": "++4021"},
        {"timezone": "Mars/Olympus"},
        {"closed_action": "forward"},  # no forward_to
        {"closed_action": "explode"},
        {"strategy": "roundrobin"},
        {"max_channels": 0},
        {"queue_timeout_s": 0},
        {"overflow_to": "abc"},
        {"name": ""},
        {"unknown_field": 1},
    ]
    for change in bad:
        response = await client.post(
            "/api/admin/lines", json=LINE | {"number": "5550001"} | change, headers=staff.admin
        )
        assert_error(response, 422)
    for change in [*bad[1:], {"name": None}]:
        assert_error(await client.patch(f"/api/admin/lines/{line_id}", json=change, headers=staff.admin), 422)
    duplicate = await client.post("/api/admin/lines", json=LINE | {"name": "Copy"}, headers=staff.admin)
    assert_error(duplicate, 409, "conflict")
    other = (await client.post("/api/admin/lines", json=LINE | {"number": "5552000"}, headers=staff.admin)).json()
    assert_error(
        await client.patch(f"/api/admin/lines/{other['id']}", json={"number": LINE["number"]}, headers=staff.admin), 409
    )
    assert_error(await client.patch("/api/admin/lines/999", json={"name": "x"}, headers=staff.admin), 404)
    assert_error(await client.delete("/api/admin/lines/999", headers=staff.admin), 404)
    creates = await audit(client, staff, entity="line")
    assert [e["action"] for e in creates] == ["create", "create"]  # only the two lines that were accepted
    assert (await client.get(f"/api/admin/lines/{line_id}", headers=staff.admin)).json()["name"] == "Support"


async def test_a_line_with_calls_is_kept(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = (await client.post("/api/admin/lines", json=LINE, headers=staff.admin)).json()["id"]
    async with sessions() as session:
        session.add(
            Call(
                pbx_id="pbx1",
                linkedid="1.1",
                line_id=line_id,
                number=LINE["number"],
                arrived_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
            )
        )
        await session.commit()
    body = assert_error(await client.delete(f"/api/admin/lines/{line_id}", headers=staff.admin), 409)
    assert body["details"]["calls"] == 1 and "deactivate" in body["message"]
    assert [e["action"] for e in await audit(client, staff, entity="line")] == ["create"]
    off = await client.patch(f"/api/admin/lines/{line_id}", json={"active": False}, headers=staff.admin)
    assert off.status_code == 200 and off.json()["active"] is False


async def test_roles_on_lines(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    for who in (staff.operator, staff.supervisor):
        assert_error(await client.post("/api/admin/lines", json=LINE, headers=who), 403, "forbidden")
    line_id = (await client.post("/api/admin/lines", json=LINE, headers=staff.admin)).json()["id"]
    for who in (staff.operator, staff.supervisor):
        assert_error(await client.patch(f"/api/admin/lines/{line_id}", json={"name": "X"}, headers=who), 403)
        assert_error(await client.delete(f"/api/admin/lines/{line_id}", headers=who), 403)
    assert_error(await client.get("/api/admin/lines", headers=staff.operator), 403)
    assert (await client.get("/api/admin/lines", headers=staff.supervisor)).status_code == 200
    assert_error(await client.get("/api/admin/lines"), 401)
    assert len(await audit(client, staff)) == 1


async def test_line_changes_notify_after_commit_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff = await sign_in_staff(client, sessions)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    listener = FakeListener()
    runtime.listeners["pbx-test"] = listener
    heard: list[str] = []

    async def hook(entity: str) -> None:
        heard.append(entity)

    async def broken(entity: str) -> None:
        raise RuntimeError("the dialplan service is down")

    runtime.config_changed_hooks = [broken, hook]  # a failing hook keeps neither the others nor the response
    line_id = (await client.post("/api/admin/lines", json=LINE, headers=staff.admin)).json()["id"]
    assert listener.reloads == 1 and heard == ["line"]
    assert_error(
        await client.patch(f"/api/admin/lines/{line_id}", json={"timezone": "Nowhere/Else"}, headers=staff.admin), 422
    )
    assert_error(await client.post("/api/admin/lines", json=LINE, headers=staff.admin), 409)
    assert listener.reloads == 1 and heard == ["line"]  # refused changes tell nobody
    ok = await client.post(
        f"/api/admin/lines/{line_id}/hours", json={"weekday": 0, "start": "09:00", "end": "17:00"}, headers=staff.admin
    )
    assert ok.status_code == 201
    assert listener.reloads == 2 and heard == ["line", "weekly_hours"]
    assert (await client.post("/api/admin/topics", json={"name": "Fees"}, headers=staff.admin)).status_code == 201
    assert listener.reloads == 2 and heard == ["line", "weekly_hours"]  # topics do not concern routing


async def test_operator_assignments(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    staff = await sign_in_staff(client, sessions)
    line_id = (await client.post("/api/admin/lines", json=LINE, headers=staff.admin)).json()["id"]
    ana = staff.ids["ana"]
    url = f"/api/admin/lines/{line_id}/operators/{ana}"
    put = await client.put(url, json={"priority": 2}, headers=staff.admin)
    assert put.status_code == 200 and put.json() == {
        "line_id": line_id,
        "user_id": ana,
        "username": "ana",
        "priority": 2,
    }
    assert (await client.put(url, json={"priority": 0}, headers=staff.admin)).json()["priority"] == 0
    listed = await client.get(f"/api/admin/lines/{line_id}/operators", headers=staff.supervisor)
    assert [(a["username"], a["priority"]) for a in listed.json()] == [("ana", 0)]
    assert_error(await client.put(url, json={"priority": -1}, headers=staff.admin), 422)
    assert_error(await client.put(f"/api/admin/lines/{line_id}/operators/999", json={}, headers=staff.admin), 404)
    assert_error(await client.put(f"/api/admin/lines/999/operators/{ana}", json={}, headers=staff.admin), 404)
    assert_error(await client.put(url, json={"priority": 1}, headers=staff.supervisor), 403)
    assert (await client.delete(url, headers=staff.admin)).status_code == 204
    assert_error(await client.delete(url, headers=staff.admin), 404)
    entries = await audit(client, staff, entity="operator_line")
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    assert {e["entity_id"] for e in entries} == {f"{ana}:{line_id}"}
    assert entries[1]["before"]["priority"] == 2 and entries[1]["after"]["priority"] == 0
