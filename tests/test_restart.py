"""SIGKILL the only ``hotline serve`` in the middle of calls (SQLite, one process), start it again: every call is
recorded exactly once and none stays in progress — the ones that ended while it was down are closed, inferred."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from hotline.ami.simulator import PbxSimulator
from hotline.db.engine import make_engine, make_session_factory
from hotline.db.migrate import upgrade
from hotline.db.models import Call, Line
from test_failover import SECRET, _leader, _serve, add_operator_on_shift, stop_processes


async def test_sigkill_and_restart_of_a_single_process(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add(Line(id=1, number="5551000", name="Support", always_open=True))
        await add_operator_on_shift(session, "ana", "Local/101@phones/n", now)
        await session.commit()
    sim = PbxSimulator(username="hotline", secret=SECRET, operators={"ana": "Local/101@phones/n",
                                                                     "mihai": "Local/102@phones/n"})  # fmt: skip
    ami_port = await sim.start()
    proc = None
    try:
        proc, port = await _serve(url, ami_port, tmp_path, "first", HOTLINE_WRAPUP_LIMIT_S="0.2")
        await _leader({"first": port}, within=30)
        first = sim.place_call("5551000", "0711000001", "Before", answer_after=0.3, talk=0.5)
        await first.outcome
        await asyncio.sleep(0.5)  # ana's wrap-up (0.2 s here) is over
        long_call = sim.place_call("5551000", "0711000002", "Across", answer_after=0.3, talk=2.0)
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await long_call.outcome  # it ends while nobody listens
        proc, port = await _serve(url, ami_port, tmp_path, "second", HOTLINE_WRAPUP_LIMIT_S="0.2")
        await _leader({"second": port}, within=30)
        last = sim.place_call("5551000", "0711000003", "After", answer_after=0.3, talk=0.5)
        await last.outcome
        placed = {c.linkedid: c for c in (first, long_call, last)}
        rows: list[Call] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with sessions() as session:
                rows = list(await session.scalars(select(Call)))
            if len(rows) >= 3 and all(r.outcome != "in_progress" for r in rows):
                break
            await asyncio.sleep(0.2)
        by_id = {r.linkedid: r for r in rows}
        assert sorted(by_id) == sorted(placed) and len(rows) == 3
        assert by_id[first.linkedid].outcome == "answered" and not by_id[first.linkedid].end_inferred
        assert by_id[last.linkedid].outcome == "answered" and not by_id[last.linkedid].end_inferred
        across = by_id[long_call.linkedid]
        assert across.end_inferred and across.outcome == "answered" and across.caller_name == "Across"
    finally:
        if proc is not None:
            await stop_processes([proc])
        await sim.stop()
        await engine.dispose()
