"""Which rows belong to which PBX. ``pbx_id`` NULL means the first PBX (``HOTLINE_AMI__*``), whatever its id: see
``Line`` in ``hotline/db/models.py`` for why. The first PBX's id written out (a row typed in by hand) counts too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.db.models import Line


def on_pbx(column: Any, pbx_id: str, *, first: bool) -> ColumnElement[bool]:
    """``column`` (a ``pbx_id`` column) names PBX ``pbx_id``; ``first``: that PBX is the first configured."""
    if first:
        return or_(column.is_(None), column == pbx_id)
    return column == pbx_id  # type: ignore[no-any-return]


async def lines_on_unknown_pbxs(session: AsyncSession, known: Sequence[str]) -> list[tuple[int, str, str]]:
    """Active lines naming a PBX that is not configured, as (line id, number, PBX id): nothing follows them."""
    rows = await session.execute(
        select(Line.id, Line.number, Line.pbx_id)
        .where(Line.active.is_(True), Line.pbx_id.is_not(None), Line.pbx_id.not_in(list(known)))
        .order_by(Line.id)
    )
    return [(line_id, number, str(pbx_id)) for line_id, number, pbx_id in rows.all()]
