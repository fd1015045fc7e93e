"""Test fixtures: a real database (SQLite file by default, PostgreSQL when HOTLINE_TEST_DATABASE_URL is set),
migrated with Alembic once per session and emptied after each test; the real app over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.db.engine import make_engine, make_session_factory
from hotline.db.migrate import upgrade
from hotline.db.models import Base
from hotline.settings import Settings

TEST_DB_ENV = "HOTLINE_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _configured_url() -> str | None:
    return os.environ.get(TEST_DB_ENV) or None


def pytest_report_header(config: pytest.Config) -> str:
    url = _configured_url()
    if url:
        return f"hotline: tests run on PostgreSQL ({url.split('@')[-1]})"
    return f"hotline: tests run on SQLite (set {TEST_DB_ENV} to run them on PostgreSQL)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL; deselected in the SQLite run")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = _configured_url()
    if url and url.startswith("postgresql"):
        return
    keep = [item for item in items if "postgres_only" not in item.keywords]
    dropped = [item for item in items if "postgres_only" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


async def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    except Exception as exc:
        message = f"PostgreSQL at {TEST_DB_ENV} is not reachable: {type(exc).__name__}: {exc}"
        raise pytest.UsageError(message) from exc
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A freshly migrated database for the whole session."""
    url = _configured_url()
    if url:
        asyncio.run(_reset_postgres(url))
        upgrade(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="hotline-test-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'hotline.db'}"
        upgrade(url)
        yield url


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


async def _empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        await _empty_all_tables(engine)
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, engine: AsyncEngine) -> Settings:
    """Settings for an app under test; depends on ``engine`` so the tables are emptied after the test."""
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        dialplan_dir=tmp_path / "dialplan",
        recordings_dir=tmp_path / "recordings",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan run) behind an httpx client; PBX services not started."""
    from hotline.api.app import create_app

    app = create_app(settings, start_services=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hotline.test") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def lines(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The three lines of the PBX behind ../shared/ami-captures (5551000 -> 1, 5552000 -> 2, 5553000 -> 3)."""
    from hotline.db.models import Line

    async with sessions() as session:
        for number, line_id in {"5551000": 1, "5552000": 2, "5553000": 3}.items():
            session.add(Line(id=line_id, number=number, name=f"Line {line_id}"))
        await session.commit()
