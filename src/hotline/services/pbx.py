"""Starts the PBX side of a hotline process: one AMI listener per PBX, and the built-in simulator when no
Asterisk is configured (so a newcomer's first ``hotline serve`` shows calls arriving).

On PostgreSQL several processes may run; a lease (``services/leader.py``) makes exactly one of them listen to each
PBX. On SQLite (one process) and with the in-process simulator the listener starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.db.models import Line
from hotline.db.repositories import pbx as pbx_repo
from hotline.services.call_listener import CallListener
from hotline.services.leader import ListenerLease
from hotline.settings import PbxSettings

if TYPE_CHECKING:
    from hotline.bootstrap import Runtime

log = logging.getLogger(__name__)


async def ensure_demo_lines(sessions: async_sessionmaker[AsyncSession], lines: Mapping[str, int]) -> bool:
    """With the simulator and no line configured yet, create the simulator's lines so its calls are recorded."""
    async with sessions() as session:
        if await session.scalar(select(func.count()).select_from(Line)):
            return False
        for number, line_id in sorted(lines.items(), key=lambda kv: kv[1]):
            session.add(Line(id=line_id, number=number, name=f"Demo line {line_id} - simulator", source="demo",
                             timezone="UTC", always_open=True))  # fmt: skip
        await session.commit()
    log.info("created %d demo lines for the PBX simulator", len(lines))
    return True


async def _start_simulator(runtime: Runtime) -> tuple[str, int, str]:
    from hotline.ami.simulator import DEFAULT_LINES, DEFAULT_OPERATORS, PbxSimulator

    settings = runtime.settings
    secret = secrets.token_urlsafe(18)  # the simulator lives in this process only; its secret never leaves it
    simulator = PbxSimulator(username=settings.ami.username, secret=secret, lines=DEFAULT_LINES,
                             operators=DEFAULT_OPERATORS)  # fmt: skip
    port = await simulator.start("127.0.0.1", 0)
    await ensure_demo_lines(runtime.sessions, DEFAULT_LINES)
    stop = asyncio.Event()
    traffic = asyncio.create_task(simulator.generate_traffic(settings.simulator_calls_per_hour, stop))

    async def _stop() -> None:
        stop.set()
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic
        await simulator.stop()

    runtime.on_stop(_stop)
    runtime.simulator = simulator
    log.info("no Asterisk configured (HOTLINE_AMI__HOST): the built-in PBX simulator runs on 127.0.0.1:%d", port)
    return "127.0.0.1", port, secret


async def start_listener(runtime: Runtime, pbx: PbxSettings, *, simulated: bool = False) -> None:
    """Start following one PBX (with a lease on PostgreSQL so only one process does)."""

    async def acquire() -> None:
        listener = CallListener(pbx, runtime.sessions, first_pbx=pbx.id == runtime.settings.ami.id)
        listener.connection.status.extra["simulated"] = simulated
        await listener.start()
        runtime.listeners[pbx.id] = listener
        for hook in runtime.listener_hooks:
            await hook(listener)

    async def release() -> None:
        listener = runtime.listeners.pop(pbx.id, None)
        if listener is not None:
            await listener.stop()

    if runtime.settings.is_sqlite or simulated:
        await acquire()
        runtime.on_stop(release)

        def status() -> dict[str, Any]:
            listener = runtime.listeners.get(pbx.id)
            return {"role": "leader", **(listener.status() if listener else {"state": "stopped"})}

    else:
        poll = runtime.settings.leader_poll_s
        lease = ListenerLease(runtime.settings.database_url, pbx.id, acquire, release, poll_s=poll, check_s=poll)
        lease.start()
        runtime.on_stop(lease.stop)

        def status() -> dict[str, Any]:
            listener = runtime.listeners.get(pbx.id)
            return {**(listener.status() if listener else {"state": "standby"}), **lease.status()}

    runtime.pbx[pbx.id] = status


async def start_pbx(runtime: Runtime) -> None:
    pbx = runtime.settings.ami
    if pbx.simulated:
        host, port, secret = await _start_simulator(runtime)
        pbx = pbx.model_copy(update={"host": host, "port": port, "secret": SecretStr(secret)})
        await start_listener(runtime, pbx, simulated=True)
    else:
        await start_listener(runtime, pbx)
    for extra in runtime.settings.extra_pbxs:
        await start_listener(runtime, extra)
    await warn_about_unknown_pbxs(runtime)


async def warn_about_unknown_pbxs(runtime: Runtime) -> list[tuple[int, str, str]]:
    """Log the active lines whose PBX is not configured (an id removed from ``HOTLINE_EXTRA_PBXS``, or renamed):
    no listener tags their calls, no routing staffs them, no dialplan has them, until they are moved
    (``PATCH /api/admin/lines/{id}`` with ``pbx_id``) or the PBX is configured again."""
    try:
        async with runtime.sessions() as session:
            found = await pbx_repo.lines_on_unknown_pbxs(session, runtime.settings.pbx_ids)
    except Exception as exc:  # a start-up courtesy: never the reason a process does not start
        log.warning("could not look for lines on unconfigured PBXs (%s)", exc)
        return []
    for line_id, number, pbx_id in found:
        log.warning(
            "line %d (%s) is on PBX %r, which is not configured (known: %s): its calls are not tagged and its "
            "queue is not staffed",
            line_id,
            number,
            pbx_id,
            ", ".join(runtime.settings.pbx_ids),
        )
    return found
