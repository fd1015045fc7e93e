"""Token hash -> who the token proves, remembered for a few seconds so a request costs no SQL to authenticate.

Per process and in memory. Keys are the SHA-256 hashes of the tokens, never the tokens. Only successful look-ups
are kept (a refused token is looked up again every time). An entry lives at most ``ttl_s`` seconds and never past
its token's own expiry. A revocation made by this process (logout, password reset, deactivation, role or line
change) forgets the entries at once, after its commit; one made by another process is seen here within ``ttl_s``.

A look-up that raced with a revocation must not put back what the revocation just forgot: every ``forget_*`` bumps
a generation, and :meth:`TokenCache.put` refuses a value read under an older generation.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Generic, NamedTuple, TypeVar

V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 10_000


class _Entry(NamedTuple, Generic[V]):
    value: V
    deadline: float  # on the cache's clock (monotonic seconds)
    user_id: int
    token_id: int


class TokenCache(Generic[V]):
    def __init__(
        self, ttl_s: float, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry[V]] = {}
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.deadline <= self._clock():
            del self._entries[key]
            return None
        return entry.value

    def put(self, key: str, value: V, *, user_id: int, token_id: int, valid_for_s: float, generation: int) -> None:
        """Remember ``value`` for ``min(ttl_s, valid_for_s)`` seconds (``valid_for_s``: until the token expires),
        unless something was forgotten since ``generation`` was read (the value may be what was revoked)."""
        keep_s = min(self.ttl_s, valid_for_s)
        if keep_s <= 0 or generation != self.generation:
            return
        now = self._clock()
        if len(self._entries) >= self.max_entries:
            self._make_room(now)
        self._entries[key] = _Entry(value, now + keep_s, user_id, token_id)

    def _make_room(self, now: float) -> None:
        """Drop the expired entries, or else the oldest tenth (a dict keeps insertion order)."""
        expired = [k for k, e in self._entries.items() if e.deadline <= now]
        for key in expired or list(self._entries)[: max(1, self.max_entries // 10)]:
            del self._entries[key]

    def forget_token(self, token_id: int) -> None:
        self._forget(lambda e: e.token_id == token_id)

    def forget_user(self, user_id: int) -> None:
        self._forget(lambda e: e.user_id == user_id)

    def clear(self) -> None:
        self._forget(lambda _e: True)

    def _forget(self, match: Callable[[_Entry[V]], bool]) -> None:
        self.generation += 1
        for key in [k for k, e in self._entries.items() if match(e)]:
            del self._entries[key]
