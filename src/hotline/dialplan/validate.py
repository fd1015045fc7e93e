"""Validation of line settings before they are written into Asterisk's configuration.

Everything rendered into ``extensions_rendered.conf`` / ``queues_rendered.conf`` passes through here first.
Asterisk config has no quoting: a newline starts a new line (a new ``exten`` or a new ``[context]``), ``;``
starts a comment, ``,`` / ``(`` / ``)`` split or close application arguments and ``${...}`` / ``$[...]`` are
evaluated at call time (``${SHELL(...)}`` runs a shell command). So each field is held to an allow-list
pattern, and the characters that could break out are named in the error before the pattern is even tried.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ClosedAction = Literal["hangup", "voicemail", "forward"]

CLOSED_ACTIONS: frozenset[str] = frozenset({"hangup", "voicemail", "forward"})
"""What follows the closed message when the line is closed."""

QUEUE_STRATEGIES: frozenset[str] = frozenset(
    {"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"}
)
"""app_queue's ring strategies (queues.conf ``strategy``)."""

MAX_NUMBER_DIGITS = 20
MAX_NAME_LENGTH = 80
MAX_CHANNELS_RANGE = (1, 1000)
QUEUE_TIMEOUT_RANGE_S = (1, 3600)
"""Seconds a caller may wait in the queue before overflow / hang-up (``Queue()``'s timeout argument)."""
MEMBER_RING_TIMEOUT_RANGE_S = (1, 300)
"""Seconds one operator's phone rings before app_queue tries the next (queues.conf ``timeout``)."""

_NUMBER = re.compile(rf"\+?[0-9]{{1,{MAX_NUMBER_DIGITS}}}")
_NAME_PUNCTUATION = frozenset(" -_.")
# Checked before the allow-lists so the error says what was dangerous, not just "invalid".
_FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("\n", "a line break"),
    ("\r", "a line break"),
    (";", "';' (starts a comment)"),
    (",", "',' (separates application arguments)"),
    ("(", "'(' (opens application arguments)"),
    (")", "')' (closes application arguments)"),
    ("${", "'${' (variable or function expansion)"),
    ("$[", "'$[' (expression evaluation)"),
    ("[", "'[' (starts a context)"),
    ("]", "']' (ends a context name)"),
    ('"', "'\"' (quote)"),
    ("\\", "'\\' (escape)"),
)


class DialplanValidationError(ValueError):
    """A line setting that must not be written into the dialplan; ``field`` names the offending setting."""

    def __init__(self, field: str, message: str, *, line_id: int | None = None) -> None:
        self.field = field
        self.message = message
        self.line_id = line_id
        where = f"line {line_id}: " if line_id is not None else ""
        super().__init__(f"{where}{field}: {message}")


@dataclass(frozen=True, slots=True)
class LineConfig:
    """What the rendered dialplan needs to know about one line (a dedicated number).

    Times are whole seconds. ``max_channels`` None means no limit on concurrent calls. ``forward_to`` is used
    when ``closed_action`` is ``"forward"``; ``overflow_to`` is dialled when no operator took the call in
    time.
    """

    id: int
    number: str
    name: str
    max_channels: int | None = None
    closed_action: ClosedAction = "hangup"
    forward_to: str | None = None
    overflow_to: str | None = None
    queue_timeout_s: int = 20
    recording: bool = True
    strategy: str = "rrmemory"
    member_ring_timeout_s: int = 8


def validate_lines(lines: Sequence[LineConfig]) -> None:
    """Check every line and the set as a whole; raise :class:`DialplanValidationError` at the first problem.

    All-or-nothing on purpose: a configuration with one bad line is not rendered at all.
    """
    seen_ids: set[int] = set()
    seen_numbers: dict[str, int] = {}
    for line in lines:
        validate_line(line)
        if line.id in seen_ids:
            raise DialplanValidationError("id", f"line id {line.id} appears twice", line_id=line.id)
        seen_ids.add(line.id)
        other = seen_numbers.get(line.number)
        if other is not None:
            raise DialplanValidationError(
                "number", f"number {line.number} is already used by line {other}", line_id=line.id
            )
        seen_numbers[line.number] = line.id


def validate_line(line: LineConfig) -> None:
    """Check one line's fields against their allow-lists."""
    line_id = _check_int("id", line.id, (1, 2**31 - 1), None)
    _check_number("number", line.number, line_id)
    _check_name("name", line.name, line_id)
    if line.max_channels is not None:
        _check_int("max_channels", line.max_channels, MAX_CHANNELS_RANGE, line_id)
    _check_choice("closed_action", line.closed_action, CLOSED_ACTIONS, line_id)
    if line.forward_to is not None:
        _check_number("forward_to", line.forward_to, line_id)
    elif line.closed_action == "forward":
        raise DialplanValidationError("forward_to", "closed action 'forward' needs a number", line_id=line_id)
    if line.overflow_to is not None:
        _check_number("overflow_to", line.overflow_to, line_id)
    _check_int("queue_timeout_s", line.queue_timeout_s, QUEUE_TIMEOUT_RANGE_S, line_id)
    if not isinstance(line.recording, bool):
        raise DialplanValidationError("recording", "must be true or false", line_id=line_id)
    _check_choice("strategy", line.strategy, QUEUE_STRATEGIES, line_id)
    _check_int("member_ring_timeout_s", line.member_ring_timeout_s, MEMBER_RING_TIMEOUT_RANGE_S, line_id)


def _check_text(field: str, value: object, line_id: int | None) -> str:
    if not isinstance(value, str):
        raise DialplanValidationError(field, f"must be text, got {type(value).__name__}", line_id=line_id)
    for needle, label in _FORBIDDEN:
        if needle in value:
            raise DialplanValidationError(field, f"must not contain {label}", line_id=line_id)
    return value


def _check_number(field: str, value: object, line_id: int | None) -> None:
    text = _check_text(field, value, line_id)
    if not _NUMBER.fullmatch(text):
        raise DialplanValidationError(
            field, f"must be 1-{MAX_NUMBER_DIGITS} digits with an optional leading '+'", line_id=line_id
        )


def _check_name(field: str, value: object, line_id: int | None) -> None:
    text = _check_text(field, value, line_id)
    if not text.strip():
        raise DialplanValidationError(field, "must not be empty", line_id=line_id)
    if len(text) > MAX_NAME_LENGTH:
        raise DialplanValidationError(field, f"must be at most {MAX_NAME_LENGTH} characters", line_id=line_id)
    for char in text:
        if not (unicodedata.category(char).startswith("L") or char in "0123456789" or char in _NAME_PUNCTUATION):
            raise DialplanValidationError(
                field,
                f"must contain only letters, digits, spaces and '-', '_', '.'; found {char!r}",
                line_id=line_id,
            )


def _check_choice(field: str, value: object, allowed: frozenset[str], line_id: int | None) -> None:
    text = _check_text(field, value, line_id)
    if text not in allowed:
        raise DialplanValidationError(field, f"must be one of {', '.join(sorted(allowed))}", line_id=line_id)


def _check_int(field: str, value: object, bounds: tuple[int, int], line_id: int | None) -> int:
    low, high = bounds
    # bool is an int subclass: True must not pass for 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise DialplanValidationError(field, f"must be a whole number, got {value!r}", line_id=line_id)
    if not low <= value <= high:
        raise DialplanValidationError(field, f"must be between {low} and {high}, got {value}", line_id=line_id)
    return value
