"""The AMI server base: the manager core's own answers, chunked writes, broadcasting and network cuts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hotline.ami.server import AmiServer, ServerConnection, build_frame, parse_action, response_frame
from replay import RawAmiClient


class EchoServer(AmiServer):
    """Answers ``Echo`` with its headers back, to see handle_action dispatch."""

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        if action.get("Action") == "Echo":
            return [response_frame(action, "Success", action.get("Text", ""))]
        return await super().handle_action(conn, action)


@pytest.fixture
async def server() -> AsyncIterator[EchoServer]:
    srv = EchoServer(chunking=(1, 7), seed=42)
    await srv.start()
    yield srv
    await srv.stop()


async def test_banner_and_login_success(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    assert client.banner == "Asterisk Call Manager/11.0.0\r\n"
    action_id = await client.send("Login", Username="hotline", Secret="hotline-secret")
    text = await client.read_frame()
    assert text == f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n"
    await client.close()


async def test_login_failure_is_answered_then_closed(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.send("Login", Username="hotline", Secret="wrong-secret", ActionID="hotline-406")
    frames = await client.read_until_eof(within=5)
    assert frames == ["Response: Error\r\nActionID: hotline-406\r\nMessage: Authentication failed\r\n\r\n"]
    assert server.logins_refused == 1


async def test_actions_before_login_are_refused(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.send("Echo", Text="x", ActionID="a1")
    frame = await client.wait_for(lambda f: f.get("ActionID") == "a1")
    assert frame["Response"] == "Error"
    assert frame["Message"] == "Permission denied"
    await client.close()


async def test_ping_dispatch_unknown_and_logoff(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.login()
    ping = await client.send("Ping")
    frame = await client.wait_for(lambda f: f.get("ActionID") == ping)
    assert frame["Response"] == "Success" and frame["Ping"] == "Pong" and "Timestamp" in frame
    echo = await client.send("Echo", Text="Ștefan Țăranu")
    assert (await client.wait_for(lambda f: f.get("ActionID") == echo))["Message"] == "Ștefan Țăranu"
    unknown = await client.send("NoSuchAction")
    frame = await client.wait_for(lambda f: f.get("ActionID") == unknown)
    assert frame["Message"].startswith("Invalid/unknown command: NoSuchAction.")
    logoff = await client.send("Logoff")
    frames = await client.read_until_eof(within=5)
    assert frames == [f"Response: Goodbye\r\nActionID: {logoff}\r\nMessage: Thanks for all the fish.\r\n\r\n"]


async def test_chunked_broadcast_reassembles_identical_frames(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.login()
    sent = [
        build_frame([("Event", "NewCallerid"), ("CallerIDName", "Ștefan Țăranu-Şerbănescu"), ("Seq", str(i))])
        for i in range(30)
    ]
    writing = asyncio.create_task(server.broadcast(*sent))
    received = [await client.read_frame() for _ in sent]
    assert await asyncio.wait_for(writing, 5) == 1
    assert received == sent
    # Chunks of at most 7 bytes: far more reads than frames, so frames and characters were split.
    assert client.reads > len(sent) * 3


async def test_drop_all_cuts_without_goodbye(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.login()
    server.drop_all()
    assert await client.read_until_eof(within=5) == []
    await asyncio.sleep(0)
    assert server.logged_in() == []


async def test_inject_writes_raw_bytes(server: EchoServer) -> None:
    assert server.port is not None
    client = await RawAmiClient.connect(server.port)
    await client.login()
    await server.inject(b"Event: Truncated\r\nHeader: \xc8\x98\r\n\r\n")
    assert await client.read_frame() == "Event: Truncated\r\nHeader: Ș\r\n\r\n"
    await client.close()


def test_parse_action_is_case_insensitive_and_keeps_first() -> None:
    action = parse_action("Action: Login\r\nusername: a\r\nUsername: b\r\nSecret: s: t")
    assert action == {"Action": "Login", "username": "a", "Secret": "s: t"}


def test_chunking_is_validated() -> None:
    with pytest.raises(ValueError):
        AmiServer(chunking=(0, 3))
