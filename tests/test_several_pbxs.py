"""Several PBXs feed one database: one listener each, calls tagged with their PBX."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.ami.simulator import PbxSimulator
from hotline.bootstrap import build_runtime
from hotline.db.models import Call
from hotline.settings import Settings

SECRET = "pbx-secret-value"


async def test_two_pbxs_one_database(
    database_url: str, sessions: async_sessionmaker[AsyncSession], lines: None
) -> None:
    operators = {"ana": "Local/101@phones/n"}
    sims = [PbxSimulator(username="hotline", secret=SECRET, operators=operators) for _ in range(2)]
    ports = [await sim.start() for sim in sims]
    settings = Settings(
        database_url=database_url,
        auto_migrate=False,
        ami={"id": "bucharest", "host": "127.0.0.1", "port": ports[0], "secret": SECRET},
        extra_pbxs=[{"id": "cluj", "host": "127.0.0.1", "port": ports[1], "secret": SECRET}],
        _env_file=None,  # type: ignore[call-arg]
    )
    runtime = await build_runtime(settings, start_services=True)
    try:
        for _ in range(200):  # on PostgreSQL each listener starts once its lease is taken
            if len(runtime.listeners) == 2:
                break
            await asyncio.sleep(0.05)
        assert sorted(runtime.listeners) == ["bucharest", "cluj"]
        for listener in runtime.listeners.values():
            await listener.connection.wait_logged_in(5)
        # Routing would take the simulators' operators out (no shifts here): not what this test is about.
        for sync in list(getattr(runtime, "routing", {}).values()):
            await sync.stop()
        calls = [sim.place_call("5551000", f"07400000{i}", f"Caller {i}", answer_after=None, talk=0.5, patience=0.5)
                 for i, sim in enumerate(sims)]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(c.outcome for c in calls)), 20)
        for listener in runtime.listeners.values():
            await listener.drain(timeout=10)
        rows: list[Call] = []
        for _ in range(100):
            async with sessions() as session:
                rows = list(await session.scalars(select(Call).order_by(Call.pbx_id)))
            if len(rows) == 2 and all(r.outcome != "in_progress" for r in rows):
                break
            await asyncio.sleep(0.05)
        assert [(r.pbx_id, r.linkedid) for r in rows] == [("bucharest", calls[0].linkedid), ("cluj", calls[1].linkedid)]
    finally:
        await runtime.close()
        for sim in sims:
            await sim.stop()
