"""Dense vector index: exact inner product (FAISS IndexFlatIP) on L2-normalized vectors."""

from __future__ import annotations

import os
from collections.abc import Sequence

import faiss
import numpy as np

from .errors import IndexCorruptError


class DenseIndex:
    """Exact cosine search over unit vectors; row i is chunk i of the generation.

    Example: ix = DenseIndex(64); ix.add(vecs); ix.search(qvec, k=5) -> [(3, 0.91), (0, 0.42), ...].
    """

    def __init__(self, dim: int, *, _index: faiss.IndexFlatIP | None = None):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self._index = _index if _index is not None else faiss.IndexFlatIP(dim)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (n, dim); they are re-normalized so inner product stays cosine."""
        vectors = _as_matrix(vectors, self.dim)
        if len(vectors):
            self._index.add(_normalized(vectors))

    def search(self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k rows by cosine similarity, best first.

        Args:
            qvec: query vector (dim,) or (1, dim).
            k: number of hits wanted.
            allowed: optional boolean mask over rows, applied inside FAISS (IDSelectorBitmap)
                so k allowed hits come back whenever k exist.

        Returns:
            [(row, similarity), ...].
        """
        n = len(self)
        if k <= 0 or n == 0:
            return []
        query = _normalized(_as_matrix(qvec, self.dim))
        if query.shape[0] != 1:
            raise ValueError(f"search takes one query vector, got {query.shape[0]}")
        params = None
        if allowed is not None:
            mask = np.asarray(allowed)
            if mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(f"allowed must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
            k = min(k, int(mask.sum()))
            if k == 0:
                return []
            # Bit i of the little-endian packed mask is row i; the selector keeps the array alive.
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little")))
        scores, rows = self._index.search(query, min(k, n), params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

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
    def load(cls, path: str | os.PathLike[str]) -> DenseIndex:
        """Read an index written by `save`.

        Raises:
            IndexCorruptError: unreadable file or not an inner-product flat index.
        """
        try:
            index = faiss.read_index(os.fspath(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read dense index {path}: {exc}") from exc
        if not isinstance(index, faiss.IndexFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorruptError(f"{path} is not an inner-product flat index ({type(index).__name__})")
        return cls(index.d, _index=index)


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
