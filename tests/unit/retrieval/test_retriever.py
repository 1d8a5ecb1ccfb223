"""HybridRetriever over a real generation: Kiwi BM25 + hash-embedder dense, filters, modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.errors import EmbeddingModelMismatch
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.retriever import FusionConfig, HybridRetriever, SearchFilters
from retrieval.store import IndexGeneration, new_generation_path, open_index, publish
from retrieval.tokenize import KiwiTokenizer, tokenizer_from_config
from retrieval.types import Chunk, Hit
from tests.fakes import HashEmbedder, write_test_generation

# (group, source, text)
DOCS = [
    ("public", "/docs/취업규칙.txt", "연차휴가는 입사 1년 후 15일이 부여된다."),
    ("public", "/docs/취업규칙.txt", "경조휴가는 본인 결혼 시 5일이다."),
    ("public", "/docs/취업규칙.txt", "재택근무는 주 2회까지 팀장 승인 후 가능하다."),
    ("hr", "/docs/인사비밀.txt", "2025년 임원 연봉 인상률은 7%이다."),
    ("hr", "/docs/인사비밀.txt", "연차휴가 미사용 수당은 통상임금으로 계산한다."),
    ("finance", "/docs/예산.hwp", "2024년 연구개발 예산은 3억원이다."),
    ("finance", "/docs/예산.hwp", "법인카드 사용 한도는 월 300만원이다."),
    ("finance", "/docs/출장.pdf", "출장비는 실비로 정산하며 영수증을 제출해야 한다."),
    ("exec", "/docs/이사회.docx", "이사회는 분기마다 열리며 예산안을 승인한다."),
    ("exec", "/docs/이사회.docx", "휴가 중 긴급 안건은 서면 결의로 처리한다."),
]
CHUNKS = [
    Chunk(chunk_id=f"{source}#{i}", doc_id=source, text=text, source=source, group=group, position=i)
    for i, (group, source, text) in enumerate(DOCS)
]
GROUPS = sorted({c.group for c in CHUNKS})
SOURCES = sorted({c.source for c in CHUNKS})
MODES = ["hybrid", "bm25", "dense"]
QUERIES = ["연차휴가는 며칠인가요?", "예산 3억원", "휴가", "출장비 정산", "승인", "임원 연봉", "안녕하세요"]


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.query_calls = 0

    def embed_query(self, text: str) -> np.ndarray:
        self.query_calls += 1
        return super().embed_query(text)


@pytest.fixture(scope="module")
def kiwi() -> KiwiTokenizer:
    return KiwiTokenizer()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, kiwi: KiwiTokenizer) -> Path:
    index_dir = tmp_path_factory.mktemp("index")
    gen = new_generation_path(index_dir)
    write_test_generation(gen, CHUNKS, HashEmbedder(), kiwi)
    publish(index_dir, gen)
    return index_dir


@pytest.fixture(scope="module")
def generation(index_dir: Path) -> IndexGeneration:
    return open_index(index_dir)


@pytest.fixture(scope="module")
def retriever(generation: IndexGeneration, kiwi: KiwiTokenizer) -> HybridRetriever:
    # Rebuilt from the manifest as a reader would; sharing the loaded Kiwi saves ~2 s.
    tokenizer = tokenizer_from_config(generation.manifest["tokenizer"], kiwi=kiwi.kiwi)
    return HybridRetriever(generation, HashEmbedder(), tokenizer, fusion=FusionConfig(candidates=5))


def _assert_ranked(hits: list[Hit], k: int) -> None:
    assert 0 < len(hits) <= k
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_returns_hits_ranked_1_to_k(retriever: HybridRetriever, mode: str) -> None:
    hits = retriever.search("연차휴가는 며칠인가요?", k=3, mode=mode)
    _assert_ranked(hits, 3)
    assert all(isinstance(h, Hit) and isinstance(h.chunk, Chunk) for h in hits)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("query", "expected_text"),
    [
        ("입사하면 연차휴가는 며칠인가요?", "연차휴가는 입사"),
        ("연차휴가 미사용 수당", "연차휴가 미사용"),
        ("출장비 정산 방법", "출장비는"),
        ("법인카드 한도", "법인카드"),
    ],
    ids=["annual-leave", "unused-leave-pay", "travel", "card"],
)
def test_finds_the_right_chunk(retriever: HybridRetriever, mode: str, query: str, expected_text: str) -> None:
    assert retriever.search(query, k=3, mode=mode)[0].chunk.text.startswith(expected_text)


def test_hybrid_score_is_the_rrf_of_both_legs(retriever: HybridRetriever, generation: IndexGeneration) -> None:
    query = "휴가 승인"
    depth = max(retriever.fusion.candidates, 4)
    bm25 = generation.bm25.search(retriever.tokenizer.tokenize(query), depth)
    dense = generation.dense.search(HashEmbedder().embed_query(query), depth)
    expected = reciprocal_rank_fusion([[r for r, _ in bm25], [r for r, _ in dense]], k=retriever.fusion.rrf_k)[:4]
    hits = retriever.search(query, k=4)
    assert [(CHUNKS.index(h.chunk), h.score) for h in hits] == expected


def test_dense_mode_returns_k_even_without_shared_words(retriever: HybridRetriever) -> None:
    assert len(retriever.search("안녕하세요", k=4, mode="dense")) == 4
    assert retriever.search("안녕하세요", k=4, mode="bm25") == []


@pytest.mark.parametrize("mode", MODES)
def test_k_larger_than_corpus(retriever: HybridRetriever, mode: str) -> None:
    hits = retriever.search("휴가", k=100, mode=mode)
    _assert_ranked(hits, len(CHUNKS))
    if mode == "dense":
        assert len(hits) == len(CHUNKS)


@pytest.mark.parametrize("mode", MODES)
def test_filtered_search_still_fills_k(retriever: HybridRetriever, mode: str) -> None:
    # Only 3 finance chunks exist; with a filter the top k must all be finance.
    hits = retriever.search("휴가 예산 출장비 법인카드", k=3, filters=SearchFilters(groups={"finance"}), mode=mode)
    assert {h.chunk.group for h in hits} == {"finance"}
    if mode != "bm25":
        assert len(hits) == 3


@pytest.mark.parametrize("mode", MODES)
def test_source_and_doc_filters_combine_with_groups(retriever: HybridRetriever, mode: str) -> None:
    filters = SearchFilters(groups={"finance", "public"}, sources={"/docs/예산.hwp", "/docs/이사회.docx"})
    hits = retriever.search("예산", k=10, filters=filters, mode=mode)
    assert hits and {h.chunk.source for h in hits} == {"/docs/예산.hwp"}
    hits = retriever.search("휴가", k=10, filters=SearchFilters(doc_ids={"/docs/인사비밀.txt"}), mode=mode)
    assert hits and {h.chunk.doc_id for h in hits} == {"/docs/인사비밀.txt"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "filters",
    [SearchFilters(groups=set()), SearchFilters(groups={"없는그룹"}), SearchFilters(groups={"hr"}, sources=set())],
    ids=["no-groups", "unknown-group", "empty-sources"],
)
def test_filters_matching_nothing_return_nothing(retriever: HybridRetriever, mode: str, filters) -> None:
    assert retriever.search("휴가", k=5, filters=filters, mode=mode) == []


def test_unrestricted_filters_equal_no_filters(retriever: HybridRetriever) -> None:
    assert retriever.search("휴가", k=5, filters=SearchFilters()) == retriever.search("휴가", k=5)
    assert retriever.row_mask(SearchFilters()) is None


def test_group_mask_cache_is_not_corrupted_by_combinations(retriever: HybridRetriever) -> None:
    hr = retriever.row_mask(SearchFilters(groups={"hr"})).copy()
    retriever.row_mask(SearchFilters(groups={"hr", "finance"}, sources={"/docs/예산.hwp"}))
    retriever.row_mask(SearchFilters(groups={"hr"}, doc_ids={"/docs/인사비밀.txt"}))
    np.testing.assert_array_equal(retriever.row_mask(SearchFilters(groups={"hr"})), hr)
    assert hr.sum() == 2


@settings(max_examples=60, deadline=None)
@given(
    query=st.sampled_from(QUERIES),
    groups=st.sets(st.sampled_from([*GROUPS, "없는그룹"])),
    sources=st.none() | st.sets(st.sampled_from(SOURCES)),
    k=st.integers(min_value=1, max_value=12),
    mode=st.sampled_from(MODES),
)
def test_filters_never_leak(retriever: HybridRetriever, query, groups, sources, k, mode) -> None:
    filters = SearchFilters(groups=groups, sources=sources)
    hits = retriever.search(query, k=k, filters=filters, mode=mode)
    for hit in hits:
        assert hit.chunk.group in groups
        assert sources is None or hit.chunk.source in sources
    allowed = [c for c in CHUNKS if c.group in groups and (sources is None or c.source in sources)]
    if mode == "dense":
        assert len(hits) == min(k, len(allowed))
    if hits:
        _assert_ranked(hits, k)


def test_query_is_embedded_once_per_search_and_not_for_bm25(
    generation: IndexGeneration, retriever: HybridRetriever
) -> None:
    embedder = CountingEmbedder()
    retriever = HybridRetriever(generation, embedder, retriever.tokenizer)
    retriever.search("연차휴가", k=3)
    assert embedder.query_calls == 1
    retriever.search("연차휴가", k=3, mode="bm25")
    assert embedder.query_calls == 1
    retriever.search("연차휴가", k=3, mode="dense")
    assert embedder.query_calls == 2


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_blank_query_returns_nothing(retriever: HybridRetriever, query: str) -> None:
    assert retriever.search(query) == []


def test_k_zero_returns_nothing(retriever: HybridRetriever) -> None:
    assert retriever.search("휴가", k=0) == []


def test_unknown_mode_is_rejected(retriever: HybridRetriever) -> None:
    with pytest.raises(ValueError, match="mode"):
        retriever.search("휴가", mode="sparse")  # type: ignore[arg-type]


def test_string_filter_is_rejected() -> None:
    with pytest.raises(TypeError):
        SearchFilters(groups="hr")  # type: ignore[arg-type]


def test_embedder_with_another_dim_is_rejected(generation: IndexGeneration) -> None:
    with pytest.raises(EmbeddingModelMismatch):
        HybridRetriever(generation, HashEmbedder(dim=32), KiwiTokenizer())


def test_empty_generation_searches_to_nothing(tmp_path: Path) -> None:
    gen = write_test_generation(tmp_path / "gen-000001", [], HashEmbedder(), KiwiTokenizer())
    retriever = HybridRetriever(gen, HashEmbedder(), KiwiTokenizer())
    for mode in MODES:
        assert retriever.search("휴가", k=3, mode=mode) == []


def test_weighted_fusion_follows_the_heavier_leg(retriever):
    from retrieval.retriever import FusionConfig

    query = "연차휴가 일수"
    bm25_first = retriever.search(query, 1, mode="bm25")[0].chunk.chunk_id
    dense_first = retriever.search(query, 1, mode="dense")[0].chunk.chunk_id
    only_bm25 = FusionConfig(method="weighted", weights=(1.0, 0.0))
    only_dense = FusionConfig(method="weighted", weights=(0.0, 1.0), norm="zscore")
    assert retriever.search(query, 1, fusion=only_bm25)[0].chunk.chunk_id == bm25_first
    assert retriever.search(query, 1, fusion=only_dense)[0].chunk.chunk_id == dense_first


@pytest.mark.parametrize(
    "bad", [dict(method="max"), dict(candidates=0), dict(rrf_k=0), dict(weights=(1.0, -1.0))]
)
def test_fusion_config_rejects_bad_values(bad):
    from retrieval.retriever import FusionConfig

    with pytest.raises(ValueError):
        FusionConfig(**bad)


def test_hybrid_search_tells_the_fusion_its_pool(retriever):
    """The pool is the depth searched, or the rows the filters allow when fewer."""
    from dataclasses import dataclass

    from retrieval.retriever import FusionConfig

    pools: list[int | None] = []

    @dataclass(frozen=True)
    class Spy(FusionConfig):
        def fuse(self, bm25, dense, pool=None):
            pools.append(pool)
            return super().fuse(bm25, dense, pool)

    rows = len(retriever.generation.chunks)
    spy = Spy(method="weighted", norm="zscore-pool", candidates=2)
    assert retriever.search("연차휴가 일수", 3, fusion=spy)
    one_group = retriever.generation.chunks[0].group
    allowed = sum(c.group == one_group for c in retriever.generation.chunks)
    retriever.search("연차휴가 일수", 50, SearchFilters(groups={one_group}), fusion=spy)
    assert pools == [min(3, rows), min(50, allowed)]
