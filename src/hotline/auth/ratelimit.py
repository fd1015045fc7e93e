"""Failed-login limiter: too many failures for one user or one address within a window locks it out for a while.

In-process memory; several processes each keep their own count (a shared limiter joins with the scale-out work).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from time import monotonic


class LoginLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0, clock: Callable[[], float] = monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until a new attempt is allowed, or None when allowed now."""
        waits = []
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.max_failures:
                waits.append(self.window_s - (self._clock() - failures[0]))
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._recent(key).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
