"""Queries keep working, and never mix index versions, while a re-index swaps every document.

An index of 300 documents, each saying "버전A" in every sentence, is re-indexed into version
B ("버전B", other wording, so every chunk is re-embedded; a slow fake embedder makes that take
~10-20 s) while 8 threads keep sending /v1/search and /v1/ask. Checked for every response: 200;
one version marker only (never hits of A and B together); per thread A…A then B…B; every
request that started after CURRENT was swapped sees B. Twice: the server's own re-index job
(`POST /v1/reindex`), and a separate ingest process (`chulcheo ingest` beside `chulcheo serve`).

Run with `-s` to see request counts and p50/p95 latencies before, during and around the swap.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import pytest
from fastapi.testclient import TestClient
from ingest_worker import SlowHashEmbedder, kiwi_shared_by_all, worker_settings

from retrieval.store import CURRENT_FILE

WORKER = Path(__file__).with_name("ingest_worker.py")
N_DOCS = 300
THREADS = 8
EMBED_SLEEP = 1.0  # seconds per batch of 32 texts: 300 documents -> 10 batches
MARKER = re.compile(r"버전[AB]")
TOPICS = ("연차휴가", "병가", "재택근무", "출장비", "야근수당",
          "교육훈련", "복리후생", "경조사", "보안점검", "장비구매")
QUERIES = ("연차휴가 신청은 며칠 전까지 해야 하나요?", "출장비 예산은 얼마인가요?", "재택근무 담당 부서는 어디인가요?",
           "보안점검 지침은 언제부터 시행하나요?", "교육훈련 신청 방법", "복리후생 예산", "경조사 문의 내선 번호")


def doc_text(i: int, version: str) -> str:
    """One short regulation (one chunk); every sentence names its version."""
    topic = TOPICS[i % len(TOPICS)]
    if version == "A":
        return (f"{topic} 지침 버전A 제{i + 1}호이다. 버전A 기준 {topic} 신청은 {3 + i % 5}일 전까지 해야 한다. "
                f"버전A 예산은 연간 {10 + i % 50}억원이다. 버전A 지침은 2025년 {1 + i % 12}월부터 시행한다.")
    return (f"개정된 {topic} 지침 버전B 제{i + 1}호이다. 버전B에서는 {topic} 신청을 {7 + i % 5}일 전까지 한다. "
            f"버전B 예산은 연간 {60 + i % 50}억원으로 늘었다. 버전B 지침은 2026년 {1 + i % 12}월부터 시행한다.")


def write_corpus(folder: Path, version: str, numbers=range(N_DOCS)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        (folder / f"규정{i:03d}.txt").write_text(doc_text(i, version), encoding="utf-8")


def quote_first_passage(messages) -> str:
    """The fake LLM's draft: the first sentence of source [1], word for word."""
    from prompts import ABSTAIN

    found = re.search(r"\[1\] \([^)]*\)\n([^\n]*?\.)", messages[-1].content)
    return found.group(1) if found else ABSTAIN


# ---------------------------------------------------------------------- traffic
@dataclass
class Request:
    thread: int
    kind: str  # "search" or "ask"
    start: float
    end: float
    status: int
    versions: frozenset[str]
    abstained: bool = False
    error: str = ""


class Traffic:
    """THREADS clients sending /v1/search and /v1/ask until stopped; CURRENT watched meanwhile."""

    def __init__(self, client: TestClient, index_dir: Path, seed: int) -> None:
        self.client, self.index_dir, self.seed = client, index_dir, seed
        self.requests: list[Request] = []
        self.swaps: list[tuple[float, str]] = []  # (when first seen, generation name)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(THREADS)]
        self._threads.append(threading.Thread(target=self._watch, daemon=True))

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 100 + n)
        while not self._stop.is_set():
            kind = "ask" if rng.random() < 0.25 else "search"
            query = rng.choice(QUERIES)
            body = {"question": query} if kind == "ask" else {"query": query, "k": 5}
            start = time.monotonic()
            try:
                response = self.client.post(f"/v1/{kind}", json=body)
                status, text = response.status_code, response.text
            except Exception as exc:  # noqa: BLE001 - an exception is an error to count, not to hide
                status, text = -1, f"{type(exc).__name__}: {exc}"
            end = time.monotonic()
            data = json.loads(text) if status == 200 else {}
            request = Request(n, kind, start, end, status, frozenset(MARKER.findall(text)),
                              bool(data.get("abstained")), "" if status == 200 else text[:300])
            with self._lock:
                self.requests.append(request)

    def _watch(self) -> None:
        last = None
        while not self._stop.is_set():
            try:
                name = (self.index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                name = None
            if name != last:
                self.swaps.append((time.monotonic(), name))
                last = name
            time.sleep(0.002)


def run_traffic(client: TestClient, index_dir: Path, trigger: Callable[[], None], finished: Callable[[], bool],
                label: str, seed: int) -> dict:
    """Query before (1.5 s), during and after (2 s) a re-index; check and summarize every response."""
    with Traffic(client, index_dir, seed) as traffic:
        time.sleep(1.5)
        t_trigger = time.monotonic()
        trigger()
        while not finished():
            assert time.monotonic() - t_trigger < 120, "re-index did not finish in 120 s"
            time.sleep(0.05)
        t_done = time.monotonic()
        time.sleep(2.0)
    requests = sorted(traffic.requests, key=lambda r: r.start)
    assert len(traffic.swaps) == 2, f"expected one swap of CURRENT, saw {traffic.swaps}"
    t_swap = traffic.swaps[1][0]
    stats = summarize(label, requests, t_trigger, t_swap, t_done)

    errors = [r for r in requests if r.status != 200]
    assert not errors, f"{len(errors)} of {len(requests)} requests failed, e.g. {errors[:3]}"
    mixed = [r for r in requests if len(r.versions) != 1]
    assert not mixed, f"{len(mixed)} responses with no or mixed versions, e.g. {mixed[:3]}"
    for n in range(THREADS):
        seen = "".join(next(iter(r.versions))[-1] for r in requests if r.thread == n)
        assert re.fullmatch(r"A+B+", seen), f"thread {n} saw versions in the order {seen}"
    stale = [r for r in requests if r.start > t_swap and r.versions != {"버전B"}]
    assert not stale, f"{len(stale)} requests started after the swap saw version A, e.g. {stale[:3]}"
    assert any(r.kind == "ask" for r in requests) and any(r.kind == "search" for r in requests)
    return stats


def summarize(label: str, requests: list[Request], t_trigger: float, t_swap: float, t_done: float) -> dict:
    """Print counts and p50/p95 latency (ms) per phase; return them."""
    phases = {
        "before re-index": lambda r: r.end < t_trigger,
        "during re-index": lambda r: r.start < t_done and r.end > t_trigger,
        "swap +-1 s": lambda r: r.start < t_swap + 1 and r.end > t_swap - 1,
        "after re-index": lambda r: r.start > t_done,
    }
    print(f"\n\n{label}: {len(requests)} requests ({sum(r.kind == 'search' for r in requests)} search, "
          f"{sum(r.kind == 'ask' for r in requests)} ask), {sum(r.status != 200 for r in requests)} errors, "
          f"{sum(r.abstained for r in requests)} abstained answers; re-index took {t_done - t_trigger:.1f} s, "
          f"CURRENT swapped {t_swap - t_trigger:.1f} s after it started")
    print(f"{'phase':<18}{'kind':<8}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  versions")
    stats = {}
    for phase, keep in phases.items():
        for kind in ("search", "ask"):
            rows = [r for r in requests if keep(r) and r.kind == kind]
            if not rows:
                continue
            ms = np.array([(r.end - r.start) * 1000 for r in rows])
            versions = {v: sum(v in r.versions for r in rows) for v in ("버전A", "버전B")}
            stats[(phase, kind)] = (len(rows), np.percentile(ms, 50), np.percentile(ms, 95), ms.max())
            print(f"{phase:<18}{kind:<8}{len(rows):>6}{np.percentile(ms, 50):>9.0f}{np.percentile(ms, 95):>9.0f}"
                  f"{ms.max():>9.0f}  A={versions['버전A']} B={versions['버전B']}")
    return stats


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def kiwi_shared(shared_kiwi):
    with kiwi_shared_by_all(shared_kiwi):
        yield


@pytest.fixture
def version_a(tmp_path, kiwi_shared):
    """(service, index_dir, docs folder): version A indexed in two generations, served in open mode."""
    from app.pipeline import Pipeline
    from app.service import Service
    from app.settings import ServerSettings
    from generation.scripted import ScriptedGenerator

    index, docs = tmp_path / "index", tmp_path / "docs"
    settings = worker_settings(index).model_copy(update={
        "server": ServerSettings(ask_per_minute=0),  # 8 busy clients: no per-key question limit
        "answer": worker_settings(index).answer.model_copy(update={"similarity": False}),
    })
    embedder = SlowHashEmbedder(0.0)
    pipeline = Pipeline(settings, embedder=embedder, generator=ScriptedGenerator(quote_first_passage))
    write_corpus(docs, "A", range(N_DOCS // 2))
    pipeline.ingest([docs])
    write_corpus(docs, "A", range(N_DOCS // 2, N_DOCS))
    pipeline.ingest([docs])  # two generations: the re-index's cleanup deletes one while we read
    return Service.from_settings(settings, open_mode=True, pipeline=pipeline), index, docs


# ---------------------------------------------------------------------- tests
def test_queries_during_server_reindex_see_one_version_at_a_time(version_a):
    """`POST /v1/reindex` re-embeds all 300 documents in the server's job thread while 8 clients query."""
    from app.server.api import create_app

    service, index, docs = version_a
    write_corpus(docs, "B")
    service.pipeline.embedder.delay = EMBED_SLEEP
    jobs: list[str] = []
    with TestClient(create_app(service, ui=False)) as client:
        def trigger() -> None:
            response = client.post("/v1/reindex")
            assert response.status_code == 202, response.text
            jobs.append(response.json()["job"]["id"])

        def finished() -> bool:
            return bool(jobs) and service.jobs.get(jobs[0]).status in ("done", "failed")

        run_traffic(client, index, trigger, finished, "server re-index (POST /v1/reindex)", seed=1)
    job = service.jobs.get(jobs[0])
    assert job.status == "done", job.error
    assert job.result["updated"] == N_DOCS and job.result["chunks"] == N_DOCS


def test_queries_during_ingest_in_another_process_see_one_version_at_a_time(version_a):
    """A separate `ingest` process swaps the index the serving process keeps reading."""
    from app.server.api import create_app

    service, index, docs = version_a
    write_corpus(docs, "B")
    env = {**os.environ, "INGEST_WORKER_EMBED_SLEEP": str(EMBED_SLEEP)}
    with (index.parent / "worker.stderr").open("w") as stderr:  # the child keeps its own copy
        worker = subprocess.Popen([sys.executable, str(WORKER)], cwd=index.parent, env=env, text=True,
                                  encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert worker.stdout.readline().strip() == "ready"  # loaded before the clock starts
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
        reader.start()

        def trigger() -> None:
            worker.stdin.write(json.dumps({"index_dir": str(index), "paths": [str(docs)]}) + "\n")
            worker.stdin.flush()

        with TestClient(create_app(service, ui=False)) as client:
            run_traffic(client, index, trigger, lambda: worker.poll() is not None,
                        "ingest in another process", seed=2)
        reader.join(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)
        worker.stdin.close()
        worker.stdout.close()
    assert worker.returncode == 0, (index.parent / "worker.stderr").read_text()
    report = json.loads(lines[-1].removeprefix("done "))
    assert report["updated"] == N_DOCS and report["chunks"] == N_DOCS
