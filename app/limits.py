"""Per-key request limits: a token bucket per caller, in memory or shared by replicas in Postgres.

limiter = RateLimiter(per_minute=20, burst=5)
limiter.take("kim") -> 0.0 (allowed) ... after 5 quick calls -> 2.9 (seconds until the next one is allowed)
RateLimiter(20, 5, shared=SharedBuckets(db, "ask"))   # state.url: one bucket per key across all replicas
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .statedb import StateDB


class RateLimited(Exception):
    """Too many requests from one key (HTTP 429); `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _refill(tokens: float, last: float, now: float, rate: float, burst: int) -> float:
    return min(float(burst), tokens + max(0.0, now - last) * rate)


class SharedBuckets:
    """Token buckets in the state database (`rate_buckets`), so N replicas allow a key what one would.

    An allowed take is one statement: an upsert that refills and spends only if a whole token
    is there, so two replicas never both spend the last one (the row is locked by the update).
    A refused take reads the row once more to say how long to wait; it changes nothing. The
    clock is the wall clock (replicas' clocks are assumed NTP-synchronised).
    """

    def __init__(self, db: StateDB, name: str) -> None:
        self.db = db
        self.name = name
        db.ensure("CREATE TABLE IF NOT EXISTS rate_buckets (bucket TEXT PRIMARY KEY, tokens REAL NOT NULL,"
                  " last REAL NOT NULL)")
        least, greatest = ("LEAST", "GREATEST") if db.is_postgres else ("MIN", "MAX")
        refilled = f"{least}(?, rate_buckets.tokens + {greatest}(0, ? - rate_buckets.last) * ?)"
        self._take = (f"INSERT INTO rate_buckets (bucket, tokens, last) VALUES (?, ?, ?) ON CONFLICT (bucket) "
                      f"DO UPDATE SET tokens = {refilled} - 1, last = ? WHERE {refilled} >= 1 RETURNING tokens")

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        bucket, burst_f = f"{self.name}:{key}", float(burst)
        refill = (burst_f, now, rate)
        with self.db.connect() as db:
            # a new key starts full and spends one now (burst >= 1)
            if db.execute(self._take, (bucket, burst_f - 1.0, now, *refill, now, *refill)).fetchone():
                return 0.0
            tokens, last = db.execute("SELECT tokens, last FROM rate_buckets WHERE bucket = ?", (bucket,)).fetchone()
        return (1.0 - _refill(tokens, last, now, rate, burst)) / rate


class RateLimiter:
    """Each key may make `burst` requests at once, refilled at `per_minute`; 0 turns it off."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] | None = None,
                 shared: SharedBuckets | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.shared = shared
        self.clock = clock or (time.time if shared is not None else time.monotonic)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of `key`: 0.0 if allowed, else the seconds to wait (nothing spent)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        if self.shared is not None:
            return self.shared.take(key, self.rate, self.burst, now)
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = _refill(tokens, last, now, self.rate, self.burst)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
