"""LangChain adapters: ChulcheoRetriever and ChulcheoEmbeddings over a Kiwi + hash-embedder index."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from retrieval.langchain import ChulcheoEmbeddings, ChulcheoRetriever, hit_to_document
from retrieval.retriever import FusionConfig, HybridRetriever, SearchFilters
from retrieval.store import new_generation_path, open_index, publish
from retrieval.tokenize import KiwiTokenizer
from retrieval.types import Chunk
from tests.fakes import HashEmbedder, write_test_generation

ROOT = Path(__file__).resolve().parents[3]

# (group, source, page, heading, text)
DOCS = [
    ("public", "/docs/취업규칙.md", None, "제4조(연차휴가)", "연차휴가는 입사 1년 후 15일이 부여된다."),
    ("public", "/docs/취업규칙.md", None, "제5조(경조휴가)", "경조휴가는 본인 결혼 시 5일이다."),
    ("public", "/docs/복리후생.pdf", 2, None, "사내 식당은 평일 오전 11시 30분부터 운영한다."),
    ("hr", "/docs/인사비밀.txt", None, None, "연차휴가 미사용 수당은 통상임금으로 계산한다."),
    ("hr", "/docs/인사비밀.txt", None, None, "2025년 임원 연봉 인상률은 7%이다."),
    ("finance", "/docs/예산.pdf", 3, "예산", "2024년 연구개발 예산은 3억원이며 휴가비 예산은 500만원이다."),
]
CHUNKS = [
    Chunk(chunk_id=f"{source}#{i}", doc_id=source, text=text, source=source, page=page, group=group,
          title=source.rsplit("/", 1)[-1].split(".")[0] + " 문서", heading=heading, position=i)
    for i, (group, source, page, heading, text) in enumerate(DOCS)
]
QUERIES = ["연차휴가는 며칠인가요?", "휴가", "예산 3억원", "임원 연봉", "식당 운영 시간", "안녕하세요"]
METADATA_KEYS = {"score", "rank", "chunk_id", "doc_id", "source", "page", "title", "group", "heading"}
PROMPT = "다음 문서를 참고하여 답하세요:\n{context}\n\n질문: {question}"


@pytest.fixture(scope="module")
def kiwi() -> KiwiTokenizer:
    return KiwiTokenizer()


def _hybrid(index_dir: Path, chunks: list[Chunk], kiwi: KiwiTokenizer) -> HybridRetriever:
    """A retriever over a fresh published index of `chunks` (hash embedder, Kiwi BM25)."""
    embedder = HashEmbedder()
    gen = new_generation_path(index_dir)
    write_test_generation(gen, chunks, embedder, kiwi)
    publish(index_dir, gen)
    return HybridRetriever(open_index(index_dir), embedder, kiwi, fusion=FusionConfig(candidates=5))


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, kiwi: KiwiTokenizer) -> HybridRetriever:
    return _hybrid(tmp_path_factory.mktemp("index"), CHUNKS, kiwi)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['rank']}] {d.page_content} ({d.metadata['source']})" for d in docs)


# ------------------------------------------------------------------ retriever


def test_is_a_langchain_retriever(hybrid: HybridRetriever) -> None:
    assert isinstance(ChulcheoRetriever(retriever=hybrid), BaseRetriever)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
@pytest.mark.parametrize("query", QUERIES)
def test_documents_follow_search_order_and_carry_hit_metadata(hybrid, query, mode) -> None:
    docs = ChulcheoRetriever(retriever=hybrid, k=3, mode=mode).invoke(query)
    hits = hybrid.search(query, 3, mode=mode)
    assert [d.page_content for d in docs] == [h.chunk.text for h in hits]
    for doc, hit in zip(docs, hits):
        assert set(doc.metadata) == METADATA_KEYS
        assert doc.id == hit.chunk.chunk_id
        assert doc.metadata["rank"] == hit.rank
        assert doc.metadata["score"] == pytest.approx(float(hit.score))
        assert type(doc.metadata["score"]) is float  # not a numpy scalar
        for key in ("chunk_id", "doc_id", "source", "page", "title", "group", "heading"):
            assert doc.metadata[key] == getattr(hit.chunk, key)


def test_top_document_for_a_korean_question(hybrid) -> None:
    doc = ChulcheoRetriever(retriever=hybrid, k=2).invoke("연차휴가는 며칠인가요?")[0]
    assert "15일" in doc.page_content
    assert doc.metadata == {
        "score": doc.metadata["score"], "rank": 1, "chunk_id": "/docs/취업규칙.md#0",
        "doc_id": "/docs/취업규칙.md", "source": "/docs/취업규칙.md", "page": None,
        "title": "취업규칙 문서", "group": "public", "heading": "제4조(연차휴가)",
    }


def test_page_is_passed_through(hybrid) -> None:
    doc = ChulcheoRetriever(retriever=hybrid, k=1, mode="bm25").invoke("연구개발 예산 3억원")[0]
    assert (doc.metadata["source"], doc.metadata["page"]) == ("/docs/예산.pdf", 3)


@pytest.mark.parametrize("k", [1, 2, 3, 6, 20])
def test_k_is_respected(hybrid, k) -> None:
    docs = ChulcheoRetriever(retriever=hybrid, k=k, mode="dense").invoke("휴가")
    assert len(docs) == min(k, len(CHUNKS))
    assert [d.metadata["rank"] for d in docs] == list(range(1, len(docs) + 1))


@pytest.mark.parametrize("bad", [0, -1])
def test_k_must_be_positive(hybrid, bad) -> None:
    with pytest.raises(ValidationError, match="k must be >= 1"):
        ChulcheoRetriever(retriever=hybrid, k=bad)


def test_unknown_mode_fails_at_construction(hybrid) -> None:
    with pytest.raises(ValidationError, match="mode"):
        ChulcheoRetriever(retriever=hybrid, mode="semantic")


def test_retriever_must_be_searchable_or_callable() -> None:
    with pytest.raises(ValidationError, match="search"):
        ChulcheoRetriever(retriever="/srv/chulcheo/index")


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
@pytest.mark.parametrize("query", QUERIES)
def test_group_filter_never_leaks(hybrid, query, mode) -> None:
    base = ChulcheoRetriever(retriever=hybrid, k=len(CHUNKS), mode=mode)
    for groups in ({"public"}, {"hr"}, {"public", "finance"}):
        docs = base.with_filters(groups=groups).invoke(query)
        assert {d.metadata["group"] for d in docs} <= groups
        field = ChulcheoRetriever(retriever=hybrid, k=len(CHUNKS), mode=mode, filters=SearchFilters(groups=groups))
        assert [d.id for d in field.invoke(query)] == [d.id for d in docs]
    assert base.with_filters(groups=set()).invoke(query) == []


def test_with_filters_returns_a_copy(hybrid) -> None:
    base = ChulcheoRetriever(retriever=hybrid, k=3, mode="bm25", filters=SearchFilters(sources={"/docs/인사비밀.txt"}))
    narrowed = base.with_filters(groups=["hr"])
    assert narrowed is not base and narrowed.retriever is hybrid
    assert (narrowed.k, narrowed.mode) == (3, "bm25")
    assert narrowed.filters == SearchFilters(groups=frozenset({"hr"}), sources={"/docs/인사비밀.txt"})
    assert base.filters == SearchFilters(sources={"/docs/인사비밀.txt"})  # the original is untouched
    assert base.with_filters(sources=None).filters.is_unrestricted()
    with pytest.raises(TypeError, match="not a str"):
        base.with_filters(groups="hr")


def test_async_invoke_matches_sync(hybrid) -> None:
    retriever = ChulcheoRetriever(retriever=hybrid, k=3).with_filters(groups={"public"})
    assert asyncio.run(retriever.ainvoke("휴가")) == retriever.invoke("휴가")


def test_callable_picks_up_a_new_retriever(tmp_path, kiwi) -> None:
    old = _hybrid(tmp_path / "a", CHUNKS[:3], kiwi)
    added = Chunk(chunk_id="/docs/재택.md#0", doc_id="/docs/재택.md", text="재택근무는 주 2회까지 가능하다.",
                  source="/docs/재택.md")
    new = _hybrid(tmp_path / "b", [*CHUNKS[:3], added], kiwi)
    live = {"retriever": old}
    calls = []

    def current() -> HybridRetriever:
        calls.append(1)
        return live["retriever"]

    adapter = ChulcheoRetriever(retriever=current, k=1, mode="bm25")
    assert adapter.invoke("재택근무") == []
    live["retriever"] = new  # a re-index published a new generation
    assert adapter.invoke("재택근무")[0].metadata["source"] == "/docs/재택.md"
    assert len(calls) == 2  # resolved on every query, never cached


def test_pipeline_retriever_method_sees_a_reingest(tmp_path) -> None:
    from app.pipeline import Pipeline
    from app.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "취업규칙.txt").write_text("연차휴가는 입사 1년 후 15일이 부여된다.", encoding="utf-8")
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=HashEmbedder())
    pipeline.ingest([docs])
    adapter = ChulcheoRetriever(retriever=pipeline.retriever, k=1, mode="bm25")
    assert "15일" in adapter.invoke("연차휴가")[0].page_content
    assert adapter.invoke("팀장 승인") == []

    (docs / "재택.txt").write_text("재택근무는 주 2회까지 팀장 승인 후 가능하다.", encoding="utf-8")
    pipeline.ingest([docs])
    assert adapter.invoke("팀장 승인")[0].metadata["source"].endswith("재택.txt")


def test_hit_to_document_is_json_friendly(hybrid) -> None:
    import json

    doc = hit_to_document(hybrid.search("휴가", 1)[0])
    assert json.loads(json.dumps(doc.metadata, ensure_ascii=False)) == doc.metadata


# ------------------------------------------------------------------ LCEL


def test_lcel_chain_puts_the_right_chunk_and_question_in_the_prompt(hybrid) -> None:
    retriever = ChulcheoRetriever(retriever=hybrid, k=2).with_filters(groups={"public"})
    prompt = ChatPromptTemplate.from_template(PROMPT)
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | ParrotFakeChatModel()  # echoes the prompt it was given
        | StrOutputParser()
    )
    question = "연차휴가는 며칠인가요?"
    text = chain.invoke(question)
    assert text.startswith("다음 문서를 참고하여 답하세요:\n[1] 연차휴가는 입사 1년 후 15일이 부여된다. (/docs/취업규칙.md)")
    assert text.endswith(f"질문: {question}")
    assert "통상임금" not in text  # the hr chunk matches the question but is filtered out


def test_retriever_piped_into_a_formatter(hybrid) -> None:
    chain = ChulcheoRetriever(retriever=hybrid, k=1) | RunnableLambda(format_docs)
    assert chain.invoke("임원 연봉") == "[1] 2025년 임원 연봉 인상률은 7%이다. (/docs/인사비밀.txt)"
    assert chain.batch(["임원 연봉", "사내 식당"])[1].startswith("[1] 사내 식당은")


# ------------------------------------------------------------------ embeddings


def test_embeddings_are_float_lists_of_the_embedders_dim() -> None:
    embedder = HashEmbedder(dim=64)
    adapter = ChulcheoEmbeddings(embedder)
    texts = ["연차휴가는 15일이다.", "출장비는 실비로 정산한다.", "안녕하세요"]
    docs = adapter.embed_documents(texts)
    query = adapter.embed_query("연차휴가 일수")
    assert (adapter.dim, adapter.model_id) == (64, embedder.model_id)
    assert len(docs) == 3 and all(len(row) == 64 for row in docs) and len(query) == 64
    assert all(type(x) is float for row in docs for x in row) and all(type(x) is float for x in query)
    assert np.linalg.norm(docs, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(docs, embedder.embed_documents(texts), rtol=1e-6)
    np.testing.assert_allclose(query, embedder.embed_query("연차휴가 일수"), rtol=1e-6)
    assert int(np.argmax(np.asarray(docs) @ np.asarray(query))) == 0


def test_embeddings_of_no_texts() -> None:
    assert ChulcheoEmbeddings(HashEmbedder()).embed_documents([]) == []


def test_embeddings_async_defaults() -> None:
    adapter = ChulcheoEmbeddings(HashEmbedder())
    assert asyncio.run(adapter.aembed_query("안녕하세요")) == adapter.embed_query("안녕하세요")
    assert asyncio.run(adapter.aembed_documents(["억원", "만원"])) == adapter.embed_documents(["억원", "만원"])


# ------------------------------------------------------------------ packaging


def test_import_retrieval_does_not_load_langchain() -> None:
    code = "import sys, retrieval; print(sorted(m for m in sys.modules if m.startswith('langchain')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
