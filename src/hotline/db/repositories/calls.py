"""SQL for call records and their timelines. The caller owns the transaction and commits."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hotline.db.models import Call, CallEvent, Line
from hotline.db.repositories.pbx import on_pbx
from hotline.domain.calls import CallRecord, Outcome, TimelineEntry

_RECORD_COLUMNS = (
    "line_id", "number", "caller_number", "caller_name", "arrived_at", "queued_at", "answered_at", "ended_at",
    "wait_s", "talk_s", "operator", "rang", "outcome", "route", "queue", "hangup_cause", "transferred_to",
    "overflow_to", "recording_path", "end_inferred", "seen_first_in_resync",
)  # fmt: skip


def record_values(record: CallRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _RECORD_COLUMNS}
    values["outcome"] = str(record.outcome)
    values["rang"] = list(record.rang)
    values["pbx_id"] = record.pbx_id
    values["linkedid"] = record.linkedid
    if values["arrived_at"] is None:
        raise ValueError(f"call {record.linkedid} has no arrival time")
    return values


def row_to_record(row: Call) -> CallRecord:
    values = {name: getattr(row, name) for name in _RECORD_COLUMNS}
    values["outcome"] = Outcome(row.outcome)
    values["rang"] = list(row.rang or [])
    return CallRecord(pbx_id=row.pbx_id, linkedid=row.linkedid, **values)


async def load_records(
    session: AsyncSession, pbx_id: str, linkedids: Iterable[str]
) -> dict[str, tuple[int, CallRecord]]:
    """Stored records for these calls of one PBX: linkedid -> (call id, record)."""
    ids = list(set(linkedids))
    if not ids:
        return {}
    rows = await session.scalars(select(Call).where(Call.pbx_id == pbx_id, Call.linkedid.in_(ids)))
    return {row.linkedid: (row.id, row_to_record(row)) for row in rows}


def _upsert_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Call)
    return stmt.on_conflict_do_update(
        index_elements=[Call.pbx_id, Call.linkedid],
        set_={name: stmt.excluded[name] for name in _RECORD_COLUMNS} | {"updated_at": func.now()},
    ).returning(Call.id, Call.pbx_id, Call.linkedid, sort_by_parameter_order=True)


def _timeline_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(CallEvent).on_conflict_do_nothing(index_elements=[CallEvent.call_id, CallEvent.key])


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(kind: str, dialect: str) -> Any:
    """Built once per dialect: the same statement object lets SQLAlchemy reuse its compiled form."""
    key = (kind, dialect)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _upsert_statement(dialect) if kind == "upsert" else _timeline_statement(dialect)
    return _STATEMENTS[key]


async def upsert_records(session: AsyncSession, records: Sequence[CallRecord]) -> dict[tuple[str, str], int]:
    """Insert or update call records (one batched statement); returns (pbx_id, linkedid) -> call id.

    Merging with what is stored is the caller's job (:func:`hotline.domain.call_merge.merge_records`); this only
    writes, idempotently, keyed by the unique (pbx_id, linkedid).
    """
    if not records:
        return {}
    stmt = _statement("upsert", session.bind.dialect.name)
    result = await session.execute(stmt, [record_values(r) for r in records])
    return {(pbx, linkedid): call_id for call_id, pbx, linkedid in result.all()}


async def add_timeline(session: AsyncSession, entries: Sequence[tuple[int, TimelineEntry]]) -> None:
    """Add timeline entries; an entry already stored (same call, same key) is skipped."""
    if not entries:
        return
    await session.execute(
        _statement("timeline", session.bind.dialect.name),
        [{"call_id": call_id, "key": e.key[:200], "at": e.at, "event": e.event, "summary": e.summary}
         for call_id, e in entries],
    )  # fmt: skip


async def line_numbers(session: AsyncSession, pbx_id: str, *, first: bool) -> dict[str, int]:
    """Active dedicated numbers of one PBX's lines -> line id: what its tracker needs to recognise calls on a line.

    ``first``: this PBX is the first configured, so the lines stored without a PBX are its own too. Only this PBX's
    lines: the same number may be another line on another PBX, and a call to a number this PBX has no line for is
    recorded without a line. Should a number be stored both without a PBX and with the first PBX's id (possible only
    by hand), the lower line id wins.
    """
    rows = await session.execute(
        select(Line.number, Line.id)
        .where(Line.active.is_(True), on_pbx(Line.pbx_id, pbx_id, first=first))
        .order_by(Line.id.desc())
    )
    return {number: line_id for number, line_id in rows.all()}


# --- queries for the API ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallFilter:
    line_id: int | None = None
    operator: str | None = None
    outcome: str | None = None
    caller_number: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(arrived_at: datetime, call_id: int) -> str:
    raw = json.dumps([arrived_at.isoformat(), call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises ValueError on anything that is not a cursor this API issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, call_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not isinstance(call_id, int):
            raise ValueError
        return when, call_id
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


def filter_conditions(flt: CallFilter, line_ids: AbstractSet[int] | None = None) -> list[Any]:
    """The WHERE conditions of a call filter (shared by the list and the export); ``line_ids`` limits to lines."""
    conditions: list[Any] = []
    if flt.line_id is not None:
        conditions.append(Call.line_id == flt.line_id)
    if flt.operator is not None:
        conditions.append(Call.operator == flt.operator)
    if flt.outcome is not None:
        conditions.append(Call.outcome == flt.outcome)
    if flt.caller_number is not None:
        conditions.append(Call.caller_number == flt.caller_number)
    if flt.since is not None:
        conditions.append(Call.arrived_at >= flt.since)
    if flt.until is not None:
        conditions.append(Call.arrived_at < flt.until)
    if line_ids is not None:
        conditions.append(Call.line_id.in_(sorted(line_ids)))
    return conditions


def _page_conditions(
    flt: CallFilter, after: tuple[datetime, int] | None, line_ids: AbstractSet[int] | None
) -> list[Any]:
    conditions = filter_conditions(flt, line_ids)
    if after is not None:
        at, call_id = after
        conditions.append(or_(Call.arrived_at < at, and_(Call.arrived_at == at, Call.id < call_id)))
    return conditions


async def list_calls(
    session: AsyncSession,
    flt: CallFilter,
    *,
    limit: int,
    after: tuple[datetime, int] | None = None,
    line_ids: AbstractSet[int] | None = None,
) -> list[Call]:
    """Newest first, keyset-paginated on (arrived_at, id) so deep pages cost what the first page costs."""
    conditions = _page_conditions(flt, after, line_ids)
    stmt = select(Call).where(*conditions).order_by(Call.arrived_at.desc(), Call.id.desc()).limit(limit)
    return list(await session.scalars(stmt))


async def list_call_rows(
    connection: AsyncConnection,
    flt: CallFilter,
    columns: Sequence[str],
    *,
    limit: int,
    after: tuple[datetime, int] | None = None,
    line_ids: AbstractSet[int] | None = None,
) -> list[dict[str, Any]]:
    """:func:`list_calls` as plain dicts of just these columns (which must include ``id`` and ``arrived_at``, the
    cursor's), for the API's hot list: no ORM objects, identity map or change tracking to build and throw away.
    Takes a connection, so the caller may use an autocommit one (``api.deps.ReaderDep``)."""
    table = Call.__table__
    stmt = (
        select(*(table.c[name] for name in columns))
        .where(*_page_conditions(flt, after, line_ids))
        .order_by(table.c.arrived_at.desc(), table.c.id.desc())
        .limit(limit)
    )
    result = await connection.execute(stmt)
    names = tuple(columns)
    return [dict(zip(names, row, strict=True)) for row in result.all()]


async def in_progress_rows(
    connection: AsyncConnection,
    pbx_ids: Sequence[str],
    columns: Sequence[str],
    line_ids: AbstractSet[int] | None = None,
) -> list[Any]:
    """These columns of the calls of these PBXs stored as still in progress, oldest first (index
    ``ix_calls_outcome_arrived``): what a process that does not listen to a PBX knows of its live calls. Rows allow
    attribute access by column name."""
    if not pbx_ids:
        return []
    table = Call.__table__
    conditions = [table.c.outcome == "in_progress", table.c.pbx_id.in_(list(pbx_ids))]
    if line_ids is not None:
        conditions.append(table.c.line_id.in_(sorted(line_ids)))
    stmt = select(*(table.c[name] for name in columns)).where(*conditions).order_by(table.c.arrived_at, table.c.id)
    return list((await connection.execute(stmt)).all())


async def get_call(session: AsyncSession, call_id: int) -> Call | None:
    return await session.get(Call, call_id)


async def timeline(session: AsyncSession, call_id: int) -> list[CallEvent]:
    stmt = select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.at, CallEvent.id)
    return list(await session.scalars(stmt))


async def calls_by_keys(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> list[Call]:
    pairs = list(keys)
    if not pairs:
        return []
    return list(await session.scalars(select(Call).where(tuple_(Call.pbx_id, Call.linkedid).in_(pairs))))


async def live_records(session: AsyncSession, pbx_id: str) -> dict[str, tuple[int, CallRecord]]:
    """Calls of a PBX stored as still in progress: linkedid -> (call id, record)."""
    rows = await session.scalars(select(Call).where(Call.pbx_id == pbx_id, Call.outcome == "in_progress"))
    return {row.linkedid: (row.id, row_to_record(row)) for row in rows}
