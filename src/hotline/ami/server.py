"""The server side of the Asterisk Manager Interface, just enough of it to stand in for Asterisk.

Used by the replay server of the tests (recorded captures played back to a real client) and by the built-in PBX
simulator. It speaks the wire protocol like Asterisk 22 does — banner line, ``\\r\\n``-separated headers, frames ending
in a blank line, Login / Logoff / Ping answered by the manager core itself — and it can write its bytes in small random
chunks so that clients see frames, and multi-byte UTF-8 characters, split across reads as on a real network.

Standard library only: no module of hotline may need this one to run, and it must not need theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BANNER",
    "AmiServer",
    "ServerConnection",
    "ami_timestamp",
    "build_frame",
    "get_header",
    "parse_action",
    "response_frame",
    "unknown_action",
]

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/11.0.0\r\n"
FRAME_END = b"\r\n\r\n"
#: An action frame larger than this closes the connection: Asterisk has a (much smaller) limit of its own.
MAX_ACTION_BYTES = 1 << 20

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def parse_action(text: str) -> dict[str, str]:
    """Parse one action frame (without its terminating blank line) into a dict.

    Asterisk treats action header names case-insensitively; the dict keeps the client's spelling, and
    :func:`get_header` looks names up ignoring case. A repeated header keeps its first value, as
    ``astman_get_header`` does.
    """
    result: dict[str, str] = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        if get_header(result, name) is None:
            result[name] = value.lstrip(" ")
    return result


def get_header(frame: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (AMI header names are case-insensitive on the action side)."""
    if name in frame:
        return frame[name]
    lowered = name.lower()
    for key, value in frame.items():
        if key.lower() == lowered:
            return value
    return None


def build_frame(headers: Headers) -> str:
    """Render headers as one AMI frame, in the given order, ending in the blank line."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return "".join(f"{name}: {value}\r\n" for name, value in items) + "\r\n"


def response_frame(
    action: Mapping[str, str] | None,
    status: str,
    message: str | None = None,
    extra: Headers = (),
) -> str:
    """A ``Response:`` frame the way the manager core writes it: Response, ActionID (only if the action had one),
    Message, then any extra headers."""
    headers: list[tuple[str, str]] = [("Response", status)]
    action_id = get_header(action, "ActionID") if action is not None else None
    if action_id is not None:
        headers.append(("ActionID", action_id))
    if message is not None:
        headers.append(("Message", message))
    headers.extend(extra.items() if isinstance(extra, Mapping) else extra)
    return build_frame(headers)


def ami_timestamp(epoch: float | None = None) -> str:
    """The ``Timestamp`` header value Asterisk writes with ``timestampevents = yes``: epoch seconds, 6 decimals."""
    return f"{time.time() if epoch is None else epoch:.6f}"


class ServerConnection:
    """One client connection: its streams, its login state, and a lock so frames never interleave on the wire."""

    def __init__(self, server: AmiServer, conn_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.id = conn_id
        self.reader = reader
        self.writer = writer
        self.logged_in = False
        self.username: str | None = None
        self.closed = False
        #: Every action frame received on this connection, parsed, in order (Login included).
        self.actions: list[dict[str, str]] = []
        #: Free slot for subclasses (replay position, per-connection state…).
        self.state: dict[str, Any] = {}
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ServerConnection #{self.id} user={self.username!r} closed={self.closed}>"

    async def send(self, *frames: str | bytes) -> None:
        """Write whole frames, each one atomically with respect to other writers, chunked as the server says."""
        for frame in frames:
            data = frame.encode("utf-8") if isinstance(frame, str) else frame
            async with self._write_lock:
                await self._write_chunked(data)

    async def _write_chunked(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        for chunk in self.server._chunks(data):
            self.writer.write(chunk)
            await self.writer.drain()
            if self.server.chunking is not None:
                # Give the reader a chance to take this chunk alone; otherwise chunks coalesce in its buffer.
                await asyncio.sleep(0)
            if self.closed:
                raise ConnectionResetError("connection closed")

    def abort(self) -> None:
        """Close the TCP connection at once, without Goodbye: what a network cut looks like to the client."""
        if not self.closed:
            self.closed = True
            transport = self.writer.transport
            if transport is not None:
                transport.abort()

    async def close(self) -> None:
        """Close gracefully after the buffered bytes went out (after Goodbye or a failed Login)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, ConnectionError):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), timeout=2.0)




class AmiServer:
    """A minimal Asterisk manager: subclass it and override :meth:`handle_action` (and :meth:`on_login`).

    ``credentials`` maps usernames to secrets (default: ``{username: secret}``). ``chunking`` is ``None`` to write
    whole frames, or a ``(min, max)`` byte range: every frame is then cut in pieces of random sizes drawn from a
    ``random.Random(seed)``. ``login_failure_delay`` imitates the second Asterisk waits before refusing a Login.
    """

    def __init__(
        self,
        *,
        username: str = "hotline",
        secret: str = "hotline-secret",
        credentials: Mapping[str, str] | None = None,
        banner: str = BANNER,
        chunking: tuple[int, int] | None = None,
        seed: int | None = None,
        login_failure_delay: float = 0.0,
    ) -> None:
        self.credentials: dict[str, str] = dict(credentials) if credentials is not None else {username: secret}
        self.banner = banner
        if chunking is not None and not (1 <= chunking[0] <= chunking[1]):
            raise ValueError(f"chunking must be (min, max) with 1 <= min <= max, got {chunking!r}")
        self.chunking = chunking
        self.rng = random.Random(seed)
        self.login_failure_delay = login_failure_delay
        self.connections: set[ServerConnection] = set()
        self.logins_accepted = 0
        self.logins_refused = 0
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    # -- life cycle ---------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen and return the bound port (pass ``port=0`` to let the OS choose, as tests do)."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
        self.drop_all()
        # Aborted transports end the handlers' reads; cancel only those that do not finish by themselves.
        if self._handlers:
            _, pending = await asyncio.wait(self._handlers, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)
            self._server = None

    async def __aenter__(self) -> AmiServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- overridable hooks ----------------------------------------------------------------------------------------

    def check_login(self, username: str | None, secret: str | None) -> bool:
        """Whether this Username/Secret pair may log in (plain-text secrets only: no MD5 challenge)."""
        return username is not None and self.credentials.get(username) == secret and secret is not None

    async def on_login(self, conn: ServerConnection) -> None:
        """Called after the Login response went out. Asterisk then sends FullyBooted; subclasses decide."""

    async def on_disconnect(self, conn: ServerConnection) -> None:
        """Called once the connection is gone, however it ended."""

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        """Answer one action other than Login/Logoff/Ping: the frames to write back, the response first, then any
        events of an EventList. The default knows no action at all."""
        return [unknown_action(action)]

    # -- broadcasting ---------------------------------------------------------------------------------------------

    def logged_in(self) -> list[ServerConnection]:
        """Open connections that passed Login, oldest first."""
        return sorted((c for c in self.connections if c.logged_in and not c.closed), key=lambda c: c.id)

    async def broadcast(self, *frames: str | bytes) -> int:
        """Write event frames to every logged-in connection; returns how many connections got them."""
        sent = 0
        for conn in self.logged_in():
            try:
                await conn.send(*frames)
                sent += 1
            except (ConnectionError, OSError):
                conn.abort()
        return sent

    async def inject(self, raw: bytes, conn: ServerConnection | None = None) -> None:
        """Write arbitrary bytes (garbage, truncated frames, huge lines) to one or all logged-in connections."""
        targets = [conn] if conn is not None else self.logged_in()
        for target in targets:
            with contextlib.suppress(ConnectionError, OSError):
                await target.send(raw)

    def drop_all(self) -> None:
        """Cut every connection abruptly (no Goodbye), like a network failure between hotline and Asterisk."""
        for conn in list(self.connections):
            conn.abort()

    # -- internals --------------------------------------------------------------------------------------------------

    def _chunks(self, data: bytes) -> Iterable[bytes]:
        if self.chunking is None or not data:
            yield data
            return
        low, high = self.chunking
        pos = 0
        while pos < len(data):
            size = self.rng.randint(low, high)
            yield data[pos : pos + size]
            pos += size

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = ServerConnection(self, next(self._ids), reader, writer)
        self.connections.add(conn)
        try:
            await conn.send(self.banner)
            await self._read_loop(conn)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Top of the connection's own task: asyncio's stream callback would log a re-raised cancellation.
            conn.abort()
        except Exception:
            log.exception("AMI server: connection #%s failed", conn.id)
        finally:
            self.connections.discard(conn)
            if not conn.closed:
                conn.abort()
            with contextlib.suppress(Exception):
                await self.on_disconnect(conn)
            if task is not None:
                self._handlers.discard(task)

    async def _read_loop(self, conn: ServerConnection) -> None:
        buffer = b""
        while not conn.closed:
            data = await conn.reader.read(65536)
            if not data:
                return
            buffer += data
            while FRAME_END in buffer and not conn.closed:
                raw, buffer = buffer.split(FRAME_END, 1)
                text = raw.decode("utf-8", errors="replace")
                if not text.strip():
                    continue
                action = parse_action(text)
                conn.actions.append(action)
                await self._dispatch(conn, action)
            if len(buffer) > MAX_ACTION_BYTES:
                conn.abort()
                return

    async def _dispatch(self, conn: ServerConnection, action: dict[str, str]) -> None:
        name = (get_header(action, "Action") or "").strip().lower()
        if name == "login":
            await self._login(conn, action)
        elif not conn.logged_in:
            await conn.send(response_frame(action, "Error", "Permission denied"))
        elif name == "logoff":
            await conn.send(response_frame(action, "Goodbye", "Thanks for all the fish."))
            await conn.close()
        elif name == "ping":
            await conn.send(response_frame(action, "Success", None, [("Ping", "Pong"), ("Timestamp", ami_timestamp())]))
        else:
            frames = await self.handle_action(conn, action)
            if frames:
                await conn.send(*frames)

    async def _login(self, conn: ServerConnection, action: dict[str, str]) -> None:
        username = get_header(action, "Username")
        if self.check_login(username, get_header(action, "Secret")):
            conn.logged_in = True
            conn.username = username
            self.logins_accepted += 1
            await conn.send(response_frame(action, "Success", "Authentication accepted"))
            await self.on_login(conn)
            return
        self.logins_refused += 1
        if self.login_failure_delay > 0:
            await asyncio.sleep(self.login_failure_delay)
        await conn.send(response_frame(action, "Error", "Authentication failed"))
        await conn.close()


def unknown_action(action: Mapping[str, str]) -> str:
    """Asterisk's answer to an action it does not know (recorded for ``NoSuchAction`` in actions_reference)."""
    name = get_header(action, "Action") or ""
    return response_frame(
        action, "Error", f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands."
    )
