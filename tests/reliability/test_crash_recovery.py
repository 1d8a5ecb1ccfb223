"""SIGKILL an ingest process at random points; the index must survive and heal on the next ingest.

Each trial starts a real ingest process (`ingest_worker.py`) from some index state, kills it
with SIGKILL and then checks, in this process:
  (a) the live index is still readable and holds exactly what it held before the kill, or, if
      the swap of CURRENT had completed, exactly what the killed ingest was building;
  (b) the next ingest (same command, not killed) completes;
  (c) the final index equals a clean build of the same folder in a fresh directory: same doc
      ids, chunk ids, chunk texts, vectors and BM25 rows, no duplicates, nothing lost;
  (d) only what `cleanup_generations(keep=2)` keeps is left: CURRENT, .lock, the live
      generation and at most one older complete one; no CURRENT.tmp, no incomplete generation.

The "replace" trials kill a re-upload: revised versions stored at new paths, ingested with
`replace=` the old versions' doc ids. Afterwards exactly one version is live, whole (the old
one until CURRENT names the new generation, then the new one), and the next ingest completes
and equals a clean build of what is left.

Run with `-s` to see the per-trial table (kill time -> stage reached -> outcome).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from ingest_worker import kiwi_shared_by_all, worker_settings

from retrieval.errors import IndexNotFoundError
from retrieval.store import (
    CURRENT_FILE,
    MANIFEST_FILE,
    IndexGeneration,
    current_generation_path,
)
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.slow  # ~3.5 min: 40 ingest processes, each loading Kiwi

WORKER = Path(__file__).with_name("ingest_worker.py")
SEED = 20260
N_DOCS = 40
CHUNK = {"max_tokens": 32, "overlap_tokens": 8}  # ~3 chunks per document, ~4 embedding batches
STEP_SLEEP, EMBED_SLEEP, IO_SLEEP = 0.015, 0.2, 0.25
KINDS = ("empty", "partial", "edited", "rebuild")
# Every line a worker prints, in the order a build prints them ("write0" is `write 0/1`).
ORDER = ("ready", "start", "read", "chunk", "embedding-call", "embed", "write0", "write-files", "segment-written",
         "manifest-written",
         "current-tmp-written", "published", "write1", "cleanup", "cleanup-rm", "cleanup-done", "done")
STAGE = {  # what the process was doing after printing that line
    "ready": "startup", "start": "startup", "read": "reading", "chunk": "chunking",
    "embedding-call": "embedding", "embed": "embedding", "write0": "writing files", "write-files": "writing files",
    "segment-written": "writing files", "manifest-written": "written, unpublished",
    "current-tmp-written": "swapping CURRENT", "published": "swapped, not cleaned",
    "write1": "swapped, not cleaned", "cleanup": "cleanup", "cleanup-rm": "cleanup",
    "cleanup-done": "finished", "done": "finished",
}
MUST_HIT = ("reading", "chunking", "embedding", "writing files", "written, unpublished", "swapping CURRENT",
            "swapped, not cleaned", "cleanup")

TOPICS = ("연차휴가", "병가", "재택근무", "출장비", "야근수당", "교육훈련", "복리후생", "경조사", "보안점검", "장비구매")
DEPTS = ("인사팀", "총무팀", "재무팀", "보안팀", "교육팀", "기획팀", "법무팀")


def doc_text(i: int, revised: bool = False) -> str:
    """A short Korean regulation; its 관리번호 (70000 + 13 i) occurs in no other document."""
    topic, dept = TOPICS[i % len(TOPICS)], DEPTS[i % len(DEPTS)]
    budget = f"예산은 연간 {20 + i}억원으로 늘린다. 개정 이유는 물가 상승이다." if revised else f"예산은 연간 {10 + i}억원 이내로 집행한다."
    return "\n".join([
        f"{topic} 운영 지침 제{i + 1}호이다. 이 지침의 관리번호는 {70000 + 13 * i}번이며 {dept}가 담당한다.",
        f"{topic} 신청은 사내 시스템에서 {3 + i % 5}일 전까지 해야 한다. {budget}",
        f"위반하면 인사위원회에 회부될 수 있다. 자세한 내용은 {dept} 내선 {2000 + i}번으로 문의한다.",
        f"이 지침은 2026년 {1 + i % 12}월 1일부터 시행한다.",
    ])


def write_docs(folder: Path, numbers, revised=()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        (folder / f"지침{i:02d}.txt").write_text(doc_text(i, i in revised), encoding="utf-8")


# ---------------------------------------------------------------------- trial plan
@dataclass
class Trial:
    n: int
    kind: str
    target: str | None  # kill this long after the line starting with `target` appeared ...
    fraction: float  # ... or, with no target, after this fraction of the kind's calibrated run
    extra: float = 0.0


def plan_trials() -> list[Trial]:
    """12 kills at stratified random points of the whole run, 10 aimed at the short stages."""
    rng = random.Random(SEED)
    trials: list[Trial] = []
    for kind in KINDS:
        for stratum in range(3):
            trials.append(Trial(0, kind, None, (stratum + rng.random()) / 3))
    targets = {"read": 0.2, "chunk": 0.2, "embed": EMBED_SLEEP / 2, "write 0/1": IO_SLEEP / 2,
               "write-files": IO_SLEEP / 2, "segment-written": IO_SLEEP / 2, "manifest-written": IO_SLEEP / 2,
               "current-tmp-written": IO_SLEEP / 2, "published": IO_SLEEP / 2, "cleanup-rm": IO_SLEEP / 8}
    for target, window in targets.items():
        kind = rng.choice(KINDS[1:] if target == "cleanup-rm" else KINDS)  # "empty" removes nothing
        if target == "embed":
            # aims at the first `embedding-call` line (printed as a batch starts; the batch takes
            # EMBED_SLEEP), on the full corpus so that there is one to aim at
            kind = "empty"
        trials.append(Trial(0, kind, target, 0.0, rng.uniform(0, window)))
    rng.shuffle(trials)
    for n, trial in enumerate(trials):
        trial.n = n
    return trials


TRIALS = plan_trials()


# ---------------------------------------------------------------------- worker processes
@dataclass
class Run:
    """One worker's job: the lines it printed with their arrival times, and how it ended."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    started: float | None = None
    killed_at: float | None = None  # seconds after `start`
    returncode: int | None = None

    def last(self) -> str:
        return self.lines[-1][1] if self.lines else "ready"


def stage_of(run: Run) -> str:
    """What the worker was doing when killed: embedding while a batch it started has not
    printed its `embed` line (files are read meanwhile, so `read` lines may come last), else
    what the last line says."""
    keys = [line_key(line) for _, line in run.lines]
    calls = [i for i, k in enumerate(keys) if k == "embedding-call"]
    if calls and "embed" not in keys[calls[-1]:]:
        return "embedding"
    return STAGE[line_key(run.last())]


def line_key(line: str) -> str:
    word = line.split(" ", 1)[0]
    if word == "write":
        return "write0" if line.endswith("0/1") else "write1"
    return word


class Workers:
    """Keeps one worker warm (imports and Kiwi loaded) while the test checks the last trial."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "INGEST_WORKER_STEP_SLEEP": str(STEP_SLEEP),
                    "INGEST_WORKER_EMBED_SLEEP": str(EMBED_SLEEP), "INGEST_WORKER_IO_SLEEP": str(IO_SLEEP)}
        self.count = 0
        self._spare = self._spawn()

    def _spawn(self) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        stderr = self.cwd / f"worker{self.count:02d}.stderr"
        with stderr.open("w") as err:  # the child keeps its own copy
            proc = subprocess.Popen(
                [sys.executable, str(WORKER)], cwd=self.cwd, env=self.env, text=True, encoding="utf-8",
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            )
        return proc, stderr

    def run(self, job: dict, trial: Trial | None = None, duration: float | None = None) -> Run:
        """Give the warm worker `job`; kill it as the trial says (never, with no trial)."""
        proc, stderr = self._spare
        ready = proc.stdout.readline().strip()
        assert ready == "ready", f"worker did not start: {ready!r}\n{stderr.read_text()}"
        self._spare = self._spawn()  # loads while this one runs and the caller checks it
        run = Run()
        seen = threading.Condition()

        def read() -> None:
            for line in proc.stdout:
                with seen:
                    run.lines.append((time.monotonic(), line.rstrip("\n")))
                    seen.notify_all()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        proc.stdin.write(json.dumps(job, ensure_ascii=False) + "\n")
        proc.stdin.flush()
        with seen:
            seen.wait_for(lambda: run.lines or proc.poll() is not None, timeout=60)
        run.started = run.lines[0][0] if run.lines else time.monotonic()
        if trial is not None:
            if trial.target is None:
                deadline = run.started + trial.fraction * duration
            else:
                with seen:
                    seen.wait_for(lambda: any(l.startswith(trial.target) for _, l in run.lines) or proc.poll() is not None,
                                  timeout=60)
                hit = [t for t, l in run.lines if l.startswith(trial.target)]
                deadline = (hit[0] if hit else time.monotonic()) + trial.extra
            time.sleep(max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                run.killed_at = time.monotonic() - run.started
        run.returncode = proc.wait(timeout=120)
        reader.join(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
        assert trial is not None or run.returncode == 0, f"worker failed:\n{stderr.read_text()}"
        return run

    def close(self) -> None:
        proc, _ = self._spare
        proc.stdin.close()  # an empty job: the worker exits
        proc.wait(timeout=30)
        proc.stdout.close()


# ---------------------------------------------------------------------- index helpers
def pipeline(index_dir: Path):
    from app.pipeline import Pipeline

    return Pipeline(worker_settings(index_dir, **CHUNK), embedder=HashEmbedder())


def ingest(index_dir: Path, job: dict):
    return pipeline(index_dir).ingest(
        [Path(p) for p in job["paths"]], sync=job["sync"], rebuild=job["rebuild"], replace=job.get("replace", ())
    )


def live_docs(index_dir: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{doc_id: (sha256, chunk ids)} of the live generation, as `Pipeline.documents()` reads it."""
    return {d.doc_id: (d.sha256, tuple(d.chunk_ids)) for d in pipeline(index_dir).documents()}


def current_name(index_dir: Path) -> str | None:
    path = current_generation_path(index_dir)
    return path.name if path else None


def check_searchable(index_dir: Path, docs: dict) -> None:
    """Searches work and find each sampled document by its unique 관리번호."""
    p = pipeline(index_dir)
    if not docs:
        with pytest.raises(IndexNotFoundError):
            p.search("연차휴가 신청")
        return
    hits = p.search("연차휴가 신청은 며칠 전까지 해야 하나요?", 5)
    assert hits and all(h.chunk.doc_id in docs for h in hits)
    for doc_id in sorted(docs)[:: max(1, len(docs) // 3)]:
        i = int(Path(doc_id).stem.removeprefix("지침"))
        top = p.search(f"관리번호 {70000 + 13 * i}번", 1)[0]
        assert top.chunk.doc_id == doc_id and top.chunk.chunk_id in docs[doc_id][1]


def index_contents(index_dir: Path) -> dict:
    """Everything a clean build must reproduce, keyed by ids (row order may differ)."""
    gen = IndexGeneration.load(current_generation_path(index_dir))
    ids = [c.chunk_id for c in gen.chunks]
    assert len(ids) == len(set(ids)), "duplicate chunk ids"
    manifest_ids = [c for d in gen.manifest["docs"].values() for c in d["chunk_ids"]]
    assert sorted(manifest_ids) == sorted(ids), "manifest and chunks disagree"
    vectors = gen.dense.vectors(range(len(ids)))
    return {
        "config": {k: gen.manifest[k] for k in ("embedding", "tokenizer", "bm25", "chunking")},
        "docs": {d: (e["sha256"], e["title"], e["group"], e["source"], tuple(e["chunk_ids"]))
                 for d, e in gen.manifest["docs"].items()},
        "chunks": {c.chunk_id: c.to_dict() for c in gen.chunks},
        "bm25": dict(zip(ids, map(tuple, gen.bm25.token_lists), strict=True)),
        "vectors": dict(zip(ids, vectors, strict=True)),
    }


def assert_same_index(got: dict, want: dict) -> None:
    assert got["config"] == want["config"]
    assert got["docs"] == want["docs"]
    assert got["chunks"] == want["chunks"]
    assert got["bm25"] == want["bm25"]
    assert got["vectors"].keys() == want["vectors"].keys()
    for chunk_id, vector in want["vectors"].items():
        np.testing.assert_allclose(got["vectors"][chunk_id], vector, atol=1e-6, err_msg=chunk_id)


def leftovers(index_dir: Path) -> list[str]:
    """Entries beyond what the product keeps after a successful ingest (keep=2)."""
    current = current_generation_path(index_dir)
    gens = sorted(p for p in index_dir.iterdir() if p.name.startswith("gen-"))
    extra = [p.name for p in index_dir.iterdir()
             if p.name not in {CURRENT_FILE, ".lock", "segments"} and not p.name.startswith("gen-")]
    named = set()
    for gen in gens:
        if (gen / MANIFEST_FILE).is_file():
            named |= {e["name"] for e in json.loads((gen / MANIFEST_FILE).read_text(encoding="utf-8"))["segments"]}
    for seg in sorted((index_dir / "segments").iterdir()) if (index_dir / "segments").is_dir() else []:
        if seg.name not in named or not (seg / "segment.json").is_file():
            extra.append(f"segments/{seg.name} (unreferenced or incomplete)")
    for gen in gens:
        if gen == current:
            continue
        if not (gen / MANIFEST_FILE).is_file() or gen.name > current.name:
            extra.append(f"{gen.name} (incomplete or unpublished)")
    older = [g for g in gens if g.name < current.name and (g / MANIFEST_FILE).is_file()]
    extra += [f"{g.name} (old)" for g in older[:-1]]
    for kept in older[-1:]:  # the one a reader that saw the old CURRENT may still load: must be whole
        try:
            IndexGeneration.load(kept)
        except Exception as exc:  # noqa: BLE001 - any failure makes it debris
            extra.append(f"{kept.name} (kept but unreadable: {exc})")
    return extra


def prepare(root: Path, kind: str) -> dict:
    """Make the docs folder and index state of `kind`; return the job the worker will run."""
    docs, index = root / "docs", root / "index"
    job = {"index_dir": str(index), "paths": [str(docs)], "sync": False, "rebuild": False, **CHUNK}
    if kind == "empty":  # no index yet
        write_docs(docs, range(N_DOCS))
    elif kind == "partial":  # two generations with part of the corpus, the rest new
        write_docs(docs, range(16))
        ingest(index, job)
        write_docs(docs, range(16, 28))
        ingest(index, job)
        write_docs(docs, range(28, N_DOCS))
    elif kind in ("edited", "rebuild"):  # full index in two generations, then edits and deletions
        write_docs(docs, range(30))
        ingest(index, job)
        write_docs(docs, range(30, N_DOCS - 3))
        ingest(index, job)
        write_docs(docs, range(N_DOCS - 3, N_DOCS))  # new
        write_docs(docs, (3, 11, 19, 25, 33, 35), revised={3, 11, 19, 25, 33, 35})
        for i in (5, 14, 22, 31):
            (docs / f"지침{i:02d}.txt").unlink()
        job["sync"] = kind == "edited"
        job["rebuild"] = kind == "rebuild"
    return job


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def kiwi_shared(shared_kiwi):
    with kiwi_shared_by_all(shared_kiwi):
        yield


@pytest.fixture(scope="module")
def workers(tmp_path_factory, kiwi_shared):
    pool = Workers(tmp_path_factory.mktemp("workers"))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def summary():
    rows: list[dict] = []
    yield rows
    print_summary(rows)


@pytest.fixture(scope="module")
def durations(workers, tmp_path_factory, summary) -> dict[str, float]:
    """Seconds from `start` to `done` of an unkilled worker per kind; each run is checked too."""
    out = {}
    for kind in KINDS:
        root = tmp_path_factory.mktemp(f"calibrate-{kind}")
        job = prepare(root, kind)
        want = clean_build(root)
        run = workers.run(job)
        out[kind] = run.lines[-1][0] - run.started
        assert_same_index(index_contents(Path(job["index_dir"])), want)
        summary.append({"trial": f"c-{kind}", "kind": kind, "timing": "not killed", "kill": None,
                        "last": run.last(), "stage": "finished", "current": "swapped",
                        "next": "-", "removed": "-", "ok": "ok", "run": out[kind]})
    return out


def clean_build(root: Path) -> dict:
    clean = root / "clean-index"
    pipeline(clean).ingest([root / "docs"])
    return index_contents(clean)


# ---------------------------------------------------------------------- the trials
@pytest.mark.parametrize("trial", TRIALS, ids=lambda t: f"{t.n:02d}-{t.kind}-{t.target or 'random'}")
def test_sigkill_during_ingest(trial, workers, durations, summary, tmp_path):
    job = prepare(tmp_path, trial.kind)
    index = Path(job["index_dir"])
    want = clean_build(tmp_path)  # before the worker runs: keeps the kill timing free of our load
    before_gen, before_docs = current_name(index), live_docs(index)
    row = {"trial": f"{trial.n:02d}", "kind": trial.kind, "ok": "FAIL", "run": durations[trial.kind],
           "timing": f"after {trial.target!r} +{trial.extra:.2f}s" if trial.target
           else f"random {trial.fraction:.2f} of run"}
    summary.append(row)

    run = workers.run(job, trial, durations[trial.kind])
    key = line_key(run.last())
    after_gen = current_name(index)
    row.update(kill=run.killed_at, last=run.last(), stage=stage_of(run) if run.killed_at is not None else "finished",
               current="none" if after_gen is None else "kept" if after_gen == before_gen else "swapped")

    # (a) the previous generation is intact, or the new one complete: never a mix, never broken
    want_docs = {d: (sha, ids) for d, (sha, _, _, _, ids) in want["docs"].items()}
    if after_gen == before_gen:
        assert ORDER.index(key) < ORDER.index("published"), f"CURRENT not swapped after {run.last()!r}"
        assert live_docs(index) == before_docs
        check_searchable(index, before_docs)
    else:
        assert ORDER.index(key) >= ORDER.index("current-tmp-written"), f"CURRENT swapped at {run.last()!r}"
        assert live_docs(index) == want_docs
        check_searchable(index, want_docs)

    # (b) the next ingest completes; (c) it equals a clean build; (d) no debris is left
    entries = {p.name for p in index.iterdir()}
    report = ingest(index, job)
    row["next"] = f"+{report.added} ~{report.updated} -{report.deleted} ={report.unchanged}"
    row["removed"] = ",".join(sorted(entries - {p.name for p in index.iterdir()})) or "-"
    assert_same_index(index_contents(index), want)
    assert live_docs(index) == want_docs
    assert leftovers(index) == []
    row["ok"] = "ok"


def test_next_ingest_keeps_the_generation_that_was_live(workers, tmp_path):
    """A kill between manifest.json and the CURRENT swap leaves a complete, never-published
    generation; the next ingest removes it and keeps the one that was live (found by this test)."""
    job = prepare(tmp_path, "edited")
    index = Path(job["index_dir"])
    live = current_name(index)
    run = workers.run(job, Trial(0, "edited", "manifest-written", 0.0, 0.02), 0.0)
    if line_key(run.last()) != "manifest-written" or current_name(index) != live:
        pytest.fail(f"kill missed its window: last line {run.last()!r}")  # not the bug: fails for real
    crashed = max(p.name for p in index.glob("gen-*"))  # complete, never published
    ingest(index, job)
    kept = sorted(p.name for p in index.glob("gen-*"))
    assert kept == [live, current_name(index)], f"kept {kept}: {crashed} was never live, {live} was"


# ---------------------------------------------------------------------- atomic replace
REUPLOADED = range(8)  # 지침00..07 and a three-line FAQ are uploaded again, revised


def write_faq(path: Path, revised: bool) -> None:
    edition = "개정판" if revised else "초판"
    rows = [{"id": f"faq-{n}", "text": f"{TOPICS[n]} 문의는 {DEPTS[n]}에서 받는다. 이 안내는 {edition}이다."}
            for n in range(3)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def under(doc_id: str, folder: Path) -> bool:
    return doc_id.startswith(f"{folder.resolve()}/")


def prepare_replace(root: Path) -> tuple[dict, set[str]]:
    """docs/other and docs/v1 indexed in two generations; docs/v2 holds the revised re-upload.

    Returns the worker's job (ingest docs/v2, replacing every v1 doc id) and those old ids.
    """
    docs, index = root / "docs", root / "index"
    base = {"index_dir": str(index), "sync": False, "rebuild": False, **CHUNK}
    write_docs(docs / "other", range(8, 20))
    ingest(index, {**base, "paths": [str(docs / "other")]})
    write_docs(docs / "v1", REUPLOADED)
    write_faq(docs / "v1" / "faq.jsonl", revised=False)
    ingest(index, {**base, "paths": [str(docs / "v1")]})
    write_docs(docs / "v2", REUPLOADED, revised=set(REUPLOADED))
    write_faq(docs / "v2" / "faq.jsonl", revised=True)
    old = {d for d in live_docs(index) if under(d, docs / "v1")}
    assert len(old) == len(REUPLOADED) + 3
    return {**base, "paths": [str(docs / "v2")], "replace": sorted(old)}, old


def clean_replace_build(root: Path) -> dict:
    clean = root / "clean-index"
    pipeline(clean).ingest([root / "docs" / "other", root / "docs" / "v2"])
    return index_contents(clean)


def plan_replace_trials() -> list[Trial]:
    """3 kills at stratified random points of a replacing ingest, 9 aimed at its short stages."""
    rng = random.Random(SEED + 1)
    trials = [Trial(0, "replace", None, (stratum + rng.random()) / 3) for stratum in range(3)]
    targets = {"read": 0.1, "chunk": 0.1, "embed": EMBED_SLEEP / 2, "write 0/1": IO_SLEEP / 2,
               "write-files": IO_SLEEP / 2, "segment-written": IO_SLEEP / 2, "manifest-written": IO_SLEEP / 2,
               "current-tmp-written": IO_SLEEP / 2, "published": IO_SLEEP / 2, "cleanup-rm": IO_SLEEP / 8}
    trials += [Trial(0, "replace", target, 0.0, rng.uniform(0, window)) for target, window in targets.items()]
    for n, trial in enumerate(trials):
        trial.n = n
    return trials


REPLACE_TRIALS = plan_replace_trials()


@pytest.fixture(scope="module")
def replace_duration(workers, tmp_path_factory, summary) -> float:
    """Seconds from `start` to `done` of an unkilled replacing ingest, checked like the trials."""
    root = tmp_path_factory.mktemp("calibrate-replace")
    job, old = prepare_replace(root)
    want = clean_replace_build(root)
    run = workers.run(job)
    seconds = run.lines[-1][0] - run.started
    assert json.loads(run.last().removeprefix("done "))["replaced"] == len(old)
    assert_same_index(index_contents(Path(job["index_dir"])), want)
    summary.append({"trial": "c-replace", "kind": "replace", "timing": "not killed", "kill": None,
                    "last": run.last(), "stage": "finished", "current": "swapped",
                    "next": "-", "removed": "-", "ok": "ok", "run": seconds})
    return seconds


@pytest.mark.parametrize("trial", REPLACE_TRIALS, ids=lambda t: f"{t.n:02d}-replace-{t.target or 'random'}")
def test_sigkill_during_a_replacing_ingest_leaves_exactly_one_version(
    trial, workers, replace_duration, summary, tmp_path
):
    job, old = prepare_replace(tmp_path)
    index = Path(job["index_dir"])
    want = clean_replace_build(tmp_path)
    want_docs = {d: (sha, ids) for d, (sha, _, _, _, ids) in want["docs"].items()}
    new = {d for d in want_docs if under(d, tmp_path / "docs" / "v2")}
    before_gen, before_docs = current_name(index), live_docs(index)
    row = {"trial": f"r{trial.n:02d}", "kind": "replace", "ok": "FAIL", "run": replace_duration,
           "timing": f"after {trial.target!r} +{trial.extra:.2f}s" if trial.target
           else f"random {trial.fraction:.2f} of run"}
    summary.append(row)

    run = workers.run(job, trial, replace_duration)
    key = line_key(run.last())
    after_gen = current_name(index)
    row.update(kill=run.killed_at, last=run.last(), stage=stage_of(run) if run.killed_at is not None else "finished",
               current="kept" if after_gen == before_gen else "swapped")

    # exactly one version is live and whole: the old until the swap, then the new; never both or neither
    live = live_docs(index)
    version = old if live.keys() & old else new
    assert (live.keys() & old, live.keys() & new) in ((old, set()), (set(), new)), f"after {run.last()!r}"
    if after_gen == before_gen:
        assert ORDER.index(key) < ORDER.index("published"), f"CURRENT not swapped after {run.last()!r}"
        assert live == before_docs and version == old
    else:
        assert ORDER.index(key) >= ORDER.index("current-tmp-written"), f"CURRENT swapped at {run.last()!r}"
        assert live == want_docs and version == new
    search = pipeline(index).search
    for i in (REUPLOADED[0], REUPLOADED[-1]):  # found by its unique 관리번호, in the live version
        assert search(f"관리번호 {70000 + 13 * i}번", 1)[0].chunk.doc_id in version

    # the next ingest (same job) completes, replaces what is still there, and leaves a clean index
    entries = {p.name for p in index.iterdir()}
    report = ingest(index, job)
    row["next"] = f"+{report.added} ={report.unchanged} r{len(report.replaced)}"
    row["removed"] = ",".join(sorted(entries - {p.name for p in index.iterdir()})) or "-"
    assert report.failed == [] and report.replaced == (sorted(old) if version == old else [])
    assert_same_index(index_contents(index), want)
    assert leftovers(index) == []
    row["ok"] = "ok"


def test_replace_kills_landed_on_both_sides_of_the_swap(summary):
    reached = {r["stage"] for r in summary if r["kind"] == "replace" and r.get("kill") is not None}
    wanted = {"embedding", "writing files", "written, unpublished", "swapping CURRENT", "swapped, not cleaned"}
    assert wanted <= reached, f"no replace kill during {sorted(wanted - reached)}"


def test_kills_landed_in_every_stage(summary):
    """The 21 kills covered each stage of a build (the aimed ones make sure of it)."""
    reached = {r["stage"] for r in summary if r.get("kill") is not None}
    assert set(MUST_HIT) <= reached, f"no kill during {sorted(set(MUST_HIT) - reached)}"


def print_summary(rows: list[dict]) -> None:
    head = f"{'trial':<9}{'kind':<9}{'timing':<36}{'kill@s':>7}{'run s':>7}  {'last line':<32}{'stage':<22}{'CURRENT':<9}{'next ingest':<16}{'removed by next ingest':<40}ok"
    print("\n\nSIGKILL during ingest (kill@s: seconds after the worker's `start`; next ingest: +added ~updated -deleted =unchanged)")
    print(head)
    print("-" * len(head))
    for r in rows:
        kill = f"{r['kill']:.2f}" if r.get("kill") is not None else "-"
        last = (r.get("last") or "")[:31]
        print(f"{r['trial']:<9}{r['kind']:<9}{r['timing']:<36}{kill:>7}{r['run']:>7.2f}  {last:<32}{r.get('stage', '?'):<22}"
              f"{r.get('current', '?'):<9}{r.get('next', '?'):<16}{r.get('removed', '?')[:39]:<40}{r['ok']}")
    stages: dict[str, int] = {}
    for r in rows:
        if r.get("kill") is not None:
            stages[r["stage"]] = stages.get(r["stage"], 0) + 1
    print("kills per stage:", ", ".join(f"{k}: {v}" for k, v in stages.items()))
