"""Push across processes: several ``hotline serve`` processes behind one load balancer, a console connected to any
of them, events produced by whichever process listens to the PBX.

Redis numbers and fans out the events. One Lua script takes the next id (``INCR``) and ``PUBLISH``es the event in
the same atomic step, so subscribers of every process see events in id order, whoever published them. Each process
publishes through one task (its own events keep their order) and receives through one subscription task; the hub's
ring buffer (replay with ``?since=``) works unchanged since ids are global.

If Redis is unreachable, events are counted as lost (calls are still stored: a console that reconnects and finds a
gap gets ``resync.required``) and the backend keeps retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import asyncio as aioredis

from hotline.services.push import PushEvent

log = logging.getLogger(__name__)

_PUBLISH = """
local id = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], id .. '|' .. ARGV[1])
return id
"""

QUEUE_LIMIT = 10_000


class RedisBackend:
    """A :class:`~hotline.services.push.PushBackend` on Redis pub/sub."""

    def __init__(self, url: str, *, prefix: str = "hotline:push", retry_s: float = 1.0) -> None:
        self.url = url
        self.counter_key = f"{prefix}:seq"
        self.channel = f"{prefix}:events"
        self.retry_s = retry_s
        self.lost = 0
        self.received = 0
        self._deliver: Callable[[PushEvent], None] | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    def bind(self, deliver: Callable[[PushEvent], None]) -> None:
        self._deliver = deliver

    async def start(self) -> None:
        self._outbox = asyncio.Queue(QUEUE_LIMIT)
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._send())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, type_: str, data: dict[str, Any], *, line_id: int | None, user: str | None) -> None:
        """Never blocks: the event waits in the process's outbox for the sending task."""
        payload = json.dumps({"type": type_, "data": data, "at": time.time(), "line_id": line_id, "user": user},
                             default=str)  # fmt: skip
        if self._outbox is None:
            raise RuntimeError("RedisBackend.start() was not awaited")
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.lost += 1

    async def _send(self) -> None:
        assert self._outbox is not None
        while True:
            try:
                client = aioredis.from_url(self.url)
                script = client.register_script(_PUBLISH)
                while True:
                    payload = await self._outbox.get()
                    await script(keys=[self.counter_key, self.channel], args=[payload])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.lost += 1
                log.warning("push: cannot publish to Redis (%s); retrying", exc)
                await asyncio.sleep(self.retry_s)

    async def _receive(self) -> None:
        while True:
            try:
                client = aioredis.from_url(self.url)
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._subscribed.clear()
                log.warning("push: Redis subscription lost (%s); retrying", exc)
                await asyncio.sleep(self.retry_s)

    def _on_message(self, raw: bytes | str) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        id_text, _, payload = text.partition("|")
        try:
            body = json.loads(payload)
            event = PushEvent(int(id_text), body["type"], body["data"], float(body["at"]), body.get("line_id"),
                              body.get("user"))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            log.warning("push: malformed message on %s skipped", self.channel)
            return
        self.received += 1
        if self._deliver is not None:
            self._deliver(event)
