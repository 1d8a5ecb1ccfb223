"""Composing the answer over the sample corpus with a scripted LLM: every part answered in
whole, verified sentences, within the budget; what the checker refuses never reaches the user."""

from __future__ import annotations

from tests.unit.answer.test_answering import index_dir, make  # noqa: F401  (module fixture)


def test_a_cap_does_not_answer_how_many_days(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    # "25일을 한도로 한다" is in the source, but it caps total leave: not the days granted
    pipeline, _ = make(index_dir, ["총 휴가 일수는 25일을 한도로 한다."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    first = answer.sentences[0]
    assert first.supported is False and first.reasons == ["question_type"]
    assert "15일" in answer.answer and not answer.abstained
    assert answer.answer.index("15일") < answer.answer.index("[1]")


def test_a_sentence_that_only_repeats_the_question_is_not_shown(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    pipeline, _ = make(index_dir, ["연차휴가는 며칠인지 안내합니다."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    first = answer.sentences[0]
    assert first.supported is False and "non_answer" in first.reasons or "coverage" in first.reasons
    assert "안내합니다" not in answer.answer
    assert "15일" in answer.answer


def test_every_part_is_answered_or_named_as_not_found(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    pipeline, _ = make(index_dir, ["연차휴가는 15일입니다 [1]."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠이고, 주차권 발급 비용은 얼마인가요?")
    assert answer.answer.startswith("연차휴가는 15일입니다 [1].")
    notes = [s for s in answer.sentences if s.not_found]
    assert len(notes) == 1 and "주차권 발급 비용" in notes[0].text
    assert notes[0].text in answer.answer and not answer.abstained


def test_a_part_the_model_skipped_is_quoted_whole_and_cited(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    pipeline, _ = make(index_dir, ["연차휴가는 15일입니다 [1]."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠이고, 병가는 며칠까지 쓸 수 있나요?")
    quoted = [s for s in answer.sentences if s.quoted]
    assert quoted and "60일" in quoted[0].text
    (n,) = quoted[0].citations
    citation = answer.citations[n - 1]
    # a whole source sentence: it starts the unit and ends with the sentence
    hit = next(h for h in answer.hits if h.chunk.chunk_id == citation.chunk_id)
    assert hit.chunk.text[citation.start : citation.end] == citation.quote
    assert citation.quote.rstrip().endswith(".")


def test_the_clause_an_answer_relies_on_is_highlighted_inside_its_quote(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    pipeline, _ = make(index_dir, ["점심시간은 낮 12시부터 오후 1시까지입니다."], shared_kiwi, monkeypatch)
    answer = pipeline.ask("점심시간은 언제인가요?")
    assert answer.sentences[0].supported
    citation = answer.citations[answer.sentences[0].citations[0] - 1]
    hit = next(h for h in answer.hits if h.chunk.chunk_id == citation.chunk_id)
    assert "출근 시각은 오전 9시" in citation.quote  # the whole source sentence is quoted ...
    marked = hit.chunk.text[citation.highlight_start : citation.highlight_end]
    assert marked.rstrip(".") == "점심시간은 낮 12시부터 오후 1시까지이다"  # ... and the clause relied on singled out
    assert citation.start <= citation.highlight_start < citation.highlight_end <= citation.end


def test_the_budget_bounds_the_answer(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    draft = "재택근무는 주 2일까지 허용됩니다. 연차휴가는 15일입니다. 병가는 연간 60일 이내입니다."
    pipeline, _ = make(index_dir, [draft], shared_kiwi, monkeypatch, max_sentences=1)
    answer = pipeline.ask("재택근무는 며칠까지 할 수 있나요?")
    shown = [s for s in answer.sentences if s.supported]
    assert len(shown) == 1 and answer.answer == "재택근무는 주 2일까지 허용됩니다 [1]."
    assert all(s.reasons == ["budget"] for s in answer.sentences[1:] if not s.supported and "budget" in s.reasons)
    assert any(s.reasons == ["budget"] for s in answer.sentences)


def test_a_looping_model_is_stopped_and_counted(index_dir, shared_kiwi, monkeypatch):  # noqa: F811
    loop = "연차휴가는 15일입니다. " + "초3은 중1 단계이며, " * 40
    pipeline, _ = make(index_dir, [loop], shared_kiwi, monkeypatch)
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    assert answer.loop_stopped is True
    assert "초3" not in answer.answer and "15일" in answer.answer
    assert answer.draft.count("초3은") < 10
