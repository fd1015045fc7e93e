"""Dialplan apply end to end: the real app, a real database, the real AMI client talking to the PBX simulator over
TCP, and the rendered files on disk.

What must hold: the version row is committed before Asterisk is asked to reload; a refused reload leaves the
previous files byte for byte and the previous version in force; a rollback re-applies an old text exactly; a line
value that could break out of the config (stored by hand, past the admin API) stops everything with a 422.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.server import ServerConnection, build_frame, get_header
from hotline.ami.simulator import PbxSimulator
from hotline.db.models import AuditEntry, DialplanVersion, Line
from hotline.dialplan import EXTENSIONS_FILE, QUEUES_FILE, LineConfig, render
from hotline.services.call_listener import CallListener
from hotline.services.dialplan_service import command_failure
from hotline.settings import PbxSettings
from hotline.users import create_user

PASSWORD = "a long enough password"
FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "ping_interval": 0.5, "ping_timeout": 2.0}
RELOADS = ["dialplan reload", "module reload app_queue.so"]
POISON = "5559999"
"""A line number the failing simulators pretend Asterisk cannot load."""

LINES = (
    LineConfig(id=1, number="5551000", name="Linia principală", queue_timeout_s=60, member_ring_timeout_s=15),
    LineConfig(id=2, number="5552000", name="Admitere 2026", max_channels=2, queue_timeout_s=60,
               member_ring_timeout_s=15, overflow_to="0219990000"),
)  # fmt: skip


class CheckingSimulator(PbxSimulator):
    """Records, for each reload command, what a fresh database session sees at that moment: the version rows and
    the dialplan audit entries (so the test can tell the commit came first)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialplan_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.dialplan_dir = dialplan_dir
        self.seen: list[dict[str, Any]] = []

    async def _action_command(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        command = " ".join((get_header(action, "Command") or "").split())
        async with self.sessions() as session:
            versions = [(v.id, v.status, v.checksum) for v in await session.scalars(select(DialplanVersion))]
            audits = [(a.action, a.entity_id) for a in await session.scalars(select(AuditEntry))]
        self.seen.append({"command": command, "versions": versions, "audits": audits})
        return await super()._action_command(conn, action)

    def poisoned(self) -> bool:
        path = self.dialplan_dir / EXTENSIONS_FILE
        return path.exists() and POISON in path.read_text(encoding="utf-8")


def command_reply(action: dict[str, str], response: str, output: str) -> str:
    """A ``Command`` answer the way Asterisk 13+ writes it."""
    aid = get_header(action, "ActionID")
    headers = [("Response", response), *([("ActionID", aid)] if aid else [])]
    return build_frame([*headers, ("Message", "Command output follows"), ("Output", output)])


class ErrorSimulator(CheckingSimulator):
    """``dialplan reload`` answers ``Response: Error`` while the files on disk hold the poison number."""

    async def _action_command(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        frames = await super()._action_command(conn, action)
        if self.seen[-1]["command"] == "dialplan reload" and self.poisoned():
            return [command_reply(action, "Error", "Failed to reload the dialplan.")]
        return frames


class OutputFailureSimulator(CheckingSimulator):
    """``module reload app_queue.so`` answers Success but its Output reports the failure (as Asterisk does)."""

    async def _action_command(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        frames = await super()._action_command(conn, action)
        if self.seen[-1]["command"].startswith("module reload") and self.poisoned():
            return [command_reply(action, "Success", "The module 'app_queue.so' reported a reload failure.")]
        return frames


StartPbx = Callable[[type[CheckingSimulator]], Awaitable[CheckingSimulator]]


@pytest.fixture
async def seeded(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        for line in LINES:
            session.add(
                Line(id=line.id, number=line.number, name=line.name, max_channels=line.max_channels,
                     overflow_to=line.overflow_to, queue_timeout_s=60, member_ring_timeout_s=15,
                     recording=line.recording, timezone="UTC")
            )  # fmt: skip
        await session.flush()
        users = {}
        for name, role in (("root", "admin"), ("boss", "supervisor"), ("ana", "operator")):
            users[name] = (await create_user(session, username=name, password=PASSWORD, role=role)).id
        await session.commit()
    return users


@pytest.fixture
async def start_pbx(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[StartPbx]:
    """Start a (subclassed) simulator and a listener connected to it, registered in the app's runtime."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    started: list[tuple[CallListener, PbxSimulator]] = []

    async def start(kind: type[CheckingSimulator]) -> CheckingSimulator:
        simulator = kind(sessions, runtime.settings.dialplan_dir, lines={"5551000": 1, "5552000": 2})
        port = await simulator.start("127.0.0.1", 0)
        pbx = PbxSettings(id=runtime.settings.ami.id, host="127.0.0.1", port=port, username="hotline",
                          secret="hotline-secret")  # fmt: skip
        listener = CallListener(pbx, sessions, connection_options=FAST)
        await listener.start()
        await listener.connection.wait_logged_in(10)
        runtime.listeners[pbx.id] = listener
        started.append((listener, simulator))
        return simulator

    yield start
    for listener, simulator in started:
        runtime.listeners.pop(listener.pbx.id, None)
        await listener.stop()
        await simulator.stop()


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def commands(simulator: PbxSimulator) -> list[str]:
    return [
        " ".join((get_header(a, "Command") or "").split())
        for a in simulator.actions_received
        if (get_header(a, "Action") or "").lower() == "command"
    ]


def files_of(directory: Path) -> dict[str, bytes | None]:
    return {
        name: (directory / name).read_bytes() if (directory / name).exists() else None
        for name in (EXTENSIONS_FILE, QUEUES_FILE)
    }


async def versions(sessions: async_sessionmaker[AsyncSession]) -> list[DialplanVersion]:
    async with sessions() as session:
        return list(await session.scalars(select(DialplanVersion).order_by(DialplanVersion.id)))


async def rename_line(sessions: async_sessionmaker[AsyncSession], line_id: int, **values: Any) -> None:
    async with sessions() as session:
        line = await session.get(Line, line_id)
        assert line is not None
        for key, value in values.items():
            setattr(line, key, value)
        await session.commit()


# --- apply ------------------------------------------------------------------------------------------------------


async def test_apply_writes_the_files_and_reloads_only_after_the_version_is_committed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    simulator = await start_pbx(CheckingSimulator)
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    assert not directory.exists()

    before = await client.get("/api/dialplan/preview", headers=admin)
    assert before.status_code == 200, before.text
    assert before.json()["pending"] is True and before.json()["applied_version"] is None

    response = await client.post("/api/dialplan/apply", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "applied"
    version_id = body["version"]["id"]
    assert body["version"]["status"] == "applied" and body["version"]["author_id"] == seeded["root"]

    expected = render(LINES)
    assert files_of(directory) == {
        EXTENSIONS_FILE: expected.extensions.encode("utf-8"),
        QUEUES_FILE: expected.queues.encode("utf-8"),
    }
    assert sorted(p.name for p in directory.iterdir()) == sorted([EXTENSIONS_FILE, QUEUES_FILE])  # no temp files

    assert commands(simulator) == RELOADS
    # Each reload arrived when a fresh session could already see the pending version and its audit entry.
    assert [s["command"] for s in simulator.seen] == RELOADS
    for seen in simulator.seen:
        assert seen["versions"] == [(version_id, "pending", body["version"]["checksum"])]
        assert seen["audits"] == [("apply", str(version_id))]

    async with sessions() as session:
        audit = (await session.scalars(select(AuditEntry))).one()
    assert (audit.entity, audit.action, audit.user_id, audit.before) == ("dialplan", "apply", seeded["root"], None)
    assert audit.after == {"version": version_id, "checksum": body["version"]["checksum"], "pbx_id": "pbx1"}
    assert body["version"]["pbx_id"] == "pbx1"

    after = (await client.get("/api/dialplan/preview", headers=admin)).json()
    assert after["pending"] is False and after["diff"] == ""
    assert after["applied_version"]["id"] == version_id

    detail = (await client.get(f"/api/dialplan/versions/{version_id}", headers=admin)).json()
    assert detail["extensions_text"] == expected.extensions and detail["queues_text"] == expected.queues


async def test_unchanged_text_sends_no_reload_and_stores_no_version(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    simulator = await start_pbx(CheckingSimulator)
    admin = await login(client, "root")
    first = (await client.post("/api/dialplan/apply", headers=admin)).json()

    again = await client.post("/api/dialplan/apply", headers=admin)
    assert again.status_code == 200
    assert again.json()["outcome"] == "unchanged"
    assert again.json()["version"]["id"] == first["version"]["id"]
    assert "no reload" in again.json()["message"]
    assert commands(simulator) == RELOADS  # only the first apply's
    assert len(await versions(sessions)) == 1


async def test_a_changed_line_is_pending_then_supersedes_the_previous_version(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    await start_pbx(CheckingSimulator)
    admin = await login(client, "root")
    first = (await client.post("/api/dialplan/apply", headers=admin)).json()["version"]["id"]

    await rename_line(sessions, 2, name="Admitere 2027")
    preview = (await client.get("/api/dialplan/preview", headers=admin)).json()
    assert preview["pending"] is True
    assert "-; line 2: Admitere 2026\n" in preview["diff"] and "+; line 2: Admitere 2027\n" in preview["diff"]

    second = await client.post("/api/dialplan/apply", headers=admin)
    assert second.json()["outcome"] == "applied"
    assert [(v.id, v.status) for v in await versions(sessions)] == [
        (first, "superseded"),
        (second.json()["version"]["id"], "applied"),
    ]
    listed = (await client.get("/api/dialplan/versions", headers=admin)).json()
    assert [v["id"] for v in listed] == [second.json()["version"]["id"], first]
    assert "extensions_text" not in listed[0]
    older = (await client.get(f"/api/dialplan/versions?before={listed[0]['id']}", headers=admin)).json()
    assert [v["id"] for v in older] == [first]


# --- a refused reload ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ErrorSimulator, OutputFailureSimulator])
async def test_a_refused_reload_restores_the_previous_files_and_keeps_the_previous_version(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    seeded: dict[str, int],
    start_pbx: StartPbx,
    kind: type[CheckingSimulator],
) -> None:
    simulator = await start_pbx(kind)
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    good = (await client.post("/api/dialplan/apply", headers=admin)).json()["version"]["id"]
    good_files = files_of(directory)
    simulator.actions_received.clear()

    await rename_line(sessions, 2, number=POISON)
    response = await client.post("/api/dialplan/apply", headers=admin)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["outcome"] == "failed" and body["version"]["status"] == "failed"
    assert body["message"] == body["version"]["result"]
    failing = "dialplan reload" if kind is ErrorSimulator else "module reload app_queue.so"
    assert body["message"].startswith(f"{failing}: ")
    assert "restored byte for byte and reloaded" in body["message"]
    assert f"version {good} stays in force" in body["message"]

    assert files_of(directory) == good_files
    # the failed round, then the previous files reloaded again
    expected = ["dialplan reload", *RELOADS] if kind is ErrorSimulator else RELOADS + RELOADS
    assert commands(simulator) == expected
    assert [(v.id, v.status) for v in await versions(sessions)] == [
        (good, "applied"),
        (body["version"]["id"], "failed"),
    ]
    preview = (await client.get("/api/dialplan/preview", headers=admin)).json()
    assert preview["pending"] is True and preview["applied_version"]["id"] == good


async def test_a_refused_first_apply_leaves_no_files_behind(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    await start_pbx(ErrorSimulator)
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    await rename_line(sessions, 1, number=POISON)

    response = await client.post("/api/dialplan/apply", headers=admin)
    assert response.status_code == 502
    assert "no version is in force" in response.json()["message"]
    assert files_of(directory) == {EXTENSIONS_FILE: None, QUEUES_FILE: None}
    assert [v.status for v in await versions(sessions)] == ["failed"]


# --- rollback -----------------------------------------------------------------------------------------------------


async def test_rollback_re_applies_an_earlier_text_byte_for_byte(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    simulator = await start_pbx(CheckingSimulator)
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    v1 = (await client.post("/api/dialplan/apply", headers=admin)).json()["version"]["id"]
    v1_files = files_of(directory)
    await rename_line(sessions, 1, name="Linia nouă", closed_action="forward", forward_to="0219990001")
    v2 = (await client.post("/api/dialplan/apply", headers=admin)).json()["version"]["id"]
    assert files_of(directory) != v1_files
    simulator.actions_received.clear()

    response = await client.post(f"/api/dialplan/rollback/{v1}", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "applied" and f"rolled back to the text of version {v1}" in body["message"]
    v3 = body["version"]["id"]
    assert files_of(directory) == v1_files
    assert commands(simulator) == RELOADS
    assert [(v.id, v.status) for v in await versions(sessions)] == [(v1, "superseded"), (v2, "superseded"),
                                                                     (v3, "applied")]  # fmt: skip
    async with sessions() as session:
        stored = {v.id: v for v in await session.scalars(select(DialplanVersion))}
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "rollback"))).one()
    assert (stored[v3].extensions_text, stored[v3].queues_text) == (stored[v1].extensions_text, stored[v1].queues_text)
    assert audit.after == {"version": v3, "checksum": stored[v1].checksum, "rollback_of": v1, "pbx_id": "pbx1"}
    assert audit.before == {"version": v2, "checksum": stored[v2].checksum}

    # The database still says what v2 said: the preview shows the difference as pending.
    assert (await client.get("/api/dialplan/preview", headers=admin)).json()["pending"] is True
    same = await client.post(f"/api/dialplan/rollback/{v1}", headers=admin)
    assert same.json()["outcome"] == "unchanged"


async def test_rollback_refuses_unknown_and_never_applied_versions(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int], start_pbx: StartPbx
) -> None:
    await start_pbx(ErrorSimulator)
    admin = await login(client, "root")
    await rename_line(sessions, 1, number=POISON)
    failed = (await client.post("/api/dialplan/apply", headers=admin)).json()["version"]["id"]

    missing = await client.post("/api/dialplan/rollback/999", headers=admin)
    assert missing.status_code == 404 and missing.json()["error_id"] == "not-found"
    never = await client.post(f"/api/dialplan/rollback/{failed}", headers=admin)
    assert never.status_code == 409 and "never in force" in never.json()["message"]
    assert (await client.get("/api/dialplan/versions/999", headers=admin)).status_code == 404


# --- injection and refusals -------------------------------------------------------------------------------------

INJECTIONS = [
    ("name", "Support\n[evil]\nexten => _X.,1,System(id)"),
    ("name", "Support; comment"),
    ("name", "Support, extra"),
    ("name", "Support)"),
    ("name", "x${SHELL(id)}"),
    ("name", "[ctx]"),
    ("number", "5553000\n"),
    ("number", "5553000;1"),
    ("number", "555,3000"),
    ("number", "5553000)"),
    ("number", "${EXTEN}"),
    ("forward_to", "[outside]"),
]


@pytest.mark.parametrize(("field", "value"), INJECTIONS)
async def test_injection_stored_past_the_api_is_refused_at_render_time(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    seeded: dict[str, int],
    start_pbx: StartPbx,
    field: str,
    value: str,
) -> None:
    simulator = await start_pbx(CheckingSimulator)
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    assert (await client.post("/api/dialplan/apply", headers=admin)).json()["outcome"] == "applied"
    good_files = files_of(directory)
    simulator.actions_received.clear()

    values: dict[str, Any] = {"number": "5553000", "name": "Support", field: value}
    if field == "forward_to":
        values["closed_action"] = "forward"
    async with sessions() as session:
        session.add(Line(id=7, timezone="UTC", **values))
        await session.commit()

    for method, path in (("POST", "/api/dialplan/apply"), ("GET", "/api/dialplan/preview")):
        response = await client.request(method, path, headers=admin)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error_id"] == "dialplan-invalid"
        assert f"line 7, field {field}:" in body["message"]
        assert (body["details"]["line_id"], body["details"]["field"]) == (7, field)
    assert files_of(directory) == good_files
    assert commands(simulator) == []
    assert len(await versions(sessions)) == 1


async def test_every_bad_line_is_reported_and_inactive_lines_are_not_rendered(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int]
) -> None:
    admin = await login(client, "root")
    async with sessions() as session:
        session.add_all([
            Line(id=7, number="5557000", name="a;b", timezone="UTC"),
            Line(id=8, number="5558000\n", name="ok", timezone="UTC"),
            Line(id=9, number="5559000", name="${old}", timezone="UTC", active=False),
        ])  # fmt: skip
        await session.commit()
    response = await client.get("/api/dialplan/preview", headers=admin)
    assert response.status_code == 422
    problems = response.json()["details"]["problems"]
    assert [(p["line_id"], p["field"]) for p in problems] == [(7, "name"), (8, "number")]

    await rename_line(sessions, 7, active=False)
    await rename_line(sessions, 8, active=False)
    preview = await client.get("/api/dialplan/preview", headers=admin)
    assert preview.status_code == 200
    assert "5559000" not in preview.json()["extensions_text"]


async def test_without_a_connected_pbx_apply_is_a_503_and_writes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seeded: dict[str, int]
) -> None:
    admin = await login(client, "root")
    directory: Path = client.app.state.runtime.settings.dialplan_dir  # type: ignore[attr-defined]
    response = await client.post("/api/dialplan/apply", headers=admin)
    assert response.status_code == 503
    assert response.json()["error_id"] == "pbx-not-connected"
    assert "not connected" in response.json()["message"]
    assert not directory.exists()
    assert await versions(sessions) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize("role", ["boss", "ana"])
async def test_only_admins_reach_the_dialplan(client: httpx.AsyncClient, seeded: dict[str, int], role: str) -> None:
    headers = await login(client, role)
    for method, path in (
        ("GET", "/api/dialplan/preview"),
        ("POST", "/api/dialplan/apply"),
        ("POST", "/api/dialplan/rollback/1"),
        ("GET", "/api/dialplan/versions"),
        ("GET", "/api/dialplan/versions/1"),
    ):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error_id"] == "forbidden"
        assert (await client.request(method, path)).status_code == 401


# --- reading Asterisk's answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "failed"),
    [
        ({"Response": "Success", "Output": "Dialplan reloaded."}, False),
        ({"Response": "Success", "Output": "Module 'app_queue.so' reloaded successfully."}, False),
        ({"Response": "Success", "Message": "Command output follows"}, False),  # Asterisk < 13 on success
        ({"Response": "Error", "Output": "No such command 'dialplan reload'"}, True),
        ({"Response": "Success", "Output": "No such module 'app_queue.so'"}, True),
        ({"Response": "Success", "Output": "The module 'app_queue.so' reported a reload failure."}, True),
        ({"Response": "Success", "Output": "The module 'app_queue.so' does not support reloads"}, True),
        ({"Response": "Success", "Output": "Asterisk cannot reload a module yet; request queued"}, True),
    ],
)
def test_command_answers_are_read_for_failures(frame: dict[str, str], failed: bool) -> None:
    problem = command_failure(frame)
    assert (problem is not None) is failed
    if failed:
        assert frame["Output"] in str(problem)


def test_files_are_replaced_whole_keep_their_mode_and_none_removes_them(tmp_path: Path) -> None:
    from hotline.services import dialplan_files

    directory = tmp_path / "nested" / "dialplan"
    dialplan_files.write_files(directory, {EXTENSIONS_FILE: b"one\n", QUEUES_FILE: "ș\n".encode()})
    assert dialplan_files.read_snapshot(directory) == {EXTENSIONS_FILE: b"one\n", QUEUES_FILE: "ș\n".encode()}
    assert (directory / EXTENSIONS_FILE).stat().st_mode & 0o777 == 0o644
    (directory / EXTENSIONS_FILE).chmod(0o640)
    dialplan_files.write_files(directory, {EXTENSIONS_FILE: b"two\n", QUEUES_FILE: None})
    assert dialplan_files.read_snapshot(directory) == {EXTENSIONS_FILE: b"two\n", QUEUES_FILE: None}
    assert (directory / EXTENSIONS_FILE).stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in directory.iterdir()) == [EXTENSIONS_FILE]
