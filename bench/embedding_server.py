"""Embedding throughput: in-process (onnx-int8, torch) against an OpenAI-compatible server.

Embeds the same N KorQuAD dev paragraphs (each cut to its first `--chars` characters, about a
chunk) as documents, `--runs` times per backend, and prints passages/s (median) and the largest
difference of the server's vectors from the in-process torch ones. The server must already run
the same model, e.g. infinity-emb from its own venv (tests/integration/test_embed_server_real.py
makes one under ~/.cache/chulcheo/infinity-venv):

    ~/.cache/chulcheo/infinity-venv/bin/infinity_emb v2 --model-id ~/.cache/chulcheo/models/embeddinggemma-300m \
        --served-model-name embeddinggemma-300m --port 7997 --url-prefix /v1 --engine torch --device cpu \
        --no-bettertransformer --batch-size 8
    .venv/bin/python bench/embedding_server.py --url http://127.0.0.1:7997/v1 --passages 64 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit  # noqa: E402

from app.models import resolve_model  # noqa: E402
from app.settings import Settings  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from retrieval.embed import SentenceTransformerEmbedder  # noqa: E402
from retrieval.embed_onnx import OnnxEmbedder  # noqa: E402
from retrieval.embed_openai import OpenAICompatEmbedder  # noqa: E402


def timed(embedder, texts: list[str], runs: int) -> tuple[dict, np.ndarray]:
    embedder.embed_documents(texts[:2])  # loads the model / opens the connection
    seconds, rows = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = embedder.embed_documents(texts)
        seconds.append(time.perf_counter() - t0)
    median = statistics.median(seconds)
    return {"seconds": [round(s, 2) for s in seconds], "passages_per_s": round(len(texts) / median, 2)}, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-model", default="embeddinggemma-300m")
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--chars", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    settings = Settings()
    path = resolve_model(settings.embedding.model, settings.model_dir)
    max_len = settings.embedding.max_seq_length
    corpus, _ = load_korquad(args.data)
    texts = [p["text"][: args.chars] for p in corpus[: args.passages]]
    result: dict = {"passages": len(texts), "chars": args.chars, "url": args.url}
    result["onnx-int8 (in-process, default)"], _ = timed(OnnxEmbedder(path, max_seq_length=max_len), texts, args.runs)
    result["torch (in-process)"], local = timed(
        SentenceTransformerEmbedder(path, max_seq_length=max_len, batch_size=args.batch_size), texts, args.runs)
    server = OpenAICompatEmbedder(args.url, args.api_model, path, batch_size=args.batch_size, max_seq_length=max_len)
    result["server (OpenAI-compatible)"], remote = timed(server, texts, args.runs)
    result["server_vs_torch_max_abs_diff"] = float(np.abs(remote - local).max())
    emit(result, args.out)


if __name__ == "__main__":
    main()
