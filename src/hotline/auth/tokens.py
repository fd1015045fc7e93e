"""Bearer tokens: random, shown once, stored only as a SHA-256 hash, expiring."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """A fast hash is right here: the token is 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
