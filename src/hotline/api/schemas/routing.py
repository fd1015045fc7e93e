"""API shapes of routing: line status, operators' schedules, presence."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from hotline.api.params import DbId

PresenceTarget = Literal["available", "paused", "offline", "wrapup"]


class QueueMemberOut(BaseModel):
    """A queue member as the PBX reported it in its last ``QueueStatus``."""

    pbx_id: str
    interface: str
    name: str
    penalty: int
    paused: bool
    reason: str | None
    in_call: bool


class LineStatusOut(BaseModel):
    line_id: DbId
    pbx_id: str = Field(description="the PBX the line's number rings on; members are read from it")
    name: str
    active: bool = Field(description="false: routing leaves this line's queue and open flag alone")
    queue: str
    open: bool
    why: str = Field(description="the rule that decides, e.g. 'weekly Mon 08:00–18:00' or 'exception Christmas'")
    next_change: datetime | None = Field(description="UTC; null when it never changes")
    members: list[QueueMemberOut]
    members_read_at: datetime | None = Field(description="when the PBX last reported its members; null if never")


class BreakOut(BaseModel):
    id: int
    kind: str
    starts_at: datetime
    ends_at: datetime
    actual_start: datetime | None
    actual_end: datetime | None


class ShiftOut(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    breaks: list[BreakOut]


class ScheduleOut(BaseModel):
    user_id: DbId
    username: str
    since: datetime
    until: datetime
    shifts: list[ShiftOut]


class PresenceIn(BaseModel):
    state: PresenceTarget
    reason: Literal["lunch", "break", "manual"] | None = Field(default=None, description="only with state 'paused'")


class PresenceOut(BaseModel):
    user_id: DbId
    username: str
    state: str
    reason: str | None
    since: datetime | None = Field(description="null when the operator never logged in")


class RoutingStatusOut(BaseModel):
    pbx: list[dict[str, Any]]
