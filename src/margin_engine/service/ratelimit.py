"""A per-key rate limit (429): a token bucket per caller (the operator, or one account).

Each caller's bucket holds up to ``burst`` requests and refills at ``rate`` per second; a request
finding it empty is refused with 429 and ``Retry-After`` (the seconds until one token is back).
The bucket is kept per authenticated principal, after the key check, so a wrong key is a 401
and never spends someone else's budget. In process: several service processes behind one
address each count their own requests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by caller.

    Parameters
    ----------
    rate : float
        Requests per second each caller may sustain (> 0).
    burst : int
        Requests a caller may make at once after being idle (≥ 1).
    clock : callable, optional
        Seconds, monotonic (``time.monotonic``); tests pass their own.
    """

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate: must be a finite number > 0")
        if burst < 1:
            raise ValueError("burst: must be at least 1")
        self.rate, self.burst, self._clock = float(rate), int(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one token of ``key``'s bucket: None when allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
