"""Measuring instruments of the hostile-user suite: /healthz latency, process CPU, disk use.

with HealthMonitor(url) as hz: attack() ; hz.problem("while 50 MB was streamed") -> None or "healthz p99 …"
cpu_percent(pid, 2.0) -> 3.5 (percent of one core over the last 2 s)
disk_bytes(pid, [tmp_dir, state_dir]) -> bytes in files under those folders, open deleted files included
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

HEALTHZ_P99_S = 1.0


class HealthMonitor:
    """Samples GET /healthz every `interval` seconds on a background thread while a block runs.

    A request that fails or times out counts as `timeout` seconds (a hang is the worst latency).
    """

    def __init__(self, url: str, interval: float = 0.1, timeout: float = 5.0) -> None:
        self.url, self.interval, self.timeout = url.rstrip("/") + "/healthz", interval, timeout
        self.samples: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-monitor", daemon=True)

    def __enter__(self) -> HealthMonitor:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(2 * self.timeout + 2)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:  # at least one sample, and one more after the block ended
                stopping = self._stop.is_set()
                start = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                    if not ok:
                        self.failures.append("status != 200")
                except httpx.HTTPError as exc:
                    ok = False
                    self.failures.append(type(exc).__name__)
                took = time.perf_counter() - start
                self.samples.append(took if ok else max(took, self.timeout))
                if stopping:
                    return
                self._stop.wait(max(0.0, self.interval - took))

    @property
    def p99(self) -> float:
        """The 99th percentile latency in seconds (the worst sample when there are fewer than 100)."""
        if not self.samples:
            return math.inf
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]

    def summary(self) -> str:
        if not self.samples:
            return "no /healthz sample was taken"
        failed = f", {len(self.failures)} failed ({', '.join(sorted(set(self.failures)))})" if self.failures else ""
        return f"/healthz p99 {self.p99:.2f} s, max {max(self.samples):.2f} s over {len(self.samples)} samples{failed}"

    def problem(self, during: str) -> str | None:
        """None when /healthz stayed fast, else a sentence saying what hung and during what."""
        if self.samples and self.p99 < HEALTHZ_P99_S:
            return None
        return f"/healthz was slow or failing {during}: {self.summary()} (must stay under {HEALTHZ_P99_S:g} s at p99)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_percent(pid: int, seconds: float = 2.0) -> float:
    """Percent of one core the process used over the next `seconds` (200 = two cores busy)."""
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - start)


def wait_idle(pid: int, limit: float = 60.0, below: float = 25.0) -> float:
    """Wait (at most `limit` s) until the process uses under `below` % of a core; returns the last reading."""
    deadline = time.monotonic() + limit
    while True:
        used = cpu_percent(pid, 0.5)
        if used < below or time.monotonic() > deadline:
            return used


def tree_bytes(folders: list[Path]) -> int:
    """Bytes in the regular files under `folders` (symlinks not followed)."""
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:  # removed while walking
                    pass
    return total


def deleted_open_bytes(pid: int, folders: list[Path]) -> int:
    """Bytes in deleted files the process still holds open under `folders` (a spooled upload is
    an unlinked temporary file: invisible to a folder walk, visible in /proc/pid/fd)."""
    prefixes = [str(Path(f).resolve()) + os.sep for f in folders]
    total = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            target = os.readlink(fd)
            if target.endswith(" (deleted)") and any(target.startswith(p) for p in prefixes):
                total += os.stat(fd).st_size
        except OSError:  # closed meanwhile
            pass
    return total


def disk_bytes(pid: int, folders: list[Path]) -> int:
    """Files under `folders` plus the process's open deleted files there, in bytes."""
    return tree_bytes(folders) + deleted_open_bytes(pid, folders)


class DiskWatch:
    """The most bytes `disk_bytes` saw while a block ran (sampled every `interval` s), minus the start.

    with DiskWatch(pid, [tmp, state]) as disk: upload() ; disk.grew -> 52_428_800
    """

    def __init__(self, pid: int, folders: list[Path], interval: float = 0.05) -> None:
        self.pid, self.folders, self.interval = pid, folders, interval
        self.start = self.peak = disk_bytes(pid, folders)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, disk_bytes(self.pid, self.folders))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, disk_bytes(self.pid, self.folders))

    @property
    def grew(self) -> int:
        return self.peak - self.start


def files_under(folder: Path) -> list[Path]:
    """Every file (and symlink) under `folder`, sorted."""
    found = []
    for root, _, files in os.walk(folder):
        found += [Path(root) / name for name in files]
    return sorted(found)
