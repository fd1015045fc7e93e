"""Lines and operator assignments over HTTP: CRUD, validation, roles, audit, and the after-commit notification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from admin_support import assert_error, audit, sign_in_staff
from hotline.db.models import Call, Line
from hotline.settings import Settings

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


# --- the PBX of a line ----------------------------------------------------------------------------------------------


@pytest.fixture
async def two_pbx_client(
    database_url: str, engine: object, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app configured with two PBXs, "bucharest" (the first) and "cluj"; PBX services not started."""
    from hotline.api.app import create_app

    settings = Settings(
        database_url=database_url,
        auto_migrate=False,
        ami={"id": "bucharest"},
        extra_pbxs=[{"id": "cluj", "host": "10.0.0.2", "secret": "s"}],
        dialplan_dir=tmp_path / "dialplan",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, start_services=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as http:
            yield http


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, str | None, str, str]]:
    async with sessions() as session:
        rows = await session.scalars(select(Line).order_by(Line.id))
        return [(line.id, line.pbx_id, line.number, line.name) for line in rows]


async def test_a_line_is_on_one_of_the_configured_pbxs(
    two_pbx_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = two_pbx_client
    staff = await sign_in_staff(client, sessions)
    first = await client.post("/api/admin/lines", json=LINE, headers=staff.admin)
    assert first.status_code == 201, first.text
    assert first.json()["pbx_id"] == "bucharest"  # by default the first PBX
    # The same number on the other PBX is another line.
    second = await client.post("/api/admin/lines", json=LINE | {"pbx_id": "cluj", "name": "Cluj"}, headers=staff.admin)
    assert second.status_code == 201, second.text
    assert second.json()["pbx_id"] == "cluj"
    named = await client.post(
        "/api/admin/lines", json=LINE | {"number": "5552000", "pbx_id": "bucharest"}, headers=staff.admin
    )
    assert named.status_code == 201 and named.json()["pbx_id"] == "bucharest"
    ids = [first.json()["id"], second.json()["id"], named.json()["id"]]
    # The first PBX is stored as NULL, however it was asked for; the others by id.
    assert await _stored(sessions) == [
        (ids[0], None, LINE["number"], "Support"),
        (ids[1], "cluj", LINE["number"], "Cluj"),
        (ids[2], None, "5552000", "Support"),
    ]
    listed = await client.get("/api/admin/lines", headers=staff.supervisor)
    assert [(item["id"], item["pbx_id"]) for item in listed.json()] == [
        (ids[0], "bucharest"), (ids[1], "cluj"), (ids[2], "bucharest")
    ]  # fmt: skip
    assert (await client.get(f"/api/admin/lines/{ids[1]}", headers=staff.admin)).json()["pbx_id"] == "cluj"
    before, entries_before = await _stored(sessions), len(await audit(client, staff))

    # An unknown PBX: 422 naming the field and the known ids; nothing stored, nothing audited.
    for response in (
        await client.post("/api/admin/lines", json=LINE | {"number": "5559000", "pbx_id": "pbx1"}, headers=staff.admin),
        await client.patch(f"/api/admin/lines/{ids[0]}", json={"pbx_id": "nowhere"}, headers=staff.admin),
        await client.patch(f"/api/admin/lines/{ids[1]}", json={"pbx_id": "CLUJ", "name": "X"}, headers=staff.admin),
    ):
        body = assert_error(response, 422, "unknown-pbx")
        assert "pbx_id" in body["message"] and "bucharest, cluj" in body["message"]
        assert body["details"]["field"] == "pbx_id" and body["details"]["known"] == ["bucharest", "cluj"]
    for bad in ({"pbx_id": ""}, {"pbx_id": "x" * 41}, {"pbx_id": 7}):
        assert_error(await client.post("/api/admin/lines", json=LINE | {"number": "5559000"} | bad,
                                       headers=staff.admin), 422)  # fmt: skip
    # A number already on the target PBX: 409, the line stays where it was.
    taken = await client.patch(f"/api/admin/lines/{ids[1]}", json={"pbx_id": "bucharest"}, headers=staff.admin)
    assert assert_error(taken, 409, "conflict")["details"] == {"field": "number", "pbx_id": "bucharest"}
    dup = await client.post("/api/admin/lines", json=LINE | {"pbx_id": "cluj"}, headers=staff.admin)
    assert_error(dup, 409, "conflict")
    assert await _stored(sessions) == before
    assert len(await audit(client, staff)) == entries_before

    # A known PBX is accepted both ways, and audited as stored.
    moved = await client.patch(f"/api/admin/lines/{ids[2]}", json={"pbx_id": "cluj"}, headers=staff.admin)
    assert moved.status_code == 200 and moved.json()["pbx_id"] == "cluj", moved.text
    back = await client.patch(f"/api/admin/lines/{ids[2]}", json={"pbx_id": None}, headers=staff.admin)
    assert back.status_code == 200 and back.json()["pbx_id"] == "bucharest", back.text
    assert [row[1] for row in await _stored(sessions)] == [None, "cluj", None]
    updates = await audit(client, staff, entity="line", entity_id=str(ids[2]))
    assert [(e["action"], e["before"] and e["before"]["pbx_id"], e["after"]["pbx_id"]) for e in updates] == [
        ("update", "cluj", None), ("update", None, "cluj"), ("create", None, None)
    ]  # fmt: skip
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Line)) == 3
