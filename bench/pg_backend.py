"""The Postgres backend against the embedded index: the same quality, and latency side by side.

1. Quality: the rows of an existing embedded KorQuAD index (real EmbeddingGemma vectors, real
   Kiwi tokens) are copied into Postgres; every question is searched through both
   (`HybridRetriever` over the files, `PgRetriever` over SQL; same query vector, same fusion)
   and scored by hit@1 and nDCG@10 against its gold paragraph.
2. Latency: at each size, N chunks (KorQuAD sentences recombined, seeded random vectors, as in
   bench/segments.py) in both backends; hybrid search p50/p95 over 100 questions, k = 10, and
   with a group filter that allows a tenth of the rows.

The Postgres is a local one started by pgserver (PostgreSQL 16, pgvector 0.6.2, default
settings, on the same 2 cores), HNSW built after the load.

    .venv/bin/python bench/pg_backend.py --index /work/idx/kq_clean \\
        --qa /work/devdata/korquad_pdf/clean_qa.jsonl --sizes 10000,100000 --out pg.json
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
    return pg, time.perf_counter() - started


def quality(index_dir: Path, qa_path: Path, server, limit: int) -> dict:
    pipeline = Pipeline(Settings(index_dir=index_dir))
    generation = open_index(index_dir)
    tokenizer = tokenizer_from_config(generation.manifest["tokenizer"])
    files = HybridRetriever(generation, pipeline.embedder, tokenizer, fusion=pipeline.fusion_config())
    keys = [hashlib.sha256(c.text.encode()).hexdigest() for c in generation.chunks]
    pg, load_s = load_into(new_database(server, "quality"), generation, generation.bm25.token_lists, keys)
    sql = PgRetriever(pg, pipeline.embedder, tokenizer, fusion=pipeline.fusion_config())
    questions = [json.loads(line) for line in qa_path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    runs: dict[str, list] = {"files": [], "postgres": []}
    same = 0
    for q in questions:
        got = {}
        for name, retriever in (("files", files), ("postgres", sql)):
            hits = retriever.search(q["query"], k=10)
            got[name] = [h.chunk.chunk_id for h in hits]
            runs[name].append((dedupe(judged_ids([h.chunk for h in hits], q)), gold_of(q)))
        same += got["files"] == got["postgres"]
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


def latency(size: int, corpus: list[dict], questions: list[str], server, root: Path) -> dict:
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
    entry = write_segment(settings.index_dir, chunks, vectors, TermCounts.from_token_lists(token_lists), keys,
                          dense_config=pipeline.dense_config())
    config = builder._build_config()
    gen = new_generation_path(settings.index_dir)
    commit_generation(gen, {**config, "docs": {}, "segments": [entry]})
    publish(settings.index_dir, gen)
    generation = open_index(settings.index_dir)
    pg, load_s = load_into(new_database(server, f"lat{size}"), generation, token_lists, keys)
    retrievers = {
        "files": HybridRetriever(generation, embedder, builder.tokenizer, fusion=pipeline.fusion_config()),
        "postgres": PgRetriever(pg, embedder, builder.tokenizer, fusion=pipeline.fusion_config()),
    }
    out: dict = {"chunks": size, "vectors": "seeded", "pg_load_and_hnsw_s": round(load_s, 1)}
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
            out[f"{name}_{label}_p50_ms"] = round(float(np.percentile(times, 50)) * 1000, 2)
            out[f"{name}_{label}_p95_ms"] = round(float(np.percentile(times, 95)) * 1000, 2)
    return out


def main() -> None:
    import pgserver

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="an embedded KorQuAD index (real vectors) for the quality check")
    parser.add_argument("--qa", type=Path, help="its questions (QA JSONL with gold_ids)")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    corpus, qa = load_korquad(KORQUAD)
    questions = [q["query"] for q in random.Random(0).sample(qa, 100)]
    result: dict = {"command": " ".join(sys.argv), "postgres": "pgserver 0.1.4 (PostgreSQL 16, pgvector 0.6.2)"}
    with tempfile.TemporaryDirectory(prefix="chulcheo-pg-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            if args.index and args.qa:
                result["quality"] = quality(args.index, args.qa, server, args.limit)
                print(result["quality"], file=sys.stderr, flush=True)
            result["latency"] = []
            for size in (int(s) for s in args.sizes.split(",") if s):
                result["latency"].append(latency(size, corpus, questions, server, Path(tmp)))
                print(result["latency"][-1], file=sys.stderr, flush=True)
        finally:
            server.cleanup()
    emit(result, args.out)


if __name__ == "__main__":
    main()
