"""The Postgres backend against the embedded index: the same quality, and the capacity curve.

1. Quality: the rows of an existing embedded KorQuAD index (real EmbeddingGemma vectors, real
   Kiwi tokens) are copied into Postgres; every question is searched through both
   (`HybridRetriever` over the files, `PgRetriever` over SQL; same query vector, embedded
   once, same fusion) and scored by hit@1 and nDCG@10 against its gold paragraph. The
   questions are a QA JSONL (`--qa`) or all of KorQuAD dev (`--korquad`, for an index of its
   964 paragraphs, e.g. the one `chulcheo eval retrieval --dataset korquad … --index DIR` builds).
2. Capacity: at each size, N chunks (KorQuAD sentences recombined, seeded random vectors, as in
   bench/segments.py: real embedding would take hours at 100k) written into both backends
   (embedded: one segment; Postgres: one `apply`, then the HNSW build), timed; disk and RAM
   per chunk; hybrid search p50/p95 over 100 questions, k = 10, unfiltered and with a group
   filter that allows a tenth of the rows, `--rounds` times (the median of the rounds' p50s
   and p95s is reported, with both backends measured in the same round).

The Postgres is a local one started by pgserver (PostgreSQL 16, pgvector 0.6.2, default
settings: shared_buffers 128 MB, on the same 2 cores).

    .venv/bin/python bench/pg_backend.py --index /tmp/kqfull/idx --korquad \
        --sizes 1000,10000,100000 --rounds 3 --out pg.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit  # noqa: E402
from bench.ingest_scaling import RandomEmbedder  # noqa: E402

from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from evaluation.retrieval import gold_of, judged_ids  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.metrics import dedupe, summarize  # noqa: E402
from retrieval.pg import HNSW_INDEX, PgIndex, PgRetriever, _connect  # noqa: E402
from retrieval.retriever import HybridRetriever, SearchFilters  # noqa: E402
from retrieval.store import open_index  # noqa: E402
from retrieval.tokenize import tokenizer_from_config  # noqa: E402
from retrieval.types import Chunk  # noqa: E402


def new_database(server, name: str) -> str:
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return server.get_uri(name)


def load_into(url: str, generation, tokens: list[list[str]], keys: list[str]) -> tuple[PgIndex, float]:
    """The generation's rows into a fresh database (HNSW built after the load); returns (index, seconds)."""
    pg = PgIndex(url, dim=generation.dense.dim, hnsw=False)
    pg.migrate()
    started = time.perf_counter()
    vectors = generation.dense.vectors(range(len(generation.chunks)))
    config = {k: generation.manifest[k] for k in ("embedding", "tokenizer", "bm25", "chunking") if k in generation.manifest}
    pg.apply(config, [], {}, generation.chunks, vectors, tokens, keys)
    with _connect(url) as conn:
        conn.execute("set maintenance_work_mem = '2GB'")
        conn.execute(HNSW_INDEX)
        conn.execute("analyze")
    pg.hnsw = True  # built now: the dense leg uses it from exact_below rows on
    return pg, time.perf_counter() - started


class OnceEmbedder:
    """The real embedder, each query embedded once for both backends."""

    def __init__(self, real) -> None:
        self.real = real
        self.model_id = real.model_id
        self.dim = real.dim
        self._last: tuple[str, np.ndarray] | None = None

    def embed_query(self, text: str) -> np.ndarray:
        if self._last is None or self._last[0] != text:
            self._last = (text, self.real.embed_query(text))
        return self._last[1]


def quality(index_dir: Path, questions: list[dict], server) -> dict:
    pipeline = Pipeline(Settings(index_dir=index_dir))
    embedder = OnceEmbedder(pipeline.embedder)
    generation = open_index(index_dir)
    tokenizer = tokenizer_from_config(generation.manifest["tokenizer"])
    files = HybridRetriever(generation, embedder, tokenizer, fusion=pipeline.fusion_config())
    keys = [hashlib.sha256(c.text.encode()).hexdigest() for c in generation.chunks]
    pg, load_s = load_into(new_database(server, "quality"), generation, generation.bm25.token_lists, keys)
    sql = PgRetriever(pg, embedder, tokenizer, fusion=pipeline.fusion_config())
    runs: dict[str, list] = {"files": [], "postgres": []}
    same = 0
    for q in questions:
        got = {}
        for name, retriever in (("files", files), ("postgres", sql)):
            hits = retriever.search(q["query"], k=10)
            got[name] = [h.chunk.chunk_id for h in hits]
            runs[name].append((dedupe(judged_ids([h.chunk for h in hits], q)), gold_of(q)))
        same += got["files"] == got["postgres"]
        if len(runs["files"]) % 500 == 0:  # a long run shows where it is
            print(len(runs["files"]), {name: round(summarize(r)["ndcg@10"], 4) for name, r in runs.items()},
                  file=sys.stderr, flush=True)
    return {"chunks": len(generation.chunks), "questions": len(questions), "load_s": round(load_s, 1),
            "same_top10": same, **{name: {k: round(v, 4) for k, v in summarize(r).items()} for name, r in runs.items()}}


def synthetic(size: int, corpus: list[dict], tokens_of, embedder, seed: int):
    rng = random.Random(seed)
    sentences = [s for r in corpus for s in re.split(r"(?<=[.!?])\s+", r["text"]) if len(s) > 20][:3000]
    tokens = tokens_of(sentences)
    chunks, token_lists = [], []
    for i in range(size):
        doc = f"/base/doc-{i // 2:06d}.txt"
        picked = [rng.randrange(len(sentences)) for _ in range(5)]
        chunks.append(Chunk(chunk_id=f"{doc}#{i % 2:04d}", doc_id=doc, text=" ".join(sentences[j] for j in picked),
                            source=doc, group=f"g{(i // 2) % 10}", position=i % 2))
        token_lists.append([t for j in picked for t in tokens[j]])
    return chunks, token_lists


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def pg_sizes(url: str) -> dict:
    """Bytes on disk of the database, and of what a search reads (to keep in RAM): the HNSW
    index, the postings' term index, the chunks' heap (the vectors are in it) and the term table."""
    with _connect(url) as conn:
        return dict(zip(("db", "hot"), conn.execute(
            "select pg_database_size(current_database()), pg_relation_size('chulcheo_chunks_hnsw') "
            "+ pg_relation_size('chulcheo_postings_term') + pg_relation_size('chulcheo_chunks') "
            "+ pg_total_relation_size('chulcheo_terms')").fetchone(), strict=True))


def latency(size: int, corpus: list[dict], questions: list[str], server, root: Path, rounds: int) -> dict:
    from bench.common import dir_size
    from retrieval.segments import TermCounts
    from retrieval.store import commit_generation, new_generation_path, publish, write_segment

    settings = Settings(index_dir=root / f"files-{size}")
    pipeline = Pipeline(settings)
    embedder = RandomEmbedder(pipeline.embedder)
    pipeline._embedder = embedder
    builder = pipeline.builder()
    chunks, token_lists = synthetic(size, corpus, builder.tokenizer.tokenize_many, embedder, seed=size)
    vectors = embedder.embed_documents([c.text for c in chunks])
    keys = [hashlib.sha256(c.text.encode()).hexdigest() for c in chunks]
    started = time.perf_counter()
    entry = write_segment(settings.index_dir, chunks, vectors, TermCounts.from_token_lists(token_lists), keys,
                          dense_config=pipeline.dense_config())
    config = builder._build_config()
    gen = new_generation_path(settings.index_dir)
    commit_generation(gen, {**config, "docs": {}, "segments": [entry]})
    publish(settings.index_dir, gen)
    files_write_s = time.perf_counter() - started
    before = rss()
    generation = open_index(settings.index_dir)
    files = HybridRetriever(generation, embedder, builder.tokenizer, fusion=pipeline.fusion_config())
    files.search(questions[0], k=10)
    files_ram = rss() - before
    url = new_database(server, f"lat{size}")
    pg, load_s = load_into(url, generation, token_lists, keys)
    sizes = pg_sizes(url)
    retrievers = {"files": files, "postgres": PgRetriever(pg, embedder, builder.tokenizer, fusion=pipeline.fusion_config())}
    out: dict = {"chunks": size, "vectors": "seeded", "rounds": rounds,
                 "files_write_s": round(files_write_s, 1), "pg_load_and_hnsw_s": round(load_s, 1),
                 "files_disk_bytes_per_chunk": round(dir_size(settings.index_dir) / size),
                 "files_ram_bytes_per_chunk": round(files_ram / size),
                 "pg_disk_bytes_per_chunk": round(sizes["db"] / size),
                 "pg_hot_bytes_per_chunk": round(sizes["hot"] / size)}
    measured: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, retriever in retrievers.items():
            for label, filters in (("all", None), ("one_group_of_10", SearchFilters(groups={"g3"}))):
                for q in questions[:5]:
                    retriever.search(q, k=10, filters=filters)
                times = []
                for q in questions:
                    t = time.perf_counter()
                    hits = retriever.search(q, k=10, filters=filters)
                    times.append(time.perf_counter() - t)
                    assert filters is None or all(h.chunk.group == "g3" for h in hits)
                measured.setdefault(f"{name}_{label}_p50_ms", []).append(float(np.percentile(times, 50)) * 1000)
                measured.setdefault(f"{name}_{label}_p95_ms", []).append(float(np.percentile(times, 95)) * 1000)
    for key, values in measured.items():
        out[key] = round(float(np.median(values)), 2)
    for label in ("all", "one_group_of_10"):
        out[f"ratio_{label}_p50"] = round(out[f"postgres_{label}_p50_ms"] / out[f"files_{label}_p50_ms"], 1)
    out["p50_by_round_ms"] = {k: [round(v, 1) for v in vs] for k, vs in measured.items() if "p50" in k}
    return out


def main() -> None:
    import pgserver

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="an embedded KorQuAD index (real vectors) for the quality check")
    parser.add_argument("--qa", type=Path, help="its questions (QA JSONL with gold_ids)")
    parser.add_argument("--korquad", action="store_true", help="its questions: all of KorQuAD dev")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    corpus, qa = load_korquad(KORQUAD)
    questions = [q["query"] for q in random.Random(0).sample(qa, 100)]
    result: dict = {"command": " ".join(sys.argv), "postgres": "pgserver 0.1.4 (PostgreSQL 16, pgvector 0.6.2)"}
    with tempfile.TemporaryDirectory(prefix="chulcheo-pg-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            if args.index and (args.qa or args.korquad):
                asked = qa if args.korquad else [json.loads(line) for line in
                                                 args.qa.read_text(encoding="utf-8").splitlines() if line.strip()]
                result["quality"] = quality(args.index, asked[: args.limit], server)
                print(result["quality"], file=sys.stderr, flush=True)
            result["latency"] = []
            for size in (int(s) for s in args.sizes.split(",") if s):
                result["latency"].append(latency(size, corpus, questions, server, Path(tmp), args.rounds))
                print(result["latency"][-1], file=sys.stderr, flush=True)
        finally:
            server.cleanup()
    emit(result, args.out)


if __name__ == "__main__":
    main()
