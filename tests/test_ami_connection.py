"""The AMI client's guarantees over real TCP: a silent peer is detected, reconnects back off with jitter, and an
action that is not idempotent is never sent twice."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any

import pytest

from hotline.ami.connection import AmiConnection, ConnectionLost, backoff_delay
from hotline.ami.server import AmiServer, ServerConnection, response_frame
from hotline.settings import PbxSettings


class Sink:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, str]]] = []

    def put(self, kind: str, frame: dict[str, str], received_at: datetime) -> bool:
        self.items.append((kind, frame))
        return True


class Scripted(AmiServer):
    """Answers Ping only while ``answer_pings``; never answers Originate; answers QueueStatus."""

    def __init__(self) -> None:
        super().__init__(username="hotline", secret="s3cret-value")
        self.answer_pings = True
        self.received: list[str] = []

    async def _dispatch(self, conn: ServerConnection, action: dict[str, str]) -> None:
        name = action.get("Action", "")
        self.received.append(name)
        if name == "Ping" and not self.answer_pings:
            return
        await super()._dispatch(conn, action)

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        if action.get("Action") == "Originate":
            return []  # the answer never comes before the connection drops
        if action.get("Action") == "QueueStatus":
            aid = action.get("ActionID", "")
            return [
                response_frame(action, "Success", "Queue status will follow", [("EventList", "start")]),
                f"Event: QueueStatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
            ]
        return await super().handle_action(conn, action)


async def _connect(server: Scripted, **options: Any) -> AmiConnection:
    port = await server.start()
    pbx = PbxSettings(id="t", host="127.0.0.1", port=port, username="hotline", secret="s3cret-value")
    conn = AmiConnection(pbx, Sink(), backoff_base=0.02, backoff_cap=0.1, **options)
    conn.start()
    await conn.wait_logged_in(5)
    return conn


async def _until(predicate: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.02)


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    samples = [[backoff_delay(a, base=0.5, cap=30.0, rng=rng) for _ in range(200)] for a in range(12)]
    assert all(0.05 <= d <= min(30.0, 0.5 * 2**a) for a, row in enumerate(samples) for d in row)
    assert max(samples[0]) <= 0.5 and max(samples[8]) > 10  # grows
    assert max(max(row) for row in samples) <= 30.0  # capped
    assert len({round(d, 6) for d in samples[5]}) > 150  # jittered: clients do not retry in lockstep


async def test_a_silent_peer_is_detected_and_the_connection_reopened() -> None:
    server = Scripted()
    conn = await _connect(server, ping_interval=0.1, ping_timeout=0.3)
    try:
        server.answer_pings = False
        await _until(lambda: conn.status.reconnects >= 1 and conn.connected)
        assert conn.status.last_error in {"ping timeout", None}
        assert server.logins_accepted >= 2
    finally:
        await conn.stop()
        await server.stop()


async def test_an_unanswered_originate_is_not_resent_after_reconnect() -> None:
    server = Scripted()
    conn = await _connect(server, ping_interval=5.0)
    try:
        originate = asyncio.create_task(
            conn.send({"Action": "Originate", "Channel": "Local/101@phones", "Exten": "0712000001"}, timeout=5)
        )
        await _until(lambda: "Originate" in server.received)
        server.drop_all()
        with pytest.raises(ConnectionLost):
            await originate
        await _until(lambda: conn.status.reconnects >= 1 and conn.connected)
        # An idempotent action lost in the same way is re-sent and answered.
        status = await conn.send({"Action": "QueueStatus"}, timeout=5)
        assert isinstance(status, list)
        await asyncio.sleep(0.2)
        assert server.received.count("Originate") == 1
    finally:
        await conn.stop()
        await server.stop()


async def test_line_breaks_in_an_action_are_refused_before_sending() -> None:
    server = Scripted()
    conn = await _connect(server, ping_interval=5.0)
    try:
        with pytest.raises(ValueError):
            await conn.send({"Action": "QueuePause", "Reason": "lunch\r\nAction: Originate"})
        await asyncio.sleep(0.1)
        assert "Originate" not in server.received and "QueuePause" not in server.received
    finally:
        await conn.stop()
        await server.stop()


async def test_queue_add_answers_at_once_against_the_simulator() -> None:
    """panoramisk would wait for an event list after "Added interface to queue"; the client must not."""
    from hotline.ami.simulator import PbxSimulator

    sim = PbxSimulator(username="hotline", secret="s3cret-value")
    port = await sim.start()
    pbx = PbxSettings(id="t", host="127.0.0.1", port=port, username="hotline", secret="s3cret-value")
    conn = AmiConnection(pbx, Sink(), ping_interval=5.0)
    conn.start()
    try:
        await conn.wait_logged_in(5)
        action = {"Action": "QueueAdd", "Queue": "hotline-1", "Interface": "Local/101@phones/n", "MemberName": "ana"}
        response = await asyncio.wait_for(conn.send(action, timeout=5), 1.0)
        assert response.get("Message") == "Added interface to queue"
        assert [m["name"] for m in sim.members("hotline-1")] == ["ana"]
    finally:
        await conn.stop()
        await sim.stop()
