"""Console API schemas: what an operator's console reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hotline.api.params import DbId
from hotline.api.schemas import admin, routing
from hotline.api.schemas.calls import CallOut

MAX_ID = 2_147_483_647


class BreakOut(routing.BreakOut):
    """A planned break as the operator's day shows it: the routing view plus whether it was taken."""

    taken: bool

    model_config = ConfigDict(from_attributes=True)


class ShiftOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    breaks: list[BreakOut]
    breaks_left: int = Field(description="planned breaks not started yet")


class MyDayOut(BaseModel):
    date: str = Field(description="today in the hotline's time zone (ISO date)")
    timezone: str
    shifts: list[ShiftOut]


class QueuedCallerOut(BaseModel):
    position: int
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    queued_at: datetime | None
    waiting_s: float | None


class LineQueueOut(BaseModel):
    line_id: DbId
    waiting: list[QueuedCallerOut]


class RegistrationIn(BaseModel):
    topic_id: DbId | None = Field(default=None, ge=1, le=MAX_ID)
    summary: str = Field(default="", max_length=10_000)
    resolution: Literal["resolved", "escalated", "callback"]
    specialist_id: DbId | None = Field(default=None, ge=1, le=MAX_ID, description="a directory contact")

    model_config = {"extra": "forbid"}


class RegistrationOut(BaseModel):
    id: int
    call_id: DbId
    user_id: DbId | None
    topic_id: DbId | None
    summary: str
    resolution: str
    specialist_id: DbId | None
    created_at: datetime
    updated_at: datetime

    model_config = {"from_attributes": True}


class HistoryEntryOut(BaseModel):
    call: CallOut
    registration: RegistrationOut | None
    topic: str | None


class CurrentCallOut(BaseModel):
    state: Literal["talking", "wrapup", "none"]
    call: CallOut | None
    registration: RegistrationOut | None
    history: list[HistoryEntryOut]


class ScriptOut(BaseModel):
    line_id: DbId | None
    organisation_name: str
    greeting: str
    closing: str


class TopicOut(BaseModel):
    id: int
    name: str
    description: str

    model_config = {"from_attributes": True}


class ContactOut(admin.ContactFields):
    """A directory entry as the console shows it: with the names of the topics the specialist covers."""

    topics: list[str]


class AnswerOut(BaseModel):
    id: int
    topic_id: DbId
    topic: str
    title: str
    body: str
    sensitive: bool


class TransferIn(BaseModel):
    target: str | None = Field(default=None, max_length=21, description="digits or an extension")
    contact_id: DbId | None = Field(
        default=None, ge=1, le=MAX_ID, description="a directory contact: their extension or phone"
    )

    model_config = {"extra": "forbid"}


class ActionResultOut(BaseModel):
    result: str
    call_id: DbId
    target: str | None = None
    number: str | None = None
    device: str | None = None


class WorklistEntryOut(BaseModel):
    call_id: DbId
    line_id: DbId | None
    caller_number: str | None
    caller_name: str | None
    arrived_at: datetime
    outcome: str
    wait_s: float | None
