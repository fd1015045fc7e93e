"""Wrap-up timers are in memory; after a restart nobody stays in wrap-up for ever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hotline.bootstrap import build_runtime
from hotline.db.models import PresenceLog
from hotline.db.repositories import console as console_repo
from hotline.services import console
from hotline.settings import Settings
from hotline.users import create_user


async def test_wrapups_left_by_a_previous_process_are_ended(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    now = datetime.now(UTC)
    async with sessions() as session:
        old = await create_user(session, username="ana", password="operator password", role="operator")
        fresh = await create_user(session, username="mihai", password="operator password", role="operator")
        session.add_all([
            PresenceLog(user_id=old.id, state="available", at=now - timedelta(minutes=10)),
            PresenceLog(user_id=old.id, state="wrapup", at=now - timedelta(minutes=5)),  # long past the limit
            PresenceLog(user_id=fresh.id, state="wrapup", at=now - timedelta(seconds=1)),  # still within it
        ])  # fmt: skip
        await session.commit()
        old_id, fresh_id = old.id, fresh.id
    settings = Settings(database_url=database_url, auto_migrate=False, wrapup_limit_s=60, _env_file=None)  # type: ignore[call-arg]
    runtime = await build_runtime(settings, start_services=False)
    try:
        await console.start(runtime)
        for _ in range(100):
            async with sessions() as session:
                latest = await console_repo.latest_presence(session, old_id)
            if latest is not None and latest.state == "available":
                break
            await asyncio.sleep(0.05)
        assert latest is not None and latest.state == "available"
        async with sessions() as session:
            still = await console_repo.latest_presence(session, fresh_id)
        assert still is not None and still.state == "wrapup"  # its timer resumed with ~59 s left
    finally:
        await runtime.close()
