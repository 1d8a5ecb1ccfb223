"""Retrieval-quality sweeps on KorQuAD dev over a cached eval index, each query embedded once.

`chulcheo eval retrieval` embeds every query once per mode (~0.14 s each), which makes
thousands of questions × many settings slow. This bench embeds the sampled questions once
(the real default model, one torch thread, `embed_query` exactly as the retriever calls it),
caches the vectors beside the eval indexes, and then replays every setting offline over the
same index, the same questions and the same vectors:

    # 1. query vectors (all 5,774 dev questions in the seed-13 order of `--limit`)
    .venv/bin/python bench/retrieval_quality.py embed \
        --dataset ../shared/data/korquad_v1/KorQuAD_v1.0_dev.json
    # 2. the sweeps (candidate depth, document aggregation, compound splitting, HNSW)
    .venv/bin/python bench/retrieval_quality.py sweep --index ~/.cache/chulcheo/eval/<hash> \
        --dataset ../shared/data/korquad_v1/KorQuAD_v1.0_dev.json --out quality.json

The question order is `evaluation.retrieval.sample_questions(questions, None, seed)`, so the first N
questions here are the N questions of `--limit N --seed 13` in the eval CLI.

    # 3. old (zscore) vs new (zscore-pool) fusion on any eval set, and under weakened legs
    .venv/bin/python bench/retrieval_quality.py fusion --dataset ../shared/data/korquad_v1/KorQuAD_v1.0_dev.json --limit 1500
    .venv/bin/python bench/retrieval_quality.py fusion --docs ../devdata/korquad_pdf/docs --qa ../devdata/korquad_pdf/qa.jsonl

`fusion` indexes the set as `chulcheo eval retrieval` does (same cache dir), takes each
question's legs once (BM25 and dense, 100 candidates) and fuses them offline; the stress
columns swap in a weak lexical leg (whitespace BM25) or a weak dense leg (the query vector
plus seeded Gaussian noise of `s` times its norm), to see whether hybrid stays at or above its
better leg when one leg is much worse, as on the held-out PDFs of issue 16.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import platformdirs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.chunk import index_text, record_id_of  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.bm25 import BM25Index  # noqa: E402
from retrieval.dense import DenseIndex, DenseIndexConfig  # noqa: E402
from retrieval.metrics import dedupe, summarize  # noqa: E402
from retrieval.retriever import FusionConfig  # noqa: E402
from retrieval.store import open_index  # noqa: E402
from retrieval.tokenize import KiwiTokenizer, tokenizer_from_config  # noqa: E402

logger = logging.getLogger("bench.retrieval_quality")


def ordered_questions(dataset: Path, seed: int) -> list[dict]:
    """All questions, shuffled as `sample_questions(questions, None, seed)` does."""
    _, questions = load_korquad(dataset)
    random.Random(seed).shuffle(questions)
    return questions


def vectors_path(model_id: str, questions: list[dict]) -> Path:
    digest = hashlib.sha256(model_id.encode())
    for q in questions:
        digest.update(f"{q['qid']}\t{q['query']}\n".encode())
    cache = Path(platformdirs.user_cache_dir("chulcheo")) / "eval" / "queries"
    return cache / f"{model_id.replace('@', '_')}-{digest.hexdigest()[:12]}.npy"


def embed(args: argparse.Namespace) -> None:
    """Embed every question (resumable: partial progress is saved every 200 queries)."""
    import torch

    from app.pipeline import make_embedder
    from app.settings import Settings

    questions = ordered_questions(args.dataset, args.seed)
    embedder = make_embedder(Settings())
    embedder.embed_query("연차휴가는 며칠인가요?")
    torch.set_num_threads(args.torch_threads)  # 2 threads on 2 shared cores were 13x slower
    out = vectors_path(embedder.model_id, questions)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.npy")
    done = np.load(partial) if partial.exists() else np.empty((0, embedder.dim), dtype=np.float32)
    rows = list(done)
    started = time.perf_counter()
    for i in range(len(rows), len(questions)):
        rows.append(embedder.embed_query(questions[i]["query"]))
        if (i + 1) % 200 == 0 or i + 1 == len(questions):
            np.save(partial, np.asarray(rows, dtype=np.float32))
            rate = (i + 1 - len(done)) / (time.perf_counter() - started)
            logger.info("%d/%d queries embedded (%.1f/s)", i + 1, len(questions), rate)
    partial.rename(out)
    logger.info("wrote %s", out)


# --------------------------------------------------------------------------- sweep
K = 10
DEPTH = 3 * K  # chunks asked for per question, as `chulcheo eval retrieval` does
LEG_DEPTH = 200  # deepest candidate list tried; shallower depths are its prefixes
DEFAULT = FusionConfig(method="weighted", weights=(0.5, 0.5), norm="minmax", candidates=50)


def load_vectors(model_id: str, questions: list[dict], wanted: int) -> np.ndarray:
    """The cached query vectors (a partial file serves when it already holds `wanted` rows)."""
    path = vectors_path(model_id, questions)
    for candidate in (path, path.with_suffix(".partial.npy")):
        if candidate.exists():
            vectors = np.load(candidate)
            if len(vectors) >= wanted:
                return vectors[:wanted]
    raise SystemExit(f"{path} missing or short: run `bench/retrieval_quality.py embed` first")


def scores(runs: list[tuple[list[str], set[str]]]) -> dict:
    return {m: round(v, 4) for m, v in summarize(runs).items()} | {"n": len(runs)}


def paired(base: list[tuple[list[str], set[str]]], other: list[tuple[list[str], set[str]]]) -> dict:
    """Difference in hit@1 and recall@5 against `base` with its paired standard error."""
    out = {}
    for name, k in (("hit@1", 1), ("recall@5", 5)):
        d = np.array([float(bool(g & set(o[:k]))) - float(bool(g & set(b[:k])))
                      for (b, g), (o, _) in zip(base, other, strict=True)])
        out[f"d_{name}"] = round(float(d.mean()), 4)
        out[f"se_{name}"] = round(float(d.std(ddof=1) / np.sqrt(len(d))), 4)
    return out


def rank_docs(fused: list[tuple[int, float]], doc_of_row: list[str], aggregate: str) -> list[str]:
    """Document ranking from fused chunk scores.

    "first": order of first appearance among the top DEPTH chunks (what the eval does);
    "sum": sum of a document's fused chunk scores among the top DEPTH chunks (CombSUM).
    """
    top = fused[:DEPTH]
    if aggregate == "first":
        return dedupe([doc_of_row[row] for row, _ in top])[:K]
    total: dict[str, float] = {}
    for row, score in top:
        total[doc_of_row[row]] = total.get(doc_of_row[row], 0.0) + score
    return sorted(total, key=lambda d: -total[d])[:K]


def doc_legs(leg: list[tuple[int, float]], doc_of_row: list[str]) -> list[tuple[int, float]]:
    """A chunk leg collapsed to documents (max score, i.e. first appearance), doc index as id."""
    seen: dict[str, int] = {}
    out = []
    for row, score in leg:
        doc = doc_of_row[row]
        if doc not in seen:
            seen[doc] = len(seen)
            out.append((row, score))  # the document's best chunk stands for it
    return out


def sweep(args: argparse.Namespace) -> None:
    generation = open_index(args.index)
    everything = ordered_questions(args.dataset, args.seed)
    questions = everything[: args.limit]
    vectors = load_vectors(generation.manifest["embedding"]["model_id"], everything, len(questions))
    chunks = generation.chunks
    doc_of_row = [record_id_of(c) for c in chunks]  # gold ids name corpus lines
    with_context = bool(generation.manifest["chunking"].get("context_prefix", False))
    texts = [index_text(c, with_context) for c in chunks]
    plain = tokenizer_from_config(generation.manifest["tokenizer"])
    split = KiwiTokenizer(plain.pos_prefixes, kiwi=plain.kiwi, split_compounds=True)
    retokenized = plain.tokenize_many(texts)
    same = sum(a == b for a, b in zip(retokenized, generation.bm25.token_lists, strict=True))
    logger.info("re-tokenized chunks equal to the stored tokens: %d/%d", same, len(chunks))
    started = time.perf_counter()
    split_tokens = split.tokenize_many(texts)
    logger.info("split-compound tokenization of %d chunks: %.1f s", len(chunks), time.perf_counter() - started)
    k1, b = args.k1, args.b
    bm25 = {
        "kiwi": (BM25Index.build(generation.bm25.token_lists, k1=k1, b=b), plain),
        "kiwi+compounds": (BM25Index.build(split_tokens, k1=k1, b=b), split),
    }
    logger.info("vocabulary: %s", {name: ix.stats()["terms"] for name, (ix, _) in bm25.items()})

    configs: list[tuple[str, str, FusionConfig, str, str]] = []  # (name, tokens, fusion, aggregate, legs)
    for tokens in bm25:
        for cand in (30, 50, 100, 200):
            for w, norm in ((0.5, "minmax"), (0.4, "minmax"), (0.6, "minmax"), (0.5, "zscore")):
                fusion = FusionConfig(method="weighted", weights=(w, round(1 - w, 2)), norm=norm, candidates=cand)
                configs.append((f"{tokens} c={cand} {w:g}/{1 - w:g} {norm}", tokens, fusion, "first", "chunk"))
        for fusion in (DEFAULT, FusionConfig(method="weighted", weights=(0.5, 0.5), candidates=100)):
            c = fusion.candidates
            configs.append((f"{tokens} c={c} 0.5/0.5 minmax, CombSUM per doc", tokens, fusion, "sum", "chunk"))
            configs.append((f"{tokens} c={c} 0.5/0.5 minmax, legs collapsed to docs", tokens, fusion, "first", "doc"))
        configs.append((f"{tokens} c=50 rrf k=60", tokens, FusionConfig(method="rrf", candidates=50), "first", "chunk"))
    single = {f"{t} bm25 only": t for t in bm25} | {"dense only": None}
    runs: dict[str, list] = {name: [] for name, *_ in configs} | {name: [] for name in single}
    started = time.perf_counter()
    for i, (q, vec) in enumerate(zip(questions, vectors, strict=True), 1):
        gold = set(q["gold_ids"])
        dense = generation.dense.search(vec, LEG_DEPTH)
        legs = {t: ix.search(tok.tokenize(q["query"]), LEG_DEPTH) for t, (ix, tok) in bm25.items()}
        for name, tokens in single.items():
            leg = dense if tokens is None else legs[tokens]
            runs[name].append((dedupe([doc_of_row[r] for r, _ in leg[:DEPTH]])[:K], gold))
        for name, tokens, fusion, aggregate, level in configs:
            depth = max(fusion.candidates, DEPTH)
            a, d = legs[tokens][:depth], dense[:depth]
            if level == "doc":
                a, d = doc_legs(a, doc_of_row), doc_legs(d, doc_of_row)
            runs[name].append((rank_docs(fusion.fuse(a, d), doc_of_row, aggregate), gold))
        if i % 500 == 0:
            logger.info("%d/%d questions (%.0f s)", i, len(questions), time.perf_counter() - started)
    base = runs["kiwi c=50 0.5/0.5 minmax"]
    half = len(questions) // 2  # the second half was never used to choose a setting before
    rows = [
        {"setting": name} | scores(r) | paired(base, r)
        | {"halves_hit@1": [scores(r[:half])["hit@1"], scores(r[half:])["hit@1"]],
           "halves_recall@5": [scores(r[:half])["recall@5"], scores(r[half:])["recall@5"]]}
        for name, r in runs.items()
    ]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"questions": len(questions), "k1": k1, "b": b, "index": str(args.index),
                                        "rows": rows}, ensure_ascii=False, indent=1))


# --------------------------------------------------------------------------- hnsw
def padded_index(generation, size: int, seed: int) -> tuple[np.ndarray, list[list[str]], list[str]]:
    """The real chunks plus synthetic distractors up to `size` rows: (vectors, tokens, doc ids).

    A distractor mixes two random real chunks: vector normalize(a + b + noise), tokens the first
    half of a's and the second half of b's. Such vectors keep the real embeddings' anisotropic,
    clustered shape (random unit vectors are the worst case for a graph index) and compete with
    the gold chunks, so flat and HNSW are compared on a harder set than KorQuAD alone.
    """
    rng = np.random.default_rng(seed)
    real = generation.dense.vectors(range(len(generation.dense)))
    tokens = list(generation.bm25.token_lists)
    docs = [record_id_of(c) for c in generation.chunks]
    extra = size - len(real)
    a, b = rng.integers(len(real), size=extra), rng.integers(len(real), size=extra)
    noise = rng.standard_normal((extra, real.shape[1]), dtype=np.float32) / np.sqrt(real.shape[1])
    mixed = real[a] + real[b] + noise
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        tokens.append(tokens[x][: len(tokens[x]) // 2] + tokens[y][len(tokens[y]) // 2 :])
        docs.append(f"synthetic-{i}")
    return np.vstack([real, mixed]).astype(np.float32), tokens, docs


def hnsw(args: argparse.Namespace) -> None:
    """Flat vs HNSW on the real questions over the eval index padded to each size."""
    import faiss

    generation = open_index(args.index)
    everything = ordered_questions(args.dataset, args.seed)
    questions = everything[: args.limit]
    qvecs = load_vectors(generation.manifest["embedding"]["model_id"], everything, len(questions))
    tokenizer = tokenizer_from_config(generation.manifest["tokenizer"])
    query_tokens = tokenizer.tokenize_many([q["query"] for q in questions])
    report: dict = {"questions": len(questions), "k1": args.k1, "b": args.b, "sizes": []}
    for size in args.sizes:
        vectors, tokens, docs = padded_index(generation, max(size, len(generation.chunks)), args.seed)
        flat = DenseIndex(vectors.shape[1])
        flat.add(vectors)
        bm25 = BM25Index.build(tokens, k1=args.k1, b=args.b)
        bm25_legs = [bm25.search(t, DEFAULT.candidates) for t in query_tokens]
        variants: list[tuple[str, DenseIndex, int | None]] = [("flat", flat, None)]
        build_s = {}
        for m in args.m:
            faiss.omp_set_num_threads(args.build_threads)
            started = time.perf_counter()
            graph = flat.with_config(DenseIndexConfig(kind="hnsw", hnsw_m=m, ef_construction=args.ef_construction))
            build_s[f"m={m}"] = round(time.perf_counter() - started, 1)
            variants += [(f"hnsw m={m} ef={ef}", graph, ef) for ef in args.ef]
        faiss.omp_set_num_threads(1)  # the shipped query-time setting
        rows, exact, flat_runs = [], [], []
        for name, index, ef in variants:
            if ef is not None:
                index.ef_search = ef
            started = time.perf_counter()
            legs = [index.search(v, DEFAULT.candidates) for v in qvecs]
            ms = (time.perf_counter() - started) / len(qvecs) * 1e3
            exact = exact or legs
            runs, recall10, recall50 = [], [], []
            for q, b25, leg, ex in zip(questions, bm25_legs, legs, exact, strict=True):
                fused = DEFAULT.fuse(b25, leg)
                runs.append((dedupe([docs[r] for r, _ in fused[:DEPTH]])[:K], set(q["gold_ids"])))
                recall10.append(len({r for r, _ in leg[:10]} & {r for r, _ in ex[:10]}) / 10)
                recall50.append(len({r for r, _ in leg} & {r for r, _ in ex}) / max(len(ex), 1))
            flat_runs = flat_runs or runs
            row = {"index": name, "dense_ms_per_query": round(ms, 3),
                   "dense_recall@10": round(float(np.mean(recall10)), 4),
                   "dense_recall@50": round(float(np.mean(recall50)), 4)}
            rows.append(row | scores(runs) | paired(flat_runs, runs))
            print(json.dumps({"chunks": len(vectors)} | rows[-1]), flush=True)
        report["sizes"].append({"chunks": len(vectors), "hnsw_build_s": build_s, "rows": rows})
    if args.out:
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1))


# --------------------------------------------------------------------------- fusion
FUSIONS = {
    "rrf k=60": FusionConfig(method="rrf", candidates=100),
    "weighted 0.5/0.5 zscore (old)": FusionConfig(method="weighted", weights=(0.5, 0.5), norm="zscore", candidates=100),
    "weighted 0.5/0.5 zscore-pool (new)": FusionConfig(
        method="weighted", weights=(0.5, 0.5), norm="zscore-pool", candidates=100
    ),
    "adaptive 0.5/0.5": FusionConfig(method="adaptive", weights=(0.5, 0.5), candidates=100),
}
NOISE = (1.5, 3.5)


def fusion(args: argparse.Namespace) -> None:
    """bm25 / dense / each fusion per leg pair, with the paired nDCG@10 difference new - old."""
    from app.pipeline import Pipeline
    from app.settings import Settings
    from evaluation.docs import load_docs_set
    from evaluation.retrieval import (
        eval_set_index_dir,
        gold_of,
        index_eval_set,
        judged_ids,
        load_dataset,
        sample_questions,
    )
    from retrieval.metrics import ndcg_at
    from retrieval.tokenize import WhitespaceTokenizer

    eval_set = load_docs_set(args.docs, args.qa) if args.docs else load_dataset("korquad", args.dataset)
    questions = sample_questions(eval_set.questions, args.limit, args.seed)
    settings = Settings()
    pipeline = Pipeline(settings.model_copy(update={"index_dir": eval_set_index_dir(settings, eval_set)}))
    index_eval_set(pipeline, eval_set, rebuild_on_mismatch=True)
    retriever = pipeline.retriever()
    generation, chunks = retriever.generation, retriever.generation.chunks
    with_context = bool(generation.manifest["chunking"].get("context_prefix", False))
    whitespace = WhitespaceTokenizer()
    ws_index = BM25Index.build(whitespace.tokenize_many([index_text(c, with_context) for c in chunks]),
                               k1=generation.bm25.k1, b=generation.bm25.b)
    rng = np.random.default_rng(args.seed)
    depth = 100
    pool = min(depth, len(chunks))
    pairs = ["bm25+dense", "whitespace+dense"] + [f"bm25+dense~{s:g}" for s in NOISE]
    runs: dict[tuple[str, str], list] = {}
    started = time.perf_counter()
    for q in questions:
        vector = np.asarray(retriever.embedder.embed_query(q["query"]), dtype=np.float32)
        noise = rng.standard_normal(vector.shape).astype(np.float32) / np.sqrt(vector.size)
        bm25 = generation.bm25.search(retriever.tokenizer.tokenize(q["query"]), depth)
        dense = generation.dense.search(vector, depth)
        legs = {"bm25+dense": (bm25, dense),
                "whitespace+dense": (ws_index.search(whitespace.tokenize(q["query"]), depth), dense)}
        for s in NOISE:
            noisy = vector + s * noise * np.linalg.norm(vector)
            legs[f"bm25+dense~{s:g}"] = (bm25, generation.dense.search(noisy / np.linalg.norm(noisy), depth))
        for pair, (lexical, semantic) in legs.items():
            ranked = {"lexical leg": lexical, "dense leg": semantic} | {
                name: config.fuse(lexical, semantic, pool) for name, config in FUSIONS.items()
            }
            for name, rows in ranked.items():
                ids = judged_ids([chunks[row] for row, _ in rows[:DEPTH]], q)
                runs.setdefault((pair, name), []).append((dedupe(ids)[:K], gold_of(q)))
    logger.info("%d questions in %.0f s", len(questions), time.perf_counter() - started)
    rows = []
    for pair in pairs:
        old, new = runs[(pair, "weighted 0.5/0.5 zscore (old)")], runs[(pair, "weighted 0.5/0.5 zscore-pool (new)")]
        d = np.array([ndcg_at(b, g, K) - ndcg_at(a, g, K) for (a, g), (b, _) in zip(old, new, strict=True)])
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        for name in ("lexical leg", "dense leg", *FUSIONS):
            rows.append({"legs": pair, "ranking": name} | scores(runs[(pair, name)]))
        rows.append({"legs": pair, "ranking": "new - old nDCG@10", "mean": round(float(d.mean()), 4), "se": round(se, 4)})
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"dataset": eval_set.name, "questions": len(questions), "chunks": len(chunks),
                                        "rows": rows}, ensure_ascii=False, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_embed = sub.add_parser("embed", help="embed and cache the questions")
    p_embed.add_argument("--dataset", type=Path, required=True)
    p_embed.add_argument("--seed", type=int, default=13)
    p_embed.add_argument("--torch-threads", type=int, default=1)
    p_sweep = sub.add_parser("sweep", help="candidate depth, aggregation, compound splitting")
    p_sweep.add_argument("--index", type=Path, required=True)
    p_sweep.add_argument("--dataset", type=Path, required=True)
    p_sweep.add_argument("--seed", type=int, default=13)
    p_sweep.add_argument("--limit", type=int, default=None)
    p_sweep.add_argument("--k1", type=float, default=0.9)
    p_sweep.add_argument("--b", type=float, default=0.75)
    p_sweep.add_argument("--out", type=Path)
    p_hnsw = sub.add_parser("hnsw", help="flat vs HNSW over the eval index padded with distractors")
    p_hnsw.add_argument("--index", type=Path, required=True)
    p_hnsw.add_argument("--dataset", type=Path, required=True)
    p_hnsw.add_argument("--seed", type=int, default=13)
    p_hnsw.add_argument("--limit", type=int, default=None)
    p_hnsw.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p_hnsw.add_argument("--m", type=int, nargs="+", default=[32])
    p_hnsw.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256])
    p_hnsw.add_argument("--ef-construction", type=int, default=200)
    p_hnsw.add_argument("--build-threads", type=int, default=2)
    p_hnsw.add_argument("--k1", type=float, default=0.9)
    p_hnsw.add_argument("--b", type=float, default=0.75)
    p_hnsw.add_argument("--out", type=Path)
    p_fusion = sub.add_parser("fusion", help="old vs new fusion, also with a weakened leg")
    p_fusion.add_argument("--dataset", type=Path, help="KorQuAD 1.0 JSON (or --docs and --qa)")
    p_fusion.add_argument("--docs", type=Path)
    p_fusion.add_argument("--qa", type=Path)
    p_fusion.add_argument("--seed", type=int, default=13)
    p_fusion.add_argument("--limit", type=int, default=None)
    p_fusion.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "embed":
        embed(args)
    elif args.command == "sweep":
        sweep(args)
    elif args.command == "hnsw":
        hnsw(args)
    elif args.command == "fusion":
        if (args.dataset is None) == (args.docs is None) or (args.docs is not None and args.qa is None):
            parser.error("fusion needs --dataset FILE, or --docs FOLDER and --qa FILE")
        fusion(args)


if __name__ == "__main__":
    main()
