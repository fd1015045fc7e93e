from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from hotline.api.params import DbId


class CallOut(BaseModel):
    id: int
    pbx_id: str
    linkedid: str
    line_id: DbId | None
    number: str
    caller_number: str | None
    caller_name: str | None
    arrived_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_s: float | None
    talk_s: float | None
    operator: str | None
    rang: list[str]
    outcome: str
    route: str | None
    hangup_cause: int | None
    transferred_to: str | None
    overflow_to: str | None
    recording_path: str | None
    end_inferred: bool
    seen_first_in_resync: bool

    model_config = {"from_attributes": True}


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None


class TimelineEntryOut(BaseModel):
    at: datetime
    event: str
    summary: dict[str, Any]

    model_config = {"from_attributes": True}


class CallDetailOut(CallOut):
    timeline: list[TimelineEntryOut]


class LiveCallOut(BaseModel):
    pbx_id: str
    linkedid: str
    line_id: DbId | None
    number: str
    caller_number: str | None
    caller_name: str | None
    arrived_at: datetime | None
    state: str
    waiting_s: float | None
    talking_s: float | None
    operator: str | None
    queue: str | None
