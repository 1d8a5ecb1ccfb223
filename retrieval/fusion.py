"""Rank fusion of several retrieval legs (pure functions, no I/O).

Every result list is [(row, score), ...], best first. Ties are broken the same way
everywhere: by the best (lowest) rank the row reached in any leg, then by row id.

Scores of two legs are only comparable over the same population. A BM25 leg lists only the
rows that hold a query term, so in a small index, or for a rare term, it is much shorter than
the dense leg, and its z-scores are squeezed: the best of n rows is at most sqrt(n - 1)
standard deviations above their mean, however decisive the match. Norm "zscore-pool"
standardizes such a leg over its pool (the rows the other leg was cut from, e.g. the top 100
or the whole index when smaller), counting the unlisted rows at their true BM25 score 0.

`adaptive_fusion` also weighs each leg, per query, by how peaked it is: its best row's
z-score over the pool. A leg that cannot tell its candidates apart (a dense leg on text it
reads badly) then counts less than one whose best match stands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Norm = Literal["minmax", "zscore", "zscore-pool", "none"]


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


def z_score(scores: Sequence[float], pool: int | None = None) -> np.ndarray:
    """Standardize: [1, 2, 3] -> [-1.22, 0, 1.22]. Zero spread (one hit, or a tie) maps to all 1.

    Not 0: rows absent from the leg get 0 there too, and a phrase only one chunk holds must
    still count for that chunk (one standard deviation above, a modest lift).

    pool: the number of rows the scores stand for, when more than are listed; the unlisted
    ones count as score 0 in the mean and spread (a BM25 leg omits the rows without a query
    term). z_score([3, 1], pool=4) -> [1.63, 0.0] (over 3, 1, 0, 0), where z_score([3, 1]) -> [1, -1].
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values
    padding = max(0, (pool or 0) - values.size)
    population = np.concatenate([values, np.zeros(padding)]) if padding else values
    std = population.std()
    if std == 0:
        return np.ones_like(values)
    return (values - population.mean()) / std


def pooled_floor(scores: Sequence[float], pool: int | None) -> float | None:
    """The z-score of an unlisted row (score 0) of a leg standardized over `pool` rows, or None
    when every row of the pool is listed (or the spread is zero).

    pooled_floor([3, 1], pool=4) -> -0.82 (0 among 3, 1, 0, 0).
    """
    values = np.asarray(scores, dtype=np.float64)
    padding = max(0, (pool or 0) - values.size)
    if not padding or values.size == 0:
        return None
    population = np.concatenate([values, np.zeros(padding)])
    std = population.std()
    return None if std == 0 else float(-population.mean() / std)


def weighted_fusion(
    scored_lists: Sequence[Sequence[tuple[int, float]]],
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
    pools: Sequence[int | None] | None = None,
) -> list[tuple[int, float]]:
    """Fuse scored legs by a weighted sum of per-leg normalized scores.

    Example: weighted_fusion([[(1, 9.0), (2, 3.0)], [(2, 0.8), (5, 0.2)]], weights=[0.3, 0.7])
        -> [(2, 0.7), (1, 0.3), (5, 0.0)].
    A row missing from a leg gets min(0, that leg's lowest normalized score) there, so
    absence never beats presence. A row repeated inside one leg counts at its first position.
    pools (norm "zscore-pool" only): per leg, the rows it stands for when it lists only those
    with a positive score (BM25), or None; such a leg is standardized with its unlisted rows
    at score 0 (`z_score(pool=)`), and a missing row gets the z-score of 0 there.

    Raises:
        ValueError: unknown norm, or weights or pools not one per list.
    """
    normalizers = {"minmax": min_max_normalize, "zscore": z_score, "zscore-pool": z_score, "none": np.asarray}
    if norm not in normalizers:
        raise ValueError(f"unknown norm {norm!r}; expected one of {sorted(normalizers)}")
    weights = _weights(weights, len(scored_lists))
    if pools is not None and len(pools) != len(scored_lists):
        raise ValueError(f"got {len(pools)} pools for {len(scored_lists)} result lists")
    pools = list(pools) if pools is not None and norm == "zscore-pool" else [None] * len(scored_lists)
    # Vectorized: a hybrid query fuses 2 x 100 candidates, and the dict-per-row version of
    # this loop cost about as much as the HNSW search itself (docs/benchmarks.md).
    legs = [_first_occurrences(scored) for scored in scored_lists]
    present = [leg for leg in legs if leg is not None]
    if not present:
        return []
    rows = np.unique(np.concatenate([leg_rows for leg_rows, _, _ in present]))
    best_rank = np.full(rows.size, np.iinfo(np.int64).max)
    fused = np.zeros(rows.size)
    for weight, leg, pool in zip(weights, legs, pools, strict=True):
        if leg is None:
            continue
        leg_rows, scores, ranks = leg
        at = np.searchsorted(rows, leg_rows)
        np.minimum.at(best_rank, at, ranks)
        if pool is None:
            normalized = np.asarray(normalizers[norm](scores), dtype=np.float64)
            floor = float(normalized.min())
        else:
            normalized = z_score(scores, pool)
            floor = pooled_floor(scores, pool)
            floor = float(normalized.min()) if floor is None else floor
        contribution = np.full(rows.size, min(0.0, floor))
        contribution[at] = normalized
        fused += weight * contribution
    order = np.lexsort((rows, best_rank, -fused))
    return list(zip(rows[order].tolist(), fused[order].tolist(), strict=True))


def leg_confidence(scores: Sequence[float], pool: int | None = None) -> float:
    """How far a leg's best score stands above its pool, in standard deviations; 0 if empty.

    leg_confidence([9, 3, 2, 1]) -> 1.69; a flat leg, leg_confidence([0.52, 0.51, 0.50]) -> 1.22;
    leg_confidence([3, 1], pool=4) -> 1.63 (over 3, 1, 0, 0). Zero spread gives 1 (`z_score`).
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return 0.0
    return max(0.0, float(z_score(values, pool).max()))


def adaptive_fusion(
    scored_lists: Sequence[Sequence[tuple[int, float]]],
    weights: Sequence[float] | None = None,
    pools: Sequence[int | None] | None = None,
) -> list[tuple[int, float]]:
    """`weighted_fusion` with norm "zscore-pool", each leg's weight times its `leg_confidence`.

    Example: a BM25 leg whose best row is 3 sd above its pool and a dense leg whose best is
    1.5 sd above fuse as weights (0.5 * 3, 0.5 * 1.5): BM25 counts twice as much for this query.

    Raises:
        ValueError: weights or pools not one per list.
    """
    weights = _weights(weights, len(scored_lists))
    if pools is not None and len(pools) != len(scored_lists):
        raise ValueError(f"got {len(pools)} pools for {len(scored_lists)} result lists")
    pools = list(pools) if pools is not None else [None] * len(scored_lists)
    confidence = [
        leg_confidence([score for _, score in _first_only(scored)], pool)
        for scored, pool in zip(scored_lists, pools, strict=True)
    ]
    scaled = [w * c for w, c in zip(weights, confidence, strict=True)]
    if not any(scaled):  # no leg stands out (or none has rows): plain weights
        scaled = weights
    return weighted_fusion(scored_lists, weights=scaled, norm="zscore-pool", pools=pools)


def _first_only(scored: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    seen: set[int] = set()
    return [(row, score) for row, score in scored if not (row in seen or seen.add(row))]


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
