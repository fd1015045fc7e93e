"""Duplicated and late (re-sent, out of order) events — what overlapping sessions produce — change nothing."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capture_replay import captures_dir, expected_rows
from hotline.ami.server import AmiServer, ServerConnection
from test_listener import FAST, compare, pbx, stored_calls, wait_for_records


def capture_events(name: str) -> list[str]:
    frames = []
    for line in (captures_dir() / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["dir"] == "recv" and item["data"].startswith("Event: "):
            frames.append(item["data"])
    return frames


class Scripted(AmiServer):
    """Writes a fixed list of frames after Login; answers the resync with empty lists."""

    def __init__(self, frames: list[str]) -> None:
        super().__init__(username="hotline", secret="hotline-secret", chunking=(1, 3000), seed=1)
        self.frames = frames
        self.done = asyncio.Event()

    async def on_login(self, conn: ServerConnection) -> None:
        async def play() -> None:
            await asyncio.sleep(0.1)
            for frame in self.frames:
                await conn.send(frame)
            self.done.set()

        conn.state["task"] = asyncio.create_task(play())

    async def handle_action(self, conn: ServerConnection, action: dict[str, str]) -> list[str]:
        aid = action.get("ActionID", "")
        complete = {"CoreShowChannels": "CoreShowChannelsComplete", "QueueStatus": "QueueStatusComplete"}
        name = action.get("Action", "")
        if name in complete:
            return [
                f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: will follow\r\n\r\n",
                f"Event: {complete[name]}\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
            ]
        return await super().handle_action(conn, action)


@pytest.mark.parametrize("seed", [1, 2])
async def test_duplicated_and_late_events_leave_the_records_unchanged(
    seed: int, sessions: async_sessionmaker[AsyncSession], lines: None
) -> None:
    from hotline.services.call_listener import CallListener

    original = capture_events("load_40_calls")
    rng = random.Random(seed)
    frames: list[str] = []
    for i, frame in enumerate(original):
        frames.append(frame)
        if rng.random() < 0.15:  # the same frame twice in a row
            frames.append(frame)
        if i > 20 and rng.random() < 0.10:  # an earlier frame again, out of order (an overlapping session)
            frames.append(original[rng.randrange(max(0, i - 200), i)])
    assert len(frames) > len(original) * 1.2
    server = Scripted(frames)
    port = await server.start()
    listener: Any = CallListener(pbx(port), sessions, connection_options=FAST)
    try:
        await listener.start()
        await asyncio.wait_for(server.done.wait(), 30)
        expected = expected_rows("load_40_calls")
        rows = await wait_for_records(sessions, listener, len(expected))
        compare(rows, expected)
        assert len(await stored_calls(sessions)) == len(expected)
        assert listener.stats.events_failed == 0
    finally:
        await listener.stop()
        await server.stop()
