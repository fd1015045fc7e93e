"""Reports endpoints (one module per resource group; this package's ``router`` includes them)."""

from __future__ import annotations

from fastapi import APIRouter

from hotline.api.routers.reports import page, summary

router = APIRouter()
router.include_router(summary.router)
router.include_router(page.router)
