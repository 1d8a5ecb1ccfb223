"""An ingest in its own process, for tests that SIGKILL it or query while it swaps.

Not a test: the reliability tests start it as `sys.executable ingest_worker.py`. It loads the
modules and Kiwi first and prints `ready`, then reads one JSON job from stdin, so a test can
warm the next worker while it checks the previous one and time a kill from `start`:

    {"index_dir": "/tmp/x/index", "paths": ["/tmp/x/docs"], "sync": true, "rebuild": false,
     "max_tokens": 32, "overlap_tokens": 8}

Optional keys: "group", and "exclude" / "replace" (lists of doc ids, passed to `ingest`).

Every stage it reaches is one flushed stdout line, e.g. `read 3/40`, `embed 64/120`,
`write-files`, `manifest-written`, `current-tmp-written`, `published`, `cleanup-rm gen-000001`,
and last `done {report}`. Environment variables widen each stage so that kills land in it
(0 = full speed):

    INGEST_WORKER_STEP_SLEEP   seconds after each file read and each document chunked
    INGEST_WORKER_EMBED_SLEEP  seconds per embedding batch (the fake embedder is fast)
    INGEST_WORKER_IO_SLEEP     seconds at each on-disk step: new generation dir, files written,
                               manifest written, CURRENT.tmp written, published; a quarter of
                               it after each file removed by the cleanup

The product code runs unchanged; only its module-level helpers are wrapped to print and wait.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.settings import ChunkSettings, Settings
from tests.fakes import HashEmbedder

STEP_SLEEP = float(os.environ.get("INGEST_WORKER_STEP_SLEEP", "0"))
EMBED_SLEEP = float(os.environ.get("INGEST_WORKER_EMBED_SLEEP", "0"))
IO_SLEEP = float(os.environ.get("INGEST_WORKER_IO_SLEEP", "0"))


def worker_settings(index_dir: Path, max_tokens: int = 256, overlap_tokens: int = 32) -> Settings:
    """The settings both the worker and the test process build their Pipeline with."""
    return Settings(
        index_dir=Path(index_dir),
        state_dir=Path(index_dir).parent / "state",
        chunk=ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap_tokens),
    )


class SlowHashEmbedder(HashEmbedder):
    """HashEmbedder that waits `delay` seconds per document batch (queries stay fast).

    Same `model_id`, so an index it built is read by a plain HashEmbedder.
    """

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def embed_documents(self, texts):
        # Files are read on another thread while embedding runs, so `read` lines can follow
        # this one while the batch is still being embedded: the test pairs it with `embed`.
        say(f"embedding-call {len(texts)}")
        if self.delay:
            time.sleep(self.delay)
        return super().embed_documents(texts)


@contextmanager
def kiwi_shared_by_all(kiwi) -> Iterator[None]:
    """Within: every `kiwipiepy.Kiwi(...)` returns `kiwi`.

    A Pipeline makes a tokenizer per build and per reader, each loading Kiwi (~2 s, ~400 MB).
    """
    import kiwipiepy

    real = kiwipiepy.Kiwi
    kiwipiepy.Kiwi = lambda *a, **k: kiwi
    try:
        yield
    finally:
        kiwipiepy.Kiwi = real


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _instrument() -> None:
    """Wrap the on-disk steps of a build so each prints its stage and waits IO_SLEEP."""
    import types

    from ingest import build
    from retrieval import store
    from retrieval.segments import SEGMENT_META

    real_fsync_tree, real_write_durably = store._fsync_tree, store._write_durably
    real_publish, real_cleanup = build.publish, build.cleanup_generations

    def fsync_tree(root):
        say("write-files")  # a segment's chunks, vectors and term counts written; no segment.json yet
        time.sleep(IO_SLEEP)
        real_fsync_tree(root)

    def write_durably(path, text):
        real_write_durably(path, text)
        name = Path(path).name
        say({store.MANIFEST_FILE: "manifest-written", SEGMENT_META: "segment-written"}.get(name, "current-tmp-written"))
        time.sleep(IO_SLEEP)

    def publish(index_dir, gen_path):
        real_publish(index_dir, gen_path)
        say("published")
        time.sleep(IO_SLEEP)

    def cleanup_generations(index_dir, keep=2):
        say("cleanup")
        removed = real_cleanup(index_dir, keep=keep)
        say("cleanup-done " + " ".join(p.name for p in removed))
        return removed

    def slow_rmtree(path):
        """shutil.rmtree, one file at a time, so a kill can leave a half-removed generation."""
        for dirpath, dirnames, filenames in os.walk(path, topdown=False):
            for name in filenames:
                os.unlink(os.path.join(dirpath, name))
                say(f"cleanup-rm {Path(path).name}/{name}")
                time.sleep(IO_SLEEP / 4)
            for name in dirnames:
                os.rmdir(os.path.join(dirpath, name))
        os.rmdir(path)

    store._fsync_tree, store._write_durably = fsync_tree, write_durably
    store.shutil = types.SimpleNamespace(rmtree=slow_rmtree)
    build.publish, build.cleanup_generations = publish, cleanup_generations


def main() -> int:
    import kiwipiepy

    from app.pipeline import Pipeline

    kiwi = kiwipiepy.Kiwi()
    kiwi.tokenize("안녕하세요")  # finish Kiwi's lazy start before `ready`
    _instrument()
    say("ready")

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the test ended without giving a job
    job = json.loads(line)
    settings = worker_settings(Path(job["index_dir"]), job.get("max_tokens", 256), job.get("overlap_tokens", 32))
    pipeline = Pipeline(settings, embedder=SlowHashEmbedder(EMBED_SLEEP))

    def progress(stage: str, done: int, total: int) -> None:
        say(f"{stage} {done}/{total}")
        if stage in ("read", "chunk"):
            time.sleep(STEP_SLEEP)
        elif stage == "write" and done == 0:
            time.sleep(IO_SLEEP)  # an empty new generation directory exists now

    say("start")
    with kiwi_shared_by_all(kiwi):
        report = pipeline.ingest(
            [Path(p) for p in job["paths"]], job.get("group", "public"),
            sync=job.get("sync", False), rebuild=job.get("rebuild", False),
            exclude=job.get("exclude", ()), replace=job.get("replace", ()), progress=progress,
        )
    say("done " + json.dumps(report.to_dict(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
