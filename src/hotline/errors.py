"""Domain and service errors: they carry an ``error_id`` and details, never an HTTP status.

``api/errors.py`` maps each class to a status code in one place.
"""

from __future__ import annotations

from typing import Any


class HotlineError(Exception):
    """Base of every error hotline reports to a client; ``error_id`` is stable, ``message`` is for people."""

    error_id = "hotline-error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, error_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if error_id:
            self.error_id = error_id


class NotFound(HotlineError):
    error_id = "not-found"


class Conflict(HotlineError):
    error_id = "conflict"


class InvalidInput(HotlineError):
    error_id = "invalid-input"


class NotAuthenticated(HotlineError):
    error_id = "not-authenticated"


class Forbidden(HotlineError):
    error_id = "forbidden"


class TooManyAttempts(HotlineError):
    error_id = "too-many-attempts"


class Unavailable(HotlineError):
    """A dependency (database, PBX) cannot serve the request right now."""

    error_id = "unavailable"


class SchemaOutdated(HotlineError):
    error_id = "schema-outdated"
