"""Merging what a listener knows of a call with what is already stored.

The same call can be written by more than one session of the listener: the stream is replayed, the connection is
resumed with an overlap, or the listener restarts (its memory lost) and meets the call again in the PBX's channel
snapshot with fewer facts. Storing must then never lose a fact nor reopen an ended call: the stored record and the
new one are merged, fact by fact, by the rules below.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime

from hotline.domain.calls import CallRecord, Outcome

_ROUTE_OUTCOMES = {"closed": Outcome.CLOSED, "busy": Outcome.BUSY, "overflow": Outcome.OVERFLOW}
_KEEP_EARLIEST = ("arrived_at", "queued_at", "answered_at")
_NEVER_MERGED = {"pbx_id", "linkedid", "rang", "outcome", "end_inferred", "seen_first_in_resync", *_KEEP_EARLIEST}


def merge_records(stored: CallRecord | None, new: CallRecord) -> CallRecord:
    """The record to store when ``new`` arrives and ``stored`` is what the database holds.

    - A fact known on one side only is kept (a resynced call lacks its caller's ring history; the stored one has it).
    - Arrival, queue and answer times keep the earliest value; the other facts take the newer value when it has one.
    - ``rang`` keeps the longer list (a resumed session has seen only the end of it).
    - An ended call stays ended: a replay of an older, partial stream cannot set it back to in progress. Between
      two ends, a real one wins over an inferred one.
    - ``seen_first_in_resync`` stays as first stored: it describes the first sighting.
    - A routing decision (closed, busy, overflow) known only to the stored record decides the outcome.
    """
    if stored is None:
        return new
    merged = replace(new, rang=list(new.rang))
    for f in fields(CallRecord):
        name = f.name
        if name in _NEVER_MERGED:
            continue
        if getattr(merged, name) is None:
            setattr(merged, name, getattr(stored, name))
    for name in _KEEP_EARLIEST:
        old, cur = getattr(stored, name), getattr(new, name)
        if old is not None and (cur is None or old < cur):
            setattr(merged, name, old)
    if len(stored.rang) > len(new.rang):
        merged.rang = list(stored.rang)
    stored_final = stored.outcome is not Outcome.IN_PROGRESS
    new_final = new.outcome is not Outcome.IN_PROGRESS
    if stored_final and (not new_final or (new.end_inferred and not stored.end_inferred)):
        merged.outcome = stored.outcome
        merged.ended_at = stored.ended_at
        merged.end_inferred = stored.end_inferred
        merged.hangup_cause = stored.hangup_cause if stored.hangup_cause is not None else merged.hangup_cause
        merged.talk_s = stored.talk_s if stored.talk_s is not None else merged.talk_s
    merged.seen_first_in_resync = stored.seen_first_in_resync
    route_outcome = _ROUTE_OUTCOMES.get(merged.route or "")
    if new.route is None and route_outcome is not None and merged.outcome is not Outcome.IN_PROGRESS:
        # The listener that ended the call never saw the routing announcement (it met the call in a resync after
        # taking over); the stored one did, and the dialplan's decision is what the caller got.
        merged.outcome = route_outcome
    return merged



def end_stale(record: CallRecord, at: datetime) -> CallRecord:
    """End a stored call that nobody follows any more (its listener died, the PBX restarted) and that the PBX's
    channel snapshot no longer shows: the end is inferred, at ``at`` (when we learned it), and the outcome is the
    best the stored facts allow — the routing decision, else answered if an operator answered, else abandoned if it
    was queued, else failed."""
    if not record.live:
        return record
    if record.route in _ROUTE_OUTCOMES:
        outcome = _ROUTE_OUTCOMES[record.route]
    elif record.answered_at is not None or record.operator:
        outcome = Outcome.ANSWERED
    elif record.queued_at is not None or record.route == "queue":
        outcome = Outcome.ABANDONED
    else:
        outcome = Outcome.FAILED
    return replace(record, rang=list(record.rang), outcome=outcome, ended_at=at, end_inferred=True)
