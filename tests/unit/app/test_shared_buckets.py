"""SharedBuckets: the same token bucket as the in-process RateLimiter, kept in the state database.

Run on SQLite and on a real PostgreSQL (pgserver; skipped where it is not installed), with
explicit clock values so every refill is exact.
"""

from __future__ import annotations

import threading

import pytest

from app.limits import RateLimiter, SharedBuckets
from app.statedb import StateDB


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        d = StateDB.sqlite(tmp_path / "state.sqlite3")
    else:
        d = StateDB.postgres(request.getfixturevalue("pg_database")("buckets"), pool_size=4)
    yield d
    d.close()


def test_burst_then_refill_matches_the_in_process_limiter(db) -> None:
    shared = SharedBuckets(db, "ask")
    clock = [1000.0]
    local = RateLimiter(60, 2, clock=lambda: clock[0])  # 1 token a second, 2 at once
    for now, expected in [(1000.0, 0.0), (1000.0, 0.0), (1000.0, 1.0), (1000.5, 0.5), (1001.0, 0.0),
                          (1001.0, 1.0), (1010.0, 0.0), (1010.0, 0.0), (1010.0, 1.0)]:
        clock[0] = now
        assert shared.take("user-a", 1.0, 2, now) == pytest.approx(expected)
        assert local.take("user-a") == pytest.approx(expected)


def test_keys_and_limiters_have_their_own_buckets(db) -> None:
    ask, feedback = SharedBuckets(db, "ask"), SharedBuckets(db, "feedback")
    assert ask.take("a", 1.0, 1, 0.0) == 0.0
    assert ask.take("a", 1.0, 1, 0.0) > 0
    assert ask.take("b", 1.0, 1, 0.0) == 0.0
    assert feedback.take("a", 1.0, 1, 0.0) == 0.0


def test_a_refused_take_spends_nothing(db) -> None:
    shared = SharedBuckets(db, "ask")
    assert shared.take("a", 0.5, 1, 0.0) == 0.0
    for now in (0.5, 1.0, 1.5):  # refused again and again: the refill still counts from t=0
        assert shared.take("a", 0.5, 1, now) == pytest.approx((1.0 - now * 0.5) / 0.5)
    assert shared.take("a", 0.5, 1, 2.0) == 0.0


def test_racing_takes_never_spend_more_than_the_burst(db) -> None:
    shared = SharedBuckets(db, "ask")
    shared.take("warm", 1.0, 1, 0.0)  # table and statements ready before the race
    allowed, barrier = [], threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(5):
            allowed.append(shared.take("a", 1e-9, 10, 5.0) == 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 10 and len(allowed) == 40
