"""Rank fusion of several retrieval legs (pure functions, no I/O).

Every result list is [(row, score), ...], best first. Ties are broken the same way
everywhere: by the best (lowest) rank the row reached in any leg, then by row id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Norm = Literal["minmax", "zscore", "none"]


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse ranked row lists: score(row) = sum_i weights[i] / (k + rank_i(row)), rank 1-based.

    Example: reciprocal_rank_fusion([[3, 1], [1, 7]], k=60)
        -> [(1, 1/62 + 1/61), (3, 1/61), (7, 1/62)].
    A row repeated inside one list counts once, at its first (best) position.

    Raises:
        ValueError: k < 0, or weights not one per list.
    """
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    weights = _weights(weights, len(ranked_lists))
    scores: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for weight, ranked in zip(weights, ranked_lists, strict=True):
        seen: set[int] = set()
        for rank, row in enumerate(ranked, start=1):
            if row in seen:
                continue
            seen.add(row)
            scores[row] = scores.get(row, 0.0) + weight / (k + rank)
            best_rank[row] = min(best_rank.get(row, rank), rank)
    return _sorted(scores, best_rank)


def min_max_normalize(scores: Sequence[float]) -> np.ndarray:
    """Scale to [0, 1]: [2, 4, 3] -> [0, 1, 0.5]. All-equal scores map to 1 (all equally best)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values
    low, high = values.min(), values.max()
    if high == low:
        return np.ones_like(values)
    return (values - low) / (high - low)


def z_score(scores: Sequence[float]) -> np.ndarray:
    """Standardize: [1, 2, 3] -> [-1.22, 0, 1.22]. Zero spread (one hit, or a tie) maps to all 1.

    Not 0: rows absent from the leg get 0 there too, and a phrase only one chunk holds must
    still count for that chunk (one standard deviation above, a modest lift).
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values
    std = values.std()
    if std == 0:
        return np.ones_like(values)
    return (values - values.mean()) / std


def weighted_fusion(
    scored_lists: Sequence[Sequence[tuple[int, float]]],
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
) -> list[tuple[int, float]]:
    """Fuse scored legs by a weighted sum of per-leg normalized scores.

    Example: weighted_fusion([[(1, 9.0), (2, 3.0)], [(2, 0.8), (5, 0.2)]], weights=[0.3, 0.7])
        -> [(2, 0.7), (1, 0.3), (5, 0.0)].
    A row missing from a leg gets min(0, that leg's lowest normalized score) there, so
    absence never beats presence. A row repeated inside one leg counts at its first position.

    Raises:
        ValueError: unknown norm, or weights not one per list.
    """
    normalizers = {"minmax": min_max_normalize, "zscore": z_score, "none": np.asarray}
    if norm not in normalizers:
        raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(normalizers)}")
    weights = _weights(weights, len(scored_lists))
    # Vectorized: a hybrid query fuses 2 x 100 candidates, and the dict-per-row version of
    # this loop cost about as much as the HNSW search itself (docs/benchmarks.md).
    legs = [_first_occurrences(scored) for scored in scored_lists]
    present = [leg for leg in legs if leg is not None]
    if not present:
        return []
    rows = np.unique(np.concatenate([leg_rows for leg_rows, _, _ in present]))
    best_rank = np.full(rows.size, np.iinfo(np.int64).max)
    fused = np.zeros(rows.size)
    for weight, leg in zip(weights, legs, strict=True):
        if leg is None:
            continue
        leg_rows, scores, ranks = leg
        at = np.searchsorted(rows, leg_rows)
        np.minimum.at(best_rank, at, ranks)
        normalized = np.asarray(normalizers[norm](scores), dtype=np.float64)
        contribution = np.full(rows.size, min(0.0, float(normalized.min())))
        contribution[at] = normalized
        fused += weight * contribution
    order = np.lexsort((rows, best_rank, -fused))
    return list(zip(rows[order].tolist(), fused[order].tolist(), strict=True))


def _first_occurrences(scored: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(rows, scores, 1-based ranks) of a leg, each row at its first position; None if empty."""
    if not len(scored):
        return None
    rows = np.fromiter((row for row, _ in scored), dtype=np.int64, count=len(scored))
    scores = np.fromiter((score for _, score in scored), dtype=np.float64, count=len(scored))
    first = np.sort(np.unique(rows, return_index=True)[1])
    return rows[first], scores[first], first + 1


def _weights(weights: Sequence[float] | None, legs: int) -> list[float]:
    if weights is None:
        return [1.0] * legs
    if len(weights) != legs:
        raise ValueError(f"got {len(weights)} weights for {legs} result lists")
    return [float(w) for w in weights]


def _sorted(scores: dict[int, float], best_rank: dict[int, int]) -> list[tuple[int, float]]:
    order = sorted(scores, key=lambda row: (-scores[row], best_rank[row], row))
    return [(row, scores[row]) for row in order]
