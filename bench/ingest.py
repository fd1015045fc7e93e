"""Ingest benchmark: AMI bytes over TCP -> decode -> track -> merge -> commit, on SQLite and PostgreSQL.

The ``load_40_calls`` capture's events are repeated until there are at least ``--events`` of them, each copy with
its own Uniqueid/Linkedid values and timestamps shifted, so every copy is a new set of 40 calls. A small AMI server
on loopback writes them to a real :class:`~hotline.services.call_listener.CallListener`:

- **throughput**: as fast as the listener reads; events/s from the first frame to the last commit;
- **latency**: paced at ``--rate`` events/s; event->commit p50/p99 (from the read of the first frame of a batch to
  the end of its commit, so each figure is the worst of its batch);
- **tracker alone**: the same events through ``CallTracker.handle`` in memory, for scale.

The process's garbage collector is tuned as ``hotline serve`` tunes it (``hotline.gc_tuning``: start-up objects and
the prepared frames frozen, a larger young generation), since that is the process the listener runs in.

Run: ``python -m bench.ingest [--events 100000] [--rate 5000] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.pg import default_url, ensure_database
from hotline.ami.frames import FrameDecoder, format_action
from hotline.db.engine import make_engine, make_session_factory
from hotline.db.migrate import upgrade
from hotline.db.models import Line
from hotline.domain.tracker import CallTracker
from hotline.gc_tuning import tune_after_startup
from hotline.services.call_listener import CallListener
from hotline.settings import PbxSettings

CAPTURE = "load_40_calls.jsonl"
LINES = {"5551000": 1, "5552000": 2, "5553000": 3}
ID_HEADERS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid")


def captures_dir() -> Path:
    env = os.environ.get("HOTLINE_CAPTURES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "ami-captures"


def load_events() -> list[dict[str, str]]:
    """The capture's events (no banner, no responses)."""
    decoder = FrameDecoder()
    events = []
    for line in (captures_dir() / CAPTURE).read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["dir"] != "recv":
            continue
        for frame in decoder.feed(item["data"].encode("utf-8")):
            if "Event" in frame:
                events.append(frame)
    return events


def multiply(events: list[dict[str, str]], at_least: int) -> list[dict[str, str]]:
    """Copies of the capture, each a new set of calls: ids suffixed, timestamps shifted past the previous copy."""
    stamps = [float(e["Timestamp"]) for e in events if "Timestamp" in e]
    span = (max(stamps) - min(stamps) + 1.0) if stamps else 60.0
    out: list[dict[str, str]] = []
    copy = 0
    while len(out) < at_least:
        for event in events:
            e = dict(event)
            for key in ID_HEADERS:
                if key in e:
                    e[key] = f"{e[key]}{copy:05d}"
            if "Timestamp" in e:
                e["Timestamp"] = f"{float(e['Timestamp']) + copy * span:.6f}"
            out.append(e)
        copy += 1
    return out


def encode(events: list[dict[str, str]]) -> list[bytes]:
    return [format_action(e) for e in events]


def _parse_actions(data: bytes, buffer: list[str]) -> list[dict[str, str]]:
    """Split the client's bytes into action frames (actions have no Event/Response, so not FrameDecoder)."""
    text = buffer[0] + data.decode("utf-8", "replace")
    *frames, buffer[0] = text.split("\r\n\r\n")
    out = []
    for frame in frames:
        out.append(dict(line.split(": ", 1) for line in frame.split("\r\n") if ": " in line))
    return out


class BlastServer:
    """Just enough AMI for the listener: banner, Login, empty resync answers, then the frames."""

    def __init__(self, frames: list[bytes], rate: float | None) -> None:
        self.frames = frames
        self.rate = rate
        self.started_at = 0.0
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        buffer: list[str] = [""]
        blast: asyncio.Task[None] | None = None
        while True:
            try:
                data = await reader.read(65536)
            except asyncio.CancelledError:  # the benchmark is over and its loop is closing: not an error
                data = b""
            if not data:
                break
            for action in _parse_actions(data, buffer):
                aid = action.get("ActionID", "")
                name = action.get("Action", "")
                if name == "Login":
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode()
                    )
                    blast = asyncio.create_task(self._blast(writer))
                elif name in ("CoreShowChannels", "QueueStatus"):
                    complete = "CoreShowChannelsComplete" if name == "CoreShowChannels" else "QueueStatusComplete"
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: will follow\r\n\r\n"
                        f"Event: {complete}\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode()
                    )
                else:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode())
        if blast:
            blast.cancel()

    async def _blast(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.2)  # let the resync finish
        self.started_at = time.perf_counter()
        frames = self.frames
        if self.rate is None:
            chunk = []
            size = 0
            for frame in frames:
                chunk.append(frame)
                size += len(frame)
                if size >= 65536:
                    writer.write(b"".join(chunk))
                    chunk, size = [], 0
                    await writer.drain()
            writer.write(b"".join(chunk))
            await writer.drain()
        else:
            tick = 0.002
            per_tick = max(1, round(self.rate * tick))
            t0 = time.perf_counter()
            for i in range(0, len(frames), per_tick):
                writer.write(b"".join(frames[i : i + per_tick]))
                target = t0 + (i // per_tick + 1) * tick
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    await writer.drain()
        self.done.set()


async def prepare_db(url: str) -> None:
    if url.startswith("postgresql"):
        from sqlalchemy import text

        await ensure_database(url)
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    async with sessions() as session:
        for number, line_id in LINES.items():
            session.add(Line(id=line_id, number=number, name=f"Line {line_id}"))
        await session.commit()
    await engine.dispose()


async def run_listener(url: str, frames: list[bytes], rate: float | None) -> dict[str, float]:
    await prepare_db(url)
    server = BlastServer(frames, rate)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    engine = make_engine(url, pool_size=5) if url.startswith("postgresql") else make_engine(url)
    sessions = make_session_factory(engine)
    listener = CallListener(
        PbxSettings(id="bench", host="127.0.0.1", port=port, username="bench", secret="bench"),
        sessions,
        connection_options={"ping_interval": 30.0},
    )
    await listener.start()
    tune_after_startup()  # as `hotline serve` does once started
    expected = len(frames)
    while listener.stats.events_handled < expected:
        await asyncio.sleep(0.01)
    await listener.drain(timeout=60)
    elapsed = time.perf_counter() - server.started_at
    latencies = sorted(listener.stats.commit_latency_ms)
    calls = listener.stats.calls_written
    await listener.stop()
    srv.close()
    await engine.dispose()
    p = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))])
        if latencies
        else (lambda q: float("nan"))
    )
    return {
        "events": expected,
        "seconds": elapsed,
        "events_per_s": expected / elapsed,
        "commits": listener.stats.commits,
        "call_rows_written": calls,
        "p50_ms": p(0.50),
        "p99_ms": p(0.99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "failed": listener.stats.events_failed,
    }


def tracker_rate(events: list[dict[str, str]]) -> float:
    tracker = CallTracker("bench", LINES)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for event in events:
        tracker.handle(event, now)
    return len(events) / (time.perf_counter() - t0)


def decode_rate(frames: list[bytes]) -> float:
    blob = b"".join(frames)
    decoder = FrameDecoder()
    decoder._want_banner = False
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(blob), 65536):
        n += len(decoder.feed(blob[i : i + 65536]))
    return n / (time.perf_counter() - t0)


async def main_async(args: argparse.Namespace) -> list[dict[str, object]]:
    events = multiply(load_events(), args.events)
    frames = encode(events)
    rows: list[dict[str, object]] = []
    print(f"{len(events)} events ({len(events) // 3546 + 1} copies of {CAPTURE}), Python {sys.version.split()[0]}")
    print(f"tracker in memory: {tracker_rate(events):,.0f} events/s; decoder: {decode_rate(frames):,.0f} frames/s")
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"))
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        for name, url in targets:
            full = await run_listener(url, frames, None)
            paced_frames = frames[: int(args.rate * args.paced_seconds)]
            url2 = url if name == "postgresql" else f"sqlite+aiosqlite:///{Path(tmp) / 'paced.db'}"
            paced = await run_listener(url2, paced_frames, args.rate)
            row = {
                "db": name,
                **{f"max_{k}": v for k, v in full.items()},
                **{f"paced_{k}": v for k, v in paced.items()},
            }
            rows.append(row)
            print(
                f"{name:10s} end-to-end {full['events_per_s']:>9,.0f} events/s "
                f"({full['events']} events, {full['commits']} commits, {full['seconds']:.2f} s) | "
                f"at {args.rate:,.0f}/s: event->commit p50 {paced['p50_ms']:.1f} ms, p99 {paced['p99_ms']:.1f} ms, "
                f"max {paced['max_ms']:.1f} ms"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5_000.0, help="paced rate for the latency run, events/s")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument(
        "--postgres",
        default=default_url("hotline_ingest_bench"),
        help="PostgreSQL URL (its schema is wiped); empty to skip",
    )
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
