"""Console endpoints (one module per resource group; this package's ``router`` includes them)."""

from __future__ import annotations

from fastapi import APIRouter

from hotline.api.routers.console import call_actions, callbacks, desk, page, ws

router = APIRouter()
for _module in (desk, call_actions, callbacks, ws, page):
    router.include_router(_module.router)
