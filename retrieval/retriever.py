"""Hybrid search over one index generation: BM25 + dense, fused by rank (RRF) or by score."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from .errors import EmbeddingModelMismatch
from .fusion import Norm, adaptive_fusion, reciprocal_rank_fusion, weighted_fusion
from .store import IndexGeneration
from .tokenize import Tokenizer
from .types import Chunk, Hit

if TYPE_CHECKING:
    from .embed import Embedder


Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[str, ...] = get_args(Mode)
Fusion = Literal["rrf", "weighted", "adaptive"]
FUSIONS: tuple[str, ...] = get_args(Fusion)


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid mode merges the BM25 and dense legs.

    method "rrf": sum of weight / (rrf_k + rank) per leg; "weighted": weighted sum of
    per-leg normalized scores (norm "minmax", "zscore", or "zscore-pool": z-scores with a
    short BM25 leg standardized over the pool the dense leg was cut from, see fusion.py).
    "adaptive": "zscore-pool" with each leg's weight scaled per query by how far its best row
    stands above its pool (`fusion.adaptive_fusion`; norm is not used).
    weights = (bm25, dense). candidates: depth of each leg before fusion (at least k).
    FusionConfig(method="weighted", weights=(0.6, 0.4), norm="zscore-pool")
    """

    method: Fusion = "rrf"
    rrf_k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)
    norm: Norm = "minmax"
    candidates: int = 50

    def __post_init__(self) -> None:
        if self.method not in FUSIONS:
            raise ValueError(f"unknown fusion {self.method!r}; expected one of {FUSIONS}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be >= 1, got {self.rrf_k}")
        if len(self.weights) != 2 or min(self.weights) < 0:
            raise ValueError(f"weights must be two non-negative numbers (bm25, dense), got {self.weights}")

    def fuse(
        self, bm25: list[tuple[int, float]], dense: list[tuple[int, float]], pool: int | None = None
    ) -> list[tuple[int, float]]:
        """The fused rows, best first. pool: how many rows each leg was cut from (the search
        depth, or the rows a search may return when fewer); norm "zscore-pool" counts the rows
        the BM25 leg left out (no query term: score 0) up to it. None: the dense leg's length."""
        if self.method == "rrf":
            return reciprocal_rank_fusion(
                [[row for row, _ in bm25], [row for row, _ in dense]], k=self.rrf_k, weights=self.weights
            )
        pools = (len(dense) if pool is None else pool, None)
        if self.method == "adaptive":
            return adaptive_fusion([bm25, dense], weights=self.weights, pools=pools)
        return weighted_fusion([bm25, dense], weights=self.weights, norm=self.norm, pools=pools)


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
    Hybrid mode fuses the BM25 and dense candidate lists (depth max(candidates, k)) as
    `fusion` says (reciprocal rank fusion by default).
    """

    def __init__(
        self,
        generation: IndexGeneration,
        embedder: Embedder,
        tokenizer: Tokenizer,
        *,
        fusion: FusionConfig | None = None,
    ):
        """Raises:
        EmbeddingModelMismatch: the embedder's dim differs from the index's.
        """
        if embedder.dim != generation.dense.dim:
            raise EmbeddingModelMismatch(
                f"index {generation.path} holds {generation.dense.dim}-dim vectors but embedder "
                f"{embedder.model_id!r} makes {embedder.dim}-dim ones; rebuild the index or configure its model"
            )
        self.fusion = fusion or FusionConfig()
        self.generation = generation
        self.embedder = embedder
        self.tokenizer = tokenizer
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
        self,
        query: str,
        k: int = 10,
        filters: SearchFilters | None = None,
        mode: Mode = "hybrid",
        fusion: FusionConfig | None = None,
    ) -> list[Hit]:
        """Best k chunks for `query`, ranked 1..n (n <= k).

        Hit.score is the fused score in hybrid mode, the BM25 score or the cosine
        similarity in the single-leg modes. A blank query returns []. `fusion` overrides
        the retriever's fusion for this call (the evaluation compares methods this way).
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
            fusion = fusion or self.fusion
            depth = max(fusion.candidates, k)
            bm25 = self._bm25_leg(query, depth, allowed)
            pool = min(depth, self._rows if allowed is None else int(allowed.sum()))
            ranked = fusion.fuse(bm25, self._dense_leg(query, depth, allowed), pool)[:k]
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
