"""Live push across processes through Redis: an event published by any process reaches consoles on every process,
with one id sequence and in id order."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from hotline.services.push import PushHub, Viewer
from hotline.services.push_redis import RedisBackend

REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BOSS = Viewer("boss", is_staff=True)
ANA = Viewer("ana", is_staff=False, line_ids=frozenset({1}))


async def _redis_or_skip() -> None:
    from redis import asyncio as aioredis

    try:
        await aioredis.from_url(REDIS_URL).ping()
    except Exception as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            raise AssertionError(f"Redis at {REDIS_URL} is not reachable in CI: {exc}") from exc
        pytest.skip(f"no Redis at {REDIS_URL} ({exc})")


async def test_events_from_two_processes_reach_both_in_one_id_order() -> None:
    await _redis_or_skip()
    prefix = f"hotline-test:{uuid.uuid4().hex}"
    backends = [RedisBackend(REDIS_URL, prefix=prefix) for _ in range(2)]
    hubs = [PushHub(b) for b in backends]  # one hub per "process"
    for backend in backends:
        await backend.start()
    try:
        subs = [hub.subscribe(BOSS) for hub in hubs]
        ana_on_b = hubs[1].subscribe(ANA)
        for i in range(20):
            hubs[i % 2].publish("queue.changed", {"n": i}, line_id=1 + i % 2)
        received: list[list[int]] = [[], []]
        async with asyncio.timeout(10):
            while any(len(r) < 20 for r in received):
                for k, sub in enumerate(subs):
                    while len(sub):
                        event = await sub.next()
                        assert event is not None
                        received[k].append(event.id)
                await asyncio.sleep(0.01)
        assert received[0] == received[1], "both processes see the same events in the same order"
        assert received[0] == sorted(received[0]) and len(set(received[0])) == 20
        ana_ids = []
        while len(ana_on_b):
            event = await ana_on_b.next()
            assert event is not None
            ana_ids.append(event.data["n"])
        assert ana_ids and all(n % 2 == 0 for n in ana_ids), "an operator sees only the lines they serve"
        # A console reconnecting to the other process replays from the shared sequence.
        replay = hubs[0].subscribe(BOSS, since=received[0][9])
        assert [e.id for e in [await replay.next() for _ in range(len(replay))] if e] == received[0][10:]
    finally:
        for backend in backends:
            await backend.stop()


async def test_two_apps_share_push_through_redis(database_url: str, tmp_path: object) -> None:
    """The runtime wires the Redis backend from settings: an event published by one app reaches the other."""
    await _redis_or_skip()
    from hotline.bootstrap import build_runtime
    from hotline.services import console
    from hotline.settings import Settings

    settings = Settings(database_url=database_url, auto_migrate=False, push_redis_url=REDIS_URL, _env_file=None)  # type: ignore[call-arg]
    runtimes = [await build_runtime(settings, start_services=False) for _ in range(2)]
    try:
        services = [await console.start(r) for r in runtimes]
        sub = services[1].hub.subscribe(BOSS)
        services[0].hub.publish("presence.changed", {"username": "ana", "state": "available"}, user="ana")
        async with asyncio.timeout(5):
            event = await sub.next()
        assert event is not None and event.type == "presence.changed" and event.data["username"] == "ana"
    finally:
        for runtime in runtimes:
            await runtime.close()
