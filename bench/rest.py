"""REST latency under load: ``GET /api/calls`` and ``GET /api/calls/live`` at 300 requests/s (open loop) against
``hotline serve`` on PostgreSQL holding 1,000,000 calls, while its listener ingests 5,000 AMI events/s.

Run: ``python -m bench.rest [--calls 1000000] [--rps 300] [--seconds 20] [--workers 1] [--postgres URL]``. With
``--workers N`` the server runs N API processes sharing the port; one of them holds the listener lease and ingests.
The PostgreSQL schema is wiped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import text

from bench.ingest import BlastServer, encode, load_events, multiply, prepare_db
from bench.pg import default_url
from hotline.db.engine import make_engine

PASSWORD = "bench password 123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fill_calls(url: str, n: int) -> float:
    """n calls over the last 60 days on lines 1-3, generated inside PostgreSQL (seconds, not minutes)."""
    t0 = time.perf_counter()
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO calls (pbx_id, linkedid, line_id, number, caller_number, caller_name, arrived_at,
                                   queued_at, answered_at, ended_at, wait_s, talk_s, operator, rang, outcome,
                                   route, end_inferred, seen_first_in_resync, updated_at)
                SELECT 'old', 'b' || g, 1 + g % 3, '555' || (1 + g % 3) || '000', '07' || lpad((g % 100000)::text, 8, '0'),
                       NULL, now() - (g || ' seconds')::interval * 5, now() - (g || ' seconds')::interval * 5,
                       CASE WHEN g % 7 <> 0 THEN now() - (g || ' seconds')::interval * 5 + interval '12 seconds' END,
                       now() - (g || ' seconds')::interval * 5 + interval '200 seconds',
                       (g % 40)::float, CASE WHEN g % 7 <> 0 THEN (60 + g % 300)::float END,
                       CASE WHEN g % 7 <> 0 THEN (ARRAY['ana','mihai','ioana','elena'])[1 + g % 4] END,
                       '[]'::json, CASE WHEN g % 7 <> 0 THEN 'answered' ELSE 'abandoned' END, 'queue', false, false, now()
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": n},
        )
        await conn.execute(text("ANALYZE calls"))
    await engine.dispose()
    return time.perf_counter() - t0


class _Connection:
    """One keep-alive HTTP/1.1 connection. A hand-written client on purpose: httpx's pool spends O(n^2) time
    assigning queued requests, so at a few hundred requests/s the load generator, not the server, was measured."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


async def load(base: str, token: str, rps: float, seconds: float, connections: int = 64) -> dict[str, list[float]]:
    """Open loop: requests start on schedule whatever the previous ones are doing (no coordinated omission); a
    request waiting for a free connection counts that wait in its latency."""
    host, port = base.removeprefix("http://").split(":")
    paths = ["/api/calls", "/api/calls/live"]
    latencies: dict[str, list[float]] = {p: [] for p in paths}
    errors: dict[str, int] = {p: 0 for p in paths}
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(_Connection(host, int(port), token))

    async def one(path: str, scheduled: float) -> None:
        conn = await free.get()
        try:
            status = await asyncio.wait_for(conn.get(path), 10)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            status = 0
            if conn.writer is not None:
                conn.writer.close()
            conn.writer = None
        free.put_nowait(conn)
        if status == 200:
            latencies[path].append((time.perf_counter() - scheduled) * 1000)
        else:
            errors[path] += 1

    tasks = []
    start = time.perf_counter()
    for i in range(int(rps * seconds)):
        target = start + i / rps
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(paths[i % 2], target)))
    await asyncio.gather(*tasks)
    for path, n in errors.items():
        if n:
            print(f"  {path}: {n} errors")
    return latencies


async def _events_ingested(base: str) -> int:
    """The listening process's count from /health. With several workers a new connection may land on a standby,
    which does not count, so ask on fresh connections until the leader answers."""
    for _ in range(100):
        async with httpx.AsyncClient(base_url=base) as http:
            pbx = (await http.get("/health")).json()["pbx"].get("pbx1", {})
        if pbx.get("role") == "leader":
            return int(pbx.get("events_handled", 0))
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    url = args.postgres
    await prepare_db(url)
    filled = await fill_calls(url, args.calls)
    print(f"{args.calls:,} calls stored in {filled:.1f} s")
    frames = encode(multiply(load_events(), int(args.ingest_rate * (args.seconds + 15))))
    blast = BlastServer(frames, args.ingest_rate)
    ami = await asyncio.start_server(blast.handle, "127.0.0.1", 0)
    ami_port = ami.sockets[0].getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= {"HOTLINE_DATABASE_URL": url, "HOTLINE_AMI__HOST": "127.0.0.1", "HOTLINE_AMI__PORT": str(ami_port),
            "HOTLINE_AMI__USERNAME": "bench", "HOTLINE_AMI__SECRET": "bench", "HOTLINE_LOG_LEVEL": "WARNING"}  # fmt: skip
    hotline = [sys.executable, "-m", "hotline.cli"]
    subprocess.run([*hotline, "create-user", "bench", "--role", "supervisor", "--password-stdin"], env=env,
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True)  # fmt: skip
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([*hotline, "serve", "--port", str(port), "--workers", str(args.workers)], env=env,
                                  cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                token = (await http.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})).json()
            await asyncio.sleep(3)  # ingest running
            # This process holds the ~175,000 prepared AMI frames: its own full collections would stall the load
            # generator's loop (100 ms and more, measured) and be counted as server latency. Nothing here is garbage.
            gc.collect()
            gc.freeze()
            latencies = await load(base, token["access_token"], args.rps, args.seconds)
            ingested = await _events_ingested(base)
        finally:
            server.terminate()
            server.wait(timeout=20)
            ami.close()
    out = {}
    for path, values in latencies.items():
        out[f"{path} p50"] = pct(values, 0.50)
        out[f"{path} p99"] = pct(values, 0.99)
        print(f"{path:18s} {len(values):5d} ok  p50 {pct(values, 0.5):6.1f} ms  p99 {pct(values, 0.99):6.1f} ms")
    print(f"events ingested by the server meanwhile: {ingested:,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rps", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ingest-rate", type=float, default=5_000.0)
    parser.add_argument("--workers", type=int, default=1, help="API processes of the server (hotline serve --workers)")
    parser.add_argument(
        "--postgres",
        default=default_url("hotline_rest_bench"),
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
