"""Several PBXs feed one database: one listener each, calls tagged with their PBX, and each line on one PBX.

Two PBX simulators over TCP behind the real app (HTTP through httpx, PBX services started): "bucharest" is the first
PBX (``HOTLINE_AMI__*``), "cluj" an extra one. Lines 1 and 2 are bucharest's (stored without a PBX, as the first
PBX's lines are), lines 3 and 4 cluj's; 5551000 is a number on both, as two lines. Each simulator also has the
queue of a line of the other PBX (bucharest ``hotline-4``, cluj ``hotline-2``) and a member "zed" in every queue, so
a listener or a routing that reached past its own PBX's lines would show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.server import get_header
from hotline.ami.simulator import PbxSimulator
from hotline.bootstrap import Runtime
from hotline.db.models import Call, Line, OperatorLine, PresenceLog, Shift, User
from hotline.dialplan import EXTENSIONS_FILE, QUEUES_FILE
from hotline.settings import Settings
from hotline.users import create_user

SECRET = "pbx-secret-value"
PASSWORD = "a long enough password"
ANA, BOB, ZED = "Local/101@phones/n", "Local/102@phones/n", "Local/199@phones/n"
#: line id -> (PBX, number); bucharest's lines are stored with pbx_id NULL.
LINES = {1: ("bucharest", "5551000"), 2: ("bucharest", "5552000"), 3: ("cluj", "5551000"), 4: ("cluj", "5553000")}
OWN_QUEUES = {"bucharest": {"hotline-1", "hotline-2"}, "cluj": {"hotline-3", "hotline-4"}}
RELOADS = ["dialplan reload", "module reload app_queue.so"]


@dataclass
class TwoPbxs:
    sims: dict[str, PbxSimulator]
    runtime: Runtime
    http: httpx.AsyncClient
    admin: dict[str, str]
    sessions: async_sessionmaker[AsyncSession]

    def actions(self, pbx: str, *names: str) -> list[dict[str, str]]:
        return [a for a in self.sims[pbx].actions_received if (get_header(a, "Action") or "") in names]

    def members(self, pbx: str, queue: str) -> list[str]:
        return sorted(str(m["name"]) for m in self.sims[pbx].members(queue))


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The four lines; ana serves 1, 3 and 4, bob 2 and 4; both on shift now and available; an admin."""
    now = datetime.now(UTC)
    async with sessions() as session:
        for line_id, (pbx, number) in LINES.items():
            session.add(Line(id=line_id, pbx_id=None if pbx == "bucharest" else pbx, number=number,
                             name=f"Line {line_id}", always_open=True))  # fmt: skip
        await session.flush()
        users = {}
        for name, device in (("ana", ANA), ("bob", BOB)):
            user = User(username=name, role="operator", device=device, password_hash="x")
            session.add(user)
            await session.flush()
            users[name] = user.id
            session.add(Shift(user_id=user.id, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=8)))
            session.add(PresenceLog(user_id=user.id, state="available", at=now - timedelta(hours=1)))
        for name, line_id in (("ana", 1), ("ana", 3), ("ana", 4), ("bob", 2), ("bob", 4)):
            session.add(OperatorLine(user_id=users[name], line_id=line_id, priority=0))
        await create_user(session, username="root", password=PASSWORD, role="admin")
        await session.commit()


@pytest.fixture
async def two_pbxs(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[TwoPbxs]:
    from hotline.api.app import create_app

    await _seed(sessions)
    sims = {
        "bucharest": PbxSimulator(username="hotline", secret=SECRET, operators={"zed": ZED},
                                  lines={"5551000": 1, "5552000": 2, "5553000": 4}),
        "cluj": PbxSimulator(username="hotline", secret=SECRET, operators={"zed": ZED},
                             lines={"5551000": 3, "5553000": 4, "5552000": 2}),
    }  # fmt: skip
    ports = {name: await sim.start() for name, sim in sims.items()}
    settings = Settings(
        database_url=database_url,
        auto_migrate=False,
        ami={"id": "bucharest", "host": "127.0.0.1", "port": ports["bucharest"], "secret": SECRET},
        extra_pbxs=[{"id": "cluj", "host": "127.0.0.1", "port": ports["cluj"], "secret": SECRET}],
        dialplan_dir=tmp_path / "dialplan",
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, start_services=True)
    try:
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            for _ in range(200):  # on PostgreSQL each listener starts once its lease is taken
                if len(runtime.listeners) == 2:
                    break
                await asyncio.sleep(0.05)
            assert sorted(runtime.listeners) == ["bucharest", "cluj"]
            for listener in runtime.listeners.values():
                await listener.connection.wait_logged_in(5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as http:
                response = await http.post("/api/auth/login", json={"username": "root", "password": PASSWORD})
                assert response.status_code == 200, response.text
                admin = {"Authorization": f"Bearer {response.json()['access_token']}"}
                yield TwoPbxs(sims, runtime, http, admin, sessions)
    finally:
        for sim in sims.values():
            await sim.stop()


async def _routing_converged(pbxs: TwoPbxs, timeout: float = 10.0) -> None:
    """Each PBX's routing has done its work: a pass now finds nothing to send (and nothing failed)."""
    syncs = pbxs.runtime.routing
    assert sorted(syncs) == ["bucharest", "cluj"]
    deadline = asyncio.get_running_loop().time() + timeout
    for sync in syncs.values():
        while True:
            result = await sync.sync_once("test")
            if result.ok and not result.sent:
                break
            if asyncio.get_running_loop().time() > deadline:
                sent = [(s.action.get("Action"), s.action.get("Queue") or s.action.get("Key"), s.result, s.message)
                        for s in result.sent]  # fmt: skip
                raise AssertionError(f"routing of {sync.pbx_id} does not settle: {result.error or sent}")
            await asyncio.sleep(0.05)


# --- the listener ---------------------------------------------------------------------------------------------------


async def test_each_listener_records_only_its_own_lines_calls(two_pbxs: TwoPbxs) -> None:
    sims = two_pbxs.sims
    short = {"answer_after": None, "talk": 0.5, "patience": 0.5}
    placed = {
        ("bucharest", "5551000"): sims["bucharest"].place_call("5551000", "0740000001", "On line 1", **short),
        ("cluj", "5551000"): sims["cluj"].place_call("5551000", "0740000003", "On line 3", **short),
        # Numbers of the other PBX's lines: no line of this PBX, so not a call this listener follows.
        ("bucharest", "5553000"): sims["bucharest"].place_call("5553000", "0740000004", "Cluj's number", **short),
        ("cluj", "5552000"): sims["cluj"].place_call("5552000", "0740000002", "Bucharest's number", **short),
    }
    await asyncio.wait_for(asyncio.gather(*(c.outcome for c in placed.values())), 20)
    for listener in two_pbxs.runtime.listeners.values():
        await listener.drain(timeout=10)
    rows: list[Call] = []
    for _ in range(100):
        async with two_pbxs.sessions() as session:
            rows = list(await session.scalars(select(Call).order_by(Call.pbx_id)))
        if len(rows) >= 2 and all(r.outcome != "in_progress" for r in rows):
            break
        await asyncio.sleep(0.05)
    assert [(r.pbx_id, r.linkedid, r.number, r.line_id) for r in rows] == [
        ("bucharest", placed[("bucharest", "5551000")].linkedid, "5551000", 1),
        ("cluj", placed[("cluj", "5551000")].linkedid, "5551000", 3),
    ]
    # Not vacuous: the two calls left out ended before the drain, on the same listeners that recorded the others.


# --- routing --------------------------------------------------------------------------------------------------------


async def test_each_routing_manages_only_its_own_lines_queues_and_flags(two_pbxs: TwoPbxs) -> None:
    await _routing_converged(two_pbxs)
    members = {pbx: {q: two_pbxs.members(pbx, q) for q in sim.queues} for pbx, sim in two_pbxs.sims.items()}
    assert members == {
        # Own queues: exactly who serves the line (zed, in no shift, removed); the other PBX's queue untouched.
        "bucharest": {"hotline-1": ["ana"], "hotline-2": ["bob"], "hotline-4": ["zed"]},
        "cluj": {"hotline-3": ["ana"], "hotline-4": ["ana", "bob"], "hotline-2": ["zed"]},
    }
    for pbx, own in OWN_QUEUES.items():
        queue_actions = two_pbxs.actions(pbx, "QueueAdd", "QueueRemove", "QueuePause", "QueuePenalty")
        assert {a["Queue"] for a in queue_actions} == own, pbx
        keys = {a["Key"] for a in two_pbxs.actions(pbx, "DBGet", "DBPut")}
        assert keys == {q.removeprefix("hotline-") for q in own}, pbx
        assert {k: v for k, v in two_pbxs.sims[pbx].astdb.items()} == {f"hotline/open/{k}": "1" for k in keys}
        refused = [a for a in two_pbxs.runtime.routing[pbx].actions if a.result != "ok"]
        assert refused == [], pbx

    status = await two_pbxs.http.get("/api/lines/4/status", headers=two_pbxs.admin)
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["pbx_id"] == "cluj"  # members from cluj only: bucharest's own hotline-4 (zed) is another queue
    assert sorted((m["pbx_id"], m["name"]) for m in body["members"]) == [("cluj", "ana"), ("cluj", "bob")]


async def test_moving_a_line_moves_its_routing_and_its_calls(two_pbxs: TwoPbxs) -> None:
    """Line 4 goes from cluj to bucharest over the admin API: bucharest's routing staffs its hotline-4, cluj's stops
    touching its own, and bucharest's listener now records calls to 5553000."""
    await _routing_converged(two_pbxs)
    seen = {pbx: len(sim.actions_received) for pbx, sim in two_pbxs.sims.items()}
    moved = await two_pbxs.http.patch("/api/admin/lines/4", json={"pbx_id": "bucharest"}, headers=two_pbxs.admin)
    assert moved.status_code == 200, moved.text
    assert moved.json()["pbx_id"] == "bucharest"
    async with two_pbxs.sessions() as session:
        assert (await session.get(Line, 4)).pbx_id is None  # type: ignore[union-attr]  # the first PBX's spelling
    await _routing_converged(two_pbxs)
    assert two_pbxs.members("bucharest", "hotline-4") == ["ana", "bob"]
    assert two_pbxs.members("cluj", "hotline-4") == ["ana", "bob"]  # left as it was: no longer cluj's to manage
    later = {pbx: sim.actions_received[seen[pbx] :] for pbx, sim in two_pbxs.sims.items()}
    assert not [a for a in later["cluj"] if a.get("Queue") == "hotline-4" or a.get("Key") == "4"]
    assert {a["Queue"] for a in later["bucharest"] if a.get("Action") == "QueueAdd"} == {"hotline-4"}

    call = two_pbxs.sims["bucharest"].place_call("5553000", "0740000009", "Now bucharest's", answer_after=None,
                                                 talk=0.5, patience=0.5)  # fmt: skip
    await asyncio.wait_for(call.outcome, 20)
    await two_pbxs.runtime.listeners["bucharest"].drain(timeout=10)
    async with two_pbxs.sessions() as session:
        rows = list(await session.scalars(select(Call).where(Call.linkedid == call.linkedid)))
    assert [(r.pbx_id, r.line_id) for r in rows] == [("bucharest", 4)]


async def test_a_line_on_a_pbx_no_longer_configured_is_reported_and_left_alone(
    two_pbxs: TwoPbxs, caplog: pytest.LogCaptureFixture
) -> None:
    from hotline.services.pbx import warn_about_unknown_pbxs

    async with two_pbxs.sessions() as session:
        session.add(Line(id=5, pbx_id="lisbon", number="5554000", name="Lisbon", always_open=True))
        ana = await session.scalar(select(User.id).where(User.username == "ana"))
        session.add(OperatorLine(user_id=ana, line_id=5))
        await session.commit()
    with caplog.at_level("WARNING", logger="hotline.services.pbx"):
        assert await warn_about_unknown_pbxs(two_pbxs.runtime) == [(5, "5554000", "lisbon")]
    assert "line 5 (5554000) is on PBX 'lisbon', which is not configured (known: bucharest, cluj)" in caplog.text
    health = (await two_pbxs.http.get("/health")).json()
    assert health["status"] == "ok"  # a configuration warning, not a failure
    assert health["database"]["lines_on_unconfigured_pbxs"] == [{"line_id": 5, "number": "5554000", "pbx_id": "lisbon"}]
    await _routing_converged(two_pbxs)
    for pbx in ("bucharest", "cluj"):
        assert not [a for a in two_pbxs.sims[pbx].actions_received if "hotline-5" in a.values() or a.get("Key") == "5"]


# --- the dialplan ---------------------------------------------------------------------------------------------------


def _commands(sim: PbxSimulator) -> list[str]:
    return [" ".join((get_header(a, "Command") or "").split()) for a in sim.actions_received
            if (get_header(a, "Action") or "").lower() == "command"]  # fmt: skip


def _extens(directory: Path) -> list[str]:
    text = (directory / EXTENSIONS_FILE).read_text(encoding="utf-8")
    return sorted(line.split(",", 1)[0].removeprefix("exten => ") for line in text.splitlines()
                  if line.startswith("exten => ") and ",1," in line)  # fmt: skip


def _queues(directory: Path) -> list[str]:
    text = (directory / QUEUES_FILE).read_text(encoding="utf-8")
    return sorted(line.strip("[]") for line in text.splitlines() if line.startswith("[hotline-"))


async def test_each_pbx_gets_the_dialplan_of_its_own_lines_and_its_own_reload(two_pbxs: TwoPbxs) -> None:
    http, admin, sims = two_pbxs.http, two_pbxs.admin, two_pbxs.sims
    base = two_pbxs.runtime.settings.dialplan_dir
    dirs = {"bucharest": base, "cluj": base / "cluj"}

    first = await http.post("/api/dialplan/apply", headers=admin)  # no ?pbx: the first PBX
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "applied" and first.json()["version"]["pbx_id"] == "bucharest"
    assert (_extens(dirs["bucharest"]), _queues(dirs["bucharest"])) == (["5551000", "5552000"],
                                                                        ["hotline-1", "hotline-2"])  # fmt: skip
    assert (_commands(sims["bucharest"]), _commands(sims["cluj"])) == (RELOADS, [])
    assert not (dirs["cluj"] / EXTENSIONS_FILE).exists()

    cluj = await http.post("/api/dialplan/apply", params={"pbx": "cluj"}, headers=admin)
    assert cluj.status_code == 200, cluj.text
    assert cluj.json()["outcome"] == "applied" and cluj.json()["version"]["pbx_id"] == "cluj"
    assert (_extens(dirs["cluj"]), _queues(dirs["cluj"])) == (["5551000", "5553000"], ["hotline-3", "hotline-4"])
    assert (_commands(sims["bucharest"]), _commands(sims["cluj"])) == (RELOADS, RELOADS)
    assert _extens(dirs["bucharest"]) == ["5551000", "5552000"]  # untouched

    # Each PBX has its own version in force: cluj's newer one does not make bucharest's text "changed".
    again = await http.post("/api/dialplan/apply", params={"pbx": "bucharest"}, headers=admin)
    assert again.json()["outcome"] == "unchanged", again.text
    assert again.json()["version"]["id"] == first.json()["version"]["id"]
    for pbx in ("bucharest", "cluj"):
        preview = await http.get("/api/dialplan/preview", params={"pbx": pbx}, headers=admin)
        assert preview.status_code == 200, preview.text
        assert (preview.json()["pbx_id"], preview.json()["pending"]) == (pbx, False)
    listed = await http.get("/api/dialplan/versions", params={"pbx": "cluj"}, headers=admin)
    assert [(v["id"], v["pbx_id"], v["status"]) for v in listed.json()] == [
        (cluj.json()["version"]["id"], "cluj", "applied")
    ]
    everything = await http.get("/api/dialplan/versions", headers=admin)
    assert [(v["pbx_id"], v["status"]) for v in everything.json()] == [("cluj", "applied"), ("bucharest", "applied")]

    for bad in (
        await http.post("/api/dialplan/apply", params={"pbx": "pbx1"}, headers=admin),
        await http.get("/api/dialplan/preview", params={"pbx": "nowhere"}, headers=admin),
    ):
        assert bad.status_code == 422, bad.text
        assert bad.json()["error_id"] == "unknown-pbx"
        assert bad.json()["details"] == {"field": "pbx", "value": bad.json()["details"]["value"],
                                         "known": ["bucharest", "cluj"]}  # fmt: skip
    assert (_commands(sims["bucharest"]), _commands(sims["cluj"])) == (RELOADS, RELOADS)

    # A rollback goes to the version's own PBX.
    moved = await http.patch("/api/admin/lines/4", json={"name": "Renamed"}, headers=admin)
    assert moved.status_code == 200, moved.text
    changed = await http.post("/api/dialplan/apply", params={"pbx": "cluj"}, headers=admin)
    assert changed.json()["outcome"] == "applied", changed.text
    back = await http.post(f"/api/dialplan/rollback/{cluj.json()['version']['id']}", headers=admin)
    assert back.status_code == 200, back.text
    assert back.json()["version"]["pbx_id"] == "cluj"
    assert (_commands(sims["bucharest"]), _commands(sims["cluj"])) == (RELOADS, RELOADS * 3)
