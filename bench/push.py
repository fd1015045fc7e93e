"""Push benchmark: AMI event -> WebSocket latency at a steady call rate.

A child process runs the PBX simulator (placing ``--rate`` calls/s on three lines, answered by ``--operators`` queue
members; in production the PBX is another machine). This process runs a real :class:`~hotline.services.call_listener.CallListener` committing to SQLite (or ``--postgres``), the
real app under uvicorn on a free port, and one supervisor console on ``/api/ws`` (``websockets`` client).

Latency is measured per event from the moment the listener *received* the AMI frame that caused it (``AgentCalled``
for ``call.offered``, ``AgentConnect`` for ``call.answered``, the last ``Hangup`` for ``call.ended``) to the moment
the console received the WebSocket message: decode, track, commit, publish, send, receive. ``publish->ws`` is the
part after the commit. Listener, API and the console client share one event loop, as listener and API do in
``hotline serve``.

Run: ``python -m bench.push [--rate 50] [--seconds 20] [--postgres URL]``. Target: p99 <= 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

LINES = {"5551000": 1, "5552000": 2, "5553000": 3}
CAUSE = {"call.offered": "AgentCalled", "call.answered": "AgentConnect", "call.ended": "Hangup"}


async def pbx_only(rate: float, seconds: float, operators: int) -> None:
    """The PBX side in its own process (it is another machine in production): print the AMI port, wait for a line
    on stdin, place the calls, print "done" when they all ended."""
    import sys

    from hotline.ami.simulator import PbxSimulator

    members = {f"op{i:03d}": f"Local/{100 + i}@phones/n" for i in range(operators)}
    simulator = PbxSimulator(username="hotline", secret="bench-secret", lines=LINES, operators=members, seed=1)
    port = await simulator.start("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    numbers = list(LINES)
    calls = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        calls.append(simulator.place_call(numbers[i % 3], f"07{i:08d}", "Bench Caller", answer_after=0.5, talk=2.0))
    await asyncio.gather(*(c.outcome for c in calls))
    print("done", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await simulator.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(rate: float, seconds: float, operators: int, database_url: str) -> dict[str, object]:
    import httpx
    import uvicorn
    import websockets

    from hotline.api.app import create_app
    from hotline.db.engine import make_engine, make_session_factory
    from hotline.db.migrate import upgrade
    from hotline.db.models import Line
    from hotline.services.call_listener import CallListener
    from hotline.services.console import console_service
    from hotline.settings import PbxSettings, Settings
    from hotline.users import create_user

    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    async with make_session_factory(engine)() as session:
        for number, line_id in LINES.items():
            session.add(Line(id=line_id, number=number, name=f"Line {line_id}", always_open=True))
        await create_user(session, username="bench", password="bench password 123", role="supervisor")
        await session.commit()
    await engine.dispose()

    settings = Settings(database_url=database_url, auto_migrate=False, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, start_services=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    import sys

    pbx_process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.push", "--pbx-only", "--rate", str(rate), "--seconds", str(seconds),
        "--operators", str(operators), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert pbx_process.stdin is not None and pbx_process.stdout is not None
    sim_port = int((await pbx_process.stdout.readline()).decode())
    runtime = app.state.runtime
    pbx = PbxSettings(id="pbx1", host="127.0.0.1", port=sim_port, username="hotline", secret="bench-secret")
    listener = CallListener(pbx, runtime.sessions)

    arrived: dict[tuple[str, str], float] = {}
    put = listener.queue.put

    def timed_put(kind: str, frame: dict[str, str], received_at: datetime) -> bool:
        name = frame.get("Event")
        if name in ("AgentCalled", "AgentConnect", "Hangup"):
            arrived[(frame.get("Linkedid", ""), name)] = time.perf_counter()  # the last Hangup wins
        return put(kind, frame, received_at)

    listener.queue.put = timed_put  # type: ignore[method-assign]
    await listener.start()
    await listener.connection.wait_logged_in(10)
    runtime.listeners[pbx.id] = listener
    console_service(runtime)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        login = await http.post("/api/auth/login", json={"username": "bench", "password": "bench password 123"})
        token = login.json()["access_token"]
    latencies: dict[str, list[float]] = {t: [] for t in CAUSE}
    after_publish: list[float] = []
    stop = asyncio.Event()

    async def console() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/ws", subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
            ready.set()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now, wall = time.perf_counter(), time.time()
                event = json.loads(raw)
                kind = event.get("type")
                if kind in CAUSE:
                    cause = arrived.get((event["data"]["linkedid"], CAUSE[kind]))
                    if cause is not None:
                        latencies[kind].append((now - cause) * 1000)
                    after_publish.append((wall - event["at"]) * 1000)

    ready = asyncio.Event()
    reader = asyncio.create_task(console())
    await ready.wait()
    total = int(rate * seconds)
    pbx_process.stdin.write(b"go\n")
    await pbx_process.stdin.drain()
    assert (await asyncio.wait_for(pbx_process.stdout.readline(), seconds + 120)).strip() == b"done"
    await listener.drain(30)
    await asyncio.sleep(1.0)
    stop.set()
    await reader
    hub = console_service(runtime).hub
    await listener.stop()
    pbx_process.stdin.write(b"stop\n")
    await pbx_process.stdin.drain()
    await pbx_process.wait()
    server.should_exit = True
    await serving
    everything = [v for values in latencies.values() for v in values]
    return {
        "calls": total,
        "rate_calls_per_s": rate,
        "events_published": hub.stats.published,
        "dropped_consoles": hub.stats.dropped_connections,
        "per_type": {
            k: {"n": len(v), "p50_ms": round(pct(v, 0.5), 2), "p99_ms": round(pct(v, 0.99), 2)}
            for k, v in latencies.items()
        },
        "ami_to_ws_p50_ms": round(pct(everything, 0.5), 2),
        "ami_to_ws_p99_ms": round(pct(everything, 0.99), 2),
        "ami_to_ws_mean_ms": round(statistics.fmean(everything), 2) if everything else None,
        "publish_to_ws_p50_ms": round(pct(after_publish, 0.5), 2),
        "publish_to_ws_p99_ms": round(pct(after_publish, 0.99), 2),
        "commit_p50_ms": round(pct(list(listener.stats.commit_latency_ms), 0.5), 2),
        "commit_p99_ms": round(pct(list(listener.stats.commit_latency_ms), 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--operators", type=int, default=200)
    parser.add_argument("--postgres", help="postgresql+asyncpg:// URL of an EMPTY database (it is migrated)")
    parser.add_argument("--pbx-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pbx_only:
        asyncio.run(pbx_only(args.rate, args.seconds, args.operators))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        result = asyncio.run(run(args.rate, args.seconds, args.operators, url))
    result["database"] = "postgresql" if args.postgres else "sqlite"
    print(json.dumps(result, indent=2))
    ok = result["ami_to_ws_p99_ms"] <= 25  # type: ignore[operator]
    print(f"target p99 <= 25 ms: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
