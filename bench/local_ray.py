"""A throwaway Ray cluster on loopback: a head and more nodes on this machine, each its own
process group, no dashboard, no usage stats (the Ray ingest test and benchmark use it).

    with local_cluster(nodes=2, cpus=1) as address:   # "127.0.0.1:PORT"
        ...  # chulcheo ingest DOCS --ray ADDRESS
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
ENV = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_cluster(nodes: int = 2, cpus: int = 1, timeout: float = 120) -> Iterator[str]:
    """Start `nodes` Ray nodes of `cpus` CPUs each on 127.0.0.1; yield the head's address; stop
    them by killing the process groups started here (never `ray stop`, which stops every Ray)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs = [_start(["--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cpus}",
                     "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"], temp / "head.log")]
    try:
        _wait_for_cpus(address, cpus, procs, temp, timeout)
        for n in range(1, nodes):
            procs.append(_start([f"--address={address}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
                                 "--disable-usage-stats"], temp / f"node{n}.log"))
        _wait_for_cpus(address, cpus * nodes, procs, temp, timeout)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w", encoding="utf-8") as out:
        return subprocess.Popen([str(RAY), "start", "--block", *args], env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: gcs, raylet, workers


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the group, then SIGKILL what is left of it (`ray start --block` leaves children)."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_for_cpus(address: str, cpus: int, procs: list[subprocess.Popen], temp: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {[p.read_text()[-2000:] for p in temp.glob('*.log')]}")
        status = subprocess.run([str(RAY), "status", f"--address={address}"], env=ENV, capture_output=True,
                                text=True, timeout=60, check=False).stdout
        if f"/{cpus}.0 CPU" in status:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ray cluster not up with {cpus} CPUs in {timeout} s: {status[-2000:]}")
        time.sleep(1)
