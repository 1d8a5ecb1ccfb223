"""Prompt builders: numbered passages in rank order, fitted to the window by token count."""

from __future__ import annotations

from generation.types import Message
from prompts import ABSTAIN, build_condense_messages, build_qa_messages, build_unit_messages, fit_passages, focus_passages, passage_title
from prompts import templates
from retrieval.types import Chunk, Hit


def hit(n: int, text: str, page: int | None = None) -> Hit:
    chunk = Chunk(chunk_id=f"doc{n}#0", doc_id=f"doc{n}", text=text, source=f"/docs/규정{n}.pdf", page=page)
    return Hit(chunk, score=1.0 / n, rank=n)


def chars(text: str) -> int:  # one token per character: easy to reason about
    return len(text)


def test_passages_are_numbered_in_rank_order_with_their_source():
    hits = [hit(1, "연차휴가는 15일이다.", page=3), hit(2, "병가는 60일 이내이다.")]
    prompt = build_qa_messages("연차휴가는 며칠인가요?", hits, chars, context_size=4096)
    system, example_q, example_a, user = prompt.messages
    assert system == Message("system", templates.SYSTEM) and ABSTAIN in system.content
    assert (example_q.role, example_a.role) == ("user", "assistant") and "[1]" in example_a.content
    assert "[1] (규정1.pdf, 3쪽)\n연차휴가는 15일이다." in user.content
    assert "[2] (규정2.pdf)\n병가는 60일 이내이다." in user.content
    assert user.content.index("[1]") < user.content.index("[2]")
    assert user.content.rstrip().endswith("질문: 연차휴가는 며칠인가요?\n\n답변:")
    assert prompt.passages == hits


def test_focused_prompt_names_sources_shortly_and_numbers_them_in_order():
    hits = [Hit(Chunk(chunk_id="a#0", doc_id="a", text="-", source="/docs/02_출장비_지급_지침.pdf", page=2), 1.0, 1),
            Hit(Chunk(chunk_id="b#0", doc_id="b", text="-", source="/docs/2024_상반기_보고서.hwpx"), 0.5, 2)]
    prompt = build_unit_messages("일비는 얼마인가요?", [(hits[0], ["일비는 2만 원이다."]), (hits[1], ["매출은 10억 원이다."])])
    user = prompt.messages[-1].content
    # no folder, sort number, extension or page (the model cites by number); a year stays
    assert "[1] (출장비 지급 지침)\n일비는 2만 원이다." in user
    assert "[2] (2024 상반기 보고서)\n매출은 10억 원이다." in user
    assert prompt.messages[0] == Message("system", templates.SYSTEM_UNITS) and prompt.passages == hits


def test_window_drops_lower_ranks_and_cuts_at_a_sentence():
    long = "가" * 30 + ". " + "나" * 30 + ". " + "다" * 30 + "."
    hits = [hit(1, "짧은 첫 문서이다."), hit(2, long), hit(3, "세 번째 문서이다.")]
    first = len(f"[1] ({passage_title(hits[0])})\n짧은 첫 문서이다.") + 1
    kept = fit_passages(hits, chars, budget=first + 60)
    assert [h.rank for h, _ in kept] == [1, 2]  # the third never displaces or follows a cut one
    cut = kept[1][1]
    assert cut.endswith(".") and "나" not in cut and len(cut) + 1 <= 60
    assert fit_passages(hits, chars, budget=first + 10) == kept[:1]  # too little left for a cut


def test_prompt_fits_the_context_size():
    hits = [hit(i, "연차휴가 규정 문장입니다. " * 40) for i in range(1, 8)]
    for size in (1024, 2048):
        prompt = build_qa_messages("연차휴가는?", hits, chars, context_size=size, reserve_tokens=200)
        assert sum(len(m.content) for m in prompt.messages) <= size - 200
        assert 1 <= len(prompt.passages) < len(hits)


class WordFocus:
    """A Focus without Kiwi: sentences end with '.', terms are the words (particles dropped)."""

    def sentences(self, text):
        return [s.strip() + "." for s in text.split(".") if s.strip()]

    def terms(self, text):
        return {w.rstrip(".?").removesuffix("는").removesuffix("은") for w in text.split()}


FILLER = "회사는 직원의 복지를 위해 여러 제도를 둔다. "


def test_passages_over_the_cap_are_cut_to_the_sentences_with_question_words():
    hits = [
        hit(1, FILLER * 3 + "연차휴가 일수는 15일이다. " + FILLER * 3),
        hit(2, FILLER * 4),
        hit(3, "병가는 60일이다. " + FILLER + "연차휴가 신청은 3일 전까지 한다."),
    ]
    whole = build_qa_messages("연차휴가 일수는?", hits, chars, context_size=4096)
    assert whole.passages == hits  # under the context window and no cap: passages stay whole
    prompt = build_qa_messages("연차휴가 일수는?", hits, chars, context_size=4096,
                               passage_tokens=90, focus=WordFocus())
    user = prompt.messages[-1].content
    passages = user[user.index("출처:\n") + 4 : user.index("\n\n질문:")]
    assert len(passages) <= 90
    assert prompt.passages == [hits[0], hits[2]]  # the filler-only passage is dropped ...
    assert "[1] (규정1.pdf)\n… 연차휴가 일수는 15일이다. …" in user  # ... the rest renumbered
    assert "[2] (규정3.pdf)\n… 연차휴가 신청은 3일 전까지 한다." in user
    assert "병가" not in user and FILLER.strip() not in user


def test_focus_keeps_document_order_and_marks_gaps():
    text = "가 연차. 나 무관. 다 연차 휴가. 라 휴가."
    kept = focus_passages("연차 휴가", [hit(1, text)], chars, budget=40, focus=WordFocus())
    assert len(kept) == 1
    assert kept[0][1].endswith("\n가 연차. … 다 연차 휴가. 라 휴가.")  # best first, shown in order


def test_focus_without_shared_words_takes_the_top_passage_from_its_start():
    hits = [hit(1, "첫 문장. 둘째 문장. 셋째 문장."), hit(2, "다른 문서.")]
    kept = focus_passages("무엇인가요", hits, chars, budget=30, focus=WordFocus())
    assert [h for h, _ in kept] == [hits[0]] and kept[0][1].endswith("\n첫 문장. …")


def test_without_focus_the_cap_cuts_in_rank_order():
    hits = [hit(1, FILLER * 2), hit(2, "연차휴가는 15일이다.")]
    prompt = build_qa_messages("연차휴가는?", hits, chars, context_size=4096, passage_tokens=70)
    assert prompt.passages == [hits[0]]


def test_condense_prompt_carries_recent_history():
    history = [Message("user", f"질문 {i}") for i in range(10)]
    system, user = build_condense_messages("그럼 병가는요?", history, max_turns=3)
    assert system.role == "system" and "독립된" in system.content
    assert "질문 9" in user.content and "질문 6" not in user.content
    assert "후속 질문: 그럼 병가는요?" in user.content
