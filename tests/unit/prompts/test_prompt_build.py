"""Prompt builders: numbered passages in rank order, fitted to the window by token count."""

from __future__ import annotations

from generation.types import Message
from prompts import ABSTAIN, build_condense_messages, build_qa_messages, fit_passages, passage_title
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


def test_condense_prompt_carries_recent_history():
    history = [Message("user", f"질문 {i}") for i in range(10)]
    system, user = build_condense_messages("그럼 병가는요?", history, max_turns=3)
    assert system.role == "system" and "독립된" in system.content
    assert "질문 9" in user.content and "질문 6" not in user.content
    assert "후속 질문: 그럼 병가는요?" in user.content
