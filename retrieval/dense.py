"""Dense vector index over L2-normalized vectors: exact (FAISS IndexFlatIP) or HNSW (IndexHNSWFlat).

Both are inner-product indexes, so scores are cosine similarities. Exact search scans every
vector (≈ 1.2 ms at 10k rows, ≈ 26 ms at 100k on one core); HNSW walks a neighbour graph in
about half a millisecond to a millisecond at those sizes on real embeddings and may miss a
few true neighbours (docs/benchmarks.md, "Retrieval latency"). Which one a
generation holds is decided when it is written (`DenseIndexConfig`); both load the same way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import faiss
import numpy as np

from .errors import IndexCorruptError

DenseKind = Literal["flat", "hnsw", "auto"]
DENSE_KINDS: tuple[str, ...] = get_args(DenseKind)

# A filter that allows less than this share of the rows is searched exactly: HNSW would walk
# mostly forbidden nodes (slow) and could come back with fewer than k allowed hits.
EXACT_FILTER_SHARE = 0.1


@dataclass(frozen=True)
class DenseIndexConfig:
    """Which FAISS index a generation stores, chosen at write time.

    kind "flat": exact scan; "hnsw": approximate graph search; "auto": hnsw from
    `auto_min_rows` rows on, flat below (where an exact scan is already fast).
    hnsw_m: graph neighbours per node (memory ≈ 2·m·4 bytes per row on top of the vector);
    ef_construction: build-time beam; ef_search: query-time beam (raised to k when smaller).
    DenseIndexConfig(kind="auto", auto_min_rows=10_000) -> hnsw for a 10k-chunk index.
    """

    # Measured in docs/benchmarks.md ("Retrieval latency"): below 10k rows an exact scan takes
    # about a millisecond; from there on it grows linearly while HNSW stays well under one,
    # at m=32 / ef_search=128 losing 3 of 5,774 KorQuAD top-1 answers at 10k rows.
    kind: DenseKind = "auto"
    auto_min_rows: int = 10_000
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128

    def __post_init__(self) -> None:
        if self.kind not in DENSE_KINDS:
            raise ValueError(f"unknown dense index kind {self.kind!r}; expected one of {DENSE_KINDS}")
        for name in ("auto_min_rows", "hnsw_m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def resolve(self, rows: int) -> Literal["flat", "hnsw"]:
        """The concrete kind for an index of `rows` rows: "auto" -> "hnsw" iff rows >= auto_min_rows."""
        if self.kind == "auto":
            return "hnsw" if rows >= self.auto_min_rows else "flat"
        return self.kind


class DenseIndex:
    """Cosine search over unit vectors; row i is chunk i of the generation.

    Example: ix = DenseIndex(64); ix.add(vecs); ix.search(qvec, k=5) -> [(3, 0.91), (0, 0.42), ...].
    A new index is exact (flat); `with_config` returns an HNSW copy for large indexes.
    """

    def __init__(self, dim: int, *, _index: faiss.Index | None = None, ef_search: int | None = None):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self._index = _index if _index is not None else faiss.IndexFlatIP(dim)
        if ef_search is not None:
            self.ef_search = ef_search

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> Literal["flat", "hnsw"]:
        return "hnsw" if isinstance(self._index, faiss.IndexHNSWFlat) else "flat"

    @property
    def ef_search(self) -> int | None:
        """HNSW query-time beam width (None for a flat index); saved with the index."""
        return int(self._index.hnsw.efSearch) if self.kind == "hnsw" else None

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"ef_search must be >= 1, got {value}")
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = int(value)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (n, dim); they are re-normalized so inner product stays cosine."""
        vectors = _as_matrix(vectors, self.dim)
        if len(vectors):
            self._index.add(_normalized(vectors))

    def with_config(self, config: DenseIndexConfig) -> DenseIndex:
        """This index as `config` asks: self when the kind already matches, else a rebuilt copy.

        Vectors are copied exactly (both kinds store them uncompressed), so converting back
        and forth never changes a score; building HNSW costs ≈ 10 s per 10k rows on one core.
        Example: DenseIndex(768) with 50k rows .with_config(DenseIndexConfig(kind="auto")).kind -> "hnsw".
        """
        kind = config.resolve(len(self))
        if kind == self.kind:
            if kind == "hnsw":
                self.ef_search = config.ef_search
            return self
        vectors = self.vectors(range(len(self)))
        if kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        else:
            index = faiss.IndexHNSWFlat(self.dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
            index.hnsw.efSearch = config.ef_search
        if len(vectors):
            index.add(vectors)
        return DenseIndex(self.dim, _index=index)

    def search(self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k rows by cosine similarity, best first (exact for flat, approximate for HNSW).

        Args:
            qvec: query vector (dim,) or (1, dim).
            k: number of hits wanted.
            allowed: optional boolean mask over rows, applied inside FAISS (IDSelectorBitmap)
                so no other row is ever returned. k allowed hits come back whenever k exist:
                HNSW falls back to an exact scan of the allowed rows when a filter is narrow
                or the graph walk found too few.

        Returns:
            [(row, similarity), ...].
        """
        n = len(self)
        if k <= 0 or n == 0:
            return []
        query = _normalized(_as_matrix(qvec, self.dim))
        if query.shape[0] != 1:
            raise ValueError(f"search takes one query vector, got {query.shape[0]}")
        selector = None
        allowed_rows = n
        if allowed is not None:
            mask = np.asarray(allowed)
            if mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(f"allowed must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
            allowed_rows = int(mask.sum())
            if allowed_rows == 0:
                return []
            # Bit i of the little-endian packed mask is row i; the selector keeps the array alive.
            selector = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
        k = min(k, allowed_rows)
        if self.kind == "hnsw" and allowed_rows >= EXACT_FILTER_SHARE * n:
            ef = max(int(self._index.hnsw.efSearch), k)
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector) if selector else None
            if params is None:
                params = faiss.SearchParametersHNSW(efSearch=ef)
            hits = _hits(*self._index.search(query, k, params=params))
            if len(hits) == k:
                return hits
        exact = faiss.downcast_index(self._index.storage) if self.kind == "hnsw" else self._index
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
        return _hits(*exact.search(query, k, params=params))

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """Stored vectors of `rows`, (len(rows), dim) float32 — lets a rebuild skip re-embedding."""
        ids = np.asarray(rows, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        if ids.min() < 0 or ids.max() >= len(self):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        return self._index.reconstruct_batch(ids)

    def save(self, path: str | os.PathLike[str]) -> None:
        faiss.write_index(self._index, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, ef_search: int | None = None) -> DenseIndex:
        """Read an index written by `save` (flat or HNSW); `ef_search` overrides the saved beam.

        Raises:
            IndexCorruptError: unreadable file or not an inner-product flat or HNSW index.
        """
        try:
            index = faiss.read_index(os.fspath(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read dense index {path}: {exc}") from exc
        if not isinstance(index, (faiss.IndexFlat, faiss.IndexHNSWFlat)) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorruptError(f"{path} is not an inner-product flat or HNSW index ({type(index).__name__})")
        return cls(index.d, _index=index, ef_search=ef_search)


def _hits(scores: np.ndarray, rows: np.ndarray) -> list[tuple[int, float]]:
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise ValueError(f"expected vectors of dim {dim}, got shape {np.shape(vectors)}")
    return matrix


def _normalized(matrix: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization; all-zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)
