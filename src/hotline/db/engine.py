"""Engine and session factories: built by the composition root, never at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# PostgreSQL connections kept open per process. SQLAlchemy's default (5, plus 10 opened and closed on demand) made a
# burst of requests open and close connections (TLS negotiation, authentication, codec set-up: milliseconds of CPU
# each) exactly when the process was busiest; at 300 requests/s the REST benchmark did so every few seconds.
PG_POOL_SIZE = 20
PG_MAX_OVERFLOW = 10


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite, foreign keys on, WAL journal and a busy timeout so readers never block the
    listener's writes; on PostgreSQL, a pool sized for a busy API process (:data:`PG_POOL_SIZE`)."""
    if database_url.startswith("postgresql") and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_MAX_OVERFLOW)
    engine = create_async_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
