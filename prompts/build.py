"""Build chat messages from retrieved hits, fitted to the model's context window.

build_qa_messages("연차휴가는 며칠인가요?", hits, count_tokens, budget=3000)
  -> QAPrompt(messages=[system, user], passages=[hit1, hit2, ...])  # [n] = passages[n-1]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from generation.types import Message
from retrieval.types import Hit

from . import templates
from .injection import neutralize

CountTokens = Callable[[str], int]


class Focus(Protocol):
    """How to cut passages down to the sentences that matter for a question.

    sentences("A. B.") -> ["A.", "B."]; terms("연차휴가는 며칠?") -> {"연차", "휴가", "며칠"}.
    """

    def sentences(self, text: str) -> list[str]: ...

    def terms(self, text: str) -> set[str]: ...


@dataclass(frozen=True)
class QAPrompt:
    """The messages to send and the hits behind each source number ([n] is passages[n-1])."""

    messages: list[Message]
    passages: list[Hit]


def passage_title(hit: Hit) -> str:
    """"취업규칙.md" or "보고서.pdf, 3쪽" — what the model sees as the source's name."""
    chunk = hit.chunk
    title = chunk.source.rsplit("/", 1)[-1]
    if chunk.page is not None:
        title += f", {chunk.page}쪽"
    return title


def short_title(hit: Hit) -> str:
    """The source's name as the focused prompt shows it: the file name without folder, sort
    number, extension or page, underscores read as spaces.

    short_title(<hit of "docs/02_출장비_지급_지침.pdf", page 2>) -> "출장비 지급 지침"
    The model cites sources by number; the name only tells it what kind of document a sentence
    comes from, and each of its tokens is read before the first answer token (~20 ms each).
    """
    name = hit.chunk.source.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    short = _SORT_PREFIX.sub("", stem).replace("_", " ").strip()
    return short or stem


_SORT_PREFIX = re.compile(r"^\d{1,3}[_.\- ]+(?=\S)")


def format_passage(n: int, hit: Hit) -> str:
    """"[1] (취업규칙.md)\n…" — sentences that give the model orders are hidden (prompt injection)."""
    return templates.PASSAGE.format(n=n, title=passage_title(hit), text=neutralize(hit.chunk.text.strip()))


def fit_passages(
    hits: Sequence[Hit], count_tokens: CountTokens, budget: int, min_tokens: int = 48
) -> list[tuple[Hit, str]]:
    """Keep hits in rank order while their formatted text fits `budget` tokens.

    The first passage that does not fit whole is cut at a sentence or line boundary if at
    least `min_tokens` remain; later hits are dropped (a lower rank never displaces a higher).
    Returns (hit, text shown to the model) pairs.
    """
    kept: list[tuple[Hit, str]] = []
    used = 0
    for hit in hits:
        text = format_passage(len(kept) + 1, hit)
        cost = count_tokens(text) + 1
        if used + cost <= budget:
            kept.append((hit, text))
            used += cost
            continue
        left = budget - used
        if left >= min_tokens:
            cut = _truncate(text, count_tokens, left - 1)
            if cut:
                kept.append((hit, cut))
        break
    return kept


def _truncate(text: str, count_tokens: CountTokens, budget: int) -> str:
    """Longest prefix ending at a sentence/line boundary that fits; '' if none."""
    cuts = [i + 1 for i, ch in enumerate(text) if ch in ".?!\n。"]
    best = ""
    for end in cuts:
        candidate = text[:end].rstrip()
        if count_tokens(candidate) > budget:
            break
        best = candidate
    return best


def focus_passages(
    question: str, hits: Sequence[Hit], count_tokens: CountTokens, budget: int, focus: Focus
) -> list[tuple[Hit, str]]:
    """The passages cut to the sentences sharing most terms with the question, within `budget` tokens.

    Used when the passages do not fit whole: every prompt token costs time to first token on
    a CPU (~100 tokens/s for the 1.5B model), and the answer to a question is nearly always in
    the sentences that share its words. Sentences are taken best first (question terms they
    contain; a higher-ranked passage wins ties), then shown in their original order, with
    " … " where sentences were left out. Passages with no chosen sentence are dropped and the
    rest renumbered, so [n] still names passages[n-1]. Returns (hit, text shown) pairs.
    """
    wanted = focus.terms(question)
    candidates: list[tuple[float, int, int, str]] = []  # (-score, rank, position, sentence)
    split = [focus.sentences(neutralize(hit.chunk.text.strip())) for hit in hits]
    for rank, sentences in enumerate(split):
        for pos, sentence in enumerate(sentences):
            shared = len(wanted & focus.terms(sentence))
            candidates.append((-shared, rank, pos, sentence))
    candidates.sort()
    chosen: dict[int, set[int]] = {}
    used = 0
    for negative, rank, pos, sentence in candidates:
        if negative == 0 and chosen:
            break  # sentences without a question term only when nothing else was found
        header = 0 if rank in chosen else count_tokens(_header(len(chosen) + 1, hits[rank])) + 2
        cost = header + count_tokens(sentence) + 1
        if used + cost > budget:
            continue
        chosen.setdefault(rank, set()).add(pos)
        used += cost
    kept: list[tuple[Hit, str]] = []
    for rank in sorted(chosen):
        positions = sorted(chosen[rank])
        parts = [split[rank][positions[0]]]
        for before, pos in zip(positions, positions[1:]):
            parts.append((" " if pos == before + 1 else " … ") + split[rank][pos])
        text = "".join(parts)
        if positions[0] > 0:
            text = "… " + text
        if positions[-1] < len(split[rank]) - 1:
            text += " …"
        kept.append((hits[rank], _header(len(kept) + 1, hits[rank]) + "\n" + text))
    return kept


def _header(n: int, hit: Hit) -> str:
    return templates.PASSAGE.format(n=n, title=passage_title(hit), text="").rstrip("\n")


def build_qa_messages(
    question: str,
    hits: Sequence[Hit],
    count_tokens: CountTokens,
    context_size: int,
    reserve_tokens: int = 320,
    *,
    passage_tokens: int | None = None,
    focus: Focus | None = None,
) -> QAPrompt:
    """System, a worked example, and the user message with numbered passages, fitted to `context_size`.

    `reserve_tokens` is kept free for the answer and the chat template's own tokens.
    `passage_tokens` caps the passages' share of the prompt (time to first token grows with
    it); passages over the cap are cut to their most relevant sentences when a `focus` is
    given, else cut in rank order. The system message and the example come first and never
    change, so llama.cpp reuses their KV cache from one question to the next.
    """
    system = templates.SYSTEM
    frame = templates.QA.format(passages="", question=question)
    example = [Message("user", templates.EXAMPLE_USER), Message("assistant", templates.EXAMPLE_ASSISTANT)]
    fixed = [system, frame] + [m.content for m in example]
    budget = max(context_size - reserve_tokens - sum(count_tokens(t) for t in fixed), 0)
    if passage_tokens is not None:
        budget = min(budget, passage_tokens)
    kept = fit_passages(hits, count_tokens, budget, min_tokens=budget + 1)  # whole passages only
    if len(kept) < len(hits):
        if focus is not None:
            kept = focus_passages(question, hits, count_tokens, budget, focus)
        else:
            kept = fit_passages(hits, count_tokens, budget)
    passages = "\n\n".join(text for _, text in kept)
    user = templates.QA.format(passages=passages, question=question)
    return QAPrompt(
        messages=[Message("system", system), *example, Message("user", user)],
        passages=[hit for hit, _ in kept],
    )


def build_unit_messages(question: str, groups: Sequence[tuple[Hit, Sequence[str]]]) -> QAPrompt:
    """The focused prompt: per source, only the sentences picked for the question's parts.

    build_unit_messages("연차휴가는 며칠인가요?", [(hit, ["… 15일의 유급 연차휴가를 준다."])])
      -> QAPrompt(messages=[system, example user, example assistant, user], passages=[hit])
    Sentences that give the model orders are hidden (prompt injection). The system message and
    the example never change, so llama.cpp reuses their KV cache from one question to the next.
    """
    blocks = [
        templates.PASSAGE.format(n=n, title=short_title(hit), text="\n".join(neutralize(t.strip()) for t in texts))
        for n, (hit, texts) in enumerate(groups, 1)
    ]
    user = templates.QA.format(passages="\n\n".join(blocks), question=question)
    example = [Message("user", templates.EXAMPLE_UNITS_USER), Message("assistant", templates.EXAMPLE_UNITS_ASSISTANT)]
    return QAPrompt(
        messages=[Message("system", templates.SYSTEM_UNITS), *example, Message("user", user)],
        passages=[hit for hit, _ in groups],
    )


def not_found_note(part: str) -> str:
    """What is said for a part nothing answers.

    not_found_note("일비는 하루 얼마인가요?") -> "질문 중 '일비는 하루 얼마인가요'에 대한 내용은 문서에서 찾지 못했습니다."
    """
    return templates.NOT_FOUND.format(part=part.strip().rstrip("?？.,"))


def build_condense_messages(question: str, history: Sequence[Message], max_turns: int = 6) -> list[Message]:
    """Messages asking the model to rewrite a follow-up as a standalone question."""
    lines = [
        f"{templates.HISTORY_TURN.get(m.role, m.role)}: {m.content.strip()}"
        for m in list(history)[-max_turns:]
        if m.role in ("user", "assistant")
    ]
    user = templates.CONDENSE.format(history="\n".join(lines), question=question)
    return [Message("system", templates.CONDENSE_SYSTEM), Message("user", user)]
