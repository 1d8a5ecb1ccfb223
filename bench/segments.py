"""Small changes to a big index: adding or deleting one document at 10k/100k chunks.

Builds a base index of N chunks as one segment (the layout a first full ingest writes; FAISS
HNSW from 10k rows), then, through the real `IndexBuilder` (real file reading, Kiwi sentence
chunking and Kiwi BM25 tokens, crash-safe write and publish), adds single KorQuAD paragraphs
as files and deletes them again. Vectors are seeded random unit vectors (marked "seeded"): the
target excludes embedding, and embedding 100k chunks for real takes hours here. The base
chunks are KorQuAD dev sentences recombined (5 per chunk, seeded) with their real Kiwi tokens.

Reports (median of the runs):
- add one document / delete one document: wall time of `IndexBuilder.ingest` / `delete`;
- baseline in the same run: what every change cost before segments, a rewrite of the whole
  generation (vectors copied, BM25 and HNSW rebuilt) = `merge(full=True)` of the same rows;
- reload: loading the new generation after an add, reusing the loaded segments, vs cold;
- hybrid search p50/p95 over 100 questions with 10 segments (base + 9 added documents) and
  after merging them into one, and whether each question's results are the same (hybrid and
  each leg). With `--dense flat` every leg is exact and the results must be identical; with
  HNSW (`auto`, the default from 10k chunks) the merge builds a new graph, whose approximation
  differs (seeded random vectors are HNSW's worst case: no structure, all cosines near 0).

    .venv/bin/python bench/segments.py --sizes 10000,100000 --out segments.json
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
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
from ingest.manifest import DocEntry, Manifest, now_iso  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.retriever import HybridRetriever  # noqa: E402
from retrieval.segments import TermCounts, unit_vectors  # noqa: E402
from retrieval.store import IndexGeneration, commit_generation, new_generation_path, publish, write_segment  # noqa: E402
from retrieval.types import Chunk  # noqa: E402


def base_index(pipeline: Pipeline, builder, size: int, corpus: list[dict], seed: int) -> float:
    """Write a one-segment index of `size` chunks (2 per document) and publish it; returns seconds."""
    rng = random.Random(seed)
    sentences = [s for r in corpus for s in re.split(r"(?<=[.!?])\s+", r["text"]) if len(s) > 20][:3000]
    tokens = pipeline.builder().tokenizer.tokenize_many(sentences)
    chunks, token_lists, docs = [], [], {}
    for i in range(size):
        doc = f"/base/doc-{i // 2:06d}.txt"
        picked = [rng.randrange(len(sentences)) for _ in range(5)]
        chunk = Chunk(chunk_id=f"{doc}#{i % 2:04d}", doc_id=doc, text=" ".join(sentences[j] for j in picked),
                      source=doc, position=i % 2)
        chunks.append(chunk)
        token_lists.append([t for j in picked for t in tokens[j]])
        entry = docs.setdefault(doc, DocEntry(doc_id=doc, source=doc, title=doc, sha256=hashlib.sha256(doc.encode()).hexdigest(),
                                               group="public", chunk_ids=[], ingested_at=now_iso()))
        entry.chunk_ids.append(chunk.chunk_id)
    vectors = unit_vectors(builder.embedder.embed_documents([c.text for c in chunks]))
    keys = [hashlib.sha256(builder._index_text(c).encode("utf-8")).hexdigest() for c in chunks]
    started = time.perf_counter()
    entry = write_segment(builder.index_dir, chunks, vectors, TermCounts.from_token_lists(token_lists), keys,
                          dense_config=builder.dense_config)
    manifest = Manifest(**builder._build_config(), docs=docs, created_at=now_iso()).to_dict()
    gen = new_generation_path(builder.index_dir)
    commit_generation(gen, {**manifest, "segments": [entry]})
    publish(builder.index_dir, gen)
    return time.perf_counter() - started


def search_all(generation: IndexGeneration, pipeline: Pipeline, embedder, questions: list[str],
               mode: str = "hybrid") -> tuple[list, list]:
    retriever = HybridRetriever(generation, embedder, pipeline.builder().tokenizer, fusion=pipeline.fusion_config())
    times, results = [], []
    for q in questions:
        t = time.perf_counter()
        hits = retriever.search(q, k=10, mode=mode)
        times.append(time.perf_counter() - t)
        results.append([(h.chunk.chunk_id, h.score) for h in hits])
    return times, results


def compare(a: list, b: list) -> dict:
    """Questions with identical results (ids and scores, every rank), identical first hit, mean overlap of the top 10."""
    overlap = [len({c for c, _ in x} & {c for c, _ in y}) / max(len(x), 1) for x, y in zip(a, b, strict=True)]
    return {"same": sum(x == y for x, y in zip(a, b, strict=True)),
            "same_top1": sum(x[:1] == y[:1] for x, y in zip(a, b, strict=True)),
            "overlap_at_10": round(float(np.mean(overlap)), 4)}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run_size(size: int, corpus: list[dict], questions: list[str], runs: int, root: Path, dense: str) -> dict:
    index = root / f"index-{size}-{dense}"
    settings = Settings(index_dir=index)
    settings.retrieval.dense_index = dense
    pipeline = Pipeline(settings)
    real = pipeline.embedder
    embedder = RandomEmbedder(real)
    pipeline._embedder = embedder
    builder = pipeline.builder()
    out: dict = {"chunks": size, "vectors": "seeded", "dense_base": builder.dense_config.resolve(size)}
    out["base_write_s"] = round(base_index(pipeline, builder, size, corpus, seed=size), 2)
    docs = root / f"docs-{size}-{dense}"
    docs.mkdir()
    files = []
    for i, row in enumerate(corpus[: runs + 9]):
        path = docs / f"추가-{i:02d}.txt"
        path.write_text(row["text"], encoding="utf-8")
        files.append(path)
    builder.ingest([files[0]])  # warm-up: Kiwi, tokenizer and the chunker's model tokenizer load once
    builder.delete([str(files[0].resolve())])
    adds, deletes = [], []
    for path in files[1 : runs + 1]:
        t = time.perf_counter()
        report = pipeline.builder().ingest([path])
        adds.append(time.perf_counter() - t)
        assert report.added == 1, report
        t = time.perf_counter()
        assert pipeline.builder().delete([str(path.resolve())]) == [str(path.resolve())]
        deletes.append(time.perf_counter() - t)
    out["add_one_doc_s"] = round(statistics.median(adds), 3)
    out["delete_one_doc_s"] = round(statistics.median(deletes), 3)
    out["add_runs_s"] = [round(x, 3) for x in adds]
    out["delete_runs_s"] = [round(x, 3) for x in deletes]
    pipeline.builder().merge(full=True)  # the deleted rows gone: base alone again

    # 10 segments: the base and 9 single documents
    cold = time.perf_counter()
    previous = IndexGeneration.load(index / (index / "CURRENT").read_text().strip())
    out["load_cold_s"] = round(time.perf_counter() - cold, 2)
    for path in files[runs + 1 : runs + 10] if len(files) >= runs + 10 else files[1:10]:
        pipeline.builder().ingest([path])
    t = time.perf_counter()
    segmented = IndexGeneration.load(index / (index / "CURRENT").read_text().strip(), reuse=previous)
    out["load_reusing_segments_s"] = round(time.perf_counter() - t, 2)
    out["segments_before_merge"] = len(segmented.parts)
    search_all(segmented, pipeline, embedder, questions[:5])  # warm caches
    seg_times, seg_results = search_all(segmented, pipeline, embedder, questions)
    seg_legs = {m: search_all(segmented, pipeline, embedder, questions, m)[1] for m in ("bm25", "dense")}
    t = time.perf_counter()
    merged_info = pipeline.builder().merge(full=True)
    out["baseline_full_rewrite_s"] = round(time.perf_counter() - t, 2)
    out["merged"] = len(merged_info["merged"]) if merged_info else 0
    merged = IndexGeneration.load(index / (index / "CURRENT").read_text().strip())
    search_all(merged, pipeline, embedder, questions[:5])
    merged_times, merged_results = search_all(merged, pipeline, embedder, questions)
    merged_legs = {m: search_all(merged, pipeline, embedder, questions, m)[1] for m in ("bm25", "dense")}
    out["search_10_segments_p50_ms"] = round(pct(seg_times, 50) * 1000, 2)
    out["search_10_segments_p95_ms"] = round(pct(seg_times, 95) * 1000, 2)
    out["search_merged_p50_ms"] = round(pct(merged_times, 50) * 1000, 2)
    out["search_merged_p95_ms"] = round(pct(merged_times, 95) * 1000, 2)
    out["search_ratio_p50"] = round(pct(seg_times, 50) / pct(merged_times, 50), 2)
    out["before_vs_after_merge"] = {"hybrid": compare(seg_results, merged_results),
                                    **{m: compare(seg_legs[m], merged_legs[m]) for m in seg_legs}}
    out["questions"] = len(questions)
    out["add_vs_full_rewrite"] = round(out["baseline_full_rewrite_s"] / max(out["add_one_doc_s"], 1e-9), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--dense", default="auto", choices=["auto", "flat"],
                        help="retrieval.dense_index: auto = HNSW from 10k chunks (approximate), flat = exact")
    args = parser.parse_args()
    corpus, qa = load_korquad(args.data)
    questions = [q["query"] for q in random.Random(0).sample(qa, 100)]
    result = {"command": " ".join(sys.argv), "sizes": []}
    with tempfile.TemporaryDirectory(prefix="chulcheo-segments-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            row = run_size(size, corpus, questions, args.runs, Path(tmp), args.dense)
            print(row, file=sys.stderr, flush=True)
            result["sizes"].append(row)
    emit(result, args.out)


if __name__ == "__main__":
    main()
