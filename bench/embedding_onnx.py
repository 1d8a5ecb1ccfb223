"""Torch vs int8 ONNX EmbeddingGemma: dense-only retrieval quality on KorQuAD 1.0 dev, speed, RSS.

Both backends search the same chunks of an existing eval index (built by `chulcheo eval
retrieval`) with the same questions (the first N of the seed-13 order, as `--limit N`). The
torch chunk vectors are the ones stored in that index and the torch query vectors come from
`bench/retrieval_quality.py embed`'s cache when present, so only the ONNX side is embedded
here (about 4 minutes for 1,758 chunks). Speed: the same 200 chunks embedded 3 times by each
backend, interleaved so that load from other processes hits both alike; the median is kept.
Peak RSS: one fresh process per backend that loads it and embeds 16 chunks.

    .venv/bin/python bench/embedding_onnx.py --index ~/.cache/chulcheo/eval/2d532c11ef229ae1 \
        --dataset ../shared/data/korquad_v1/KorQuAD_v1.0_dev.json --out onnx.json

The ONNX copy is made on first use (about 2 minutes, see retrieval/embed_onnx.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.retrieval_quality import ordered_questions, vectors_path
from ingest.chunk import index_text, record_id_of
from retrieval.dense import DenseIndex
from retrieval.metrics import dedupe, ndcg_at, summarize
from retrieval.store import open_index

logger = logging.getLogger("bench.embedding_onnx")

KORQUAD = Path(__file__).resolve().parents[2] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"
K = 10
DEPTH = 3 * K  # chunks asked for per question, as `chulcheo eval retrieval` does


def model_path() -> str:
    from app.models import resolve_model
    from app.settings import Settings

    settings = Settings()
    return resolve_model(settings.embedding.model, settings.model_dir)


def make(backend: str, max_seq_length: int):
    """The torch embedder as the pipeline builds it, or the ONNX one with its defaults."""
    from app.settings import Settings

    if backend == "torch":
        from retrieval.embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model_path(), batch_size=Settings().embedding.batch_size,
                                           max_seq_length=max_seq_length)
    from retrieval.embed_onnx import OnnxEmbedder

    return OnnxEmbedder(model_path(), max_seq_length=max_seq_length)


def dense_runs(doc_vectors: np.ndarray, query_vectors: np.ndarray, questions: list[dict],
               doc_of_row: list[str]) -> list[tuple[list[str], set[str]]]:
    """(top-K documents, gold) per question from an exact cosine search over the chunks."""
    index = DenseIndex(doc_vectors.shape[1])
    index.add(doc_vectors)
    return [(dedupe([doc_of_row[row] for row, _ in index.search(vec, DEPTH)])[:K], set(q["gold_ids"]))
            for q, vec in zip(questions, query_vectors, strict=True)]


def cosines(a: np.ndarray, b: np.ndarray) -> dict:
    c = np.sum(a * b, axis=1)
    return {"min": round(float(c.min()), 4), "p01": round(float(np.quantile(c, 0.01)), 4),
            "mean": round(float(c.mean()), 4)}


def torch_queries(model_id: str, everything: list[dict], n: int, embedder) -> tuple[np.ndarray, str]:
    """Cached torch query vectors when `retrieval_quality.py embed` made them, else embedded now."""
    path = vectors_path(model_id, everything)
    for candidate in (path, path.with_suffix(".partial.npy")):
        if candidate.exists() and len(vectors := np.load(candidate)) >= n:
            return vectors[:n], str(candidate)
    return np.stack([embedder.embed_query(q["query"]) for q in everything[:n]]), "embedded now"


def speed(embedders: dict, texts: list[str], runs: int) -> tuple[dict, dict]:
    """Median docs/s per backend over `runs` interleaved passes; the first vectors of each."""
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    vectors = {}
    for name, embedder in embedders.items():
        embedder.embed_documents(texts[:2])  # load outside the clock
    for _ in range(runs):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            vectors.setdefault(name, embedder.embed_documents(texts))
            rates[name].append(round(len(texts) / (time.perf_counter() - started), 2))
    return {name: {"docs_per_s": statistics.median(r), "runs": r} for name, r in rates.items()}, vectors


def peak_rss(backend: str, max_seq_length: int) -> dict:
    """Peak RSS of a fresh process that loads one backend and embeds 16 chunks."""
    done = subprocess.run([sys.executable, __file__, "rss", backend, "--max-seq-length", str(max_seq_length)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) RSS; VmHWM, unlike ru_maxrss, starts afresh at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the peak


def rss_child(backend: str, max_seq_length: int) -> None:
    embedder = make(backend, max_seq_length)
    started = time.perf_counter()
    embedder.embed_documents(["연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 준다. " * 6] * 16)
    print(json.dumps({"peak_rss_mb": round(rss_mb()), "rss_after_mb": round(rss_mb("VmRSS")),
                      "load_and_embed_s": round(time.perf_counter() - started, 1),
                      "torch_imported": "torch" in sys.modules}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=Path("~/.cache/chulcheo/eval/2d532c11ef229ae1"))
    parser.add_argument("--dataset", type=Path, default=KORQUAD)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--speed-passages", type=int, default=200)
    parser.add_argument("--speed-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    generation = open_index(args.index.expanduser())
    manifest = generation.manifest
    max_len = manifest["embedding"]["max_seq_length"]
    texts = [index_text(c, bool(manifest["chunking"].get("context_prefix"))) for c in generation.chunks]
    doc_of_row = [record_id_of(c) for c in generation.chunks]  # gold ids name corpus lines
    everything = ordered_questions(args.dataset, args.seed)
    questions = everything[: args.questions]
    torch_embedder, onnx_embedder = make("torch", max_len), make("onnx", max_len)
    if manifest["embedding"]["model_id"] != torch_embedder.model_id:
        raise SystemExit(f"{args.index} was embedded by {manifest['embedding']['model_id']}, "
                         f"not {torch_embedder.model_id}")
    result: dict = {"index": str(args.index), "chunks": len(texts), "questions": len(questions),
                    "max_seq_length": max_len}

    sample = random.Random(args.seed).sample(range(len(texts)), args.speed_passages)
    sample_texts = [texts[i] for i in sample]
    tokens = onnx_embedder.count_tokens_many(sample_texts)
    logger.info("speed: %d chunks (mean %.0f tokens), %d runs per backend", len(sample), statistics.mean(tokens),
                args.speed_runs)
    rates, fresh = speed({"torch": torch_embedder, "onnx-int8": onnx_embedder}, sample_texts, args.speed_runs)
    stored = generation.dense.vectors(sample)
    result["speed"] = {"passages": len(sample), "mean_tokens": round(statistics.mean(tokens), 1)} | rates
    result["speedup_onnx_over_torch"] = round(rates["onnx-int8"]["docs_per_s"] / rates["torch"]["docs_per_s"], 2)
    result["stored_vs_fresh_torch_cosine"] = cosines(stored, fresh["torch"])  # the index matches this model

    torch_docs = generation.dense.vectors(range(len(texts)))
    torch_q, source = torch_queries(torch_embedder.model_id, everything, len(questions), torch_embedder)
    logger.info("torch query vectors: %s; embedding %d chunks and %d questions with ONNX",
                source, len(texts), len(questions))
    started = time.perf_counter()
    onnx_docs = onnx_embedder.embed_documents(texts)
    docs_s = time.perf_counter() - started
    started = time.perf_counter()
    onnx_q = np.stack([onnx_embedder.embed_query(q["query"]) for q in questions])
    result["onnx_all_chunks_docs_per_s"] = round(len(texts) / docs_s, 2)
    result["onnx_queries_per_s"] = round(len(questions) / (time.perf_counter() - started), 2)
    result["cosine_to_torch"] = {"chunks": cosines(torch_docs, onnx_docs), "queries": cosines(torch_q, onnx_q)}

    runs = {"torch": dense_runs(torch_docs, torch_q, questions, doc_of_row),
            "onnx-int8": dense_runs(onnx_docs, onnx_q, questions, doc_of_row)}
    result["dense"] = {name: {m: round(v, 4) for m, v in summarize(r).items()} for name, r in runs.items()}
    delta = np.array([ndcg_at(o, g, K) - ndcg_at(t, g, K)
                      for (t, g), (o, _) in zip(runs["torch"], runs["onnx-int8"], strict=True)])
    result["ndcg@10_delta"] = round(float(delta.mean()), 4)
    result["ndcg@10_delta_se"] = round(float(delta.std(ddof=1) / np.sqrt(len(delta))), 4)
    result["same_top1_document"] = round(float(np.mean([t[0][:1] == o[0][:1] for t, o in
                                                        zip(runs["torch"], runs["onnx-int8"], strict=True)])), 4)
    del torch_embedder, onnx_embedder
    result["rss"] = {backend: peak_rss(backend, max_len) for backend in ("torch", "onnx")}

    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "rss":
        rss_parser = argparse.ArgumentParser()
        rss_parser.add_argument("command")
        rss_parser.add_argument("backend", choices=["torch", "onnx"])
        rss_parser.add_argument("--max-seq-length", type=int, default=512)
        rss_args = rss_parser.parse_args()
        rss_child(rss_args.backend, rss_args.max_seq_length)
    else:
        main()
