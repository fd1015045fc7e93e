"""Work that must follow a successful commit: PBX actions, dialplan reloads, console pushes.

Services queue it on the session while they work; the request edge runs it after ``commit()`` and drops it on
rollback (wazo-confd's notifiers), so Asterisk and the consoles never hear of a change the database refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
_KEY = "hotline.after_commit"


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run ``action`` once the current transaction of ``session`` has committed."""
    session.info.setdefault(_KEY, []).append(action)


def discard(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


async def run(session: AsyncSession) -> None:
    """Run the queued actions in order; one failing is logged and does not stop the others."""
    actions: list[AfterCommit] = session.info.pop(_KEY, [])
    for action in actions:
        try:
            await action()
        except Exception:
            log.exception("an after-commit action failed")


async def commit(session: AsyncSession) -> None:
    """Commit, then run what waited for it; on failure roll back and drop it."""
    try:
        await session.commit()
    except BaseException:
        discard(session)
        await session.rollback()
        raise
    await run(session)
