"""The token cache: what it remembers, for how long, and that revocations and changes are seen at once (through this
process) or within its lifetime (through another process, simulated by writing the database directly)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.auth.cache import TokenCache
from hotline.auth.tokens import new_token, token_hash
from hotline.db.models import ApiToken
from hotline.settings import Settings
from test_calls_api import login, seed


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_ttl_seconds_and_never_past_its_tokens_expiry() -> None:
    clock = FakeClock()
    cache: TokenCache[str] = TokenCache(5.0, clock=clock)
    cache.put("a", "ana", user_id=1, token_id=10, valid_for_s=3600, generation=cache.generation)
    cache.put("b", "boss", user_id=2, token_id=20, valid_for_s=2.0, generation=cache.generation)
    cache.put("c", "gone", user_id=3, token_id=30, valid_for_s=-1.0, generation=cache.generation)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("ana", "boss", None)
    clock.now += 2.0
    assert (cache.get("a"), cache.get("b")) == ("ana", None)
    clock.now += 3.0
    assert cache.get("a") is None and len(cache) == 0


def test_forgetting_drops_entries_and_refuses_a_lookup_that_raced_with_it() -> None:
    cache: TokenCache[str] = TokenCache(5.0, clock=FakeClock())
    for key, user_id, token_id in (("a1", 1, 10), ("a2", 1, 11), ("b", 2, 20)):
        cache.put(key, key, user_id=user_id, token_id=token_id, valid_for_s=60, generation=cache.generation)
    cache.forget_token(11)
    assert (cache.get("a1"), cache.get("a2"), cache.get("b")) == ("a1", None, "b")
    read_before = cache.generation  # a lookup starts, reads the database ...
    cache.forget_user(1)  # ... a logout of that user commits meanwhile ...
    cache.put("a1", "stale", user_id=1, token_id=10, valid_for_s=60, generation=read_before)  # ... and is refused
    assert cache.get("a1") is None and cache.get("b") == "b"
    cache.clear()
    assert len(cache) == 0


def test_the_cache_is_bounded_and_can_be_switched_off() -> None:
    clock = FakeClock()
    cache: TokenCache[int] = TokenCache(5.0, max_entries=100, clock=clock)
    for i in range(250):
        cache.put(f"k{i}", i, user_id=i, token_id=i, valid_for_s=60, generation=cache.generation)
    assert len(cache) <= 100 and cache.get("k249") == 249 and cache.get("k0") is None
    off: TokenCache[int] = TokenCache(0.0, clock=clock)
    off.put("k", 1, user_id=1, token_id=1, valid_for_s=60, generation=off.generation)
    assert off.get("k") is None


@pytest.fixture
async def short_cache_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a 0.5 s token cache, so tests can see an entry outlive a revocation and then expire."""
    from hotline.api.app import create_app

    app = create_app(settings.model_copy(update={"auth_cache_s": 0.5}), start_services=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as http:
            yield http


async def test_a_logged_out_token_is_refused_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)
    headers = await login(client, "boss")
    other = await login(client, "boss")
    assert (await client.get("/api/calls", headers=headers)).status_code == 200  # now remembered
    assert (await client.get("/api/calls", headers=other)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    refused = await client.get("/api/calls", headers=headers)
    assert refused.status_code == 401 and refused.json()["error_id"] == "not-authenticated"
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 401
    assert (await client.get("/api/calls", headers=other)).status_code == 200  # the user's other session stays


async def test_an_expired_token_is_refused_though_it_was_remembered(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    users = await seed(sessions)
    token = new_token()
    async with sessions() as session:
        session.add(ApiToken(user_id=users["boss"], token_hash=token_hash(token),
                             expires_at=datetime.now(UTC) + timedelta(seconds=0.6)))  # fmt: skip
        await session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 200  # remembered (5 s cache)
    await asyncio.sleep(0.7)
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 401


async def test_deactivation_role_and_line_changes_apply_to_the_next_request(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    users = await seed(sessions)
    admin = await login(client, "root")
    ana = await login(client, "ana")
    lines_seen = {c["line_id"] for c in (await client.get("/api/calls?limit=100", headers=ana)).json()["items"]}
    assert lines_seen == {1}
    assigned = await client.put(f"/api/admin/lines/2/operators/{users['ana']}", json={"priority": 0}, headers=admin)
    assert assigned.status_code == 200, assigned.text
    lines_seen = {c["line_id"] for c in (await client.get("/api/calls?limit=100", headers=ana)).json()["items"]}
    assert lines_seen == {1, 2}
    assert (await client.get("/api/pbx", headers=ana)).status_code == 403
    promoted = await client.patch(f"/api/admin/users/{users['ana']}", json={"role": "supervisor"}, headers=admin)
    assert promoted.status_code == 200, promoted.text
    assert (await client.get("/api/pbx", headers=ana)).status_code == 200
    deactivated = await client.patch(f"/api/admin/users/{users['ana']}", json={"active": False}, headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert (await client.get("/api/calls", headers=ana)).status_code == 401


async def test_a_revocation_by_another_process_is_seen_within_the_cache_lifetime(
    short_cache_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = short_cache_client
    await seed(sessions)
    headers = await login(client, "boss")
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 200
    async with sessions() as session:  # what a logout served by another hotline process writes
        await session.execute(update(ApiToken).values(revoked_at=datetime.now(UTC)))
        await session.commit()
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 200  # still remembered here
    await asyncio.sleep(0.6)
    assert (await client.get("/api/calls/live", headers=headers)).status_code == 401
