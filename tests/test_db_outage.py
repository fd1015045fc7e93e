"""PostgreSQL unreachable for 30 s in the middle of ingest: frames wait in a bounded buffer, the listener stops
reading from the PBX when it is full (and says so), and every call is stored once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capture_replay import expected_rows
from hotline.db.engine import make_engine, make_session_factory
from hotline.services.call_listener import CallListener
from replay import ReplayServer
from test_listener import FAST, compare, pbx, stored_calls

pytestmark = pytest.mark.postgres_only

OUTAGE_S = 30.0


class CuttableProxy:
    """A TCP proxy to PostgreSQL that can drop every connection and refuse new ones, like a network cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.up = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while self.up and (data := await reader.read(65536)):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def cut(self) -> None:
        self.up = False
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.up = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def test_thirty_seconds_without_postgresql_loses_nothing(
    database_url: str, sessions: async_sessionmaker[AsyncSession], lines: None
) -> None:
    parts = urlsplit(database_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy_port = await proxy.start()
    netloc = f"{parts.username + '@' if parts.username else ''}127.0.0.1:{proxy_port}"
    engine = make_engine(urlunsplit(parts._replace(netloc=netloc)), pool_pre_ping=True)
    # Paced replay (about 20 s for the whole load) so the outage falls in the middle of it.
    server = ReplayServer("load_40_calls", scale=0.33, chunking=(200, 2000), seed=5)
    port = await server.start()
    listener = CallListener(
        pbx(port), make_session_factory(engine), high_water=300, low_water=100, retry_cap_s=1.0,
        connection_options=FAST,
    )  # fmt: skip
    observed: dict[str, Any] = {"paused": False, "failing": False, "max_queue": 0}
    try:
        await listener.start()
        await asyncio.sleep(4)
        proxy.cut()
        loop = asyncio.get_running_loop()
        end = loop.time() + OUTAGE_S
        while loop.time() < end:
            status = listener.status()
            observed["paused"] |= status["reading_paused"]
            observed["failing"] |= status["database_write_failing"]
            observed["max_queue"] = max(observed["max_queue"], status["queued_frames"])
            await asyncio.sleep(0.2)
        proxy.restore()
        await asyncio.wait_for(server.finished.wait(), 60)
        expected = expected_rows("load_40_calls")
        deadline = loop.time() + 60
        rows = await stored_calls(sessions)
        while loop.time() < deadline and not (
            len(rows) >= len(expected) and all(r.outcome != "in_progress" for r in rows)
        ):
            await asyncio.sleep(0.3)
            rows = await stored_calls(sessions)
        compare(rows, expected)
        assert observed["failing"], "the outage was noticed"
        assert observed["paused"], "reading from the PBX paused while the buffer was full"
        # Bounded: high water plus what one read can add (a read is at most 64 KiB: a few hundred frames).
        assert observed["max_queue"] < 300 + 600
        assert listener.status()["database_write_failing"] is False
        assert listener.status()["reading_paused"] is False
    finally:
        await listener.stop()
        await server.stop()
        await engine.dispose()
        await proxy.stop()
