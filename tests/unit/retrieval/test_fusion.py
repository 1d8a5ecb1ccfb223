"""Rank fusion: RRF and normalized weighted sums, with deterministic ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval.fusion import (
    adaptive_fusion,
    leg_confidence,
    min_max_normalize,
    pooled_floor,
    reciprocal_rank_fusion,
    weighted_fusion,
    z_score,
)


@pytest.mark.parametrize(
    ("lists", "expected_rows"),
    [
        ([], []),
        ([[], []], []),
        ([[3, 1, 2], []], [3, 1, 2]),
        ([[], [5, 4]], [5, 4]),
        ([[3, 1], [1, 7]], [1, 3, 7]),
        # 1 and 2 tie on score (ranks 1+2 each); both reached rank 1 -> row id decides.
        ([[1, 2], [2, 1]], [1, 2]),
        # A duplicate inside one list counts once, at its best position.
        ([[4, 4, 4, 6], [6]], [6, 4]),
    ],
    ids=["no-legs", "all-empty", "second-empty", "first-empty", "overlap", "tie-row-id", "dup"],
)
def test_rrf_order(lists: list[list[int]], expected_rows: list[int]) -> None:
    assert [row for row, _ in reciprocal_rank_fusion(lists)] == expected_rows


def test_rrf_ties_prefer_the_better_best_rank() -> None:
    # k=0: row 9 -> 1/1, row 5 -> 1/1, row 1 -> 1/2 + 1/2. All tie at 1.0; rows 5 and 9
    # reached rank 1 somewhere, row 1 only rank 2, so row 1 goes last despite its low id.
    fused = reciprocal_rank_fusion([[9, 1], [5, 1]], k=0)
    assert fused == [(5, 1.0), (9, 1.0), (1, 1.0)]


def test_rrf_scores() -> None:
    fused = dict(reciprocal_rank_fusion([[3, 1], [1, 7]], k=60))
    assert fused[1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[3] == pytest.approx(1 / 61)
    assert fused[7] == pytest.approx(1 / 62)


def test_rrf_weights() -> None:
    fused = reciprocal_rank_fusion([[1], [2]], k=0, weights=[1.0, 3.0])
    assert fused == [(2, 3.0), (1, 1.0)]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1], [2]], weights=[1.0])
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], k=-1)


@given(st.lists(st.lists(st.integers(0, 30), max_size=20), max_size=4), st.integers(0, 100))
def test_rrf_properties(lists: list[list[int]], k: int) -> None:
    fused = reciprocal_rank_fusion(lists, k=k)
    rows = [row for row, _ in fused]
    assert len(rows) == len(set(rows))
    assert set(rows) == {row for ranked in lists for row in ranked}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert reciprocal_rank_fusion(lists, k=k) == fused


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([], []), ([5.0], [1.0]), ([2.0, 2.0], [1.0, 1.0]), ([2.0, 4.0, 3.0], [0.0, 1.0, 0.5])],
)
def test_min_max_normalize(scores: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(min_max_normalize(scores), expected)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([], []), ([5.0], [1.0]), ([2.0, 2.0], [1.0, 1.0]), ([1.0, 2.0, 3.0], [-1.224744871, 0.0, 1.224744871])],
)
def test_z_score(scores: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(z_score(scores), expected)


def test_weighted_fusion_docstring_example() -> None:
    fused = weighted_fusion([[(1, 9.0), (2, 3.0)], [(2, 0.8), (5, 0.2)]], weights=[0.3, 0.7])
    assert [row for row, _ in fused] == [2, 1, 5]
    np.testing.assert_allclose([s for _, s in fused], [0.7, 0.3, 0.0])


@pytest.mark.parametrize("norm", ["minmax", "zscore", "zscore-pool", "none"])
@pytest.mark.parametrize(
    "legs",
    [[], [[], []], [[(1, 2.0), (2, 1.0)], []], [[], [(4, 0.9)]], [[(1, 1.0), (1, 0.5)], [(1, 0.2)]]],
    ids=["no-legs", "all-empty", "second-empty", "first-empty", "dup"],
)
def test_weighted_fusion_edge_cases(legs, norm) -> None:
    fused = weighted_fusion(legs, norm=norm)
    rows = [row for row, _ in fused]
    assert len(rows) == len(set(rows))
    assert set(rows) == {row for leg in legs for row, _ in leg}


def test_weighted_fusion_absence_never_beats_presence() -> None:
    # Row 1 appears in both legs, row 2 only in the first with the same score there.
    fused = weighted_fusion([[(1, 5.0), (2, 5.0)], [(1, 0.1)]], norm="minmax")
    assert fused[0][0] == 1


def test_weighted_fusion_ties_by_best_rank_then_row() -> None:
    fused = weighted_fusion([[(7, 1.0), (3, 0.0)], [(3, 1.0), (7, 0.0)]])
    assert [row for row, _ in fused] == [3, 7]


def test_weighted_fusion_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        weighted_fusion([[(1, 1.0)]], norm="softmax")
    with pytest.raises(ValueError):
        weighted_fusion([[(1, 1.0)]], weights=[1.0, 2.0])


def test_a_lone_lexical_hit_still_lifts_its_row_under_z_score() -> None:
    """BM25 finds a phrase in one chunk only: that chunk must beat rows BM25 did not find."""
    bm25 = [(7, 12.5)]
    dense = [(3, 0.80), (7, 0.79), (4, 0.50)]
    fused = weighted_fusion([bm25, dense], weights=[0.5, 0.5], norm="zscore")
    assert fused[0][0] == 7


def test_z_score_over_a_pool_counts_the_unlisted_rows_at_zero() -> None:
    # [3, 1] standing for 4 rows: population 3, 1, 0, 0 -> mean 1, std sqrt(6/4).
    np.testing.assert_allclose(z_score([3.0, 1.0], pool=4), [2 / np.sqrt(1.5), 0.0])
    assert pooled_floor([3.0, 1.0], pool=4) == pytest.approx(-1 / np.sqrt(1.5))
    # A pool no larger than the list changes nothing; nor does None.
    np.testing.assert_allclose(z_score([3.0, 1.0], pool=2), z_score([3.0, 1.0]))
    np.testing.assert_allclose(z_score([3.0, 1.0], pool=None), [1.0, -1.0])
    assert pooled_floor([3.0, 1.0], pool=2) is None and pooled_floor([], pool=5) is None
    # One listed row among many: far above the zeros (plain z-score would give it a flat 1).
    assert z_score([4.0], pool=100)[0] == pytest.approx(np.sqrt(99))


def test_a_short_bm25_leg_is_not_squeezed_under_zscore_pool() -> None:
    """BM25 matched 2 of 10 candidate rows, row 7 best; the dense leg prefers row 3 (2.3 sd above 7).

    Plain z-scores put BM25's best only one standard deviation above its other row and an
    unmatched row only one below (the best of two rows can be no further), so the dense
    preference for row 3 wins; over the pool of 10 rows (8 unmatched at score 0) row 7 stands
    2.6 sd above an unmatched row, and wins.
    """
    bm25 = [(7, 12.0), (9, 11.0)]
    dense = [(3, 0.74), (7, 0.55), (9, 0.40)] + [(r, 0.50) for r in range(10, 17)]
    plain = weighted_fusion([bm25, dense], weights=[0.5, 0.5], norm="zscore")
    pooled = weighted_fusion([bm25, dense], weights=[0.5, 0.5], norm="zscore-pool", pools=[10, None])
    assert plain[0][0] == 3
    assert pooled[0][0] == 7
    # Unmatched rows get the z-score of a BM25 score of 0 over the pool (not the listed minimum).
    floor = pooled_floor([12.0, 11.0], 10)
    dense_z = dict(zip([r for r, _ in dense], z_score([s for _, s in dense]), strict=True))
    assert dict(pooled)[3] == pytest.approx(0.5 * floor + 0.5 * dense_z[3])


def test_pools_apply_to_zscore_pool_only_and_must_match_the_legs() -> None:
    legs = [[(1, 3.0), (2, 1.0)], [(2, 0.9), (1, 0.1), (5, 0.5)]]
    assert weighted_fusion(legs, norm="zscore", pools=[50, None]) == weighted_fusion(legs, norm="zscore")
    assert weighted_fusion(legs, norm="zscore-pool") == weighted_fusion(legs, norm="zscore")
    with pytest.raises(ValueError, match="pools"):
        weighted_fusion(legs, norm="zscore-pool", pools=[10])


def test_fusion_config_pools_the_bm25_leg_by_the_dense_leg_or_the_given_pool() -> None:
    from retrieval.retriever import FusionConfig

    bm25 = [(7, 12.0), (9, 11.0)]
    dense = [(3, 0.74), (7, 0.55), (9, 0.40)] + [(r, 0.50) for r in range(10, 17)]
    pooled = FusionConfig(method="weighted", weights=(0.5, 0.5), norm="zscore-pool")
    assert pooled.fuse(bm25, dense) == weighted_fusion([bm25, dense], [0.5, 0.5], "zscore-pool", pools=[10, None])
    assert pooled.fuse(bm25, dense, pool=2)[0][0] == 3  # a pool of 2: nothing left out, plain z-scores
    assert FusionConfig(method="weighted", weights=(0.5, 0.5), norm="zscore").fuse(bm25, dense)[0][0] == 3


def test_leg_confidence_is_the_best_rows_z_score_over_the_pool() -> None:
    assert leg_confidence([9.0, 3.0, 2.0, 1.0]) == pytest.approx(5.25 / np.sqrt(38.75 / 4))
    assert leg_confidence([0.52, 0.51, 0.50]) == pytest.approx(np.sqrt(1.5))  # flat: the least 3 rows allow
    assert leg_confidence([3.0, 1.0], pool=4) == pytest.approx(2 / np.sqrt(1.5))
    assert leg_confidence([]) == 0.0 and leg_confidence([2.0, 2.0]) == 1.0


def test_adaptive_fusion_weighs_each_leg_by_its_confidence() -> None:
    """BM25's best row stands 2.2 sd out, dense's only 1.4 sd (and dense ranks BM25's pick last):
    weighted_fusion with the weights scaled by each leg's confidence, so BM25's pick wins where
    equal weights take dense's."""
    bm25 = [(1, 10.0), (2, 2.0), (3, 1.5), (4, 1.0), (5, 1.0), (6, 0.5)]
    dense = [(2, 0.60), (3, 0.52), (4, 0.51), (5, 0.50), (6, 0.49), (1, 0.35)]
    c_bm25 = leg_confidence([s for _, s in bm25])
    c_dense = leg_confidence([s for _, s in dense])
    assert c_bm25 == pytest.approx(2.214, abs=1e-3) and c_dense == pytest.approx(1.417, abs=1e-3)
    fused = adaptive_fusion([bm25, dense], weights=[0.5, 0.5])
    assert fused == weighted_fusion([bm25, dense], [0.5 * c_bm25, 0.5 * c_dense], "zscore-pool")
    assert weighted_fusion([bm25, dense], [0.5, 0.5], "zscore")[0][0] == 2
    assert fused[0][0] == 1


def test_adaptive_fusion_edge_cases() -> None:
    assert adaptive_fusion([[], []]) == []
    only = adaptive_fusion([[(4, 2.0), (5, 1.0)], []])
    assert [row for row, _ in only] == [4, 5]
    with pytest.raises(ValueError):
        adaptive_fusion([[(1, 1.0)]], weights=[1.0, 1.0])
    with pytest.raises(ValueError):
        adaptive_fusion([[(1, 1.0)], [(1, 0.5)]], pools=[3])


def test_fusion_config_adaptive_pools_the_bm25_leg() -> None:
    from retrieval.retriever import FusionConfig

    bm25 = [(7, 12.0), (9, 11.0)]
    dense = [(3, 0.74), (7, 0.55), (9, 0.40)] + [(r, 0.50) for r in range(10, 17)]
    config = FusionConfig(method="adaptive", weights=(0.5, 0.5))
    assert config.fuse(bm25, dense) == adaptive_fusion([bm25, dense], [0.5, 0.5], pools=[10, None])
