"""Every recorded AMI session, replayed through the tracker, gives exactly the calls in ``expected-calls.jsonl``.

The replay dispatches the way the real listener will: events that answer the listener's ``CoreShowChannels``
(same ActionID) go to the resync methods, everything else to ``handle``.
"""

from __future__ import annotations

import pytest

from capture_replay import (
    as_row,
    capture_names,
    capture_parts,
    captures_dir,
    expected_calls,
    expected_rows,
    load_frames,
    normalise,
    within_tolerance,
)
from hotline.domain.calls import CallRecord
from hotline.domain.tracker import CallTracker

LINES = {"5551000": 1, "5552000": 2, "5553000": 3}
PBX = "pbx1"
if not captures_dir().is_dir():  # pragma: no cover - a checkout without the shared captures
    pytest.skip(f"no AMI captures at {captures_dir()}", allow_module_level=True)


def replay_capture(name: str) -> tuple[CallTracker, list[CallRecord]]:
    """Feed every part of a capture to one tracker, as the listener would across reconnects."""
    tracker = CallTracker(PBX, LINES)
    ended: list[CallRecord] = []
    for path in capture_parts(name):
        resync_id: str | None = None
        for frame in load_frames(path):
            event = frame.frame
            if frame.direction == "send":
                if event.get("Action", "").lower() == "coreshowchannels":
                    resync_id = event.get("ActionID")
                    tracker.begin_resync()
                continue
            if resync_id is not None and event.get("ActionID") == resync_id:
                kind = event.get("Event")
                if kind == "CoreShowChannel":
                    changes = tracker.resync_channel(event, frame.received_at)
                elif kind == "CoreShowChannelsComplete":
                    changes = tracker.end_resync(frame.received_at)
                    resync_id = None
                else:
                    changes = []  # the action's Response
            else:
                changes = tracker.handle(event, frame.received_at)
            ended.extend(change.record for change in changes if change.ended)
    return tracker, ended


@pytest.mark.parametrize("name", capture_names())
def test_capture_gives_the_expected_calls(name: str) -> None:
    tracker, ended = replay_capture(name)

    assert [r.linkedid for r in tracker.live_calls()] == [], "calls never ended at the end of the capture"
    expected = {row["linkedid"]: normalise(row) for row in expected_rows(name)}
    actual = {r.linkedid: as_row(r) for r in ended}
    assert len(actual) == len(ended), "a call was ended twice"
    assert sorted(actual) == sorted(expected), "missing or extra calls"
    compared = {key: within_tolerance(actual[key], expected[key]) for key in expected}
    assert compared == expected
    assert tracker.stats.failed == 0


def test_every_capture_named_in_expected_calls_is_replayed() -> None:
    assert {row["capture"] for row in expected_calls()} <= set(capture_names())
