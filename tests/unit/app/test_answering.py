"""Pipeline.ask / stream with a scripted LLM over the sample corpus: what reaches the user is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.pipeline import Pipeline
from app.settings import Settings
from generation.scripted import ScriptedGenerator
from generation.types import Message
from prompts import ABSTAIN
from tests.fakes import HashEmbedder

SAMPLE = Path(__file__).resolve().parents[3] / "sample_corpus"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, shared_kiwi):
    import kiwipiepy

    path = tmp_path_factory.mktemp("answer-index")
    mp = pytest.MonkeyPatch()
    mp.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    Pipeline(Settings(index_dir=path), embedder=HashEmbedder()).ingest([SAMPLE])
    mp.undo()
    return path


def make(index_dir, replies, shared_kiwi, monkeypatch, **answer):
    import kiwipiepy

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    settings = Settings(index_dir=index_dir, answer={"similarity": False, **answer})
    generator = ScriptedGenerator(replies)
    return Pipeline(settings, embedder=HashEmbedder(), generator=generator), generator


def test_supported_answer_is_cited_with_exact_quote(index_dir, shared_kiwi, monkeypatch):
    pipeline, gen = make(index_dir, ["연차휴가는 15일입니다 [1]."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    assert answer.mode == "generated" and not answer.abstained
    assert answer.answer == "연차휴가는 15일입니다 [1]."
    (citation,) = answer.citations
    hit = next(h for h in answer.hits if h.chunk.chunk_id == citation.chunk_id)
    assert citation.source.endswith("취업규칙.md")
    assert hit.chunk.text[citation.start : citation.end] == citation.quote
    assert "15일의 유급 연차휴가" in citation.quote
    # the model saw numbered passages and the question
    system, example_q, example_a, user = gen.calls[0]
    assert system.role == "system" and (example_q.role, example_a.role) == ("user", "assistant")
    assert user.role == "user" and "[1]" in user.content and "연차휴가는 며칠인가요?" in user.content
    assert {"retrieve", "first_token", "generate", "ground", "total", "first_sentence"} <= set(answer.timings)


def test_wrong_number_never_reaches_the_user(index_dir, shared_kiwi, monkeypatch):
    pipeline, _ = make(index_dir, ["연차휴가는 16일입니다."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    assert "16일" not in answer.answer
    assert answer.sentences[0].supported is False and "numbers" in answer.sentences[0].reasons
    assert answer.mode in ("extractive", "abstained")
    if answer.mode == "extractive":
        assert "15일" in answer.answer and answer.citations


def test_reversed_negation_is_removed_and_the_rest_kept(index_dir, shared_kiwi, monkeypatch):
    draft = "재택근무는 주 2일까지 허용됩니다. 수습 직원도 재택근무를 할 수 있습니다."
    pipeline, _ = make(index_dir, [draft], shared_kiwi, monkeypatch)
    answer = pipeline.ask("재택근무는 며칠까지 할 수 있나요?")
    assert [s.supported for s in answer.sentences] == [True, False]
    assert answer.sentences[1].reasons == ["negation"]
    assert answer.answer == "재택근무는 주 2일까지 허용됩니다 [1]."


def test_stream_yields_checked_sentences_then_the_answer(index_dir, shared_kiwi, monkeypatch):
    draft = "재택근무는 주 2일까지 허용됩니다. 고객 정보를 다루는 업무는 재택근무가 불가합니다."
    pipeline, _ = make(index_dir, [draft, draft], shared_kiwi, monkeypatch)
    events = list(pipeline.stream("재택근무 규정은?"))
    assert [e.kind for e in events] == ["sentence", "sentence", "answer"]
    assert events[0].text == "재택근무는 주 2일까지 허용됩니다 [1]."
    final = events[-1].answer
    assert final.answer == pipeline.ask("재택근무 규정은?").answer
    assert final.answer == " ".join(e.text for e in events[:-1])


def test_model_abstention_with_weak_sources_abstains(index_dir, shared_kiwi, monkeypatch):
    pipeline, _ = make(index_dir, [ABSTAIN], shared_kiwi, monkeypatch)
    answer = pipeline.ask("사내 주차장은 몇 층에 있나요?")
    assert answer.abstained and answer.answer == ABSTAIN and answer.citations == []


def test_group_filter_without_access_abstains_without_calling_the_model(index_dir, shared_kiwi, monkeypatch):
    pipeline, gen = make(index_dir, ["연차휴가는 15일입니다."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?", groups=["임원"])
    assert answer.hits == [] and answer.abstained and gen.calls == []


def test_follow_up_is_condensed_by_the_llm(index_dir, shared_kiwi, monkeypatch):
    replies = ["수습 직원도 재택근무를 할 수 있나요?", "수습 직원은 재택근무를 할 수 없습니다."]
    pipeline, gen = make(index_dir, replies, shared_kiwi, monkeypatch)
    history = [{"role": "user", "content": "재택근무는 며칠까지 되나요?"},
               {"role": "assistant", "content": "재택근무는 주 2일까지 허용됩니다 [1]."}]
    answer = pipeline.ask("수습 직원도 되나요?", history=history)
    assert answer.query == "수습 직원도 재택근무를 할 수 있나요?"
    assert "재택근무는 며칠까지 되나요?" in gen.calls[0][1].content  # the condense prompt saw history
    assert answer.answer == "수습 직원은 재택근무를 할 수 없습니다 [1]."


def test_follow_up_falls_back_to_rules_when_the_rewrite_is_unusable(index_dir, shared_kiwi, monkeypatch):
    replies = ["", "수습 직원은 재택근무를 할 수 없습니다."]
    pipeline, _ = make(index_dir, replies, shared_kiwi, monkeypatch)
    history = [Message("user", "재택근무는 며칠까지 되나요?"), Message("assistant", "주 2일입니다.")]
    answer = pipeline.ask("수습 직원도 되나요?", history=history)
    assert answer.query.startswith("재택근무") and answer.query.endswith("수습 직원도 되나요?")


def test_empty_question_is_a_clear_error(index_dir, shared_kiwi, monkeypatch):
    pipeline, _ = make(index_dir, [], shared_kiwi, monkeypatch)
    with pytest.raises(ValueError, match="question"):
        pipeline.ask("   ")


def test_dense_index_kind_follows_settings(tmp_path, shared_kiwi, monkeypatch):
    import kiwipiepy

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    for kind in ("hnsw", "flat"):
        settings = Settings(index_dir=tmp_path / kind, retrieval={"dense_index": kind, "hnsw_ef_search": 40})
        pipeline = Pipeline(settings, embedder=HashEmbedder())
        pipeline.ingest([SAMPLE])
        dense = pipeline.retriever().generation.dense
        assert dense.kind == kind
        assert dense.ef_search == (40 if kind == "hnsw" else None)
        assert pipeline.search("연차휴가는 며칠인가요?", 3)[0].chunk.source.endswith("취업규칙.md")
