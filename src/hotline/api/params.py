"""Shared request parameter types: ids are bounded to what the database's integer columns hold, so a fuzzed
``?line=15432230397590848405504`` is a 422, not a driver overflow and a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2_147_483_647  # PostgreSQL integer / SQLite's columns as declared

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

#: An id inside a request body (a foreign key the client sends).
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
