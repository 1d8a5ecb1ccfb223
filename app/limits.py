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

    Each take is one short transaction that locks the key's row: two replicas never both spend
    the last token. The clock is the wall clock (replicas' clocks are assumed NTP-synchronised).
    """

    def __init__(self, db: StateDB, name: str) -> None:
        self.db = db
        self.name = name
        db.ensure("CREATE TABLE IF NOT EXISTS rate_buckets (bucket TEXT PRIMARY KEY, tokens REAL NOT NULL,"
                  " last REAL NOT NULL)")

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        bucket = f"{self.name}:{key}"
        with self.db.connect() as db:
            db.execute("INSERT INTO rate_buckets VALUES (?, ?, ?) ON CONFLICT (bucket) DO NOTHING",
                       (bucket, float(burst), now))
            lock = " FOR UPDATE" if self.db.is_postgres else ""
            tokens, last = db.execute(f"SELECT tokens, last FROM rate_buckets WHERE bucket = ?{lock}",
                                      (bucket,)).fetchone()
            tokens = _refill(tokens, last, now, rate, burst)
            allowed = tokens >= 1.0
            db.execute("UPDATE rate_buckets SET tokens = ?, last = ? WHERE bucket = ?",
                       (tokens - 1.0 if allowed else tokens, now, bucket))
        return 0.0 if allowed else (1.0 - tokens) / rate


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
