"""FAISS inner-product index: masked search, reconstruct, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.dense import DenseIndex
from retrieval.errors import IndexCorruptError
from tests.fakes import HashEmbedder

TEXTS = [
    "연차휴가는 15일이다.",
    "출장비는 실비로 정산한다.",
    "재택근무는 주 2회 가능하다.",
    "경조휴가는 결혼 시 5일이다.",
    "법인카드 한도는 월 300만원이다.",
]


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(dim=64)


@pytest.fixture
def index(embedder: HashEmbedder) -> DenseIndex:
    ix = DenseIndex(embedder.dim)
    ix.add(embedder.embed_documents(TEXTS))
    return ix


def test_nearest_is_the_same_text(index: DenseIndex, embedder: HashEmbedder) -> None:
    for row, text in enumerate(TEXTS):
        hits = index.search(embedder.embed_query(text), k=2)
        assert hits[0][0] == row
        assert hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_results_sorted_and_k_capped_by_size(index: DenseIndex, embedder: HashEmbedder) -> None:
    hits = index.search(embedder.embed_query("휴가 며칠"), k=50)
    assert len(hits) == len(TEXTS)
    assert sorted(row for row, _ in hits) == list(range(len(TEXTS)))
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_mask_excludes_rows_and_still_returns_k(index: DenseIndex, embedder: HashEmbedder) -> None:
    allowed = np.array([False, True, True, False, True])
    hits = index.search(embedder.embed_query(TEXTS[0]), k=2, allowed=allowed)
    assert len(hits) == 2
    assert all(allowed[row] for row, _ in hits)
    assert len(index.search(embedder.embed_query(TEXTS[0]), k=10, allowed=allowed)) == 3
    assert index.search(embedder.embed_query(TEXTS[0]), k=3, allowed=np.zeros(5, dtype=bool)) == []


def test_mask_over_many_rows_matches_filtered_full_search() -> None:
    rng = np.random.default_rng(7)
    ix = DenseIndex(16)
    ix.add(rng.normal(size=(300, 16)).astype(np.float32))
    allowed = rng.random(300) < 0.1
    q = rng.normal(size=16).astype(np.float32)
    full = [(r, s) for r, s in ix.search(q, k=300) if allowed[r]]
    masked = ix.search(q, k=20, allowed=allowed)
    assert [r for r, _ in masked] == [r for r, _ in full[:20]]


def test_bad_mask_is_rejected(index: DenseIndex) -> None:
    with pytest.raises(ValueError):
        index.search(np.ones(64, dtype=np.float32), k=1, allowed=np.ones(2, dtype=bool))


def test_empty_index_and_k_zero(embedder: HashEmbedder) -> None:
    ix = DenseIndex(embedder.dim)
    assert len(ix) == 0
    assert ix.search(embedder.embed_query("안녕하세요"), k=3) == []
    ix.add(np.empty((0, embedder.dim), dtype=np.float32))
    assert len(ix) == 0
    ix.add(embedder.embed_documents(["안녕하세요"]))
    assert ix.search(embedder.embed_query("안녕하세요"), k=0) == []


def test_wrong_dim_is_rejected(index: DenseIndex) -> None:
    with pytest.raises(ValueError):
        index.add(np.ones((2, 8), dtype=np.float32))
    with pytest.raises(ValueError):
        index.search(np.ones(8, dtype=np.float32), k=1)
    with pytest.raises(ValueError):
        DenseIndex(0)


def test_vectors_are_normalized_on_add() -> None:
    ix = DenseIndex(2)
    ix.add(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(ix.vectors([0, 1]), [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)


def test_reconstruct_returns_stored_vectors(index: DenseIndex, embedder: HashEmbedder) -> None:
    expected = embedder.embed_documents(TEXTS)
    np.testing.assert_allclose(index.vectors([3, 0]), expected[[3, 0]], atol=1e-6)
    assert index.vectors([]).shape == (0, embedder.dim)
    with pytest.raises(IndexError):
        index.vectors([len(TEXTS)])


def test_reconstructed_vectors_rebuild_an_identical_index(index: DenseIndex, embedder: HashEmbedder) -> None:
    rebuilt = DenseIndex(index.dim)
    rebuilt.add(index.vectors(range(len(index))))
    q = embedder.embed_query("휴가")
    assert rebuilt.search(q, k=5) == index.search(q, k=5)


def test_save_load_round_trip(tmp_path, index: DenseIndex, embedder: HashEmbedder) -> None:
    index.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss")
    assert (loaded.dim, len(loaded)) == (index.dim, len(index))
    q = embedder.embed_query("출장비 정산")
    assert loaded.search(q, k=3) == index.search(q, k=3)
    np.testing.assert_array_equal(loaded.vectors([1, 2]), index.vectors([1, 2]))


def test_load_of_garbage_raises_corrupt(tmp_path) -> None:
    (tmp_path / "dense.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexCorruptError):
        DenseIndex.load(tmp_path / "dense.faiss")
    with pytest.raises(IndexCorruptError):
        DenseIndex.load(tmp_path / "missing.faiss")
