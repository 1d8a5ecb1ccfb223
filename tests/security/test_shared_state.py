"""Hostile callers against replicas that share their state in PostgreSQL (state.url): hopping
between replicas buys no extra requests, a revoked key or its web session is dead on every
replica, a scoped admin sees no other group's job through another replica, and a job is never
run twice however many replicas race for it. Two Service objects over one real PostgreSQL
stand in for two `serve` processes (tests/integration/test_replicas.py runs real ones)."""

from __future__ import annotations

import threading
import time

import pytest

from app.auth import AuthError
from app.jobs_shared import SharedJobQueue
from app.limits import RateLimited
from app.service import NotFound, Service
from app.settings import Settings
from app.statedb import StateDB

pytestmark = pytest.mark.security


@pytest.fixture
def replicas(pg_database, tmp_path):
    url = pg_database("shared")
    made = []
    for name in ("a", "b"):
        settings = Settings(index_dir=tmp_path / name / "index", state_dir=tmp_path / name / "state",
                            state={"url": url, "files_dir": tmp_path / "files", "job_poll_s": 0.2},
                            server={"feedback_per_minute": 1, "feedback_burst": 2, "ask_per_minute": 1, "ask_burst": 1})
        made.append(Service.from_settings(settings))
    yield made
    for s in made:
        s.close()


def test_hopping_between_replicas_buys_no_extra_requests(replicas):
    a, b = replicas
    kim, _ = a.keys.create("kim", "user", "public")
    a.add_feedback(kim, 1, "연차휴가는?", "15일", [])
    b.add_feedback(kim, 1, "연차휴가는?", "15일", [])
    for replica in (a, b):  # the burst of 2 is spent across both: each now refuses
        with pytest.raises(RateLimited):
            replica.add_feedback(kim, 1, "연차휴가는?", "15일", [])
    lee, _ = b.keys.create("lee", "user", "public")  # another key keeps its own budget
    assert a.add_feedback(lee, -1, "병가는?", "60일", []) > 0


def test_a_key_revoked_on_one_replica_and_its_web_session_die_on_the_other(replicas):
    a, b = replicas
    _, key = a.keys.create("park", "user", "public")
    assert b.authenticate(key).name == "park"
    token = b.login("park", key)
    handle = b.sessions.handle(token)
    assert handle and b.sessions.key_id(handle)
    root, _ = a.keys.create("root", "admin", "*")
    a.revoke_key(root, "park")
    with pytest.raises(AuthError):
        b.authenticate(key)
    assert b.sessions.handle(token) is None and b.sessions.key_id(handle) is None


def test_a_scoped_admin_sees_no_other_groups_job_through_another_replica(replicas):
    a, b = replicas
    root, _ = a.keys.create("root2", "admin", "*")
    adm_b, _ = a.keys.create("adm_b", "admin", "b")
    job = a.reindex(root)  # a job over every group, submitted on replica a
    assert b.job(root, job.id).id == job.id  # the same queue from b
    with pytest.raises(NotFound):
        b.job(adm_b, job.id)
    assert job.id not in {j.id for j in b.visible_jobs(adm_b)}
    assert "path" not in str(b.job(root, job.id).to_dict()["detail"])  # a reindex names no server path


def test_racing_replicas_run_each_job_exactly_once(pg_database):
    db = StateDB.postgres(pg_database("race"))
    runs: list[str] = []
    lock = threading.Lock()

    def handler(detail, progress):
        with lock:
            runs.append(detail["n"])
        time.sleep(0.01)
        return {"n": detail["n"]}

    queues = [SharedJobQueue(db, {"work": handler}, replica=f"r{i}", start=False) for i in range(4)]
    jobs = [queues[0].submit("work", {"n": str(n)}) for n in range(30)]
    threads = [threading.Thread(target=lambda q=q: [q.run_pending() for _ in range(20)]) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(runs, key=int) == [str(n) for n in range(30)]  # each once, none twice
    assert all(queues[1].get(j.id).status == "done" for j in jobs)
    db.close()


def test_a_job_left_by_a_dead_replica_runs_again_and_a_poison_job_stops(pg_database):
    db = StateDB.postgres(pg_database("orphans"))
    q = SharedJobQueue(db, {"work": lambda detail, progress: {"ok": detail["n"]}}, replica="r1", start=False)
    left, poison = q.submit("work", {"n": 1}), q.submit("work", {"n": 2})
    with db.connect() as conn:  # as a replica killed mid-job leaves them (no lock is held by anyone)
        conn.execute("UPDATE jobs SET status = 'running', replica = 'gone:1', attempts = 1 WHERE id = ?", (left.id,))
        conn.execute("UPDATE jobs SET status = 'running', replica = 'gone:2', attempts = 3 WHERE id = ?", (poison.id,))
    assert q.run_pending() == 1
    assert q.get(left.id).status == "done" and q.get(left.id).result == {"ok": 1}
    assert q.get(poison.id).status == "failed" and "stopped 3 times" in q.get(poison.id).error
    db.close()


def test_replicas_starting_together_on_an_empty_database_all_come_up(pg_database):
    """Each start creates the tables and adds later columns; eight at once must not collide."""
    from app.audit import AuditLog
    from app.auth import KeyStore, SessionStore
    from app.limits import SharedBuckets
    from app.state import FeedbackStore, TombstoneStore

    url = pg_database("together")
    barrier, errors = threading.Barrier(8), []

    def start() -> None:
        db = StateDB.postgres(url, pool_size=2)
        try:
            barrier.wait()
            KeyStore(db), SessionStore(db), FeedbackStore(db), TombstoneStore(db), AuditLog(db)
            SharedBuckets(db, "ask"), SharedJobQueue(db, {}, replica="r", start=False)
        except Exception as exc:  # noqa: BLE001 - collected and shown
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            db.close()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
