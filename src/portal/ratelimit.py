"""Token buckets for magic-link requests, kept in memory (per process).

Two buckets guard the request form: one per (client, address) so nobody fills a
shopper's inbox, and one per client so nobody walks a list of addresses. In memory on
purpose: a link request is cheap to refuse and cheap to repeat, and the limits only need
to make abuse slow; with N worker processes the effective limit is N times the
configured one (put a shared limiter in the proxy in front when that matters).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``capacity`` requests at once, refilled at ``per_hour`` per hour, per key."""

    def __init__(self, capacity: int, per_hour: float, max_keys: int = 100_000):
        self.capacity = float(capacity)
        self.rate = per_hour / 3600.0
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        t = now if now is not None else time.monotonic()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_keys:
                    self._evict(t)
                b = self._buckets[key] = _Bucket(self.capacity, t)
            b.tokens = min(self.capacity, b.tokens + (t - b.updated) * self.rate)
            b.updated = t
            if b.tokens < 1.0:
                return False
            b.tokens -= 1.0
            return True

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled completely (they hold no state worth keeping)."""
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.capacity
        ]
        for k in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[k]
