"""The PostgreSQL database each benchmark uses: one of its own, never the test suite's ``test`` (which every test
run wipes, and whose data a benchmark would wipe in turn)."""

from __future__ import annotations

import os

import asyncpg

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def default_url(name: str) -> str:
    """``HOTLINE_BENCH_POSTGRES_URL`` if set, else the database ``name`` on the local server."""
    return os.environ.get("HOTLINE_BENCH_POSTGRES_URL") or f"{SERVER}/{name}"


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def ensure_database(url: str) -> None:
    """Create the URL's database when it does not exist."""
    dsn = plain_dsn(url)
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
