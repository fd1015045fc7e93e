"""Dialplan endpoints (admins only): preview, apply, rollback, the stored versions.

Each PBX has its own dialplan (the files of its own lines, its own versions): ``?pbx=<id>`` chooses it, the first
PBX by default; an id that is not configured is a 422 listing the known ones. A rollback goes to the version's PBX.

Apply and rollback answer 200 with ``outcome`` ``applied`` or ``unchanged``, and 502 with the same body and
``outcome: failed`` when Asterisk refused the reload (the previous version then stays in force). A line that cannot
be rendered is a 422 naming the line and field; no connected PBX is a 503; in both cases nothing is written.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from hotline.api.deps import RuntimeDep, SessionDep
from hotline.api.params import MAX_ID, IdPath
from hotline.api.schemas.dialplan import (
    DialplanApplyOut,
    DialplanPreviewOut,
    DialplanVersionDetailOut,
    DialplanVersionOut,
)
from hotline.api.schemas.pbx import pbx_context
from hotline.api.security import AdminOnly
from hotline.bootstrap import Runtime
from hotline.db.models import DialplanVersion
from hotline.db.repositories import dialplan as dialplan_repo
from hotline.errors import NotFound
from hotline.services import dialplan_service
from hotline.services.dialplan_service import ApplyResult

router = APIRouter(prefix="/api/dialplan", tags=["dialplan"])

_FAILED = {502: {"model": DialplanApplyOut, "description": "Asterisk refused the reload; the previous version stays"}}

PbxQuery = Annotated[
    str | None,
    Query(max_length=40, description="the PBX whose dialplan this is (HOTLINE_AMI__ID or an extra PBX's id); "
          "default: the first PBX"),
]  # fmt: skip


def _version_out(runtime: Runtime, row: DialplanVersion) -> DialplanVersionOut:
    return DialplanVersionOut.model_validate(row, context=pbx_context(runtime.settings))


def _outcome(runtime: Runtime, result: ApplyResult) -> DialplanApplyOut | JSONResponse:
    body = DialplanApplyOut(
        outcome=result.outcome, message=result.message, version=_version_out(runtime, result.version)
    )
    if result.outcome == "failed":
        return JSONResponse(body.model_dump(mode="json"), status_code=502)
    return body


@router.get("/preview", response_model=DialplanPreviewOut, summary="What an apply would write now, with the diff")
async def preview(
    _principal: AdminOnly, session: SessionDep, runtime: RuntimeDep, pbx: PbxQuery = None
) -> DialplanPreviewOut:
    where = dialplan_service.target(runtime.settings, pbx)
    found = await dialplan_service.preview(session, where)
    applied = found.applied_version
    return DialplanPreviewOut(
        pbx_id=where.pbx_id,
        extensions_text=found.rendered.extensions,
        queues_text=found.rendered.queues,
        checksum=found.checksum,
        applied_version=_version_out(runtime, applied) if applied is not None else None,
        diff=found.diff,
        pending=found.pending,
    )


@router.post(
    "/apply",
    response_model=DialplanApplyOut,
    responses=_FAILED,  # type: ignore[arg-type]
    summary="Render the lines, write the files, reload Asterisk",
)
async def apply(principal: AdminOnly, runtime: RuntimeDep, pbx: PbxQuery = None) -> DialplanApplyOut | JSONResponse:
    return _outcome(runtime, await dialplan_service.apply(runtime, principal.user_id, pbx))


@router.post(
    "/rollback/{version}",
    response_model=DialplanApplyOut,
    responses=_FAILED,  # type: ignore[arg-type]
    summary="Put an earlier version's text back in force on its PBX, as a new version",
)
async def rollback(version: IdPath, principal: AdminOnly, runtime: RuntimeDep) -> DialplanApplyOut | JSONResponse:
    return _outcome(runtime, await dialplan_service.rollback(runtime, version, principal.user_id))


@router.get("/versions", response_model=list[DialplanVersionOut], summary="Stored versions, newest first")
async def list_versions(
    _principal: AdminOnly,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="only versions with a smaller id (paging)")
    ] = None,
    pbx: Annotated[
        str | None, Query(max_length=40, description="only this PBX's versions (default: every PBX's)")
    ] = None,
) -> list[DialplanVersionOut]:
    if pbx is None:
        rows = await dialplan_repo.list_versions(session, limit=limit, before_id=before)
    else:
        where = dialplan_service.target(runtime.settings, pbx)
        rows = await dialplan_repo.list_versions(
            session, limit=limit, before_id=before, pbx_id=where.pbx_id, first=where.first
        )
    return [_version_out(runtime, row) for row in rows]


@router.get("/versions/{version_id}", response_model=DialplanVersionDetailOut, summary="One version with its text")
async def get_version(
    version_id: IdPath, _principal: AdminOnly, session: SessionDep, runtime: RuntimeDep
) -> DialplanVersionDetailOut:
    row = await dialplan_repo.get_version(session, version_id)
    if row is None:
        raise NotFound(f"Dialplan version {version_id} does not exist.", details={"version": version_id})
    return DialplanVersionDetailOut.model_validate(row, context=pbx_context(runtime.settings))
