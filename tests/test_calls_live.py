"""``GET /api/calls/live`` end to end: uvicorn, the PBX simulator feeding a real CallListener, calls talking and
waiting, seen by a supervisor (all lines) and an operator (their lines), in the response model's exact shape; and on
PostgreSQL with several processes, the same answer from the process that listens and from the ones that do not."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.simulator import PbxSimulator
from hotline.api.schemas.calls import LiveCallOut
from hotline.db.models import Shift
from hotline.settings import Settings
from test_console_support import LINES, login, seed_people, set_presence, start_live, wait_until
from test_failover import stop_processes


async def test_live_calls_talking_and_waiting_per_viewer(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed_people(sessions)  # ana serves line 1, mihai line 2, boss sees all
    hotline, stop = await start_live(settings, speed=1.0, operators={"ana": "Local/101@phones/n"})
    try:
        await hotline.listener.reload_lines()
        async with hotline.http() as http:
            _, boss = await login(http, "boss")
            _, ana = await login(http, "ana")
            talking = hotline.simulator.place_call("5551000", "0711111111", "Ion Pop", answer_after=0.3, talk=60)
            waiting = hotline.simulator.place_call("5552000", "0722222222", "Eva Ilie", answer_after=None)

            async def states() -> dict[str, Any]:
                body = (await http.get("/api/calls/live", headers=boss)).json()
                return {c["linkedid"]: c for c in body}

            def both_there(calls: dict[str, Any]) -> bool:
                return (calls.get(talking.linkedid, {}).get("state") == "talking"
                        and calls.get(waiting.linkedid, {}).get("state") == "waiting")  # fmt: skip

            seen: dict[str, Any] = {}

            async def ready() -> bool:
                seen.update(await states())
                return both_there(seen)

            await wait_until(ready, 10, "one call talking and one waiting")
            response = await http.get("/api/calls/live", headers=boss)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            body = response.json()
            assert [c["linkedid"] for c in body] == [talking.linkedid, waiting.linkedid]  # oldest first
            assert body == [LiveCallOut.model_validate(c).model_dump(mode="json") for c in body]  # the model's shape
            first, second = body
            assert (first["line_id"], first["operator"], first["caller_number"]) == (1, "ana", "0711111111")
            assert first["talking_s"] >= 0 and first["waiting_s"] is None
            assert (second["line_id"], second["caller_name"], second["queue"]) == (2, "Eva Ilie", "hotline-2")
            assert second["waiting_s"] >= 0 and second["talking_s"] is None
            mine = (await http.get("/api/calls/live", headers=ana)).json()
            assert [c["linkedid"] for c in mine] == [talking.linkedid]  # ana does not serve line 2
    finally:
        await stop()


# --- several processes on PostgreSQL: the one that does not listen serves the same live calls ---------------------

SECRET = "live-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(database_url: str, ami_port: int, tmp: Path, name: str, workers: int = 1) -> tuple[Any, int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {"HOTLINE_DATABASE_URL": database_url, "HOTLINE_AUTO_MIGRATE": "false", "HOTLINE_AMI__HOST": "127.0.0.1",
            "HOTLINE_AMI__PORT": str(ami_port), "HOTLINE_AMI__SECRET": SECRET, "HOTLINE_LEADER_POLL_S": "0.5",
            "HOTLINE_LOG_LEVEL": "WARNING"}  # fmt: skip
    log = (tmp / f"{name}.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline.cli", "serve", "--port", str(port), "--workers", str(workers),
        env=env, stdout=log, stderr=log, cwd=tmp,
    )  # fmt: skip
    return proc, port


async def _role(port: int) -> str | None:
    """The PBX role of whichever process answers a fresh connection (leader, standby), or None if none answers."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{port}/health")).json()["pbx"]["pbx1"].get("role")  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def _live_view(port: int, headers: dict[str, str]) -> list[tuple[str, str, int]]:
    """(linkedid, state, line) of each live call, on a fresh connection."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"http://127.0.0.1:{port}/api/calls/live", headers=headers)
    assert response.status_code == 200, response.text
    return [(c["linkedid"], c["state"], c["line_id"]) for c in response.json()]


async def _people_and_calls(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """The console's people, ana on shift and available (routing, running in every process, keeps her in the
    queues), and a simulated PBX."""
    users = await seed_people(sessions)
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(Shift(user_id=users["ana"], starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2)))
        await session.commit()
    await set_presence(sessions, users["ana"], "available")
    simulator = PbxSimulator(username="hotline", secret=SECRET, lines=LINES, operators={"ana": "Local/101@phones/n"})
    return simulator, await simulator.start("127.0.0.1", 0)


@pytest.mark.postgres_only
async def test_a_standby_process_serves_the_same_live_calls_as_the_listening_one(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    simulator, ami_port = await _people_and_calls(sessions)
    procs: list[Any] = []
    try:
        ports = {}
        for name in ("a", "b"):
            proc, ports[name] = await _serve(database_url, ami_port, tmp_path, name)
            procs.append(proc)
        roles: dict[str, str | None] = {}

        async def settled() -> bool:
            roles.update({name: await _role(port) for name, port in ports.items()})
            return sorted(map(str, roles.values())) == ["leader", "standby"]

        await wait_until(settled, 30, "one leader and one standby")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['a']}", timeout=5) as http:
            _, boss = await login(http, "boss")
            _, ana = await login(http, "ana")
        talking = simulator.place_call("5551000", "0711111111", "Ion Pop", answer_after=0.3, talk=60)
        waiting = simulator.place_call("5552000", "0722222222", "Eva Ilie", answer_after=None)
        expected = [(talking.linkedid, "talking", 1), (waiting.linkedid, "waiting", 2)]

        async def both_agree() -> bool:
            return all([await _live_view(port, boss) == expected for port in ports.values()])

        await wait_until(both_agree, 15, "the same live calls from the leader and the standby")
        for port in ports.values():  # the operator's view is filtered the same way by both
            assert await _live_view(port, ana) == [(talking.linkedid, "talking", 1)]
    finally:
        await stop_processes(procs)
        await simulator.stop()


@pytest.mark.postgres_only
async def test_serve_with_two_workers_one_listens_and_every_worker_serves_live_calls(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    simulator, ami_port = await _people_and_calls(sessions)
    proc, port = await _serve(database_url, ami_port, tmp_path, "workers", workers=2)
    try:
        seen: list[str | None] = []

        async def both_roles_answered() -> bool:
            seen.append(await _role(port))
            return {"leader", "standby"} <= set(seen)

        await wait_until(both_roles_answered, 60, "answers from the leading and the standby worker")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            _, boss = await login(http, "boss")
        talking = simulator.place_call("5551000", "0711111111", "Ion Pop", answer_after=0.3, talk=60)
        expected = [(talking.linkedid, "talking", 1)]
        await wait_until(lambda: _live_view(port, boss), 15, "the call live")
        await asyncio.sleep(1.0)  # answered by now
        views = [await _live_view(port, boss) for _ in range(30)]  # fresh connections: both workers answer some
        assert views == [expected] * 30
        assert seen.count("leader") >= 1 and len(simulator.logged_in()) == 1  # one worker listens
    finally:
        await stop_processes([proc])
        await simulator.stop()
