"""SQL for users. Repositories add and query; the caller commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import ApiToken, OperatorLine, User


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def add_token(session: AsyncSession, token: ApiToken) -> None:
    session.add(token)
    await session.flush()


async def user_for_token(session: AsyncSession, token_hash: str, now: datetime) -> tuple[User, ApiToken] | None:
    stmt = (
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == token_hash,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
            User.active.is_(True),
        )
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def line_ids_of(session: AsyncSession, user_id: int) -> list[int]:
    rows = await session.scalars(select(OperatorLine.line_id).where(OperatorLine.user_id == user_id))
    return list(rows)
