"""``/console``: the reference console page (static files, no build step). Public: it is the sign-in page, and it
uses only the public API and the WebSocket, like any console a developer would write."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from hotline.errors import NotFound

router = APIRouter(tags=["console"])

STATIC = Path(__file__).resolve().parents[3] / "static" / "console"
_ASSET = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


@router.get("/console", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})  # fmt: skip


@router.get("/console/{asset}", include_in_schema=False)
async def console_asset(asset: str) -> FileResponse:
    match = _ASSET.match(asset)
    if match is None or not (STATIC / asset).is_file():
        raise NotFound(f"No console file {asset!r}.")
    return FileResponse(STATIC / asset, media_type=_TYPES[match.group(1)], headers={"Cache-Control": "no-cache"})
