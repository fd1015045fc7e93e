"""SQL for users. Repositories add and query; the caller commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import User


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user
