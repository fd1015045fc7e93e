"""API shapes of the dialplan feature: versions, the preview, the outcome of an apply or a rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from hotline.api.params import DbId


class DialplanVersionOut(BaseModel):
    """One stored version, without its text (see :class:`DialplanVersionDetailOut`)."""

    id: int
    created_at: datetime
    author_id: DbId | None
    checksum: str
    status: str
    result: str
    applied_at: datetime | None

    model_config = {"from_attributes": True}


class DialplanVersionDetailOut(DialplanVersionOut):
    extensions_text: str
    queues_text: str


class DialplanPreviewOut(BaseModel):
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
