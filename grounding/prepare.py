"""Passages made ready for checking: morphemes, sentences and windows of adjacent sentences.

prepare_passages(kiwi, splitter, [Passage("p1", "연차는 15일이다. 병가는 없다.")], window=2, check=lambda: None)
  -> [Prepared(windows=[Window(0, 0, 10), Window(0, 0, 17), Window(0, 11, 17)], ...)]

Big texts are read in blocks of about 2,000 characters, with `check` (the caller's
cancellation point) called between blocks, so a stop request lands within a fraction of a
second even for a 100,000-character passage (Kiwi reads ~25,000 characters a second).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.chunk import SentenceSplitter, Span
from ingest.reflow import figure_row
from prompts.injection import instruction_spans, is_instruction, neutralize

from .checks import Analysis, Morph, analyze
from .numbers import Quantity, declared_units, extract_quantities, header_unit_figures, in_declared_units
from .types import Passage

BLOCK_CHARS = 2_000
CHECK_EVERY = 64  # windows or sentences between two check points inside a loop
_SENTENCE_GAP = re.compile(r"[.!?。！？]\s")
# A bullet or numbered item at the start of a line (never a heading): ○ - ※ 1) 가) ①
BULLET = re.compile(r"^\s*(?:[○●•·\-–※*]|\(?\d{1,2}\)|[가-하]\)|[①-⑳])")
HEADING_REACH = 150  # characters above a span searched for the heading it stands under
_WORD = re.compile(r"[가-힣A-Za-z]")


def is_row(text: str) -> bool:
    """A table row: cells separated by | or tabs, or a row of figures ("임원 30,000 40,000 120,000")."""
    return "\t" in text or text.count("|") >= 2 or figure_row(text)


def has_words(text: str) -> bool:
    """has_words("- 2 -") -> False: a page number or a row of symbols says nothing to quote."""
    return bool(_WORD.search(text))


@dataclass
class Window:
    """Up to `window` adjacent source sentences: the span a claim is checked against."""

    passage: int
    start: int
    end: int
    analysis: Analysis
    sentences: list[Analysis]
    quantities: list[Quantity]
    evidence: Analysis  # the window plus its document's title/heading, what coverage reads
    # numbers of that title/heading ("제3차 경영위원회 회의록"): a sentence may restate them
    context_quantities: list[Quantity] = field(default_factory=list)


@dataclass
class Prepared:
    passage: Passage
    analysis: Analysis
    evidence: Analysis  # the whole passage plus title/heading, for the entity check
    windows: list[Window]


def prepare_passages(
    kiwi, splitter: SentenceSplitter, passages: Sequence[Passage], window: int, check: Callable[[], None]
) -> list[Prepared]:
    """Analyse each passage once; `check()` is called between passages, blocks and every few sentences.

    A sentence that gives the AI orders, or any piece of one, never enters a window: it is
    never evidence and never quoted (prompt injection).
    """
    prepared = []
    for i, p in enumerate(passages):
        check()
        spans, analysis = analyze_blocks(kiwi, splitter, p.text, check)
        context_text = neutralize(p.context, "") if p.context else ""  # a heading that gives orders is no evidence
        context = analyze(kiwi, context_text) if context_text else None
        orders = [_core(p.text, a, b) for a, b in instruction_spans(p.text, check)]
        ordered = [is_instruction(p.text[s.start : s.end]) or _overlaps(s, orders) for s in spans]
        sents = []
        for n, s in enumerate(spans):
            if n % CHECK_EVERY == 0:
                check()
            sents.append(analysis.slice(s.start, s.end))
        windows = []
        rows = [is_row(p.text[s.start : s.end]) for s in spans]
        for a in range(len(spans)):
            if a % CHECK_EVERY == 0:
                check()
            for b in range(a, min(a + window, len(spans))):
                if any(ordered[a : b + 1]):
                    break
                start, end = spans[a].start, spans[b].end
                span = analysis.slice(start, end)
                quantities = extract_quantities(p.text[start:end])
                if all(rows[a : b + 1]):
                    # "(단위: 억원)" above the rows, or in the caption the rows are chunked under
                    units = declared_units(p.text, start) or declared_units(p.context, len(p.context))
                    quantities = in_declared_units(quantities, units)
                    # "예산(억원): 3.5" is 3.5억원: the unit a column's header names
                    quantities += header_unit_figures(p.text[start:end])
                evidence = with_context(span, _joined(heading_analysis(p.text, analysis, start), context))
                windows.append(
                    Window(i, start, end, span, sents[a : b + 1], quantities, evidence,
                           extract_quantities(evidence.text[len(span.text):]))
                )
        prepared.append(Prepared(p, analysis, with_context(analysis, context), windows))
    return prepared


def analyze_blocks(kiwi, splitter: SentenceSplitter, text: str, check: Callable[[], None]) -> tuple[list[Span], Analysis]:
    """Sentence spans and morphemes of `text`, read block by block (the same result as whole:
    blocks end at a line end or a sentence end, where Kiwi's analysis starts afresh anyway)."""
    spans: list[Span] = []
    morphs: list[Morph] = []
    for a, b in text_blocks(text):
        check()
        piece = text[a:b]
        spans.extend(Span(a + s.start, a + s.end) for s in splitter.split(piece))
        check()
        morphs.extend(Morph(m.form, m.tag, m.start + a, m.end + a) for m in analyze(kiwi, piece).morphs)
    return spans, Analysis(text, tuple(morphs))


def text_blocks(text: str, size: int = BLOCK_CHARS) -> list[tuple[int, int]]:
    """[start, end) pieces of at most `size` characters that join back to `text`.

    Each cut falls after the window's last line end, else after its last sentence end and
    the space that follows, else after its last space, else at `size`:
    text_blocks("가나다.\\n라마바. 사아", size=8) -> [(0, 5), (5, 12)]
    """
    out = []
    start, n = 0, len(text)
    while n - start > size:
        limit = start + size
        cut = text.rfind("\n", start, limit) + 1
        if cut <= start:
            gaps = [m.end() for m in _SENTENCE_GAP.finditer(text, start, limit)]
            cut = gaps[-1] if gaps else text.rfind(" ", start, limit) + 1
        if cut <= start:
            cut = limit
        out.append((start, cut))
        start = cut
    out.append((start, n))
    return out


def with_context(span: Analysis, context: Analysis | None) -> Analysis:
    """The span's analysis followed by its document's title/heading (evidence, never quoted)."""
    if context is None:
        return span
    shift = len(span.text) + 1
    morphs = span.morphs + tuple(Morph(m.form, m.tag, m.start + shift, m.end + shift) for m in context.morphs)
    return Analysis(span.text + "\n" + context.text, morphs)


def heading_lines(text: str, start: int, reach: int = HEADING_REACH, short: int = 40) -> list[tuple[int, int]]:
    """[(start, end)] of the heading a span at `start` stands under, or []: the nearest short line
    above it that is not a bullet, over short bullet lines only, within `reach` characters
    ("□ 기대 효과" above "○ 불량률 15% 감축" and "○ 인재 100명 양성"). The text before `start` on
    its own line does not count."""
    lo = max(0, start - reach)
    line_start = text.rfind("\n", lo, start)
    if line_start < 0:
        return []
    end = line_start
    while end > lo:
        begin = text.rfind("\n", lo, end) + 1
        if begin == 0 and lo > 0:
            break  # the line runs past the reach: unknown length
        line = text[begin:end]
        if len(line.strip()) > short:
            break
        if line.strip() and not BULLET.match(line):
            return [(begin, end)]  # the nearest heading: an earlier one heads another section
        end = begin - 1
    return []


def heading_analysis(text: str, analysis: Analysis, start: int) -> Analysis | None:
    """The analysis of the heading lines above `start` (see heading_lines), or None."""
    lines = heading_lines(text, start)
    if not lines:
        return None
    parts = [analysis.slice(a, b) for a, b in reversed(lines)]
    joined = parts[0]
    for part in parts[1:]:
        joined = _joined(joined, part)
    return joined


def _joined(first: Analysis | None, second: Analysis | None) -> Analysis | None:
    """first + "\n" + second as one Analysis (either may be None)."""
    if first is None or second is None:
        return first or second
    return with_context(first, second)


def _core(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without the spaces at either end, so touching a sentence is not overlapping it."""
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())


def _overlaps(span: Span, orders: list[tuple[int, int]]) -> bool:
    """`span` shares a character with one of `orders` (sorted, disjoint)."""
    i = bisect_right(orders, (span.end,)) - 1  # the last order starting before span.end
    return i >= 0 and orders[i][1] > span.start
