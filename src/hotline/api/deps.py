"""Request dependencies: the runtime and a session that commits once, at the edge of the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hotline.bootstrap import Runtime
from hotline.db import after_commit


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop (and a fight for
    the GIL) on every request for one attribute read."""
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once when the endpoint returns, before the response is sent (scope
    "function"), then the after-commit work (PBX actions, pushes) runs; an error rolls back and drops that work."""
    async with runtime.sessions() as session:
        try:
            yield session
        except BaseException:
            after_commit.discard(session)
            await session.rollback()
            raise
        await after_commit.commit(session)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@asynccontextmanager
async def read_connection(runtime: Runtime) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit, for reading in one statement: a single statement sees one snapshot
    anyway, and a short read then costs one round trip to the database instead of three (no BEGIN, no COMMIT).
    Nothing written through it could be rolled back, so writers use :data:`SessionDep`."""
    async with runtime.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


async def get_reader(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    async with read_connection(runtime) as connection:
        yield connection


ReaderDep = Annotated[AsyncConnection, Depends(get_reader)]
