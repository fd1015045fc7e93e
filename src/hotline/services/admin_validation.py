"""Checks of admin input that the database cannot make: numbers, time zones, script placeholders, line rules.

Plain functions raising ``ValueError`` (pydantic turns it into a 422 naming the field) or ``InvalidInput``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.errors import InvalidInput

# Exactly as Asterisk sees ${EXTEN}: digits, optionally a leading +.
NUMBER = re.compile(r"^\+?[0-9]{1,31}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PLACEHOLDERS = frozenset({"organisation", "operator"})


def check_number(value: str | None) -> str | None:
    if value is not None and not NUMBER.match(value):
        raise ValueError("a number is digits with an optional leading '+', e.g. +40215551000 (at most 32)")
    return value


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Bucharest") from None
    return value


def check_template(value: str) -> str:
    """Only ``{organisation}`` and ``{operator}`` may appear; ``{{``/``}}`` are literal braces."""
    try:
        parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(
            f"the template's braces do not match ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
    fields = [name for name, _, _ in parsed]
    specs = [(spec, conv) for _, spec, conv in parsed]
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        shown = ", ".join("{" + f + "}" for f in unknown)
        raise ValueError(f"unknown placeholder {shown}; only {{organisation}} and {{operator}} are allowed")
    if any(spec or conv for spec, conv in specs):
        raise ValueError("placeholders take no format spec or conversion: write {organisation} or {operator}")
    return value


def check_line(values: Mapping[str, Any]) -> None:
    """Rules across a line's fields, checked on the merged values of a create or an update."""
    if values.get("closed_action") == "forward" and not values.get("forward_to"):
        raise InvalidInput(
            "closed_action 'forward' needs forward_to, the number to forward to", details={"field": "forward_to"}
        )
