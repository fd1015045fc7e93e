"""Request dependencies: the runtime and a session that commits once, at the edge of the request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.bootstrap import Runtime
from hotline.db import after_commit


def get_runtime(request: Request) -> Runtime:
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
