"""API shapes of the dialplan feature: versions, the preview, the outcome of an apply or a rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from hotline.api.params import DbId
from hotline.api.schemas.pbx import first_pbx_when_null


class DialplanVersionOut(BaseModel):
    """One stored version, without its text (see :class:`DialplanVersionDetailOut`)."""

    id: int
    pbx_id: str = Field(description="the PBX whose files these are (each PBX has its own lines and versions)")
    created_at: datetime
    author_id: DbId | None
    checksum: str
    status: str
    result: str
    applied_at: datetime | None

    model_config = {"from_attributes": True}

    _first_pbx = field_validator("pbx_id", mode="before")(first_pbx_when_null)


class DialplanVersionDetailOut(DialplanVersionOut):
    extensions_text: str
    queues_text: str


class DialplanPreviewOut(BaseModel):
    pbx_id: str
    extensions_text: str
    queues_text: str
    checksum: str
    applied_version: DialplanVersionOut | None
    diff: str
    pending: bool


class DialplanApplyOut(BaseModel):
    """``outcome``: applied (in force now), unchanged (nothing sent), failed (the previous version stays)."""

    outcome: Literal["applied", "unchanged", "failed"]
    message: str
    version: DialplanVersionOut
