"""Background jobs shared by every replica through Postgres (`state.url`): each job runs exactly once.

jobs = SharedJobQueue(db, {"upload": run_upload, "reindex": run_reindex}, replica="web-1:4242")
job = jobs.submit("upload", {"path": "/srv/uploads/hr/…/규정.pdf", "group": "hr", "filename": "규정.pdf"})
jobs.get(job.id).status  -> "queued" … "running" (on whichever replica claimed it) … "done"

How a job runs exactly once, and survives a replica that dies mid-job:
- Index jobs write one index, so they run one at a time across all replicas: a replica's worker
  first takes a session-level advisory lock (`pg_try_advisory_lock`) on its own connection,
  then claims the oldest queued job with `FOR UPDATE SKIP LOCKED` and marks it running.
- A replica that dies (kill -9, lost machine) loses its connection, and Postgres releases its
  advisory lock. The next replica to take the lock finds the job still marked "running": no
  live replica can be running it (running needs the lock), so it is queued again and re-run.
  Ingest is incremental by content hash, so a re-run finishes the work instead of repeating it.
- A job whose replica died `MAX_ATTEMPTS` times fails with that reason instead of taking every
  replica down in turn.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from .jobs import STATUSES, Handler, Job, new_job
from .statedb import StateDB, StateDBError, lock_number

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
_COLUMNS = ("id", "kind", "detail", "status", "stage", "done", "total", "result", "error",
            "created", "started", "finished")


class SharedJobQueue:
    """The job queue in the state database; every replica runs a worker thread that polls it."""

    def __init__(self, db: StateDB, handlers: dict[str, Handler], replica: str, poll_s: float = 1.0,
                 keep: int = 200, start: bool = True) -> None:
        if not db.is_postgres:
            raise ValueError("SharedJobQueue needs a Postgres state database (state.url)")
        self.db = db
        self.handlers = handlers
        self.replica = replica
        self.poll_s = poll_s
        self.keep = keep
        db.ensure("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL,"
                  " status TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '', done INTEGER NOT NULL DEFAULT 0,"
                  " total INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT, created REAL NOT NULL,"
                  " started REAL, finished REAL, replica TEXT, attempts INTEGER NOT NULL DEFAULT 0)")
        db.ensure("CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created)")
        self._lock_conn: Any = None
        self._conn_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="chulcheo-shared-jobs", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ the queue
    def submit(self, kind: str, detail: dict[str, Any]) -> Job:
        job = new_job(self.handlers, kind, detail)
        with self.db.connect() as db:
            db.execute("INSERT INTO jobs (id, kind, detail, status, created) VALUES (?, ?, ?, 'queued', ?)",
                       (job.id, kind, json.dumps(detail, ensure_ascii=False), job.created))
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.db.connect() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list(self) -> list[Job]:
        """The newest `keep` jobs, newest first."""
        with self.db.connect() as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY created DESC LIMIT ?",
                              (self.keep,)).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self.db.connect() as db:
            found = dict(db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished, on whichever replica it runs (tests, `?wait=true`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.status in ("done", "failed") or (deadline is not None and time.monotonic() > deadline):
                return job
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lock_conn is not None:
            self._lock_conn.close()

    # ------------------------------------------------------------------ the worker
    def run_pending(self) -> int:
        """Run queued jobs while this replica holds the job lock; returns how many ran (0: none, or
        another replica is running one)."""
        if not self._run_lock.acquire(blocking=False):  # the session's advisory lock is re-entrant: one thread
            return 0
        try:
            return self._run_locked()
        finally:
            self._run_lock.release()

    def _run_locked(self) -> int:
        lock_conn = self._lock_connection()
        got = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_number("chulcheo-jobs"),)).fetchone()[0]
        if not got:
            return 0
        try:
            self._requeue_orphans()
            ran = 0
            while not self._stop.is_set() and (claimed := self._claim()) is not None:
                self._execute(claimed)
                ran += 1
            self._forget_old()
            return ran
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (lock_number("chulcheo-jobs"),))

    def _lock_connection(self) -> Any:
        """The worker's own session (the advisory lock lives as long as it): kept open between polls."""
        with self._conn_lock:
            if self._lock_conn is None or self._lock_conn.closed or self._lock_conn.broken:
                self._lock_conn = self.db.session()
            return self._lock_conn

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except StateDBError as exc:
                log.warning("shared jobs: %s", exc)
            except Exception as exc:  # the database went away for a moment: try again next poll
                log.warning("shared jobs: %s: %s", type(exc).__name__, exc)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _requeue_orphans(self) -> None:
        """Jobs marked running while we hold the lock were left by a replica that died."""
        with self.db.connect() as db:
            failed = db.execute(
                "UPDATE jobs SET status = 'failed', finished = ?, error = ? WHERE status = 'running' AND attempts >= ?"
                " RETURNING id", (time.time(), f"the replica running it stopped {MAX_ATTEMPTS} times", MAX_ATTEMPTS),
            ).fetchall()
            resumed = db.execute("UPDATE jobs SET status = 'queued', stage = 'resumed' WHERE status = 'running'"
                                 " RETURNING id, replica").fetchall()
        for job_id, replica in resumed:
            log.warning("job %s: replica %s stopped while running it; queued again", job_id, replica)
        for (job_id,) in failed:
            log.error("job %s: failed after %d attempts", job_id, MAX_ATTEMPTS)

    def _claim(self) -> Job | None:
        with self.db.connect() as db:
            row = db.execute(
                "UPDATE jobs SET status = 'running', started = ?, replica = ?, attempts = attempts + 1"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1"
                " FOR UPDATE SKIP LOCKED) RETURNING " + ", ".join(_COLUMNS),
                (time.time(), self.replica),
            ).fetchone()
        return None if row is None else _job(row)

    def _execute(self, job: Job) -> None:
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < 0.5 and done < total:  # a row update at most twice a second
                return
            last[0] = now
            with self.db.connect() as db:
                db.execute("UPDATE jobs SET stage = ?, done = ?, total = ? WHERE id = ?", (stage, done, total, job.id))

        status, result, error = "done", None, None
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise ValueError(f"job kind {job.kind!r}: this replica has no handler for it")
            result = handler(job.detail, progress)
        except Exception as exc:  # a job's failure is reported on the job, never kills the worker
            log.warning("job %s (%s) failed: %s", job.id, job.kind, exc, exc_info=True)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        with self.db.connect() as db:
            db.execute("UPDATE jobs SET status = ?, result = ?, error = ?, finished = ? WHERE id = ?",
                       (status, json.dumps(result, ensure_ascii=False) if result is not None else None,
                        error, time.time(), job.id))

    def _forget_old(self) -> None:
        """Keep the newest `keep` finished jobs (a busy site's table does not grow forever)."""
        with self.db.connect() as db:
            db.execute("DELETE FROM jobs WHERE status IN ('done', 'failed') AND id NOT IN"
                       " (SELECT id FROM jobs ORDER BY created DESC LIMIT ?)", (self.keep,))


def replica_name() -> str:
    """This process as the jobs table names it: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _job(row: Any) -> Job:
    data = dict(zip(_COLUMNS, row))
    data["detail"] = json.loads(data["detail"])
    data["result"] = json.loads(data["result"]) if data["result"] else None
    return Job(**data)
