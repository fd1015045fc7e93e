"""The schema comes only from Alembic, and the models agree with it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.db.migrate import current_revision, downgrade, head_revision, upgrade
from hotline.db.models import Base, Call, CallEvent, Line, User


def _diff(conn: object) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
    return compare_metadata(context, Base.metadata)


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        differences = await conn.run_sync(_diff)
    assert differences == []


async def test_upgrade_downgrade_upgrade(database_url: str, engine: AsyncEngine) -> None:
    await asyncio.to_thread(downgrade, database_url, "base")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) <= {"alembic_version"}
    assert await current_revision(engine) is None
    await asyncio.to_thread(upgrade, database_url)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert {"calls", "call_events", "lines", "users", "registrations", "audit_log"} <= set(tables)


def _call(linkedid: str, pbx_id: str = "pbx1") -> Call:
    return Call(pbx_id=pbx_id, linkedid=linkedid, number="5551000", arrived_at=datetime.now(UTC))


async def test_duplicate_call_for_same_pbx_and_linkedid_is_rejected(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(_call("1795618511.216"))
        await session.commit()
    async with sessions() as session:
        session.add(_call("1795618511.216"))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with sessions() as session:  # the same Linkedid on another PBX is another call
        session.add(_call("1795618511.216", pbx_id="pbx2"))
        await session.commit()


async def test_foreign_keys_hold(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(CallEvent(call_id=999_999, key="k", at=datetime.now(UTC), event="Hangup", summary={}))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_check_constraints_hold(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(User(username="x", role="superuser", password_hash="h"))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with sessions() as session:
        session.add(Line(number="5551000", name="Support", closed_action="explode"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_timestamps_come_back_aware_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 29, 4, 30, tzinfo=ZoneInfo("Europe/Bucharest"))
    async with sessions() as session:
        call = Call(pbx_id="pbx1", linkedid="1.1", number="5551000", arrived_at=local)
        session.add(call)
        await session.commit()
        call_id = call.id
    async with sessions() as session:
        stored = await session.get(Call, call_id)
        assert stored is not None
        assert stored.arrived_at.tzinfo is not None
        assert stored.arrived_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert stored.arrived_at == local


async def test_naive_timestamps_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        session.add(Call(pbx_id="pbx1", linkedid="2.2", number="5551000", arrived_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()
