"""Metrics for long-form gold answers (issue 16): what an employee reading the answer gets.

key_recall(kiwi, "연차휴가는 15일이며 최대 25일까지 늘어난다.", "연차휴가는 15일이다.")   -> 0.5
fragment("다) 이와 같이 구 관세법 시행령 제19조 제2항은 수입물품의", kiwi)                   -> True
non_answer(kiwi, "연차휴가에 대해 설명합니다.", "연차휴가는 며칠인가요?")                      -> True

Content morphemes are Kiwi's nouns, numbers, foreign words and verb/adjective stems; the
answer's [n] markers and the withheld/notice lines are never counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from grounding.checks import CUT_END_TAGS

# Kiwi tags counted as content: common/proper/bound nouns, numbers, foreign and Hanja words,
# verb and adjective stems (as their lemma), roots. Particles, endings and punctuation are not.
# Bound nouns count: they carry the units ("15일" vs "15명", "억원").
CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "SN", "SL", "SH", "VV", "VA", "XR", "VV-R", "VA-R", "VV-I", "VA-I")
# Words that talk about the answer instead of giving one ("…을 다음과 같이 상세히 설명합니다").
META = frozenset({"설명", "다음", "같다", "상세", "상세히", "내용", "아래", "정리", "요약", "안내", "대하다",
                  "관하다", "말씀", "드리다", "답변", "질문", "있다", "하다", "되다", "것", "수", "등", "경우",
                  "특징", "기능", "소개", "알리다", "보다"})
# A shown sentence that ends in one of these is cut: a particle, a connective ending, a
# conjunctive adverb, or a comma (Kiwi tags of the last token).
FRAGMENT_END_TAGS = CUT_END_TAGS  # the answering stage refuses drafted sentences that end so
_MARKER = re.compile(r"\s*\[\d+\]")


def content_morphemes(kiwi, text: str) -> set[str]:
    """The set of content morphemes of `text` ("15일이다" -> {"15", "일"})."""
    text = _MARKER.sub("", text)
    if not text.strip():
        return set()
    out = set()
    for token in kiwi.tokenize(text):
        if token.tag in CONTENT_TAGS:
            form = token.lemma if token.tag.startswith(("VV", "VA")) and hasattr(token, "lemma") else token.form
            out.add(form.lower())
    return out


def key_recall(kiwi, answer: str, gold: str) -> float:
    """Share of the gold answer's content morphemes that the answer holds (1.0 for an empty gold)."""
    wanted = content_morphemes(kiwi, gold)
    if not wanted:
        return 1.0
    return len(wanted & content_morphemes(kiwi, answer)) / len(wanted)


def fragment(sentence: str, kiwi, source: str | None = None) -> bool:
    """Whether a shown sentence or quote is cut: it ends in a comma, a particle, a connective
    ending or a conjunction, or `source` (the text it was quoted from) continues inside the
    same word right after it."""
    text = _MARKER.sub("", sentence).strip()
    if not text:
        return False
    if text.endswith((",", "，", "、")):
        return True
    tokens = [t for t in kiwi.tokenize(text) if t.tag not in ("SF", "SS", "SE", "SW")]
    if tokens and tokens[-1].tag in FRAGMENT_END_TAGS:
        return True
    if source:
        at = source.find(text)
        if at >= 0:
            after = source[at + len(text): at + len(text) + 1]
            if after and (after.isalnum()) and text[-1].isalnum():
                return True
    return False


def non_answer(kiwi, sentence: str, question: str) -> bool:
    """A sentence whose content morphemes all come from the question (words about the answer
    itself, such as 설명 or 다음과 같이, aside) adds nothing."""
    said = content_morphemes(kiwi, sentence) - META
    return said <= content_morphemes(kiwi, question)


def shown_sentences(answer) -> list[tuple[str, str | None]]:
    """(text, source text or None) of each sentence an employee reads in an Answer: supported
    drafted sentences and quotes (with the hit text they were quoted from)."""
    texts = {h.chunk.chunk_id: h.chunk.text for h in answer.hits}
    quotes = {c.quote: texts.get(c.chunk_id) for c in answer.citations}
    out = []
    for s in answer.sentences:
        if not s.supported:
            continue
        out.append((s.text, quotes.get(s.text.strip()) if s.quoted else None))
    return out


def reader_figures(kiwi, shown: Sequence[tuple[str, str | None]], text: str, question: dict[str, Any]) -> dict[str, Any]:
    """Per-question figures of what an employee reads: `shown` (sentence, source or None) pairs
    and the whole shown `text` ("" for an abstention), scored against `question`.

    -> {"shown_sentences": 2, "fragments": 0, "non_answers": 0, "answer_chars": 41, "key_recall": 0.67}
    (key_recall only when the question has a long-form gold "answer").
    """
    figures: dict[str, Any] = {
        "shown_sentences": len(shown),
        "fragments": sum(fragment(sentence, kiwi, source) for sentence, source in shown),
        "non_answers": sum(non_answer(kiwi, sentence, question["query"]) for sentence, _ in shown),
        "answer_chars": len(text),
    }
    if question.get("answer"):
        figures["key_recall"] = round(key_recall(kiwi, text, question["answer"]), 4) if text else 0.0
    return figures


def reader_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Over rows of `reader_figures`: mean key recall (long-form gold only), the share of shown
    sentences that are fragments or non-answers, and the median length of the answers given
    (rows with "abstained": true are left out of the length)."""
    shown = sum(r["shown_sentences"] for r in rows)
    recalls = [r["key_recall"] for r in rows if "key_recall" in r]
    lengths = [r["answer_chars"] for r in rows if not r.get("abstained", False)]
    return {
        "key_recall": round(sum(recalls) / len(recalls), 4) if recalls else None,
        "fragment_rate": round(sum(r["fragments"] for r in rows) / shown, 4) if shown else None,
        "non_answer_rate": round(sum(r["non_answers"] for r in rows) / shown, 4) if shown else None,
        "answer_chars_p50": percentile(lengths, 50),
    }


def rate(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """percentile([1, 2, 3, 10], 50) -> 2.5; None for no values."""
    return round(float(np.percentile(values, q)), 3) if values else None
