"""HNSW dense index: same contract as the exact index — filters never leak, k hits when k exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.bm25 import BM25Index
from retrieval.dense import EXACT_FILTER_SHARE, DenseIndex, DenseIndexConfig
from retrieval.errors import IndexCorruptError
from retrieval.retriever import FusionConfig, HybridRetriever, SearchFilters
from retrieval.store import IndexGeneration
from retrieval.types import Chunk
from tests.fakes import HashEmbedder

DIM = 32
ROWS = 1500
HNSW = DenseIndexConfig(kind="hnsw", hnsw_m=16, ef_construction=80, ef_search=64)


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors around 30 centres: closer to real embeddings than uniform noise."""
    centres = rng.normal(size=(30, DIM))
    return (centres[rng.integers(30, size=n)] + 0.4 * rng.normal(size=(n, DIM))).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(np.random.default_rng(11), ROWS)


@pytest.fixture(scope="module")
def flat(vectors: np.ndarray) -> DenseIndex:
    ix = DenseIndex(DIM)
    ix.add(vectors)
    return ix


@pytest.fixture(scope="module")
def hnsw(flat: DenseIndex) -> DenseIndex:
    return flat.with_config(HNSW)


def test_conversion_keeps_vectors_and_reports_kind(flat: DenseIndex, hnsw: DenseIndex) -> None:
    assert (flat.kind, hnsw.kind) == ("flat", "hnsw")
    assert (flat.ef_search, hnsw.ef_search) == (None, 64)
    assert len(hnsw) == len(flat) == ROWS
    rows = [0, 7, ROWS - 1]
    np.testing.assert_array_equal(hnsw.vectors(rows), flat.vectors(rows))
    back = hnsw.with_config(DenseIndexConfig(kind="flat"))
    assert back.kind == "flat"
    np.testing.assert_array_equal(back.vectors(range(ROWS)), flat.vectors(range(ROWS)))


def test_hnsw_finds_nearly_what_the_exact_scan_finds(flat: DenseIndex, hnsw: DenseIndex) -> None:
    queries = clustered(np.random.default_rng(3), 50)
    recall = np.mean([
        len({r for r, _ in flat.search(q, 10)} & {r for r, _ in hnsw.search(q, 10)}) / 10 for q in queries
    ])
    assert recall >= 0.95
    q = queries[0]
    exact, approx = dict(flat.search(q, 10)), dict(hnsw.search(q, 10))
    for row in exact.keys() & approx.keys():  # same cosine wherever both found a row
        assert approx[row] == pytest.approx(exact[row], abs=1e-5)


def test_an_ef_below_k_still_fills_k(flat: DenseIndex) -> None:
    narrow = flat.with_config(DenseIndexConfig(kind="hnsw", hnsw_m=16, ef_construction=80, ef_search=1))
    hits = narrow.search(np.ones(DIM, dtype=np.float32), k=40)
    assert len(hits) == 40
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@settings(max_examples=40, deadline=None)
@given(
    share=st.sampled_from([0.0005, 0.002, 0.01, EXACT_FILTER_SHARE / 2, EXACT_FILTER_SHARE, 0.3, 0.9]),
    k=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_filters_never_leak_and_fill_k(hnsw: DenseIndex, share: float, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    allowed = rng.random(ROWS) < share
    query = clustered(rng, 1)[0]
    hits = hnsw.search(query, k=k, allowed=allowed)
    assert all(allowed[row] for row, _ in hits)
    assert len(hits) == min(k, int(allowed.sum()))
    assert len({row for row, _ in hits}) == len(hits)


def test_narrow_filter_is_searched_exactly(flat: DenseIndex, hnsw: DenseIndex) -> None:
    allowed = np.zeros(ROWS, dtype=bool)
    allowed[[5, 600, 1499]] = True  # far below EXACT_FILTER_SHARE: an exact scan of 3 rows
    q = np.random.default_rng(0).normal(size=DIM).astype(np.float32)
    assert hnsw.search(q, k=10, allowed=allowed) == flat.search(q, k=10, allowed=allowed)
    assert hnsw.search(q, k=10, allowed=np.zeros(ROWS, dtype=bool)) == []


def test_save_load_round_trip_keeps_kind_and_ef(tmp_path, hnsw: DenseIndex) -> None:
    hnsw.save(tmp_path / "dense.faiss")
    loaded = DenseIndex.load(tmp_path / "dense.faiss")
    assert (loaded.kind, loaded.ef_search, len(loaded)) == ("hnsw", 64, ROWS)
    q = clustered(np.random.default_rng(5), 1)[0]
    assert loaded.search(q, k=10) == hnsw.search(q, k=10)
    np.testing.assert_array_equal(loaded.vectors([3, 4]), hnsw.vectors([3, 4]))
    assert DenseIndex.load(tmp_path / "dense.faiss", ef_search=200).ef_search == 200


def test_auto_picks_hnsw_from_the_threshold_on(flat: DenseIndex) -> None:
    assert flat.with_config(DenseIndexConfig(kind="auto", auto_min_rows=ROWS + 1)) is flat
    assert flat.with_config(DenseIndexConfig(kind="auto", auto_min_rows=ROWS, hnsw_m=8)).kind == "hnsw"
    assert DenseIndexConfig(kind="auto", auto_min_rows=10).resolve(9) == "flat"
    assert DenseIndexConfig(kind="auto", auto_min_rows=10).resolve(10) == "hnsw"
    assert DenseIndexConfig(kind="flat").resolve(10**9) == "flat"


def test_empty_index_converts_and_searches_to_nothing() -> None:
    empty = DenseIndex(DIM).with_config(HNSW)
    assert empty.kind == "hnsw"
    assert empty.search(np.ones(DIM, dtype=np.float32), k=3) == []


@pytest.mark.parametrize(
    "bad",
    [{"kind": "ivf"}, {"auto_min_rows": 0}, {"hnsw_m": 0}, {"ef_construction": 0}, {"ef_search": 0}],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        DenseIndexConfig(**bad)


def test_load_rejects_an_l2_index(tmp_path) -> None:
    import faiss

    faiss.write_index(faiss.IndexHNSWFlat(DIM, 8), str(tmp_path / "l2.faiss"))
    with pytest.raises(IndexCorruptError):
        DenseIndex.load(tmp_path / "l2.faiss")


def test_generation_written_as_hnsw_loads_and_old_flat_still_loads(tmp_path) -> None:
    embedder = HashEmbedder()
    texts = [f"{i}번 규정: 연차휴가는 {i % 20 + 1}일이다." for i in range(60)]
    chunks = [Chunk(chunk_id=f"규정#{i}", doc_id="규정", text=t, source="/docs/규정.txt") for i, t in enumerate(texts)]
    dense = DenseIndex(embedder.dim)
    dense.add(embedder.embed_documents(texts))
    bm25 = BM25Index.build([t.split() for t in texts])
    auto = DenseIndexConfig(kind="auto", auto_min_rows=50, hnsw_m=8)
    written = IndexGeneration.write(tmp_path / "gen-000001", {}, chunks, dense, bm25, dense_config=auto)
    old = IndexGeneration.write(tmp_path / "gen-000002", {}, chunks, dense, bm25)  # None: stored as given
    assert (written.dense.kind, old.dense.kind) == ("hnsw", "flat")
    loaded = IndexGeneration.load(tmp_path / "gen-000001", ef_search=32)
    assert (loaded.dense.kind, loaded.dense.ef_search) == ("hnsw", 32)
    assert IndexGeneration.load(tmp_path / "gen-000002").dense.kind == "flat"
    np.testing.assert_array_equal(loaded.dense.vectors(range(60)), dense.vectors(range(60)))


@settings(max_examples=30, deadline=None)
@given(groups=st.sets(st.sampled_from(["public", "hr", "finance", "없는그룹"])), k=st.integers(1, 30))
def test_hybrid_over_hnsw_never_leaks_filtered_rows(hybrid_hnsw: HybridRetriever, groups: set, k: int) -> None:
    hits = hybrid_hnsw.search("연차휴가 며칠", k=k, filters=SearchFilters(groups=groups))
    assert all(h.chunk.group in groups for h in hits)
    allowed = sum(1 for c in hybrid_hnsw.generation.chunks if c.group in groups)
    dense = hybrid_hnsw.search("연차휴가 며칠", k=k, filters=SearchFilters(groups=groups), mode="dense")
    assert len(dense) == min(k, allowed)


@pytest.fixture(scope="module")
def hybrid_hnsw() -> HybridRetriever:
    from retrieval.tokenize import WhitespaceTokenizer

    embedder = HashEmbedder()
    groups = ["public"] * 200 + ["hr"] * 15 + ["finance"] * 85  # hr: 5% of rows, the exact path
    texts = [f"{g} 문서 {i}: 연차휴가는 {i % 25 + 1}일이다." for i, g in enumerate(groups)]
    chunks = [
        Chunk(chunk_id=f"d{i}#0", doc_id=f"d{i}", text=t, source=f"/docs/{g}.txt", group=g)
        for i, (g, t) in enumerate(zip(groups, texts, strict=True))
    ]
    dense = DenseIndex(embedder.dim)
    dense.add(embedder.embed_documents(texts))
    tokenizer = WhitespaceTokenizer()
    generation = IndexGeneration(
        path=Path("<memory>"),
        manifest={},
        chunks=chunks,
        dense=dense.with_config(HNSW),
        bm25=BM25Index.build(tokenizer.tokenize_many(texts)),
    )
    return HybridRetriever(generation, embedder, tokenizer, fusion=FusionConfig(method="weighted", candidates=20))
