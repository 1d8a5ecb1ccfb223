"""Deterministic stand-ins for slow components, for unit tests only.

A fake is for speed: the integration tests still run the real models.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np


class HashEmbedder:
    """Embedder that hashes character bigrams into `dim` buckets (implements retrieval.embed.Embedder).

    Texts sharing many bigrams get similar vectors, so "연차휴가 일수" lands near
    "연차휴가는 15일이다" and far from "출장비 정산". Whitespace is collapsed and Latin
    lowercased first; a one-character text hashes its single character. Buckets come from
    CRC32 (stable across runs, unlike Python's salted `hash`). Rows are L2-normalized;
    a text with no characters gets the zero vector. The default 256 dims keeps bucket
    collisions rare enough for Korean (64 dims already mis-ranks short Korean sentences).

    count_tokens = whitespace-separated words + punctuation/symbol characters, e.g.
    count_tokens("연차휴가는 15일이다.") == 2 + 1 == 3 — easy to count by hand in chunker tests.
    """

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.model_id = f"test-hash-bigram-{dim}"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            vectors[row] = self._embed(text)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed(text)

    def count_tokens(self, text: str) -> int:
        punctuation = sum(1 for char in text if unicodedata.category(char)[0] in "PS")
        return len(text.split()) + punctuation

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def _embed(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        normalized = " ".join(text.lower().split())
        grams = [normalized[i : i + 2] for i in range(len(normalized) - 1)] or ([normalized] if normalized else [])
        for gram in grams:
            vector[zlib.crc32(gram.encode("utf-8")) % self.dim] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm > 0 else vector


class CountingEmbedder(HashEmbedder):
    """HashEmbedder that remembers every text it embedded (`embedded`, in call order)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def write_test_generation(gen_path, chunks, embedder, tokenizer, manifest=None):
    """Index `chunks` into a complete generation at `gen_path`, as a minimal build would.

    The real incremental build lives in ingest; this is the smallest equivalent for tests
    of the retrieval package. Returns the written `IndexGeneration`.
    """
    from retrieval.bm25 import BM25Index
    from retrieval.dense import DenseIndex
    from retrieval.store import IndexGeneration

    texts = [chunk.text for chunk in chunks]
    dense = DenseIndex(embedder.dim)
    dense.add(embedder.embed_documents(texts))
    bm25 = BM25Index.build(tokenizer.tokenize_many(texts))
    manifest = {"tokenizer": tokenizer.config(), "embedder": embedder.model_id, **(manifest or {})}
    return IndexGeneration.write(gen_path, manifest, chunks, dense, bm25)
