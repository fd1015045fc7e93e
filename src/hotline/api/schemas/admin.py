"""Admin API schemas: ``XCreate`` (POST), ``XUpdate`` (PATCH: only the fields sent change), ``XOut``."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from hotline.api.params import DbId
from hotline.api.schemas.pbx import first_pbx_when_null
from hotline.db.models import CLOSED_ACTIONS, QUEUE_STRATEGIES, ROLES
from hotline.services.admin_validation import check_number, check_template, check_timezone


def _wall(value: Any) -> Any:
    return "00:00" if value in ("24:00", "24:00:00") else value


Number = Annotated[str, AfterValidator(check_number)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(check_timezone)]
WallTime = Annotated[
    time, BeforeValidator(_wall), Field(description="HH:MM local; 24:00 (or 00:00 as an end) = midnight")
]
Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")]
Template = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(check_template)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
ClosedAction = Literal[CLOSED_ACTIONS]  # type: ignore[valid-type]
Strategy = Literal[QUEUE_STRATEGIES]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- lines --------------------------------------------------------------------------------------------------


PbxId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="the PBX the number rings on: HOTLINE_AMI__ID (the first PBX) or an id in HOTLINE_EXTRA_PBXS",
    ),
]


class LineCreate(_In):
    pbx_id: PbxId | None = Field(None, description="the PBX the number rings on; default: the first PBX")
    number: Number
    name: Name
    source: str | None = Field(None, max_length=120, description="where the number is advertised")
    max_channels: int | None = Field(None, ge=1, le=10_000)
    timezone: TimeZone = "UTC"
    always_open: bool = False
    closed_action: ClosedAction = "hangup"
    forward_to: Number | None = None
    overflow_to: Number | None = None
    queue_timeout_s: int = Field(60, ge=1, le=86_400)
    member_ring_timeout_s: int = Field(15, ge=1, le=600)
    strategy: Strategy = "rrmemory"
    recording: bool = False
    active: bool = True


class LineUpdate(_In):
    pbx_id: PbxId | None = Field(None, description="move the line to this PBX; null: to the first PBX")
    number: Number | None = None
    name: Name | None = None
    source: str | None = Field(None, max_length=120)
    max_channels: int | None = Field(None, ge=1, le=10_000)
    timezone: TimeZone | None = None
    always_open: bool | None = None
    closed_action: ClosedAction | None = None
    forward_to: Number | None = None
    overflow_to: Number | None = None
    queue_timeout_s: int | None = Field(None, ge=1, le=86_400)
    member_ring_timeout_s: int | None = Field(None, ge=1, le=600)
    strategy: Strategy | None = None
    recording: bool | None = None
    active: bool | None = None


class LineOut(_Out):
    """Validate with ``context=pbx_context(settings)``: the first PBX's lines store no PBX id."""

    id: int
    pbx_id: str = Field(description="the PBX the number rings on")
    number: str
    name: str
    source: str | None
    max_channels: int | None
    timezone: str
    always_open: bool
    closed_action: str
    forward_to: str | None
    overflow_to: str | None
    queue_timeout_s: int
    member_ring_timeout_s: int
    strategy: str
    recording: bool
    active: bool

    _first_pbx = field_validator("pbx_id", mode="before")(first_pbx_when_null)


class AssignmentIn(_In):
    priority: int = Field(0, ge=0, le=100, description="queue penalty: 0 rings first")


class AssignmentOut(BaseModel):
    line_id: DbId
    user_id: DbId
    username: str
    priority: int


# --- hours --------------------------------------------------------------------------------------------------


class WeeklyRangeIn(_In):
    weekday: Weekday
    start: WallTime
    end: WallTime


class WeeklyRangeUpdate(_In):
    weekday: Weekday | None = None
    start: WallTime | None = None
    end: WallTime | None = None


#: A wall-clock time, "HH:MM:SS". Described as a pattern: JSON Schema's "time" format wants a UTC offset, which a
#: local opening hour has not.
WallTimeOut = Annotated[
    time,
    WithJsonSchema(
        {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$", "examples": ["09:00:00"]}
    ),
]


class WeeklyRangeOut(BaseModel):
    id: int
    weekday: int
    start: WallTimeOut
    end: WallTimeOut


class CampaignCreate(_In):
    name: Name
    start_date: date
    end_date: date
    ranges: list[WeeklyRangeIn] = Field(default_factory=list, max_length=100)


class CampaignUpdate(_In):
    name: Name | None = None
    start_date: date | None = None
    end_date: date | None = None
    ranges: list[WeeklyRangeIn] | None = Field(None, max_length=100, description="replaces all ranges")


class CampaignOut(BaseModel):
    id: int
    line_id: DbId
    name: str
    start_date: date
    end_date: date
    ranges: list[WeeklyRangeOut]


class TimeRangeIn(_In):
    start: WallTime
    end: WallTime


class ExceptionCreate(_In):
    start_date: date
    end_date: date | None = Field(None, description="defaults to start_date")
    reason: str = Field(min_length=1, max_length=200)
    closed: bool | None = Field(None, description="defaults to true without ranges, false with them")
    ranges: list[TimeRangeIn] = Field(default_factory=list, max_length=20, description="special opening hours")


class ExceptionUpdate(_In):
    start_date: date | None = None
    end_date: date | None = None
    reason: str | None = Field(None, min_length=1, max_length=200)
    closed: bool | None = None
    ranges: list[TimeRangeIn] | None = Field(None, max_length=20)


class ExceptionOut(_Out):
    id: int
    line_id: DbId
    start_date: date
    end_date: date
    reason: str
    closed: bool
    ranges: list[dict[str, str]]


# --- users --------------------------------------------------------------------------------------------------


class UserCreate(_In):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    full_name: str = Field("", max_length=200)
    device: str | None = Field(None, max_length=100, description="Asterisk interface, e.g. PJSIP/op101")
    active: bool = True


class UserUpdate(_In):
    full_name: str | None = Field(None, max_length=200)
    role: Role | None = None
    device: str | None = Field(None, max_length=100)
    active: bool | None = None


class PasswordSet(_In):
    password: str = Field(min_length=8, max_length=1024)


class UserOut(_Out):
    id: int
    username: str
    full_name: str
    role: str
    device: str | None
    active: bool


# --- shifts -------------------------------------------------------------------------------------------------


class BreakSlot(_In):
    kind: Literal["lunch", "break"]
    offset_min: int = Field(ge=1, le=24 * 60, description="minutes of work before the break starts")
    length_min: int = Field(ge=1, le=24 * 60)


class Slot(_In):
    weekday: Weekday
    start: WallTime
    end: WallTime
    breaks: list[BreakSlot] = Field(default_factory=list, max_length=10)


class ShiftPatternCreate(_In):
    user_id: DbId
    name: Name
    timezone: TimeZone = "UTC"
    valid_from: date
    valid_to: date | None = None
    slots: list[Slot] = Field(default_factory=list, max_length=50)


class ShiftPatternUpdate(_In):
    user_id: DbId | None = None
    name: Name | None = None
    timezone: TimeZone | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    slots: list[Slot] | None = Field(None, max_length=50)


class ShiftPatternOut(_Out):
    id: int
    user_id: DbId
    name: str
    timezone: str
    valid_from: date
    valid_to: date | None
    slots: list[dict[str, Any]]


class ShiftCreate(_In):
    user_id: DbId
    pattern_id: DbId | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class ShiftUpdate(_In):
    user_id: DbId | None = None
    pattern_id: DbId | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class ShiftOut(_Out):
    id: int
    user_id: DbId
    pattern_id: DbId | None
    starts_at: datetime
    ends_at: datetime


class BreakCreate(_In):
    kind: Literal["lunch", "break"]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None


class BreakUpdate(_In):
    kind: Literal["lunch", "break"] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None


class BreakOut(_Out):
    id: int
    shift_id: DbId
    kind: str
    starts_at: datetime
    ends_at: datetime
    actual_start: datetime | None
    actual_end: datetime | None


# --- knowledge ----------------------------------------------------------------------------------------------


class TopicCreate(_In):
    name: Name
    description: str = Field("", max_length=4000)


class TopicUpdate(_In):
    name: Name | None = None
    description: str | None = Field(None, max_length=4000)


class TopicOut(_Out):
    id: int
    name: str
    description: str


_PHONE = r"^\+?[0-9][0-9 ()./-]{1,31}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ContactCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=200)
    department: str = Field("", max_length=200)
    phone: str | None = Field(None, max_length=32, pattern=_PHONE)
    extension: str | None = Field(None, max_length=32, pattern=r"^[0-9*#]{1,32}$")
    email: str | None = Field(None, max_length=200, pattern=_EMAIL)
    notes: str = Field("", max_length=4000)
    active: bool = True
    topic_ids: list[DbId] = Field(default_factory=list, max_length=200)


class ContactUpdate(_In):
    name: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, max_length=200)
    department: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=32, pattern=_PHONE)
    extension: str | None = Field(None, max_length=32, pattern=r"^[0-9*#]{1,32}$")
    email: str | None = Field(None, max_length=200, pattern=_EMAIL)
    notes: str | None = Field(None, max_length=4000)
    active: bool | None = None
    topic_ids: list[DbId] | None = Field(None, max_length=200, description="replaces all topics")


class ContactFields(BaseModel):
    """What every view of a directory contact shows."""

    id: int
    name: str
    title: str
    department: str
    phone: str | None
    extension: str | None
    email: str | None
    notes: str


class ContactOut(ContactFields):
    active: bool
    topic_ids: list[DbId]


class AnswerCreate(_In):
    topic_id: DbId
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    sensitive: bool = False


class AnswerUpdate(_In):
    topic_id: DbId | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=20_000)
    sensitive: bool | None = None


class AnswerOut(_Out):
    id: int
    topic_id: DbId
    title: str
    body: str
    sensitive: bool
    updated_at: datetime


class ScriptCreate(_In):
    line_id: DbId | None = Field(None, description="null = the default script of every line")
    organisation_name: str = Field(min_length=1, max_length=200)
    greeting_template: Template
    closing_template: Template


class ScriptUpdate(_In):
    organisation_name: str | None = Field(None, min_length=1, max_length=200)
    greeting_template: Template | None = None
    closing_template: Template | None = None


class ScriptOut(_Out):
    id: int
    line_id: DbId | None
    organisation_name: str
    greeting_template: str
    closing_template: str


# --- tariffs ------------------------------------------------------------------------------------------------

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=4)]


class TariffCreate(_In):
    line_id: DbId | None = Field(None, description="null = applies to no line yet (a comparison offer)")
    name: Name
    valid_from: date
    monthly_fee: Money = Decimal(0)
    price_per_minute: Money = Decimal(0)
    billing_increment_s: int = Field(60, ge=1, le=3600)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    comparison: bool = False


class TariffUpdate(_In):
    line_id: DbId | None = None
    name: Name | None = None
    valid_from: date | None = None
    monthly_fee: Money | None = None
    price_per_minute: Money | None = None
    billing_increment_s: int | None = Field(None, ge=1, le=3600)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    comparison: bool | None = None


class TariffOut(_Out):
    id: int
    line_id: DbId | None
    name: str
    valid_from: date
    monthly_fee: Decimal
    price_per_minute: Decimal
    billing_increment_s: int
    currency: str
    comparison: bool


# --- audit --------------------------------------------------------------------------------------------------


class AuditOut(BaseModel):
    id: int
    at: datetime
    user_id: DbId | None
    username: str | None
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None
