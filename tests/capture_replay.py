"""Load a recorded AMI capture (``../shared/ami-captures/*.jsonl``) as parsed event dicts, for pure-domain tests.

No sockets: each ``recv`` frame (banner skipped) goes through :func:`hotline.ami.frames.parse_frame`, and gets a
``received_at`` wall-clock time. The capture's ``t`` counts from the TCP connect, so it is anchored on the first
frame that carries a ``Timestamp`` (``received_at = that Timestamp - its t + t``); a capture with no timestamped
frame is anchored on the Unix epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from hotline.ami.frames import parse_frame
from hotline.domain.calls import CallRecord

__all__ = [
    "FIELDS",
    "CaptureFrame",
    "as_row",
    "capture_names",
    "capture_parts",
    "captures_dir",
    "expected_calls",
    "expected_rows",
    "load_events",
    "load_frames",
    "normalise",
    "within_tolerance",
]


@dataclass(frozen=True, slots=True)
class CaptureFrame:
    """One frame of a capture: ``direction`` is ``recv`` (from Asterisk) or ``send`` (what the listener sent)."""

    direction: str
    frame: dict[str, str]
    received_at: datetime


def captures_dir() -> Path:
    """``$HOTLINE_CAPTURES_DIR`` if set, else ``<repo>/../shared/ami-captures`` (CI clones beside a copy)."""
    env = os.environ.get("HOTLINE_CAPTURES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "ami-captures"


def capture_names() -> list[str]:
    """Every capture, with the two parts of a split capture (``x.part1``, ``x.part2``) named once as ``x``."""
    names = set()
    for path in captures_dir().glob("*.jsonl"):
        if path.stem == "expected-calls":
            continue
        names.add(path.stem.split(".part")[0])
    return sorted(names)


def capture_parts(name: str) -> list[Path]:
    """The file(s) of a capture, parts in order."""
    base = captures_dir()
    single = base / f"{name}.jsonl"
    if single.exists():
        return [single]
    return sorted(base.glob(f"{name}.part*.jsonl"))


@cache
def _load(path: Path) -> tuple[CaptureFrame, ...]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    anchor: float | None = None
    for row in rows:
        if row["dir"] == "recv" and "\r\nTimestamp: " in row["data"]:
            stamp = row["data"].split("\r\nTimestamp: ", 1)[1].split("\r\n", 1)[0]
            anchor = float(stamp) - float(row["t"])
            break
    base = datetime.fromtimestamp(anchor or 0.0, UTC)
    frames = []
    for row in rows:
        data: str = row["data"]
        if not data.endswith("\r\n\r\n"):  # the banner line
            continue
        frames.append(
            CaptureFrame(
                row["dir"],
                parse_frame(data) if row["dir"] == "recv" else _parse_send(data),
                base + timedelta(seconds=float(row["t"])),
            )
        )
    return tuple(frames)


def _parse_send(data: str) -> dict[str, str]:
    frame: dict[str, str] = {}
    for line in data.split("\r\n"):
        if line:
            key, _, value = line.partition(": ")
            frame[key] = value
    return frame


def load_frames(path: Path) -> list[CaptureFrame]:
    """All frames of one capture file, ``send`` frames included (a resync starts with the listener's action)."""
    return list(_load(path))


def load_events(path: Path) -> list[tuple[dict[str, str], datetime]]:
    """Only what Asterisk sent, as ``(frame, received_at)``: the input of the tracker."""
    return [(f.frame, f.received_at) for f in _load(path) if f.direction == "recv"]


def expected_calls(name: str | None = None) -> list[dict[str, Any]]:
    """The rows of ``expected-calls.jsonl`` for one capture (all rows when ``name`` is None)."""
    path = captures_dir() / "expected-calls.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if name is None or row["capture"] == name]


# --- comparing records with expected-calls.jsonl ----------------------------------------------------------------

TOLERANT = ("wait_s", "talk_s")  # Asterisk's whole seconds vs timestamps: ±1 s
FIELDS = (
    "linkedid",
    "line",
    "number",
    "caller_number",
    "caller_name",
    "outcome",
    "operator",
    "wait_s",
    "talk_s",
    "rang",
    "transferred_to",
    "overflow_to",
    "seen_first_in_resync",
)

ERRATA = Path(__file__).parent / "data" / "expected-calls-errata.jsonl"


def expected_rows(name: str) -> list[dict[str, Any]]:
    """The shared expected records, plus the rows we are sure the shared file misses (each with its proof in
    ``why``; see tests/data/expected-calls-errata.jsonl). Errata only add records: none replaces a shared one."""
    rows = list(expected_calls(name))
    known = {row["linkedid"] for row in rows}
    for line in ERRATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["capture"] == name:
            assert row["linkedid"] not in known, "an erratum must not override a shared record"
            rows.append(row)
    return rows


def as_row(record: CallRecord) -> dict[str, Any]:
    return {
        "linkedid": record.linkedid,
        "line": record.line_id,
        "number": record.number,
        "caller_number": record.caller_number,
        "caller_name": record.caller_name,
        "outcome": record.outcome.value,
        "operator": record.operator,
        "wait_s": record.wait_s,
        "talk_s": record.talk_s,
        "rang": list(record.rang),
        "transferred_to": record.transferred_to,
        "overflow_to": record.overflow_to,
        "seen_first_in_resync": record.seen_first_in_resync,
    }


def normalise(expected: dict[str, Any]) -> dict[str, Any]:
    row = {key: expected.get(key) for key in FIELDS}
    row["seen_first_in_resync"] = bool(expected.get("seen_first_in_resync", False))
    return row


def within_tolerance(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """``actual`` with its times replaced by the expected ones where they agree within 1 s, so that a plain
    equality (and pytest's diff) shows only real differences."""
    shown = dict(actual)
    for key in TOLERANT:
        a, e = actual[key], expected[key]
        if a is not None and e is not None and abs(float(a) - float(e)) <= 1:
            shown[key] = e
    return shown
