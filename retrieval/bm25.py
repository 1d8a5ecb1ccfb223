"""BM25 keyword index over token lists (one list per chunk row)."""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from .errors import IndexCorruptError

TOKENS_FILE = "tokens.jsonl.gz"
PARAMS_FILE = "params.json"


class _PositiveIdfBM25(BM25Okapi):
    """BM25Okapi with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)).

    rank_bm25's Okapi idf goes negative for terms in more than half the rows and its
    floor (epsilon * average idf) is zero or negative in tiny corpora, so a chunk that
    contains the query term could score 0 and vanish. Lucene's idf is always > 0, which
    keeps "score > 0" equivalent to "contains a query term".
    """

    def _calc_idf(self, nd: dict[str, int]) -> None:
        n = self.corpus_size
        for word, freq in nd.items():
            self.idf[word] = math.log(1.0 + (n - freq + 0.5) / (freq + 0.5))
        self.average_idf = sum(self.idf.values()) / len(self.idf) if self.idf else 0.0


class BM25Index:
    """Okapi BM25 over pre-tokenized rows; row i is chunk i of the generation.

    Example: BM25Index.build([["연차", "휴가"], ["출장", "비"]]).search(["휴가"], k=5) -> [(0, 0.87)].
    """

    def __init__(self, token_lists: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.token_lists: list[list[str]] = [list(tokens) for tokens in token_lists]
        self.k1 = k1
        self.b = b
        # rank_bm25 divides by the corpus size and the average length, so an empty corpus
        # or one whose rows are all empty gets no model and every search returns [].
        has_terms = any(self.token_lists)
        self._bm25 = _PositiveIdfBM25(self.token_lists, k1=k1, b=b) if has_terms else None

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> BM25Index:
        return cls(token_lists, k1=k1, b=b)

    def __len__(self) -> int:
        return len(self.token_lists)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every row for the query, float64 array of len(self).

        The one place that scores, so a faster implementation can replace rank_bm25 here.
        """
        if self._bm25 is None or not query_tokens:
            return np.zeros(len(self), dtype=np.float64)
        return np.asarray(self._bm25.get_scores(list(query_tokens)), dtype=np.float64)

    def search(
        self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k rows containing at least one query term, best first.

        Args:
            query_tokens: terms from the same tokenizer that built the index.
            k: number of hits wanted.
            allowed: optional boolean mask over rows; masked-out rows are dropped before
                the top-k cut, so k allowed hits come back whenever k exist.

        Returns:
            [(row, score), ...], ties broken by row id.
        """
        if k <= 0 or len(self) == 0:
            return []
        scores = self.scores(query_tokens)
        hit = scores > 0
        if allowed is not None:
            hit &= _check_mask(allowed, len(self))
        rows = np.flatnonzero(hit)
        if rows.size == 0:
            return []
        if rows.size > k:
            # Keep every row tied with the k-th score so the row-id tie-break is exact.
            kth = np.partition(scores[rows], rows.size - k)[rows.size - k]
            rows = rows[scores[rows] >= kth]
        order = np.lexsort((rows, -scores[rows]))[:k]
        return [(int(rows[i]), float(scores[rows[i]])) for i in order]

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write params.json and tokens.jsonl.gz (one JSON token list per row) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {"k1": self.k1, "b": self.b, "rows": len(self)}
        (directory / PARAMS_FILE).write_text(json.dumps(params), encoding="utf-8")
        # mtime=0 keeps the file byte-identical for identical input.
        with (
            open(directory / TOKENS_FILE, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        ):
            for tokens in self.token_lists:
                gz.write(json.dumps(tokens, ensure_ascii=False).encode("utf-8") + b"\n")

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> BM25Index:
        """Read what `save` wrote and rebuild the BM25 model once.

        Raises:
            IndexCorruptError: files missing, unreadable or disagreeing on the row count.
        """
        directory = Path(directory)
        try:
            params = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
            with gzip.open(directory / TOKENS_FILE, "rt", encoding="utf-8") as f:
                token_lists = [json.loads(line) for line in f]
        except (OSError, EOFError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read BM25 index in {directory}: {exc}") from exc
        if params.get("rows") != len(token_lists):
            raise IndexCorruptError(
                f"BM25 index in {directory} has {len(token_lists)} rows, params say {params.get('rows')}"
            )
        return cls(token_lists, k1=params["k1"], b=params["b"])


def _check_mask(allowed: np.ndarray, rows: int) -> np.ndarray:
    mask = np.asarray(allowed)
    if mask.dtype != np.bool_ or mask.shape != (rows,):
        raise ValueError(f"allowed must be a bool array of shape ({rows},), got {mask.dtype} {mask.shape}")
    return mask
