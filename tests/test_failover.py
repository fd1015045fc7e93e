"""Two ``hotline serve`` processes on one PostgreSQL and one PBX: exactly one listens; SIGKILL it and the other takes
over within 10 s, resyncs, and every call is recorded once with its real outcome."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.simulator import PbxSimulator
from hotline.db.models import Call, Line, OperatorLine, PresenceLog, Shift
from hotline.users import create_user

pytestmark = pytest.mark.postgres_only

SECRET = "failover-secret"
TAKEOVER_LIMIT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(
    database_url: str, ami_port: int, tmp: Path, name: str, **extra_env: str
) -> tuple[asyncio.subprocess.Process, int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {
        "HOTLINE_DATABASE_URL": database_url,
        "HOTLINE_AUTO_MIGRATE": "false",
        "HOTLINE_AMI__HOST": "127.0.0.1",
        "HOTLINE_AMI__PORT": str(ami_port),
        "HOTLINE_AMI__SECRET": SECRET,
        "HOTLINE_LEADER_POLL_S": "0.5",
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    env |= extra_env
    log = (tmp / f"{name}.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline.cli", "serve", "--port", str(port), env=env, stdout=log, stderr=log, cwd=tmp
    )
    return proc, port


async def _pbx_status(port: int) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            body = (await http.get(f"http://127.0.0.1:{port}/health")).json()
        return body["pbx"].get("pbx1")
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def _leader(ports: dict[str, int], within: float) -> tuple[str, float]:
    """The process that leads and is connected, and how long it took to find it."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        for name, port in ports.items():
            status = await _pbx_status(port)
            if status and status.get("role") == "leader" and status.get("state") == "connected":
                return name, time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"no process took the lead within {within} s")


async def test_sigkill_of_the_listening_process_hands_over_without_losing_calls(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # A 24/7 line with two operators on shift and available: routing (running in both processes) keeps them in
    # the queue, so every call below is answered.
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support", always_open=True))
        for username, device in (("ana", "Local/101@phones/n"), ("mihai", "Local/102@phones/n")):
            await add_operator_on_shift(session, username, device, now)
        await session.commit()
    sim = PbxSimulator(username="hotline", secret=SECRET, operators={"ana": "Local/101@phones/n",
                                                                     "mihai": "Local/102@phones/n"})  # fmt: skip
    ami_port = await sim.start()
    procs: dict[str, asyncio.subprocess.Process] = {}
    ports: dict[str, int] = {}
    try:
        for name in ("a", "b"):
            procs[name], ports[name] = await _serve(database_url, ami_port, tmp_path, name)
        first, _ = await _leader(ports, within=30)
        other = "b" if first == "a" else "a"
        for _ in range(100):  # the other process may still be starting
            if (await _pbx_status(ports[other]) or {}).get("role") == "standby":
                break
            await asyncio.sleep(0.1)
        assert (await _pbx_status(ports[other]) or {}).get("role") == "standby"

        before = [
            sim.place_call("5551000", f"07100000{i}", f"Before {i}", answer_after=0.3, talk=1.0) for i in range(3)
        ]
        await asyncio.gather(*(c.outcome for c in before))
        # Calls still talking when the leader dies: they end after the other process took over.
        during = [
            sim.place_call("5551000", f"07200000{i}", f"During {i}", answer_after=0.3, talk=12.0) for i in range(2)
        ]
        await asyncio.sleep(1.5)
        procs[first].send_signal(signal.SIGKILL)
        await procs[first].wait()
        new_leader, took = await _leader({other: ports[other]}, within=TAKEOVER_LIMIT_S + 5)
        assert new_leader == other
        assert took <= TAKEOVER_LIMIT_S, f"takeover took {took:.1f} s"
        after = [sim.place_call("5551000", f"07300000{i}", f"After {i}", answer_after=0.3, talk=1.0) for i in range(3)]
        await asyncio.gather(*(c.outcome for c in [*during, *after]))

        placed = {c.linkedid: c for c in [*before, *during, *after]}
        deadline = time.monotonic() + 20
        rows: list[Call] = []
        while time.monotonic() < deadline:
            async with sessions() as session:
                rows = list(await session.scalars(select(Call)))
            if len(rows) >= len(placed) and all(r.outcome != "in_progress" for r in rows):
                break
            await asyncio.sleep(0.3)
        by_id = {r.linkedid: r for r in rows}
        assert sorted(by_id) == sorted(placed), "every call recorded, once"
        assert len(rows) == len(by_id)
        for linkedid, handle in placed.items():
            row = by_id[linkedid]
            assert row.outcome == handle.outcome.result(), linkedid
            assert not row.end_inferred, linkedid  # every end was seen, by one process or the other
        assert {by_id[c.linkedid].caller_name for c in during} == {"During 0", "During 1"}
    finally:
        await stop_processes(list(procs.values()))
        await sim.stop()


async def stop_processes(procs: list[Any]) -> None:
    """Terminate the ``hotline serve`` subprocesses still running; kill one that does not stop within 15 s."""
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()


async def add_operator_on_shift(session: AsyncSession, username: str, device: str, now: datetime) -> None:
    """An operator serving line 1, on shift from an hour ago for three hours, available for five minutes."""
    user = await create_user(session, username=username, password="operator password", role="operator",
                             device=device)  # fmt: skip
    session.add_all([
        OperatorLine(user_id=user.id, line_id=1, priority=0),
        Shift(user_id=user.id, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2)),
        PresenceLog(user_id=user.id, state="available", at=now - timedelta(minutes=5)),
    ])  # fmt: skip
