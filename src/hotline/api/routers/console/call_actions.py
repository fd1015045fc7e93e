"""Per-call console actions: the registration, a transfer, the recording; and the export of calls."""

from __future__ import annotations

import csv
import io
import mimetypes
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.routers.console.common import MAX_ID, CallId, ConsoleDep, require_own_call, visible_call
from hotline.api.schemas.console import ActionResultOut, RegistrationIn, RegistrationOut, TransferIn
from hotline.api.security import AnyUser, Staff
from hotline.db.models import OUTCOMES, Registration
from hotline.db.repositories import calls as calls_repo
from hotline.db.repositories import console as console_repo
from hotline.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix="/api/calls", tags=["console"])

EXPORT_ROW_CAP = 100_000
"""Most calls one export may hold (built in memory: ~60 MB for XLSX at the cap); more -> 422, narrow the filters."""


# --- export -------------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "call_id", "pbx_id", "linkedid", "line_id", "number", "caller_number", "caller_name", "arrived_at", "queued_at",
    "answered_at", "ended_at", "wait_s", "talk_s", "operator", "outcome", "route", "hangup_cause", "transferred_to",
    "overflow_to", "callback_of_id", "called_back_at", "topic", "summary", "resolution", "specialist",
    "registered_by",
)  # fmt: skip


def _export_values(row: console_repo.ExportRow) -> list[Any]:
    c, r = row.call, row.registration
    return [
        c.id, c.pbx_id, c.linkedid, c.line_id, c.number, c.caller_number, c.caller_name, c.arrived_at, c.queued_at,
        c.answered_at, c.ended_at, c.wait_s, c.talk_s, c.operator, c.outcome, c.route, c.hangup_cause,
        c.transferred_to, c.overflow_to, c.callback_of_id, c.called_back_at, row.topic, r.summary if r else None,
        r.resolution if r else None, row.specialist, row.registered_by,
    ]  # fmt: skip


def _csv_chunks(rows: list[console_repo.ExportRow], bom: bool) -> Iterator[bytes]:
    """RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break; times ISO 8601 UTC."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    prefix = "\ufeff" if bom else ""
    for i, row in enumerate(rows):
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else v
                         for v in _export_values(row)])  # fmt: skip
        if i % 500 == 499:
            yield (prefix + buffer.getvalue()).encode("utf-8")
            prefix = ""
            buffer.seek(0)
            buffer.truncate()
    yield (prefix + buffer.getvalue()).encode("utf-8")


def _xlsx(rows: list[console_repo.ExportRow]) -> bytes:
    """One sheet, a header row, one row per call; numbers and times as typed cells (times in UTC, without zone,
    since Excel has none). Text is always stored as text, so a summary starting with '=' is never a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("calls")
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        cells = []
        for value in _export_values(row):
            if isinstance(value, datetime):
                cell = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
            else:
                cell = WriteOnlyCell(sheet, value=value)
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@router.get("/export", summary="Calls with their registrations as CSV (RFC 4180) or XLSX; same filters as the list",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument."
                                                                       "spreadsheetml.sheet": {}}}})  # fmt: skip
async def export_calls(
    principal: Staff,
    session: SessionDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    line: Annotated[int | None, Query(ge=1, le=MAX_ID, description="line id")] = None,
    operator: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(description=" | ".join(OUTCOMES))] = None,
    caller_number: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(alias="from", description="arrived at or after (ISO 8601, zone)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="arrived before (ISO 8601 with zone)")] = None,
    bom: Annotated[bool, Query(description="CSV only: start with a UTF-8 BOM (for Excel)")] = False,
) -> Response:
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", details={"field": "outcome"})
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone, e.g. 2026-11-25T09:00:00Z", details={"field": name})
    flt = calls_repo.CallFilter(line_id=line, operator=operator, outcome=outcome, caller_number=caller_number,
                                since=since, until=until)  # fmt: skip
    rows = await console_repo.export_rows(session, flt, line_ids=None, limit=EXPORT_ROW_CAP + 1)
    if len(rows) > EXPORT_ROW_CAP:
        raise InvalidInput(f"More than {EXPORT_ROW_CAP} calls match; narrow the filters (e.g. from/to).",
                           details={"cap": EXPORT_ROW_CAP}, error_id="export-too-large")  # fmt: skip
    if format == "xlsx":
        return Response(
            _xlsx(rows),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="calls.xlsx"'},
        )
    return StreamingResponse(_csv_chunks(rows, bom), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="calls.csv"'})  # fmt: skip


# --- registration ---------------------------------------------------------------------------------------------------


@router.get("/{call_id}/registration", response_model=RegistrationOut, summary="What was registered about a call")
async def get_registration(call_id: CallId, principal: AnyUser, session: SessionDep) -> RegistrationOut:
    await visible_call(session, principal, call_id)
    registration = await console_repo.registration_for(session, call_id)
    if registration is None:
        raise NotFound(f"Call {call_id} has no registration yet.", details={"call_id": call_id})
    return RegistrationOut.model_validate(registration)


@router.post("/{call_id}/registration", response_model=RegistrationOut,
             summary="Register (or correct) what a call was about; ends the operator's wrap-up")  # fmt: skip
async def register_call(
    call_id: CallId, body: RegistrationIn, principal: AnyUser, session: SessionDep, console: ConsoleDep
) -> RegistrationOut:
    call = await visible_call(session, principal, call_id)
    require_own_call(principal, call, "register it")
    if body.topic_id is not None and await console_repo.topic(session, body.topic_id) is None:
        raise InvalidInput(f"No topic {body.topic_id}.", details={"field": "topic_id"})
    if body.specialist_id is not None and await console_repo.contact(session, body.specialist_id) is None:
        raise InvalidInput(f"No directory contact {body.specialist_id}.", details={"field": "specialist_id"})
    registration = await console_repo.registration_for(session, call_id)
    if registration is None:
        registration = Registration(call_id=call_id)
    registration.user_id = principal.user_id
    registration.topic_id = body.topic_id
    registration.summary = body.summary
    registration.resolution = body.resolution
    registration.specialist_id = body.specialist_id
    registration = await console_repo.save_registration(session, registration)
    if call.operator == principal.username:
        await console.end_wrapup(session, principal.user_id, principal.username)
    return RegistrationOut.model_validate(registration)


# --- transfer -------------------------------------------------------------------------------------------------------


@router.post("/{call_id}/transfer", response_model=ActionResultOut,
             summary="Send the caller to a specialist or a number (AMI Redirect of the caller's channel)")  # fmt: skip
async def transfer_call(
    call_id: CallId, body: TransferIn, principal: AnyUser, session: SessionDep, console: ConsoleDep
) -> ActionResultOut:
    call = await visible_call(session, principal, call_id)
    require_own_call(principal, call, "transfer it")
    if (body.target is None) == (body.contact_id is None):
        raise InvalidInput("Give either target (a number) or contact_id (a directory contact).",
                           details={"field": "target"})  # fmt: skip
    target = body.target
    if body.contact_id is not None:
        contact = await console_repo.contact(session, body.contact_id)
        if contact is None or not contact.active:
            raise InvalidInput(f"No active directory contact {body.contact_id}.", details={"field": "contact_id"})
        target = contact.extension or contact.phone
        if not target:
            raise InvalidInput(f"{contact.name} has no extension or phone number.", details={"field": "contact_id"})
    return ActionResultOut(**await console.transfer(session, call, target or ""))


# --- recording ------------------------------------------------------------------------------------------------------


def resolve_recording(recordings_dir: Path, recording_path: str) -> Path:
    """The file, only if it lies inside ``recordings_dir`` once every ``..`` and symlink is resolved."""
    root = recordings_dir.resolve()
    candidate = Path(recording_path)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise Forbidden("This recording is outside the recordings store and is not served.",
                        error_id="recording-outside-store")  # fmt: skip
    return resolved


@router.get("/{call_id}/recording", response_class=FileResponse,
            summary="The call's recording (HTTP Range supported); supervisors or the operator who took the call",
            responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "partial content"}})  # fmt: skip
async def call_recording(call_id: CallId, principal: AnyUser, session: SessionDep, runtime: RuntimeDep) -> FileResponse:
    call = await visible_call(session, principal, call_id)
    require_own_call(principal, call, "listen to its recording")
    if not call.recording_path:
        raise NotFound(f"Call {call_id} has no recording.", details={"call_id": call_id}, error_id="no-recording")
    path = resolve_recording(runtime.settings.recordings_dir, call.recording_path)
    if not path.is_file():
        raise NotFound(f"The recording of call {call_id} is missing from the store.", details={"call_id": call_id},
                       error_id="recording-missing")  # fmt: skip
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=path.name)
