"""Pacing calls to an app that publishes its rate limits, so a long sync stays under them rather
than running into their 429s."""

from __future__ import annotations

import threading
import time


class Pace:
    """The calls one endpoint of an app may take: `burst` at once, then `per_second` (a token bucket)."""

    def __init__(self, per_second: float, burst: int = 1):
        self.per_second, self.burst = per_second, burst
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when the next call may go, taking its place."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if self._tokens < 1:
                time.sleep((1 - self._tokens) / self.per_second)
                self._tokens, self._at = 1.0, time.monotonic()
            self._tokens -= 1
