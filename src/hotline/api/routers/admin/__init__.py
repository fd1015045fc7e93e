"""Admin endpoints (one module per resource group; this package's ``router`` includes them).

Everything lives under ``/api/admin/...`` except the audit log, ``/api/audit``. See docs/admin-api.md.
"""

from __future__ import annotations

from fastapi import APIRouter

from hotline.api.routers.admin import audit, hours, knowledge, lines, shifts, tariffs, users

router = APIRouter()
for _module in (lines, hours, users, shifts, knowledge, tariffs, audit):
    router.include_router(_module.router)
