"""Ingestion throughput, peak RSS and index size with the default embedding model.

Indexes N KorQuAD 1.0 dev paragraphs (as a JSONL corpus) into a fresh index, several runs,
and prints the median chunks/s; also times a re-ingest of the unchanged corpus (which must
embed nothing) and reports the on-disk size of one generation and the process's peak RSS.

    .venv/bin/python bench/ingest_throughput.py --paragraphs 300 --runs 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, dir_size, emit  # noqa: E402

from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from ingest.korquad import load_korquad, write_jsonl  # noqa: E402
from retrieval.store import current_generation_path  # noqa: E402



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    corpus, _ = load_korquad(args.data)
    work = Path(tempfile.mkdtemp(prefix="chulcheo-bench-"))
    source = write_jsonl(corpus[: args.paragraphs], work / "korquad.jsonl")
    base = Settings(index_dir=work / "unused")
    warm = Pipeline(base)
    warm.embedder.embed_documents(["모델을 미리 불러온다."])  # load time is not ingest time

    runs, reingests = [], []
    for run in range(args.runs):
        settings = base.model_copy(update={"index_dir": work / f"index-{run}"})
        pipeline = Pipeline(settings, embedder=warm.embedder)
        t0 = time.perf_counter()
        report = pipeline.ingest([source])
        seconds = time.perf_counter() - t0
        runs.append({"seconds": seconds, "chunks": report.chunks, "chunks_per_s": report.chunks / seconds})
        t0 = time.perf_counter()
        again = pipeline.ingest([source])
        reingests.append(time.perf_counter() - t0)
        assert again.unchanged == args.paragraphs and again.added == again.updated == 0
        print(json.dumps(runs[-1] | {"reingest_s": reingests[-1]}), flush=True)

    generation = current_generation_path(work / "index-0")
    result = {
        "paragraphs": args.paragraphs,
        "chunks": runs[0]["chunks"],
        "runs": args.runs,
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        "median_chunks_per_s": round(statistics.median(r["chunks_per_s"] for r in runs), 2),
        "median_reingest_unchanged_s": round(statistics.median(reingests), 3),
        "reingest_speedup": round(
            statistics.median(r["seconds"] for r in runs) / statistics.median(reingests), 1
        ),
        "index_bytes": dir_size(generation),
        "index_files": sorted(
            f"{p.relative_to(generation)}={p.stat().st_size}" for p in generation.rglob("*") if p.is_file()
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
