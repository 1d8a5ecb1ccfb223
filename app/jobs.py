"""Background jobs (uploads to index, re-indexing): one worker, run in order, progress kept.

jobs = JobQueue({"reindex": lambda detail, progress: pipeline.ingest(paths, progress=progress).to_dict()})
job = jobs.submit("reindex", {"groups": ["*"]})
jobs.get(job.id).to_dict() -> {"id": "…", "kind": "reindex", "status": "running", "stage": "embed", "done": 64, "total": 300, …}
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
Handler = Callable[[dict[str, Any], Progress], dict[str, Any]]
"""handler(detail, progress) -> result; progress(stage, done, total) as ingest reports it. A job is
its kind and detail (plain JSON), so any replica can run it from the shared queue too."""

STATUSES = ("queued", "running", "done", "failed")


def new_job(handlers: dict[str, Handler], kind: str, detail: dict[str, Any]) -> Job:
    """A queued job of a kind some handler runs.

    Raises:
        ValueError: no handler for `kind`.
    """
    if kind not in handlers:
        raise ValueError(f"job kind {kind!r}: no handler (known: {', '.join(sorted(handlers))})")
    return Job(id=uuid.uuid4().hex[:12], kind=kind, detail=detail)


@dataclass
class Job:
    id: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total

    def to_dict(self) -> dict[str, Any]:
        fraction = 1.0 if self.status == "done" else (self.done / self.total if self.total else 0.0)
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "detail": self.detail,
            "stage": self.stage, "done": self.done, "total": self.total,
            "progress": round(fraction, 4), "result": self.result, "error": self.error,
            "created": self.created, "started": self.started, "finished": self.finished,
        }


class JobQueue:
    """Runs submitted jobs one at a time on a daemon thread (the index has one writer), in memory."""

    def __init__(self, handlers: dict[str, Handler], keep: int = 200) -> None:
        self.handlers = handlers
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._keep = keep
        self._thread = threading.Thread(target=self._run, name="chulcheo-jobs", daemon=True)
        self._thread.start()

    def submit(self, kind: str, detail: dict[str, Any]) -> Job:
        job = new_job(self.handlers, kind, detail)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def counts(self) -> dict[str, int]:
        jobs = self.list()
        return {s: sum(j.status == s for j in jobs) for s in STATUSES}

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (tests, `?wait=true`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._jobs[job_id]
            if job.status in ("done", "failed"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            job = self._jobs.get(self._queue.get())
            if job is None:
                continue
            job.status, job.started = "running", time.time()
            try:
                job.result = self.handlers[job.kind](job.detail, job.progress)
                job.status = "done"
            except Exception as exc:  # a job's failure is reported on the job, never kills the worker
                log.warning("job %s (%s) failed: %s", job.id, job.kind, exc, exc_info=True)
                job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
            job.finished = time.time()

    def close(self) -> None:
        """Nothing to release: the worker is a daemon thread."""

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in ("done", "failed")]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[j.id]
