"""Hybrid search over one index generation: BM25 + dense, fused by reciprocal rank."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from .errors import EmbeddingModelMismatch
from .fusion import reciprocal_rank_fusion
from .store import IndexGeneration
from .tokenize import Tokenizer
from .types import Chunk, Hit

if TYPE_CHECKING:
    from .embed import Embedder


Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class SearchFilters:
    """Which chunks a search may return; fields combine with AND, values within a field with OR.

    None means "no restriction"; an empty set means "nothing" (a user with no groups sees
    no chunk). Example: SearchFilters(groups={"public", "hr"}) -> chunks of group public or hr.
    """

    groups: set[str] | frozenset[str] | None = None
    sources: set[str] | frozenset[str] | None = None
    doc_ids: set[str] | frozenset[str] | None = None

    def __post_init__(self) -> None:
        # A bare string would be iterated character by character and silently match nothing.
        for name in ("groups", "sources", "doc_ids"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"SearchFilters.{name} takes a set of strings, not a str")

    def is_unrestricted(self) -> bool:
        return self.groups is None and self.sources is None and self.doc_ids is None


class HybridRetriever:
    """search(query, k, filters) -> list[Hit] over an `IndexGeneration`.

    Filters become a boolean row mask applied inside each leg before its top-k cut, so a
    filtered search never returns a chunk outside the filter and still fills k when it can.
    Hybrid mode fuses the BM25 and dense candidate lists (depth max(candidates, k)) with
    reciprocal rank fusion.
    """

    def __init__(
        self,
        generation: IndexGeneration,
        embedder: Embedder,
        tokenizer: Tokenizer,
        *,
        rrf_k: int = 60,
        candidates: int = 50,
    ):
        """Raises:
        EmbeddingModelMismatch: the embedder's dim differs from the index's.
        """
        if embedder.dim != generation.dense.dim:
            raise EmbeddingModelMismatch(
                f"index {generation.path} holds {generation.dense.dim}-dim vectors but embedder "
                f"{embedder.model_id!r} makes {embedder.dim}-dim ones; rebuild the index or configure its model"
            )
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.generation = generation
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.rrf_k = rrf_k
        self.candidates = candidates
        chunks = generation.chunks
        self._rows = len(chunks)
        self._group_rows = _rows_by(chunks, lambda c: c.group)
        self._source_rows = _rows_by(chunks, lambda c: c.source)
        self._doc_rows = _rows_by(chunks, lambda c: c.doc_id)
        # Groups are few and asked for on every request; sources and doc ids may be many, so
        # only group masks are cached (bounded by the groups present in the index).
        self._group_masks: dict[str, np.ndarray] = {}
        self._cache_lock = threading.Lock()

    def search(
        self, query: str, k: int = 10, filters: SearchFilters | None = None, mode: Mode = "hybrid"
    ) -> list[Hit]:
        """Best k chunks for `query`, ranked 1..n (n <= k).

        Hit.score is the fused RRF score in hybrid mode, the BM25 score or the cosine
        similarity in the single-leg modes. A blank query returns [].
        Example: search("연차휴가는 며칠?", k=3, filters=SearchFilters(groups={"public"})).

        Raises:
            ValueError: unknown mode.
        """
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; expected one of {MODES}")
        if k <= 0 or not query.strip() or self._rows == 0:
            return []
        allowed = self.row_mask(filters)
        if allowed is not None and not allowed.any():
            return []
        if mode == "bm25":
            ranked = self._bm25_leg(query, k, allowed)
        elif mode == "dense":
            ranked = self._dense_leg(query, k, allowed)
        else:
            depth = max(self.candidates, k)
            legs = [self._bm25_leg(query, depth, allowed), self._dense_leg(query, depth, allowed)]
            ranked = reciprocal_rank_fusion([[row for row, _ in leg] for leg in legs], k=self.rrf_k)[:k]
        chunks = self.generation.chunks
        return [Hit(chunk=chunks[row], score=score, rank=rank) for rank, (row, score) in enumerate(ranked, 1)]

    def row_mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Boolean mask of the rows `filters` allows, or None when it allows every row."""
        if filters is None or filters.is_unrestricted():
            return None
        mask = np.ones(self._rows, dtype=bool)
        if filters.groups is not None:
            mask &= self._groups_mask(filters.groups)
        if filters.sources is not None:
            mask &= self._values_mask(self._source_rows, filters.sources)
        if filters.doc_ids is not None:
            mask &= self._values_mask(self._doc_rows, filters.doc_ids)
        return mask

    def _bm25_leg(self, query: str, depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        return self.generation.bm25.search(self.tokenizer.tokenize(query), depth, allowed)

    def _dense_leg(self, query: str, depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        return self.generation.dense.search(self.embedder.embed_query(query), depth, allowed)

    def _groups_mask(self, groups: Iterable[str]) -> np.ndarray:
        mask = np.zeros(self._rows, dtype=bool)
        for group in groups:
            rows = self._group_rows.get(group)
            if rows is None:
                continue
            cached = self._group_masks.get(group)
            if cached is None:
                cached = np.zeros(self._rows, dtype=bool)
                cached[rows] = True
                cached.flags.writeable = False
                with self._cache_lock:
                    self._group_masks[group] = cached
            mask |= cached
        return mask

    def _values_mask(self, rows_by_value: dict[str, np.ndarray], values: Iterable[str]) -> np.ndarray:
        mask = np.zeros(self._rows, dtype=bool)
        for value in values:
            rows = rows_by_value.get(value)
            if rows is not None:
                mask[rows] = True
        return mask


def _rows_by(chunks: list[Chunk], key: Callable[[Chunk], str]) -> dict[str, np.ndarray]:
    """{"hr": array([0, 4, 5]), ...}: the rows holding each value of `key`."""
    rows: dict[str, list[int]] = defaultdict(list)
    for row, chunk in enumerate(chunks):
        rows[key(chunk)].append(row)
    return {value: np.asarray(found, dtype=np.int64) for value, found in rows.items()}
