"""Ranking metrics for retrieval evaluation (pure functions over id lists).

hit_at(["b", "a"], {"a"}, 1) -> 0.0;  mrr_at(["b", "a"], {"a"}, 10) -> 0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """1.0 if any gold id is in the top k."""
    return 1.0 if any(r in gold for r in ranked[:k]) else 0.0


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Share of gold ids found in the top k (duplicates in `ranked` count once)."""
    if not gold:
        return 0.0
    return len(gold & set(ranked[:k])) / len(gold)


def mrr_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Reciprocal rank of the first gold id within the top k, else 0."""
    for i, r in enumerate(ranked[:k], 1):
        if r in gold:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """Binary-relevance nDCG@k; a gold id repeated in `ranked` gains only once."""
    seen: set[str] = set()
    dcg = 0.0
    for i, r in enumerate(ranked[:k], 1):
        if r in gold and r not in seen:
            seen.add(r)
            dcg += 1.0 / math.log2(i + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def dedupe(ids: Sequence[str]) -> list[str]:
    """Ids in first-seen order (chunk hits → document ranking)."""
    return list(dict.fromkeys(ids))


def summarize(runs: Sequence[tuple[Sequence[str], set[str]]]) -> dict[str, float]:
    """Mean hit@1, recall@5, recall@10, MRR@10, nDCG@10 over (ranked ids, gold ids) pairs."""
    n = max(len(runs), 1)
    return {
        "hit@1": sum(hit_at(r, g, 1) for r, g in runs) / n,
        "recall@5": sum(recall_at(r, g, 5) for r, g in runs) / n,
        "recall@10": sum(recall_at(r, g, 10) for r, g in runs) / n,
        "mrr@10": sum(mrr_at(r, g, 10) for r, g in runs) / n,
        "ndcg@10": sum(ndcg_at(r, g, 10) for r, g in runs) / n,
    }
