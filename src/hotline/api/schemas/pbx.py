"""How API shapes show the PBX of a row: always by id, though the first PBX's rows store NULL (``Line.pbx_id``)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo

from hotline.settings import Settings

FIRST_PBX = "first_pbx"


def pbx_context(settings: Settings) -> dict[str, Any]:
    """The validation context that lets a ``pbx_id`` stored as NULL be shown as the first PBX's id:
    ``XOut.model_validate(row, context=pbx_context(settings))``."""
    return {FIRST_PBX: settings.ami.id}


def first_pbx_when_null(value: Any, info: ValidationInfo) -> Any:
    """A ``mode="before"`` field validator: NULL becomes the first PBX's id from the context (left NULL, and so
    refused by a ``str`` field, when the caller forgot the context)."""
    if value is None and info.context:
        return info.context.get(FIRST_PBX)
    return value
