"""Admin endpoints (one module per resource group; this package's ``router`` includes them)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
