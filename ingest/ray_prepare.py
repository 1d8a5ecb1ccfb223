"""`RayPreparer`: read, OCR, chunk and embed new and changed files on a Ray cluster.

The writer (`IndexBuilder` with `preparer=`) stays where it is: it hashes files to skip
unchanged ones, sends the rest here, takes the results back in file order and commits them as
one generation, exactly as a local ingest. On the cluster, one actor per `cpus_per_worker`
CPUs builds its tools once (the embedding model loads once per actor, not per file) and
prepares one file at a time; at most `window` files per actor are in flight or waiting to be
taken, so memory stays bounded however many files there are.

Every node needs chulcheo installed (the same version, the same model files at the same
`model_dir`) and the files at the same paths (a shared file system): workers read them there.

RayPreparer("auto", partial(ingest_tools, settings)).connect()   # or "10.0.0.5:6379"
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from .errors import ClusterError
from .prepare import FileJob, IngestTools, PreparedFile, prepare_file

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with `pip install -c constraints.txt -e .[ray]` (ray==2.60.0)"


class RayPreparer:
    """A `Preparer` over the Ray cluster at `address` ("auto": the one started on this machine).

    Args:
        address: "auto" or "HOST:PORT" of the head node (what `ray start --head` printed).
        tools_factory: builds the `IngestTools` on each actor; must pickle (a module-level
            function, or a functools.partial of one over plain settings).
        cpus_per_worker: CPUs each actor asks for; the cluster's CPUs / this = number of actors.
        workers: number of actors (0: as many as the cluster's CPUs allow).
        window: files per actor in flight or done but not yet taken by the writer.
        connect_timeout_s: how long a HOST:PORT may take to accept a connection.
    """

    def __init__(
        self,
        address: str,
        tools_factory: Callable[[], IngestTools],
        *,
        cpus_per_worker: float = 1.0,
        workers: int = 0,
        window: int = 2,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.address = address.strip() or "auto"
        self.tools_factory = tools_factory
        self.cpus_per_worker = cpus_per_worker
        self.workers = workers
        self.window = max(1, window)
        self.connect_timeout_s = connect_timeout_s
        self._ray: Any = None
        self._we_connected = False

    # ----------------------------------------------------------------- connection
    def connect(self) -> None:
        """Join the cluster as a driver (once); fails fast with a message naming the address.

        Raises:
            ClusterError: ray is not installed, nothing listens at the address, or Ray refused it.
        """
        if self._ray is not None:
            return
        try:
            import ray
        except ImportError as exc:
            raise ClusterError(f"--ray {self.address}: the ray package is not installed; {INSTALL_HINT}") from exc
        if not ray.is_initialized():
            if self.address != "auto" and "://" not in self.address:
                self._check_reachable()
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False,
                         include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise ClusterError(f"--ray {self.address}: cannot join the Ray cluster ({reason})") from exc
            self._we_connected = True
        self._ray = ray
        log.info("joined the Ray cluster at %s: %s", self.address, ray.cluster_resources())

    def _check_reachable(self) -> None:
        """A TCP connect to HOST:PORT first: ray.init retries an address that is down for minutes."""
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            raise ClusterError(f"--ray {self.address}: expected auto or HOST:PORT of the Ray head node")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=self.connect_timeout_s):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ClusterError(
                f"--ray {self.address}: no Ray head node answers there ({reason}); start one with "
                f"`ray start --head --port={port}` or give the address it printed"
            ) from exc

    def close(self) -> None:
        """Leave the cluster if this preparer joined it (the cluster itself keeps running)."""
        if self._ray is not None and self._we_connected:
            self._ray.shutdown()
        self._ray = None
        self._we_connected = False

    # ----------------------------------------------------------------- work
    def prepare(self, jobs: Sequence[FileJob], known: Collection[str]) -> Iterator[PreparedFile]:
        """One PreparedFile per job, in order, made by actors spread over the cluster."""
        if not jobs:
            return
        self.connect()
        ray = self._ray
        actors = self._start_actors(ray, len(jobs), frozenset(known))
        try:
            yield from self._run(ray, actors, jobs)
        finally:
            for actor in actors:
                ray.kill(actor)

    def _start_actors(self, ray: Any, n_jobs: int, known: frozenset[str]) -> list[Any]:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus < self.cpus_per_worker:
            raise ClusterError(f"--ray {self.address}: the cluster has {cpus:g} CPUs, fewer than the "
                               f"{self.cpus_per_worker:g} one worker asks for")
        count = self.workers or int(cpus // self.cpus_per_worker)
        count = max(1, min(count, n_jobs))
        worker = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0)(_Worker)
        known_ref = ray.put(known)  # once into the object store, not once per file
        log.info("preparing %d files on %d Ray workers (%g CPUs each)", n_jobs, count, self.cpus_per_worker)
        return [worker.remote(self.tools_factory, known_ref) for _ in range(count)]

    def _run(self, ray: Any, actors: list[Any], jobs: Sequence[FileJob]) -> Iterator[PreparedFile]:
        todo = deque(enumerate(jobs))
        idle = list(actors)
        running: dict[Any, tuple[int, Any]] = {}  # ObjectRef -> (job index, actor)
        done: dict[int, PreparedFile] = {}
        limit = self.window * len(actors)
        nxt = 0
        while nxt < len(jobs):
            while idle and todo and len(running) + len(done) < limit:
                i, job = todo.popleft()
                actor = idle.pop()
                running[actor.prepare.remote(job)] = (i, actor)
            if nxt in done:
                yield done.pop(nxt)
                nxt += 1
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i, actor = running.pop(ref)
                idle.append(actor)
                done[i] = self._result(ray, ref, jobs[i])

    def _result(self, ray: Any, ref: Any, job: FileJob) -> PreparedFile:
        try:
            return ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a task error, a dead actor or node: one message
            reason = " ".join(str(exc).split())[:2000] or type(exc).__name__
            raise ClusterError(f"--ray {self.address}: a Ray worker failed on {job.path}: {reason}; "
                               "nothing was committed") from exc


class _Worker:
    """One Ray actor: the tools built once, then one file at a time."""

    def __init__(self, tools_factory: Callable[[], IngestTools], known: frozenset[str]) -> None:
        self.tools = tools_factory()
        self.known = known
        _use_cpus(self.tools, _assigned_cpus())

    def prepare(self, job: FileJob) -> PreparedFile:
        return prepare_file(job, self.tools, self.known)


def _assigned_cpus() -> int:
    import ray

    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))


def _use_cpus(tools: IngestTools, cpus: int) -> None:
    """Keep an actor's threads to the CPUs Ray gave it (the ONNX embedder and OCR default to
    every core of the machine, and several actors can share one machine)."""
    embedder = tools.embedder
    if hasattr(embedder, "workers") and hasattr(embedder, "num_threads"):
        embedder.workers = cpus  # texts side by side, one thread each (OnnxEmbedder)
        embedder.num_threads = 1
    if tools.ocr is not None:
        tools.ocr.workers = cpus
