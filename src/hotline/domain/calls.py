"""Call facts: what the tracker hands to the edges (SQL, push) about each call on a dedicated number.

Plain dataclasses, standard library only. The tracker (``domain/tracker.py``) produces them from AMI event dicts;
repositories store them; the API serialises them. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended for the caller. ``in_progress`` until the last channel hangs up."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    CLOSED = "closed"
    OVERFLOW = "overflow"
    TIMEOUT = "timeout"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One AMI event that mattered to a call, kept as the call's timeline.

    ``key`` is stable across replays of the same event (it is built from the event's own headers), so storing the
    same stream twice, or overlapping streams after a reconnect, adds each entry once.
    """

    key: str
    at: datetime
    event: str
    summary: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CallRecord:
    """The tracker's current knowledge of one call, keyed by (pbx_id, linkedid)."""

    pbx_id: str
    linkedid: str
    number: str
    line_id: int | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    arrived_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    operator: str | None = None
    rang: list[str] = field(default_factory=list)
    outcome: Outcome = Outcome.IN_PROGRESS
    route: str | None = None
    hangup_cause: int | None = None
    transferred_to: str | None = None
    overflow_to: str | None = None
    recording_path: str | None = None
    queue: str | None = None
    end_inferred: bool = False
    seen_first_in_resync: bool = False

    @property
    def live(self) -> bool:
        return self.outcome is Outcome.IN_PROGRESS


@dataclass(frozen=True, slots=True)
class CallChange:
    """A call that changed while handling one event: its full current record and the timeline entries added."""

    record: CallRecord
    timeline: tuple[TimelineEntry, ...] = ()
    ended: bool = False
