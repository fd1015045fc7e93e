"""``/health``: is the database reachable, is the schema current, how is each PBX connection doing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from hotline import __version__
from hotline.api.deps import RuntimeDep
from hotline.db.migrate import current_revision, head_revision
from hotline.db.repositories import pbx as pbx_repo

router = APIRouter(tags=["health"])

DB_CHECK_TIMEOUT_S = 3.0


async def _database_health(runtime: Any) -> dict[str, Any]:
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            revision = await current_revision(runtime.engine)
            async with runtime.sessions() as session:
                unfollowed = await pbx_repo.lines_on_unknown_pbxs(session, runtime.pbx_ids())
    except Exception as exc:  # any driver error means "unhealthy", never a 500
        return {
            "ok": False,
            "error": type(exc).__name__,
            "message": str(exc).splitlines()[0][:200] if str(exc) else "",
        }
    head = head_revision()
    return {
        "ok": revision == head,
        "schema_revision": revision,
        "schema_head": head,
        "backend": runtime.engine.dialect.name,
        # A configuration warning, not a failure: these lines' calls are not tagged and their queues not staffed.
        "lines_on_unconfigured_pbxs": [{"line_id": i, "number": n, "pbx_id": p} for i, n, p in unfollowed],
    }


@router.get("/health", summary="Service health: database, schema version and PBX connections")
async def health(runtime: RuntimeDep) -> JSONResponse:
    database = await _database_health(runtime)
    pbx = {pbx_id: (status() if callable(status) else status) for pbx_id, status in runtime.pbx.items()}
    healthy = database["ok"]
    body = {
        "status": "ok" if healthy else "unhealthy",
        "version": __version__,
        "database": database,
        "pbx": pbx,
    }
    refresher = runtime.report_refresher
    if refresher is not None:
        body["reports"] = refresher.status()
    return JSONResponse(body, status_code=200 if healthy else 503)
