"""How ingestion and search cost grow with the corpus: 1k, 10k, 100k chunks.

Documents are KorQuAD 1.0 dev paragraphs, then (beyond the real 964) synthetic paragraphs of
5 random real sentences (seeded), written as one JSONL corpus per size and ingested through
the real `IndexBuilder` (read, Kiwi sentence chunking with the model's tokenizer, Kiwi BM25
tokens, FAISS flat below 10k chunks and HNSW from there, atomic write). Only the embedding
model is replaced, by seeded random 768-d vectors, because embedding 100k chunks for real
would take ~8 hours here; the real model's cost is measured separately (median chunks/s of
3 runs over 64 real chunks) and added as a projection: every chunk is embedded on its own,
so it is linear in the number of chunks.

Per size it reports: full ingest without embedding, its parts (chunk+tokenize, build+write),
the projected embedding time, an incremental ingest adding 1 % more documents (one new
segment; with --pg one transaction), on-disk size, peak RSS, and hybrid search latency p50/p95
over 100 questions (query vectors random; the real query embedding time is reported once).

--pg runs the same through the Postgres backend (`index.url`) of a PostgreSQL 16 + pgvector
started here (pgserver), one database per size; the on-disk size is then the database's.

    .venv/bin/python bench/ingest_scaling.py --sizes 1000,10000,100000 --out scaling.json
    .venv/bin/python bench/ingest_scaling.py --sizes 1000,10000 --pg --out scaling-pg.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, dir_size, emit  # noqa: E402

from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from ingest.korquad import load_korquad, write_jsonl  # noqa: E402

CHUNKS_PER_DOC = 1.9  # KorQuAD paragraphs give ~1.8 chunks of 256 tokens; refined after the first size


class RandomEmbedder:
    """Seeded random unit vectors keyed by text; counts tokens with the real model's tokenizer."""

    def __init__(self, real) -> None:
        self.real = real
        self.model_id = real.model_id  # the index looks as if the real model built it
        self.dim = real.dim
        self.max_seq_length = getattr(real, "max_seq_length", None)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return self.real.count_tokens_many(texts)

    def _vec(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def corpus_rows(real: list[dict], n_docs: int, rng: random.Random) -> list[dict]:
    rows = [dict(r) for r in real[:n_docs]]
    sentences = [s for r in real for s in re.split(r"(?<=[.!?])\s+", r["text"]) if len(s) > 20]
    for i in range(len(rows), n_docs):
        rows.append({"id": f"synthetic-{i}", "text": " ".join(rng.choice(sentences) for _ in range(5)),
                     "metadata": {"title": f"합성 문서 {i}"}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="target chunk counts")
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--pg", action="store_true", help="through the Postgres backend (index.url) instead")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pg_server = _start_pg() if args.pg else None

    real_corpus, questions = load_korquad(args.data)
    work = Path(tempfile.mkdtemp(prefix="chulcheo-bench-scale-"))
    base = Settings(index_dir=work / "unused")
    real = Pipeline(base).embedder
    sample = [r["text"] for r in real_corpus[:64]]
    real.embed_documents(sample[:2])  # load
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        real.embed_documents(sample)
        rates.append(len(sample) / (time.perf_counter() - t0))
    embed_rate = statistics.median(rates)
    t0 = time.perf_counter()
    for q in questions[:20]:
        real.embed_query(q["query"])
    query_embed_ms = (time.perf_counter() - t0) / 20 * 1000
    fake = RandomEmbedder(real)
    print(json.dumps({"real_embed_chunks_per_s": round(embed_rate, 2), "query_embed_ms": round(query_embed_ms, 1)}),
          flush=True)

    results = []
    per_doc = CHUNKS_PER_DOC
    rng = random.Random(13)
    for size in [int(s) for s in args.sizes.split(",")]:
        n_docs = max(1, round(size / per_doc))
        rows = corpus_rows(real_corpus, n_docs, rng)
        source = write_jsonl(rows, work / f"corpus-{size}.jsonl")
        update: dict = {"index_dir": work / f"index-{size}"}
        if pg_server is not None:
            update["index"] = base.index.model_copy(update={"url": _new_database(pg_server, f"scale{size}")})
        pipeline = Pipeline(base.model_copy(update=update), embedder=fake)
        stages: dict[str, float] = {}
        last = {"t": time.perf_counter(), "stage": "read"}

        def progress(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            stages[last["stage"]] = stages.get(last["stage"], 0.0) + now - last["t"]
            last.update(t=now, stage=stage)

        t0 = time.perf_counter()
        report = pipeline.ingest([source], progress=progress)
        full = time.perf_counter() - t0
        progress("end", 0, 0)
        per_doc = report.chunks / n_docs
        extra = corpus_rows(real_corpus, n_docs + max(1, n_docs // 100), rng)[n_docs:]
        more = write_jsonl(extra, work / f"more-{size}.jsonl")
        t0 = time.perf_counter()
        pipeline.ingest([more])
        incremental = time.perf_counter() - t0
        pipeline.search(questions[0]["query"], 10)
        lat = []
        for q in questions[:100]:
            t0 = time.perf_counter()
            pipeline.search(q["query"], 10)
            lat.append((time.perf_counter() - t0) * 1000)
        # the whole index folder: a generation holds only its manifest, the segments sit beside it
        on_disk = _pg_size(update["index"].url) if pg_server is not None else dir_size(work / f"index-{size}")
        row = {"backend": "postgres" if pg_server is not None else "embedded",
            "target_chunks": size, "documents": n_docs, "chunks": report.chunks,
            "ingest_without_embedding_s": round(full, 1),
            "stages_s": {k: round(v, 1) for k, v in stages.items()},
            "projected_embedding_s": round(report.chunks / embed_rate, 0),
            "projected_full_ingest_h": round((full + report.chunks / embed_rate) / 3600, 2),
            "incremental_1pct_without_embedding_s": round(incremental, 1),
            "search_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "search_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "search_ms_p50_with_query_embedding": round(float(np.percentile(lat, 50)) + query_embed_ms, 1),
            "index_mb": round(on_disk / 2**20, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    out = {"real_embed_chunks_per_s": round(embed_rate, 2), "query_embed_ms": round(query_embed_ms, 1),
           "sizes": results}
    emit(out, args.out)
    if pg_server is not None:
        pg_server.cleanup()


def _start_pg():
    import pgserver  # the test extra: PostgreSQL 16 + pgvector 0.6.2

    return pgserver.get_server(Path(tempfile.mkdtemp(prefix="chulcheo-bench-pg-")), cleanup_mode="delete")


def _new_database(server, name: str) -> str:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"create database {name}")
    return server.get_uri(name)


def _pg_size(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("select pg_database_size(current_database())").fetchone()[0])


if __name__ == "__main__":
    main()
