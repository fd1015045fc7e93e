"""SQLAlchemy 2 models for the whole hotline domain (see ../shared/DESIGN.md, "Domain vocabulary").

Relationships are ``lazy="raise"``: a query that needs related rows says so with ``selectinload``, so no request
issues a hidden query per row. Enumerations are stored as short strings with a CHECK constraint (portable between
SQLite and PostgreSQL, and easy to extend in a migration).
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hotline.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "supervisor", "operator")
CLOSED_ACTIONS = ("hangup", "voicemail", "forward")
QUEUE_STRATEGIES = (
    "ringall",
    "leastrecent",
    "fewestcalls",
    "random",
    "rrmemory",
    "linear",
    "wrandom",
    "rrordered",
)
OUTCOMES = (
    "in_progress",
    "answered",
    "abandoned",
    "closed",
    "overflow",
    "timeout",
    "voicemail",
    "busy",
    "failed",
)
PRESENCE_STATES = ("offline", "available", "on_call", "wrapup", "paused")
BREAK_KINDS = ("lunch", "break")
RESOLUTIONS = ("resolved", "escalated", "callback")
DIALPLAN_STATUSES = ("pending", "applied", "failed", "superseded")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it as a class attribute


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


# --- people -------------------------------------------------------------------------------------------------------


class User(TimestampMixin, Base):
    """Anyone who signs in: operators answer calls, supervisors run the floor, admins configure the hotline."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(100), doc="Asterisk interface, e.g. PJSIP/op101")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    lines: Mapped[list[OperatorLine]] = relationship(back_populates="user", lazy="raise")


class ApiToken(Base):
    """A bearer token; only its hash is stored, so a leaked database does not leak sessions."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


# --- lines and hours ----------------------------------------------------------------------------------------------


class Line(TimestampMixin, Base):
    """A dedicated number on one PBX; its id names its Asterisk queue (``hotline-<id>``) and AstDB open flag.

    ``pbx_id`` says which PBX the number rings on: that PBX's listener tags the calls to ``number``, its routing
    keeps the line's queue and open flag, and the line is rendered into its dialplan files. **NULL means the first
    PBX** (the one configured as ``HOTLINE_AMI__*``), whatever its id, and is how the first PBX's lines are stored:

    * lines that existed before PBXs had lines (migration 0004) stay on the one PBX that served them, whether its
      id is the default ``pbx1`` or anything else — a migration cannot know the id, the configuration can;
    * a one-PBX hotline never has to name its PBX, and renaming it (``HOTLINE_AMI__ID``), or pointing it at a new
      Asterisk, needs no change to the lines;
    * so the first PBX has a single spelling, the admin API stores its id as NULL (``services/pbx_ids.py``), and
      readers also accept the id written out (a row typed in by hand).

    The price: a line on the first PBX follows the *position* — making another PBX the first moves those lines
    with it. Before such a swap, write the old first PBX's id out
    (``UPDATE lines SET pbx_id = '<its id>' WHERE pbx_id IS NULL``, the same for ``dialplan_versions``); the API
    cannot, as it stores the first PBX's id as NULL. An id that is no longer configured leaves its lines with no
    listener and no routing; the process logs them at start-up.

    The same number may exist on two PBXs (a national short number answered in two regions, the same ``${EXTEN}``
    after two trunks' rewriting) as two lines: unique per (``pbx_id``, ``number``), and among first-PBX lines
    (``pbx_id`` NULL) by the partial unique index, since NULLs never collide in a unique constraint.
    """

    __tablename__ = "lines"
    __table_args__ = (
        CheckConstraint(_in("closed_action", CLOSED_ACTIONS), name="closed_action"),
        CheckConstraint(_in("strategy", QUEUE_STRATEGIES), name="strategy"),
        CheckConstraint("max_channels IS NULL OR max_channels > 0", name="max_channels_positive"),
        UniqueConstraint("pbx_id", "number"),
        Index(
            "uq_lines_number_first_pbx",
            "number",
            unique=True,
            sqlite_where=text("pbx_id IS NULL"),
            postgresql_where=text("pbx_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str | None] = mapped_column(String(40), doc="the PBX the number rings on; NULL: the first PBX")
    number: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    source: Mapped[str | None] = mapped_column(String(120), doc="where the number is advertised")
    max_channels: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    always_open: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_action: Mapped[str] = mapped_column(String(16), default="hangup")
    forward_to: Mapped[str | None] = mapped_column(String(32))
    overflow_to: Mapped[str | None] = mapped_column(String(32))
    queue_timeout_s: Mapped[int] = mapped_column(Integer, default=60)
    member_ring_timeout_s: Mapped[int] = mapped_column(Integer, default=15)
    strategy: Mapped[str] = mapped_column(String(16), default="rrmemory")
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    weekly_hours: Mapped[list[WeeklyHours]] = relationship(
        back_populates="line", lazy="raise", cascade="all, delete-orphan"
    )


class Campaign(Base):
    """A date range with its own weekly hours (e.g. admissions, 1-31 July)."""

    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint("end_date >= start_date", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)


class WeeklyHours(Base):
    """One opening range on a weekday (0 = Monday), local to the line; ``campaign_id`` set = the campaign's hours."""

    __tablename__ = "weekly_hours"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    line: Mapped[Line] = relationship(back_populates="weekly_hours", lazy="raise")


class HoursException(Base):
    """A date range closed (a public holiday) or open with special hours (``ranges``: [{start, end}])."""

    __tablename__ = "hours_exceptions"
    __table_args__ = (CheckConstraint("end_date >= start_date", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    closed: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    ranges: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class Tariff(Base):
    """A carrier's price for a line, dated so a change of contract keeps history; ``comparison`` tariffs are
    offers entered only to compare what the same traffic would have cost."""

    __tablename__ = "tariffs"
    __table_args__ = (
        CheckConstraint("billing_increment_s > 0", name="increment_positive"),
        CheckConstraint("monthly_fee >= 0 AND price_per_minute >= 0", name="prices_not_negative"),
        Index("ix_tariffs_line_from", "line_id", "valid_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    valid_from: Mapped[date] = mapped_column(Date)
    monthly_fee: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(0))
    price_per_minute: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal(0))
    billing_increment_s: Mapped[int] = mapped_column(Integer, default=60)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    comparison: Mapped[bool] = mapped_column(Boolean, default=False)


# --- operators, shifts, presence ----------------------------------------------------------------------------------


class OperatorLine(Base):
    """Which operators serve which line; ``priority`` becomes the queue penalty (0 rings first)."""

    __tablename__ = "operator_lines"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), primary_key=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship(back_populates="lines", lazy="raise")


class ShiftPattern(Base):
    """A weekly template that generates dated shifts; ``slots``: [{weekday, start, end, breaks: [...]}]."""

    __tablename__ = "shift_patterns"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    slots: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Shift(Base):
    """An operator's working period on a given day."""

    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="times_ordered"),
        Index("ix_shifts_user_starts", "user_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pattern_id: Mapped[int | None] = mapped_column(ForeignKey("shift_patterns.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class ShiftBreak(Base):
    """A planned lunch or short break inside a shift, and when it really happened."""

    __tablename__ = "shift_breaks"
    __table_args__ = (
        CheckConstraint(_in("kind", BREAK_KINDS), name="kind"),
        CheckConstraint("ends_at > starts_at", name="times_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]


class PresenceLog(Base):
    """Every presence change of an operator, timestamped: the basis of occupancy."""

    __tablename__ = "presence_log"
    __table_args__ = (
        CheckConstraint(_in("state", PRESENCE_STATES), name="state"),
        Index("ix_presence_log_user_at", "user_id", "at"),
        Index("ix_presence_log_at", "at"),
        Index("ix_presence_log_state_at", "state", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]


# --- calls --------------------------------------------------------------------------------------------------------


class Call(Base):
    """One call on a dedicated number, keyed by (PBX id, Asterisk Linkedid)."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx_id", "linkedid"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        Index("ix_calls_line_arrived", "line_id", "arrived_at"),
        Index("ix_calls_caller_arrived", "caller_number", "arrived_at"),
        Index("ix_calls_operator_arrived", "operator", "arrived_at"),
        Index("ix_calls_arrived", "arrived_at"),
        Index("ix_calls_outcome_arrived", "outcome", "arrived_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    number: Mapped[str] = mapped_column(String(32))
    caller_number: Mapped[str | None] = mapped_column(String(64))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    arrived_at: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    operator: Mapped[str | None] = mapped_column(String(64), doc="MemberName of the operator who talked")
    rang: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str] = mapped_column(String(16), default="in_progress")
    route: Mapped[str | None] = mapped_column(String(16))
    queue: Mapped[str | None] = mapped_column(String(64))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    transferred_to: Mapped[str | None] = mapped_column(String(100))
    overflow_to: Mapped[str | None] = mapped_column(String(32))
    recording_path: Mapped[str | None] = mapped_column(String(500))
    end_inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_first_in_resync: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_of_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    called_back_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CallEvent(Base):
    """The call's timeline: one row per AMI event that changed it; ``key`` makes replays idempotent."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "key"), Index("ix_call_events_call_at", "call_id", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


# --- knowledge: topics, directory, answers, scripts ---------------------------------------------------------------


class Topic(Base):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Registration(TimestampMixin, Base):
    """What the operator wrote down about a call (replaces the Excel sheet); one per call."""

    __tablename__ = "registrations"
    __table_args__ = (CheckConstraint(_in("resolution", RESOLUTIONS), name="resolution"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str] = mapped_column(String(16))
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))


class Contact(Base):
    """A specialist of the organisation in the directory."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    extension: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ContactTopic(Base):
    __tablename__ = "contact_topics"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)


class PreparedAnswer(TimestampMixin, Base):
    """A vetted answer for a topic; ``sensitive`` ones are flagged in the console."""

    __tablename__ = "prepared_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class Script(TimestampMixin, Base):
    """Greeting and closing templates; ``line_id`` NULL = the default for every line."""

    __tablename__ = "scripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), unique=True)
    organisation_name: Mapped[str] = mapped_column(String(200))
    greeting_template: Mapped[str] = mapped_column(Text)
    closing_template: Mapped[str] = mapped_column(Text)


# --- operations: dialplan versions, audit --------------------------------------------------------------------------


class DialplanVersion(Base):
    """Every rendered dialplan that was applied (or failed to), kept for preview, audit and rollback; one history
    per PBX (each PBX has its own files with its own lines)."""

    __tablename__ = "dialplan_versions"
    __table_args__ = (CheckConstraint(_in("status", DIALPLAN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx_id: Mapped[str | None] = mapped_column(
        String(40), doc="the PBX whose files these are; NULL: the first PBX, as for lines (``Line.pbx_id``)"
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    extensions_text: Mapped[str] = mapped_column(Text)
    queues_text: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str] = mapped_column(Text, default="")
    applied_at: Mapped[datetime | None]


# --- report roll-ups ------------------------------------------------------------------------------------------------


class ReportHour(Base):
    """One finished hour's report building blocks (``domain.hour_stats.HourStats`` as JSON), so a week's report
    merges 168 small rows instead of aggregating every call, registration and presence entry again.

    A row is trusted only while no ``report_dirty`` range covers its hour and its ``config`` (the metric thresholds
    it was computed with) matches the report's; otherwise the hour is computed from the raw rows.
    """

    __tablename__ = "report_hours"

    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, doc="hours since 1970, UTC")
    config: Mapped[str] = mapped_column(String(200))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]


class ReportDirty(Base):
    """Hours whose raw rows changed since their roll-up was computed: ``[from_hour, to_hour]``, both inclusive.

    Written by database triggers on ``calls``, ``registrations`` and ``presence_log`` (migration 0003), so every
    write path marks them, bulk loads included. ``version`` changes on every mark: the refresher deletes a range
    only if its version is still the one it read before computing, so a write racing a refresh is never lost.
    """

    __tablename__ = "report_dirty"

    from_hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    to_hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_entity", "entity", "entity_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
