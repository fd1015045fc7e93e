"""The schema comes only from Alembic, and the models agree with it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.db.migrate import current_revision, downgrade, head_revision, upgrade
from hotline.db.models import Base, Call, CallEvent, Line, OperatorLine, User, WeeklyHours


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


async def test_lines_get_a_pbx_without_losing_what_hangs_off_them(
    database_url: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """0004 on a database with a line, its hours, an operator on it and a call: SQLite rebuilds ``lines``, which
    with foreign keys on would have cascaded to the hours and assignments and detached the call. Then a number may
    be a line on each PBX, but only once per PBX, and only once among the first PBX's lines (stored as NULL)."""
    await asyncio.to_thread(downgrade, database_url, "0003")
    async with engine.begin() as conn:  # Core, columns of revision 0003 only (no pbx_id yet)
        users, lines = User.__table__, Line.__table__
        user_id = await conn.scalar(
            insert(users).values(username="ana", role="operator", password_hash="x").returning(users.c.id)
        )
        line_id = await conn.scalar(insert(lines).values(number="5551000", name="Support").returning(lines.c.id))
        await conn.execute(
            insert(WeeklyHours.__table__).values(line_id=line_id, weekday=0, start_time=time(9), end_time=time(17))
        )
        await conn.execute(insert(OperatorLine.__table__).values(user_id=user_id, line_id=line_id, priority=0))
        await conn.execute(insert(Call.__table__).values(pbx_id="pbx1", linkedid="9.9", line_id=line_id,
                                                         number="5551000", arrived_at=datetime.now(UTC)))  # fmt: skip
    await asyncio.to_thread(upgrade, database_url)
    assert await current_revision(engine) == head_revision()
    async with sessions() as session:
        assert [(line.id, line.pbx_id) for line in await session.scalars(select(Line))] == [(line_id, None)]
        assert await session.scalar(select(func.count()).select_from(WeeklyHours)) == 1
        assert await session.scalar(select(func.count()).select_from(OperatorLine)) == 1
        assert await session.scalar(select(Call.line_id)) == line_id

    async with sessions() as session:
        session.add(Line(number="5551000", name="Cluj", pbx_id="cluj"))  # the same number on another PBX
        await session.commit()
    for pbx_id in (None, "cluj"):  # twice on the first PBX, twice on cluj
        async with sessions() as session:
            session.add(Line(number="5551000", name="Twice", pbx_id=pbx_id))
            with pytest.raises(IntegrityError):
                await session.commit()

    with pytest.raises(RuntimeError, match="5551000"):  # a downgrade would have to merge the two lines
        await asyncio.to_thread(downgrade, database_url, "0003")
    assert await current_revision(engine) == head_revision()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Line)) == 2
        assert await session.scalar(select(func.count()).select_from(WeeklyHours)) == 1
