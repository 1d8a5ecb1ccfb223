"""Hybrid query latency: our HybridRetriever against LangChain's EnsembleRetriever, same run.

Both systems get the same chunks, the same Kiwi tokens and the same precomputed vectors:

- chunks: KorQuAD 1.0 dev paragraphs split into Kiwi sentences and packed into windows of
  at most --window-chars characters (real text, enough for the 1k size); larger sizes add
  synthetic chunks that recombine random KorQuAD sentences (seeded RNG). Size N is the
  first N chunks of one list, so every size contains the smaller ones.
- tokens: each sentence is Kiwi-tokenized once; a chunk's tokens are its sentences' tokens
  in order. Our BM25Index and the baseline's BM25Retriever (via preprocess_func) use them;
  queries are Kiwi-tokenized at query time by both.
- vectors: seeded random 768-d unit vectors (the default model's dim) for chunks and
  queries; query "embedding" is a dict lookup on both sides, so embedding cost is excluded
  and the comparison is of the retrieval machinery. The real default model's single-query
  embedding time is measured separately (end-to-end = retrieval + embedding).
- --real-index DIR replaces the three above with real data: the chunks, Kiwi tokens and
  real-model vectors of a cached KorQuAD eval index, padded with chunks mixing two real ones,
  and real query vectors (`embedded_korquad`). Graph indexes (HNSW) are at their worst on
  random vectors and behave on real, clustered embeddings as they will in use.

Baseline: EnsembleRetriever([BM25Retriever(k=10), FAISS(IndexFlatIP).as_retriever(k=10)],
weights=[0.5, 0.5]). Ours: HybridRetriever with weighted 0.5/0.5 fusion (--norm, default
z-score; --candidates per leg, default 100: the defaults docs/benchmarks.md recommends),
twice: over an exact FAISS IndexFlatIP ("flat") and over an IndexHNSWFlat ("hnsw", --hnsw-m,
--ef-construction, --ef-search); the HNSW rows also report the dense leg's recall@10 against
the exact scan and the overlap of the hybrid top-k. FAISS runs with its default OpenMP thread count unless --faiss-threads is given
(one global setting, so it applies to every system). Each measurement: 10 warm-up queries,
then every query timed once; the systems take turns within each of --runs runs; reported
are the median of the per-run p50s and p95s.

    .venv/bin/python bench/retrieval_latency.py --faiss-threads 1 --out latency.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.korquad import load_korquad  # noqa: E402
from retrieval.bm25 import BM25Index  # noqa: E402
from retrieval.dense import DenseIndex, DenseIndexConfig  # noqa: E402
from retrieval.retriever import FusionConfig, HybridRetriever  # noqa: E402
from retrieval.store import IndexGeneration  # noqa: E402
from retrieval.tokenize import KiwiTokenizer  # noqa: E402
from retrieval.types import Chunk  # noqa: E402

logger = logging.getLogger("bench.retrieval_latency")

KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"
DIM = 768
WARMUP = 10


class PrecomputedEmbedder:
    """Our Embedder protocol over precomputed query vectors: embed_query is a dict lookup."""

    model_id = "bench-precomputed"

    def __init__(self, vectors: dict[str, np.ndarray]):
        self._vectors = vectors
        self.dim = DIM

    def embed_query(self, text: str) -> np.ndarray:
        return self._vectors[text]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("chunk vectors are precomputed")


def lookup_embeddings(vectors: dict[str, list[float]]):
    """LangChain `Embeddings` over the same precomputed query vectors (as lists, its type)."""
    from langchain_core.embeddings import Embeddings

    class LookupEmbeddings(Embeddings):
        def embed_query(self, text: str) -> list[float]:
            return vectors[text]

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise NotImplementedError("chunk vectors are precomputed")

    return LookupEmbeddings()


class CachedTokens:
    """preprocess_func for BM25Retriever: chunk text -> its precomputed tokens, else Kiwi."""

    def __init__(self, tokens_by_text: dict[str, list[str]], tokenizer: KiwiTokenizer):
        self._tokens = tokens_by_text
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> list[str]:
        tokens = self._tokens.get(text)
        return tokens if tokens is not None else self._tokenizer.tokenize(text)


def make_chunks(
    paragraphs: list[dict], tokenizer: KiwiTokenizer, size: int, window_chars: int, seed: int
) -> tuple[list[Chunk], list[list[str]], int]:
    """`size` chunks and their tokens; the first ones are real KorQuAD windows, the rest synthetic.

    Returns (chunks, token_lists, number_of_real_chunks).
    """
    sentences: list[str] = []
    windows: list[tuple[str, list[int]]] = []  # (title, sentence ids)
    for paragraph, sents in zip(
        paragraphs, tokenizer.kiwi.split_into_sents([p["text"] for p in paragraphs]), strict=True
    ):
        current: list[int] = []
        length = 0
        for sent in sents:
            text = sent.text.strip()
            if not text:
                continue
            if current and length + 1 + len(text) > window_chars:
                windows.append((paragraph["metadata"]["title"], current))
                current, length = [], 0
            sentences.append(text)
            current.append(len(sentences) - 1)
            length += len(text) + 1
        if current:
            windows.append((paragraph["metadata"]["title"], current))
    t0 = time.perf_counter()
    sentence_tokens = tokenizer.tokenize_many(sentences)
    logger.info("%d sentences Kiwi-tokenized in %.1f s", len(sentences), time.perf_counter() - t0)

    rng = np.random.default_rng(seed)
    real = min(size, len(windows))
    lengths = [len(ids) for _, ids in windows]
    for i in range(size - real):
        ids = rng.integers(len(sentences), size=lengths[rng.integers(len(lengths))]).tolist()
        windows.append((f"synthetic-{i // 8}", ids))
    chunks, token_lists = [], []
    for row, (title, ids) in enumerate(windows[:size]):
        text = " ".join(sentences[i] for i in ids)
        chunks.append(Chunk(chunk_id=f"bench#{row}", doc_id=title, text=text, source=title, title=title))
        token_lists.append([token for i in ids for token in sentence_tokens[i]])
    return chunks, token_lists, real


def embedded_korquad(
    index_dir: Path, dataset: Path, size: int, n_queries: int, seed: int
) -> tuple[list[Chunk], list[list[str]], np.ndarray, list[str], np.ndarray, int]:
    """Real embeddings instead of random vectors: the KorQuAD eval index, padded to `size`.

    Chunks, Kiwi tokens and vectors of the cached eval index (`chulcheo eval retrieval
    --dataset korquad`, real default model), plus synthetic chunks that mix two real ones
    (bench/retrieval_quality.py `padded_index`); queries are the first `n_queries` questions
    of the seed-13 eval order with their cached real query vectors
    (`bench/retrieval_quality.py embed`). Graph indexes behave on real, clustered embeddings
    as they will in use; on random unit vectors they are at their worst.

    Returns (chunks, token_lists, chunk_vectors, queries, query_vectors, real_chunks).
    """
    from retrieval_quality import load_vectors, ordered_questions, padded_index

    from retrieval.store import open_index

    generation = open_index(index_dir)
    vectors, token_lists, docs = padded_index(generation, size, seed)
    real = len(generation.chunks)
    chunks = list(generation.chunks[:size])
    for row in range(real, size):
        text = " ".join(token_lists[row])  # stands in for the text: both systems score the tokens
        chunks.append(Chunk(chunk_id=f"bench#{row}", doc_id=docs[row], text=text, source=docs[row], title=docs[row]))
    questions = ordered_questions(dataset, 13)
    query_vectors = load_vectors(generation.manifest["embedding"]["model_id"], questions, n_queries)
    queries = [q["query"] for q in questions[:n_queries]]
    unique = dict(zip(queries, query_vectors, strict=True))  # a repeated question keeps one vector
    return chunks[:size], token_lists[:size], vectors[:size], list(unique), np.asarray(list(unique.values())), real


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_queries(search: Callable[[str], object], queries: list[str]) -> np.ndarray:
    """Milliseconds per query, after WARMUP untimed queries."""
    for query in queries[:WARMUP]:
        search(query)
    times = np.empty(len(queries))
    for i, query in enumerate(queries):
        t0 = time.perf_counter()
        search(query)
        times[i] = (time.perf_counter() - t0) * 1e3
    return times


def summarize(runs: list[np.ndarray]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(float(np.percentile(r, 50)) for r in runs), 3),
        "p95_ms": round(statistics.median(float(np.percentile(r, 95)) for r in runs), 3),
        "p50_ms_per_run": [round(float(np.percentile(r, 50)), 3) for r in runs],
    }


def bench_size(
    size: int,
    chunks: list[Chunk],
    token_lists: list[list[str]],
    chunk_vectors: np.ndarray,
    queries: list[str],
    query_vectors: np.ndarray,
    tokenizer: KiwiTokenizer,
    args: argparse.Namespace,
) -> dict:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    chunks, token_lists, chunk_vectors = chunks[:size], token_lists[:size], chunk_vectors[:size]
    texts = [c.text for c in chunks]
    result: dict = {"chunks": size}

    # ---- ours
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    bm25 = BM25Index.build(token_lists)
    result["bm25_build_s"] = round(time.perf_counter() - t0, 2)
    gc.collect()
    result["bm25_rss_growth_mb"] = round(rss_mb() - rss0, 1)
    stats = bm25.stats()
    result["bm25_matrix_mb"] = round(stats["matrix_bytes"] / 2**20, 1)
    result["bm25_nnz"] = stats["nnz"]
    result["vocabulary"] = stats["terms"]
    dense = DenseIndex(DIM)
    dense.add(chunk_vectors)
    t0 = time.perf_counter()
    hnsw = dense.with_config(
        DenseIndexConfig(kind="hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction, ef_search=args.ef_search)
    )
    result["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
    embedder = PrecomputedEmbedder(dict(zip(queries, query_vectors, strict=True)))
    ours: dict[str, HybridRetriever] = {}
    for name, index in (("flat", dense), ("hnsw", hnsw)):
        generation = IndexGeneration(path=Path("<memory>"), manifest={}, chunks=chunks, dense=index, bm25=bm25)
        ours[name] = HybridRetriever(generation, embedder, tokenizer, fusion=fusion_config(args))
    result["hnsw_quality"] = hnsw_quality(ours["flat"], ours["hnsw"], queries, query_vectors, args.k)

    # ---- baseline
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    bm25_retriever = BM25Retriever.from_texts(
        texts,
        metadatas=[{"chunk_id": c.chunk_id} for c in chunks],
        preprocess_func=CachedTokens(dict(zip(texts, token_lists)), tokenizer),
        bm25_params={"k1": bm25.k1, "b": bm25.b},
        k=args.k,
    )
    result["baseline_bm25_build_s"] = round(time.perf_counter() - t0, 2)
    gc.collect()
    result["baseline_bm25_rss_growth_mb"] = round(rss_mb() - rss0, 1)
    store = FAISS.from_embeddings(
        zip(texts, chunk_vectors),
        lookup_embeddings({q: v.tolist() for q, v in zip(queries, query_vectors, strict=True)}),
        metadatas=[{"chunk_id": c.chunk_id} for c in chunks],
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )
    baseline = EnsembleRetriever(
        retrievers=[bm25_retriever, store.as_retriever(search_kwargs={"k": args.k})], weights=[0.5, 0.5]
    )

    # Estimate the baseline's cost first, to cap its query count if a size would take too long.
    t0 = time.perf_counter()
    for query in queries[:WARMUP]:
        baseline.invoke(query)
    per_query = (time.perf_counter() - t0) / WARMUP
    n_baseline = len(queries)
    if per_query * len(queries) * args.runs > args.baseline_budget_s:
        n_baseline = max(30, int(args.baseline_budget_s / (per_query * args.runs)))
        logger.info("size %d: baseline %.0f ms/query, capping it at %d queries", size, per_query * 1e3, n_baseline)

    ours_runs: dict[str, list[np.ndarray]] = {name: [] for name in ours}
    base_runs = []
    for run in range(args.runs):
        for name, retriever in ours.items():
            ours_runs[name].append(time_queries(lambda q, r=retriever: r.search(q, k=args.k), queries))
        base_runs.append(time_queries(baseline.invoke, queries[:n_baseline]))
        logger.info(
            "size %d run %d: ours flat p50 %.2f ms, hnsw p50 %.2f ms, baseline p50 %.2f ms",
            size, run + 1, *(np.percentile(ours_runs[n][-1], 50) for n in ours), np.percentile(base_runs[-1], 50),
        )
    result["baseline"] = summarize(base_runs) | {"queries": n_baseline}
    for name, runs in ours_runs.items():
        result[f"ours_{name}"] = summarize(runs) | {"queries": len(queries)}
        # The ratio compares the same queries: ours over the baseline's (possibly capped) subset.
        ours_same = summarize([r[:n_baseline] for r in runs])["p50_ms"]
        result[f"ratio_baseline_over_ours_{name}_p50"] = round(result["baseline"]["p50_ms"] / ours_same, 1)
    return result


def fusion_config(args: argparse.Namespace) -> FusionConfig:
    """Weighted 0.5/0.5 fusion with --norm and --candidates (default: the recommended defaults)."""
    return FusionConfig(method="weighted", weights=(0.5, 0.5), norm=args.norm, candidates=args.candidates)


def hnsw_quality(
    flat: HybridRetriever, hnsw: HybridRetriever, queries: list[str], query_vectors: np.ndarray, k: int
) -> dict[str, float]:
    """Dense-leg recall@k of HNSW against the exact scan, and the overlap of the hybrid top-k."""
    dense_recall, hybrid_overlap, top1_same = [], [], []
    for query, vector in zip(queries, query_vectors, strict=True):
        exact = {row for row, _ in flat.generation.dense.search(vector, k)}
        approx = {row for row, _ in hnsw.generation.dense.search(vector, k)}
        dense_recall.append(len(exact & approx) / max(len(exact), 1))
        a = [h.chunk.chunk_id for h in flat.search(query, k=k)]
        b = [h.chunk.chunk_id for h in hnsw.search(query, k=k)]
        hybrid_overlap.append(len(set(a) & set(b)) / max(len(a), 1))
        top1_same.append(float(a[:1] == b[:1]))
    return {
        "dense_recall_at_k": round(float(np.mean(dense_recall)), 4),
        "hybrid_topk_overlap": round(float(np.mean(hybrid_overlap)), 4),
        "hybrid_top1_same": round(float(np.mean(top1_same)), 4),
    }


def embedding_time(queries: list[str]) -> dict:
    """Median single-query time of the real default embedding model (loaded once, warmed up).

    Timed with torch's default thread count and with one thread: on a CPU shared with other
    work, an OpenMP pool as wide as the machine waits on descheduled threads.
    """
    import torch

    from app.pipeline import make_embedder
    from app.settings import Settings

    embedder = make_embedder(Settings())
    embedder.embed_query("모델을 미리 불러온다.")
    default_threads = torch.get_num_threads()
    result: dict = {"model": embedder.model_id, "queries": min(20, len(queries))}
    for threads in dict.fromkeys((default_threads, 1)):
        torch.set_num_threads(threads)
        times = []
        for query in queries[:20]:
            t0 = time.perf_counter()
            embedder.embed_query(query)
            times.append((time.perf_counter() - t0) * 1e3)
        result[f"median_ms_{threads}_threads"] = round(statistics.median(times), 1)
    torch.set_num_threads(default_threads)
    result["default_threads"] = default_threads
    return result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window-chars", type=int, default=400, help="real chunks: sentences packed up to this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline-budget-s", type=float, default=600, help="cap the baseline's queries at a size above this"
    )
    parser.add_argument("--faiss-threads", type=int, default=0, help="FAISS OpenMP threads (0: FAISS default)")
    parser.add_argument("--candidates", type=int, default=100, help="ours: candidates per leg")
    parser.add_argument("--norm", choices=["minmax", "zscore"], default="zscore", help="ours: score normalization")
    parser.add_argument("--hnsw-m", type=int, default=DenseIndexConfig.hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=DenseIndexConfig.ef_construction)
    parser.add_argument("--ef-search", type=int, default=DenseIndexConfig.ef_search)
    parser.add_argument("--skip-embedding", action="store_true", help="do not time the real embedding model")
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument(
        "--real-index", type=Path, help="eval index dir: use its real chunks and vectors (see embedded_korquad)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # langchain-community announces its sunset on import; the baseline is what it is.
    warnings.filterwarnings("ignore", message=".*langchain-community.*is being sunset", category=DeprecationWarning)

    import faiss

    if args.faiss_threads > 0:
        faiss.omp_set_num_threads(args.faiss_threads)
    load_before = os.getloadavg()[0]
    paragraphs, questions = load_korquad(args.data)
    tokenizer = KiwiTokenizer()
    if args.real_index:
        chunks, token_lists, chunk_vectors, queries, query_vectors, real = embedded_korquad(
            args.real_index, args.data, max(args.sizes), args.queries, args.seed
        )
    else:
        chunks, token_lists, real = make_chunks(paragraphs, tokenizer, max(args.sizes), args.window_chars, args.seed)
        rng = np.random.default_rng(args.seed)
        query_rows = rng.choice(len(questions), size=args.queries, replace=False)
        queries = list(dict.fromkeys(questions[i]["query"] for i in query_rows))
        chunk_vectors = unit_vectors(rng, len(chunks))
        query_vectors = unit_vectors(rng, len(queries))

    results = []
    for size in sorted(args.sizes):
        results.append(bench_size(size, chunks, token_lists, chunk_vectors, queries, query_vectors, tokenizer, args))
        logger.info("%s", json.dumps(results[-1]))
        gc.collect()

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "faiss_threads": faiss.omp_get_max_threads(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "setup": {
            "real_chunks": real,
            "synthetic_chunks": max(args.sizes) - real,
            "window_chars": args.window_chars,
            "mean_chunk_chars": round(statistics.mean(len(c.text) for c in chunks), 1),
            "mean_chunk_tokens": round(statistics.mean(len(t) for t in token_lists), 1),
            "queries": len(queries),
            "k": args.k,
            "runs": args.runs,
            "warmup": WARMUP,
            "vectors": (
                f"real: {args.real_index} chunks and cached real query vectors; synthetic: mixtures"
                if args.real_index
                else f"seeded random unit vectors, dim {DIM}, same for both systems"
            ),
            "fusion": f"weighted 0.5/0.5 {args.norm}, {args.candidates} candidates per leg",
            "hnsw": {"m": args.hnsw_m, "ef_construction": args.ef_construction, "ef_search": args.ef_search},
            "synthetic": "random KorQuAD dev sentences recombined (seeded), "
            "sentence counts drawn from the real windows",
        },
        "sizes": results,
    }
    if not args.skip_embedding:
        report["query_embedding"] = embedding_time(queries)

    print(f"\n{'chunks':>8} | {'index':>5} | {'ours p50':>9} | {'ours p95':>9} | {'LC p50':>9} | {'LC p95':>9} "
          f"| {'LC/ours':>7} | dense recall@k")
    for r in results:
        base = r["baseline"]
        capped = "" if base["queries"] == len(queries) else f"  (baseline: {base['queries']} queries)"
        for name in ("flat", "hnsw"):
            ours = r[f"ours_{name}"]
            recall = r["hnsw_quality"]["dense_recall_at_k"] if name == "hnsw" else 1.0
            print(
                f"{r['chunks']:>8} | {name:>5} | {ours['p50_ms']:>9.2f} | {ours['p95_ms']:>9.2f} | "
                f"{base['p50_ms']:>9.2f} | {base['p95_ms']:>9.2f} | "
                f"{r[f'ratio_baseline_over_ours_{name}_p50']:>6.1f}x | {recall:.3f}{capped}"
            )
    embedding = report.get("query_embedding")
    if embedding:
        times = ", ".join(
            f"{key.removeprefix('median_ms_').replace('_', ' ')}: {ms} ms"
            for key, ms in embedding.items()
            if key.startswith("median")
        )
        print(f"query embedding ({embedding['model']}), median per query: {times}")
    if args.out:
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
