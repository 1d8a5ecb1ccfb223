"""BM25 over Kiwi tokens: finds the right Korean chunk, honours the row mask, persists,
and scores exactly as rank_bm25 (with the positive idf) would."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.bm25 import BM25Index, _PositiveIdfBM25
from retrieval.errors import IndexCorruptError
from retrieval.tokenize import KiwiTokenizer

TEXTS = [
    "연차휴가는 입사 1년 후 15일이 부여된다.",
    "출장비는 실비로 정산하며 영수증을 제출해야 한다.",
    "재택근무는 주 2회까지 팀장 승인 후 가능하다.",
    "경조휴가는 본인 결혼 시 5일, 자녀 결혼 시 1일이다.",
    "법인카드 사용 한도는 월 300만원이다.",
    "보안 교육은 매년 1회 필수로 이수해야 한다.",
]


@pytest.fixture(scope="module")
def kiwi() -> KiwiTokenizer:
    return KiwiTokenizer()


@pytest.fixture(scope="module")
def index(kiwi: KiwiTokenizer) -> BM25Index:
    return BM25Index.build(kiwi.tokenize_many(TEXTS))


@pytest.mark.parametrize(
    ("query", "expected_row"),
    [
        ("연차휴가 며칠 받나요?", 0),
        ("출장비 정산은 어떻게 하나요", 1),
        ("재택근무 승인", 2),
        ("결혼하면 휴가 며칠?", 3),
        ("법인카드 한도가 얼마예요", 4),
        ("보안교육", 5),
    ],
    ids=["annual-leave", "travel", "remote", "wedding", "card", "security"],
)
def test_finds_the_right_chunk(index: BM25Index, kiwi: KiwiTokenizer, query: str, expected_row: int) -> None:
    hits = index.search(kiwi.tokenize(query), k=3)
    assert hits[0][0] == expected_row


def test_rows_without_a_query_term_are_not_returned(index: BM25Index, kiwi: KiwiTokenizer) -> None:
    hits = index.search(kiwi.tokenize("출장비"), k=10)
    assert [row for row, _ in hits] == [1]
    assert all(score > 0 for _, score in hits)
    assert index.search(kiwi.tokenize("우주선 발사"), k=10) == []


def test_results_are_sorted_best_first(index: BM25Index, kiwi: KiwiTokenizer) -> None:
    hits = index.search(kiwi.tokenize("휴가 결혼 1일 15일"), k=10)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({row for row, _ in hits}) == len(hits)


def test_mask_excludes_rows_before_the_top_k_cut() -> None:
    # Ten rows all containing the term; the best ones are masked out.
    rows = [["휴가"] * (10 - i) + ["기타"] * i for i in range(10)]
    index = BM25Index.build(rows)
    allowed = np.zeros(10, dtype=bool)
    allowed[[5, 7, 8, 9]] = True
    hits = index.search(["휴가"], k=3, allowed=allowed)
    assert [row for row, _ in hits] == [5, 7, 8]
    assert [row for row, _ in index.search(["휴가"], k=10, allowed=allowed)] == [5, 7, 8, 9]
    assert index.search(["휴가"], k=3, allowed=np.zeros(10, dtype=bool)) == []


def test_bad_mask_is_rejected(index: BM25Index) -> None:
    with pytest.raises(ValueError):
        index.search(["휴가"], k=3, allowed=np.ones(3, dtype=bool))
    with pytest.raises(ValueError):
        index.search(["휴가"], k=3, allowed=np.ones(len(index), dtype=np.int64))


def test_ties_are_broken_by_row_id() -> None:
    index = BM25Index.build([["다른"], ["휴가"], ["다른"], ["휴가"], ["휴가"]])
    assert [row for row, _ in index.search(["휴가"], k=2)] == [1, 3]


@pytest.mark.parametrize(
    ("corpus", "query"),
    [([], ["휴가"]), ([["휴가"]], []), ([[], []], ["휴가"]), ([["휴가"]], ["없는말"])],
    ids=["empty-corpus", "empty-query", "empty-rows", "unknown-term"],
)
def test_degenerate_inputs_return_nothing(corpus: list[list[str]], query: list[str]) -> None:
    assert BM25Index.build(corpus).search(query, k=5) == []


@pytest.mark.parametrize("corpus", [[["휴가"]], [["휴가"], ["출장"]], [["휴가"], ["휴가", "출장"]]])
def test_tiny_corpora_still_score_matching_rows(corpus: list[list[str]]) -> None:
    # Stock Okapi idf is <= 0 here (term in half or more of the rows); ours stays positive.
    hits = BM25Index.build(corpus).search(["휴가"], k=5)
    assert hits and all(score > 0 for _, score in hits)


def test_k_zero_returns_nothing(index: BM25Index) -> None:
    assert index.search(["휴가"], k=0) == []


def test_save_load_round_trip(tmp_path, index: BM25Index, kiwi: KiwiTokenizer) -> None:
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.token_lists == index.token_lists
    assert (loaded.k1, loaded.b) == (index.k1, index.b)
    query = kiwi.tokenize("연차휴가 결혼 출장비")
    assert loaded.search(query, k=6) == index.search(query, k=6)


def test_save_is_byte_identical_for_same_input(tmp_path, index: BM25Index) -> None:
    index.save(tmp_path / "a")
    index.save(tmp_path / "b")
    assert (tmp_path / "a" / "tokens.jsonl.gz").read_bytes() == (tmp_path / "b" / "tokens.jsonl.gz").read_bytes()


def test_empty_index_round_trips(tmp_path) -> None:
    BM25Index.build([]).save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert len(loaded) == 0
    assert loaded.search(["휴가"], k=3) == []


def test_load_of_missing_or_truncated_files_raises_corrupt(tmp_path, index: BM25Index) -> None:
    with pytest.raises(IndexCorruptError):
        BM25Index.load(tmp_path / "nothing")
    index.save(tmp_path / "bm25")
    path = tmp_path / "bm25" / "tokens.jsonl.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IndexCorruptError):
        BM25Index.load(tmp_path / "bm25")


@settings(max_examples=50, deadline=None)
@given(
    corpus=st.lists(st.lists(st.sampled_from(["휴가", "출장", "연차", "15", "ai"]), max_size=6), max_size=15),
    query=st.lists(st.sampled_from(["휴가", "출장", "없음"]), max_size=3),
    k=st.integers(min_value=1, max_value=20),
    data=st.data(),
)
def test_masked_search_equals_filtering_the_full_ranking(corpus, query, k, data) -> None:
    index = BM25Index.build(corpus)
    allowed = np.array(data.draw(st.lists(st.booleans(), min_size=len(corpus), max_size=len(corpus))), dtype=bool)
    full = index.search(query, k=len(corpus) + 1)
    expected = [(row, score) for row, score in full if allowed[row]][:k]
    assert index.search(query, k, allowed=allowed) == expected
    assert all(set(query) & set(corpus[row]) for row, _ in full)


def reference_scores(corpus: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """rank_bm25's own get_scores, the loop over every row that the sparse matrix replaces."""
    if not any(corpus):
        return np.zeros(len(corpus))
    return _PositiveIdfBM25(corpus, k1=k1, b=b).get_scores(query)


def test_score_matches_the_formula_by_hand() -> None:
    # idf = log(1 + (2 - 1 + 0.5) / (1 + 0.5)) = log 2; avgdl = 1.5; row 0: tf 2, dl 2.
    one = math.log(2) * 2 * 2.2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 2 / 1.5))
    index = BM25Index.build([["휴가", "휴가"], ["출장"]])
    assert np.allclose(index.scores(["휴가"]), [one, 0.0])
    assert np.allclose(index.scores(["휴가", "없는말", "휴가"]), [2 * one, 0.0])


KOREAN_QUERIES = [
    "연차휴가 며칠 받나요?",
    "휴가 휴가 휴가 결혼",  # repeated term: rank_bm25 adds it once per occurrence
    "출장비 영수증 법인카드 한도 300만원",
    "우주선 발사",  # no known term
    "",
]


@pytest.mark.parametrize("query", KOREAN_QUERIES, ids=["leave", "repeated", "many-terms", "unknown", "empty"])
def test_scores_equal_rank_bm25_on_korean_text(index: BM25Index, kiwi: KiwiTokenizer, query: str) -> None:
    tokens = kiwi.tokenize(query)
    expected = reference_scores(index.token_lists, tokens)
    got = index.scores(tokens)
    assert got.dtype == np.float64 and got.shape == (len(TEXTS),)
    assert np.allclose(got, expected, rtol=1e-6, atol=0)


def test_loaded_index_scores_like_the_built_one(tmp_path, index: BM25Index, kiwi: KiwiTokenizer) -> None:
    index.save(tmp_path / "bm25")
    tokens = kiwi.tokenize("경조휴가 결혼 휴가")
    assert np.array_equal(BM25Index.load(tmp_path / "bm25").scores(tokens), index.scores(tokens))


TERMS = st.sampled_from(["휴가", "출장", "연차", "15", "일", "ai", "결혼", "만원"])


@settings(max_examples=200, deadline=None)
@given(
    corpus=st.lists(st.lists(TERMS, max_size=12), max_size=25),
    query=st.lists(st.one_of(TERMS, st.sampled_from(["없음", "우주선"])), max_size=6),
    k1=st.floats(min_value=0.1, max_value=3.0),
    b=st.floats(min_value=0.0, max_value=1.0),
)
def test_scores_equal_rank_bm25_on_random_corpora(corpus, query, k1, b) -> None:
    # Covers empty corpora, empty rows, empty queries, unknown and repeated query terms.
    got = BM25Index.build(corpus, k1=k1, b=b).scores(query)
    assert got.shape == (len(corpus),)
    # rank_bm25 divides 0 by 0 for an empty row when b == 1 and returns NaN; such a row
    # contains no query term, so its right score is 0 (ours is).
    expected = np.nan_to_num(reference_scores(corpus, query, k1, b), nan=0.0)
    assert np.allclose(got, expected, rtol=1e-6, atol=0)


def test_stats_report_the_compact_matrix() -> None:
    stats = BM25Index.build([["휴가", "휴가", "연차"], ["출장"], []]).stats()
    # 3 non-zeros * (4-byte float32 + 4-byte int32 row id) + 4 column pointers * 4 bytes.
    assert stats == {"rows": 3, "terms": 3, "nnz": 3, "matrix_bytes": 3 * 8 + 4 * 4}
    assert BM25Index.build([]).stats() == {"rows": 0, "terms": 0, "nnz": 0, "matrix_bytes": 0}
