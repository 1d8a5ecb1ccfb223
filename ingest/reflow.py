"""Reflow layout line breaks: join the breaks a PDF or a hard-wrapped file put inside sentences.

Extracted page text keeps the typesetter's line breaks, and the sentence splitter takes every
line break as a sentence end, so answers would quote fragments. `reflow` decides, line by line,
whether a break ends a unit (a sentence run, a list item, a heading, a table row) or continues
it, and replaces each continuing break by one space, or by nothing where it splits a word:

    reflow("수입물품의 실제지급가격에 가\\n산하여야 한다.\\n○ 관세 부과").text
    -> "수입물품의 실제지급가격에 가산하여야 한다.\\n○ 관세 부과"

Mapping back to the original text: a reflowed text differs from the original only where a
`Join` replaced a line break together with the spaces and tabs around it (`Join.start`,
`Join.end` in the original) by `Join.text` (" " or ""). Everything else, blank lines included,
is kept character for character, so a text without joins comes back unchanged, and
`Reflow.to_original(i)` turns any offset into the reflowed text into one into the original.
Each `Unit` records its [start, end) in the original and its reflowed text:
`apply_joins(original, unit.start, unit.end, reflowed.joins) == unit.text`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

# Version of the rules below; stored in the index's build config, so changing the rules (which
# changes chunk texts) makes an older index ask to be re-chunked.
# 2: captioned tables and rows of figures kept as rows; 3: Office/HTML/HWP paragraphs with soft
# line breaks are reflowed too, and each layout block alone; 4: a labelled field line ("장소: …")
# starts a unit, and a short title line after a list item ("논의 내용") is a heading; 5: running
# headers, footers and page numbers are taken off paged blocks first (`ingest.furniture`); 6: a
# short opening line over a full-width line is a title ("차범근\n대한민국의 축구 선수로 …").
REFLOW_VERSION = "6"

# (last word of a line, first word of the next) -> True where the break splits one word.
WordJoiner = Callable[[Sequence[tuple[str, str]]], list[bool]]

_BREAK = re.compile(r"[ \t]*\n[ \t]*")
_HANGUL = re.compile(r"[가-힣]")
# A line ends its sentence with final punctuation (closing quotes/brackets may follow) ...
_FINAL_PUNCT = re.compile(r"[.!?。！？…][\"'”’」』)\]]*$")
# ... or with a sentence-final ending written without punctuation (…다, …음, …함, …임, …됨, …요, …까).
_FINAL_ENDING = re.compile(r"(?:[가-힣]+(?:다|음|요|까)|[가-힣]*(?:함|임|됨))$")
# Words that end in those syllables yet are not sentence endings.
_NOT_FINAL = re.compile(r"(보다|마다|바다|다음|처음|마음|소음|녹음|주요|중요|필요|개요|수요|요요)$")
# List item markers at the start of a line: ○ □ ■ ◦ ● - · ※ ▶ ➢, 가) 나), 1. 2., 1) 2), (1) (2), ① ②.
_ITEM = re.compile(
    r"^(?:[○□■◦●•\-·※▶▷➢➤◆◇►∙ㅇ]\s*"
    r"|[가-하]\)\s*|[가-하]\.\s+"
    r"|\d{1,3}\.(?!\d)\s*|\d{1,3}\)\s*|[(（]\d{1,3}[)）]\s*|[(（][가-하][)）]\s*"
    r"|[①-⑳㉠-㉭㉮-㉻])"
)
# "일시: 2025. 3. 14.", "참석자: 대표이사 …", "제1호 안건: …": a labelled field starts a unit of
# its own, like a list item (a short label, no digit right before the colon: not "14:00").
_FIELD = re.compile(r"^[가-힣A-Za-z][가-힣A-Za-z0-9 ()·]{0,14}(?<![\d ])\s*[:：]\s*\S")
# 제1장 총칙 / 제2절 / 제3편: a heading line of its own.
_CHAPTER = re.compile(r"^제\s*\d+\s*[장절편관](?:\s|$)")
# 제5조(연차휴가) ...: an article starts a new unit (its body may follow on the same line).
_ARTICLE = re.compile(r"^제\s*\d+\s*조(?:의\s*\d+)?\s*[(（]")
# Table rows: tab or | separated cells, or two gaps of 3+ spaces. Gaps of 2 are no sign:
# pypdf extracts justified prose with many gaps doubled (bench/reflow_check.py).
_WIDE3 = re.compile(r" {3,}")
# A row of figures with single-space cells ("임원 30,000 40,000 120,000", "매출액 1,250 1,430 14.4"):
# at least 3 bare numbers, a quarter of the words or more.
_FIGURE = re.compile(r"^[+-]?\d[\d,]*(?:\.\d+)?%?$")
# <표 1> 국내 출장 여비 지급 기준 / [표 2] …: a table caption; the lines after it up to the next
# sentence, blank line, article or list item are the table's rows (its header row included).
_CAPTION = re.compile(r"^[<\[［〈]\s*(?:표|그림|도표)\s*\d*\s*[>\]］〉]")
# 개조식 bullets end in an action noun: "… 추진", "… 완료"; such a bullet ends its unit.
_NOUN_END = re.compile(
    r"(추진|완료|예정|강화|확대|실시|개선|마련|지원|구축|운영|시행|도입|검토|개최|제공|점검|확보|"
    r"계획|추진중|진행|진행중|달성|감소|증가|발표|체결|착수|수립|개편|정비|폐지|신설|보완|협의|"
    r"논의|완화|조성|육성|발굴|확정|예산|필요|가능|불가|해당없음|없음|있음)$"
)
# First words of a line that cannot start a word after a Hangul fragment: particles and
# verbal endings of the word the previous line ended with ("가격\n에", "추진\n하였다").
_BOUND_WORD = re.compile(
    r"^(?:이|가|을|를|은|는|에|의|로|으로|와|과|도|만|에서|에게|께서|부터|까지|처럼|보다|마다|이나|"
    r"이며|이고|이다|이었다|였다|이므로|"
    r"하(?:다|여|여야|였다|였으며|고|며|는|지|게|기|면|므로)|한다|했다|했으며|"
    r"된다|되어|되었다|되며|되고|되는|된|될|됨|적|적인|적으로|등|등의|등을|등이|등은)"
    r"[.,]?$"
)
# A line starting with closing punctuation, or a decimal number cut after its point, attaches.
_LEADING_PUNCT = re.compile(r"[.,;:!?)\]}」』”’%·]")
_DECIMAL_END = re.compile(r"(?<![\d.])\d+\.$")
# "-" glued to a word at the start of a line: a hyphenated word wrapped at its hyphen.
_HYPHEN_WORD = re.compile(r"[-·][^\s\d·-]")
# An initial ("John A.") ends no sentence.
_INITIAL = re.compile(r"(?:^|\s|\()[A-Z]\.$")
# Kiwi finding under this share of a page's (at least this many) Hangul breaks inside words
# means the page was wrapped at spaces (bench/reflow_check.py: ~4 % there, ~50 % on pages
# wrapped at any character).
WORD_WRAPPED_SHARE = 0.2
WORD_WRAPPED_MIN = 8
_SHORT_LABEL = 15  # characters; a line this short before "-word" is a label over a bullet
_SHORT_HEADING = 30  # characters; a shorter line followed by a blank line or a list is a heading
# A unit's first line at most this share of the text's line width, over a line of at least
# `_FULL_SHARE` of it, is a title: lines are broken short only where the writer broke them.
_TITLE_SHARE = 0.5
_FULL_SHARE = 0.7
_MIN_WIDTH_LINES = 4  # the line width (90th percentile of text line lengths) needs this many lines


@dataclass(frozen=True)
class Join:
    """A line break (with the spaces around it) at original [start, end) replaced by `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Unit:
    """A reflowed unit: [start, end) in the original text, its reflowed text and its kind.

    kind: "text" (running prose), "item" (list item or bullet), "article" (제n조(…) and its
    body), "heading" (제n장, a short line before a blank line or a list, or a short opening line
    over a full one) or "table" (a row).
    """

    start: int
    end: int
    text: str
    kind: str


@dataclass(frozen=True)
class Reflow:
    """The reflowed text, its units and the joins that map it back to the original."""

    original: str
    text: str
    units: list[Unit]
    joins: list[Join] = field(default_factory=list)

    def to_original(self, offset: int) -> int:
        """Offset in the reflowed text -> offset of the same character in the original.

        reflow("가\\n산하여").to_original(1) -> 2 (the "산" after the removed break)
        """
        starts, shifts, shift = [], [], 0
        for join in self.joins:
            starts.append(join.start - shift)  # where the replacement sits in the reflowed text
            shift += (join.end - join.start) - len(join.text)
            shifts.append(shift)
        i = bisect_right(starts, offset)
        if not i:
            return offset
        join = self.joins[i - 1]
        if offset < starts[i - 1] + len(join.text):  # on a joining space: where the break began
            return join.start + (offset - starts[i - 1])
        return offset + shifts[i - 1]


def apply_joins(original: str, start: int, end: int, joins: Sequence[Join]) -> str:
    """original[start:end] with the joins inside it applied (the reflowed text of that span)."""
    parts, pos = [], start
    for join in joins:
        if start <= join.start and join.end <= end:
            parts.append(original[pos : join.start])
            parts.append(join.text)
            pos = join.end
    parts.append(original[pos:end])
    return "".join(parts)


@dataclass(frozen=True)
class _Line:
    start: int  # first non-space character
    end: int  # after the last non-space character
    text: str  # stripped
    kind: str  # "blank", "table", "chapter", "article", "item", "text"


def _classify(text: str) -> str:
    if not text:
        return "blank"
    if "\t" in text or text.count("|") >= 2:
        return "table"
    if len(_WIDE3.findall(text)) >= 2:
        return "table"
    if figure_row(text):
        return "table"
    if _CAPTION.match(text):
        return "caption"
    if _CHAPTER.match(text):
        return "chapter"
    if _ARTICLE.match(text):
        return "article"
    if _ITEM.match(text) or _FIELD.match(text):
        return "item"
    return "text"


def figures(text: str) -> int:
    """Bare numbers among the words: figures("임원 30,000 40,000 120,000") -> 3."""
    return sum(bool(_FIGURE.match(w.strip("|"))) for w in text.split())


def figure_row(text: str) -> bool:
    """A table row of figures with single-space cells: 3+ bare numbers, a quarter of the words or
    more, no sentence ending. figure_row("임원 30,000 40,000 120,000") -> True;
    figure_row("매출은 1,430억원으로 14.4% 늘었다.") -> False"""
    n = figures(text)
    return n >= 3 and n * 4 >= len(text.split()) and not ends_sentence(text)


def _lines(text: str) -> list[_Line]:
    lines, pos = [], 0
    in_table = False
    for raw in text.split("\n"):
        stripped = raw.strip(" \t")
        lead = len(raw) - len(raw.lstrip(" \t"))
        start = pos + lead
        kind = _classify(stripped)
        if kind == "caption":
            kind, in_table = "table", True  # a row of its own, never joined to what follows
        elif in_table and kind in ("text", "table") and not ends_sentence(stripped):
            kind = "table"  # a row under a caption: the header ("구분 일비(1일) 식비(1일)") or a row
        else:
            in_table = False
        lines.append(_Line(start, start + len(stripped), stripped, kind))
        pos += len(raw) + 1
    return lines


def ends_sentence(line: str) -> bool:
    """True when a line ends with final punctuation or a sentence-final ending.

    ends_sentence("연차휴가는 15일이다") -> True; ends_sentence("실제지급가격에 가") -> False
    """
    line = line.rstrip()
    if _INITIAL.search(line):
        return False
    if _FINAL_PUNCT.search(line):
        return True
    last = line.split()[-1] if line.split() else ""
    return bool(_FINAL_ENDING.search(last)) and not _NOT_FINAL.search(last)


def _last_word(line: str) -> str:
    return line.split()[-1] if line.split() else ""


def _first_word(line: str) -> str:
    return line.split()[0] if line.split() else ""


def rule_joiner(pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """Conservative word-internal test without Kiwi: the next line starts with a particle or ending.

    rule_joiner([("가격", "에"), ("지급", "가격에")]) -> [True, False]
    """
    return [bool(_BOUND_WORD.match(right)) for _, right in pairs]


def kiwi_joiner(kiwi) -> WordJoiner:
    """Word-internal test by Kiwi's spacing model: does Kiwi put a space where the line broke?

    kiwi_joiner(kiwi)([("가", "산하여"), ("가격에", "가산하여")]) -> [True, False]
    """

    def joined(pairs: Sequence[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        spaced = kiwi.space([left + right for left, right in pairs], reset_whitespace=True)
        out = []
        for (left, _right), text in zip(pairs, spaced, strict=True):
            seen, i = 0, 0
            while i < len(text) and seen < len(left):
                seen += not text[i].isspace()
                i += 1
            out.append(i < len(text) and not text[i].isspace())
        return out

    return joined


def _attaches(line: _Line, nxt: _Line) -> bool:
    """The next line starts with what cannot stand after a space: ". 그러자", ")는", "3671" after "354."."""
    return bool(_LEADING_PUNCT.match(nxt.text)) or (
        bool(_DECIMAL_END.search(line.text)) and nxt.text[:1].isdigit()
    )


def _wrapped_marker(line: _Line, nxt: _Line, inside: bool) -> bool:
    """A list marker that is really the wrapped end of a word: "지적했\n다. 그는", "인도\n-오스트레일리아판", "상\n·중·하"."""
    if ends_sentence(line.text) or not line.text[-1:].isalnum():
        return False
    # A short line before "-word" is a label over a bullet ("주요 내용\n-출장비 지급").
    return (inside and nxt.text.startswith("다.")) or (
        len(line.text) > _SHORT_LABEL and bool(_HYPHEN_WORD.match(nxt.text))
    )


def _continues(line: _Line, nxt: _Line, unit_kind: str, inside: bool) -> bool:
    """Does the break after `line` (inside a unit of `unit_kind`) continue into `nxt`?

    inside: the joiner found that the break splits a word.
    """
    if nxt.kind in ("blank", "table", "chapter", "article"):
        return False
    if line.kind in ("table", "chapter") or unit_kind == "heading":
        return False
    if nxt.kind == "item":
        return _wrapped_marker(line, nxt, inside)
    if inside or _attaches(line, nxt):
        return True
    if ends_sentence(line.text) and not _BOUND_WORD.match(_first_word(nxt.text)):
        return False
    # A 개조식 bullet ends in a noun without a final ending.
    return not (unit_kind == "item" and _NOUN_END.search(line.text) and not _BOUND_WORD.match(_first_word(nxt.text)))


def _label_line(line: _Line) -> bool:
    """A short title line between a list and what follows ("안건", "논의 내용", "결정사항"):
    one or two words, no digit, punctuation or sentence ending, and not the action noun that
    ends a wrapped 개조식 bullet ("… 채용 연계\n추진")."""
    text = line.text
    return (
        line.kind == "text" and len(text) <= 10 and len(text.split()) <= 2 and bool(_HANGUL.search(text))
        and not re.search(r"[\d.,;:()\[\]<>%~·\-]", text) and not ends_sentence(text)
        and not _NOUN_END.search(text) and not _BOUND_WORD.match(_first_word(text))
    )


def _is_short_heading(line: _Line, nxt: _Line | None) -> bool:
    return (
        line.kind == "text"
        and len(line.text) <= _SHORT_HEADING
        and not ends_sentence(line.text)
        and (nxt is None or nxt.kind in ("blank", "item"))
    )


def _visual(text: str) -> float:
    """A line's printed width in Hangul syllables: Latin letters, digits, spaces and
    punctuation are about half as wide as a Hangul or CJK character in Korean fonts."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.5 for c in text)


def _line_width(lines: list[_Line]) -> float:
    """The width a text is wrapped at (its long text lines, `_visual`), or 0 when too few lines."""
    widths = sorted(_visual(line.text) for line in lines if line.kind == "text")
    return widths[int(0.9 * (len(widths) - 1))] if len(widths) >= _MIN_WIDTH_LINES else 0.0


def _is_title_line(line: _Line, nxt: _Line | None, width: float) -> bool:
    """A short line that opens a unit, over a full line: a title or heading with no mark
    ("차범근" over its article, "인사팀 공지" over the notice). Wrapping fills a line before it
    breaks, so a sentence's first line is never this short unless the sentence ends on it."""
    return (
        width > 0 and line.kind == "text" and nxt is not None and nxt.kind == "text"
        and len(line.text) <= _SHORT_HEADING and _visual(line.text) <= _TITLE_SHARE * width
        and _visual(nxt.text) >= _FULL_SHARE * width
        and not ends_sentence(line.text) and (line.text[-1:].isalnum() or line.text.endswith(")"))
        and not _BOUND_WORD.match(_first_word(nxt.text)) and not _attaches(line, nxt)
    )  # fmt: skip


def reflow(text: str, joiner: WordJoiner | None = None) -> Reflow:
    """A page's raw text -> reflowed text, units and joins (see the module docstring).

    Args:
        text: raw extracted text, lines separated by "\\n".
        joiner: decides which breaks between Hangul split a word (joined without a space);
            `kiwi_joiner(kiwi)` when a Kiwi is at hand, else `rule_joiner`.
    """
    lines = _lines(text)
    width = _line_width(lines)
    inside = _word_internal_breaks(lines, joiner)
    # Group line indices into units.
    groups: list[tuple[str, list[int]]] = []
    current: list[int] = []
    kind = "text"
    for i, line in enumerate(lines):
        if line.kind == "blank":
            if current:
                groups.append((kind, current))
            current = []
            continue
        titled = kind == "item" and _label_line(line) and not inside.get(current[-1] if current else -1, False)
        if current and not titled and _continues(lines[current[-1]], line, kind, inside.get(current[-1], False)):
            current.append(i)
            continue
        if current:
            groups.append((kind, current))
        current = [i]
        nxt = next((lines[j] for j in range(i + 1, len(lines))), None)
        kind = {"table": "table", "chapter": "heading", "article": "article", "item": "item"}.get(line.kind, "text")
        after_item = bool(groups) and groups[-1][0] == "item" and groups[-1][1][-1] == i - 1
        if titled:
            kind = "heading"  # "안건" after "불참: …", "논의 내용" after the agenda items
        elif after_item and kind == "text":
            kind = "item"  # the next line of a 개조식 bullet block, e.g. "○ … 추진\n 민간 지원 강화"
        elif _is_short_heading(line, nxt) and not (nxt and _wrapped_marker(line, nxt, inside.get(i, False))):
            kind = "heading"
        elif kind == "text" and _is_title_line(line, nxt, width):
            kind = "heading"
    if current:
        groups.append((kind, current))

    joins = []
    for _, members in groups:
        for a, b in pairwise(members):
            glued = inside.get(a, False) or _attaches(lines[a], lines[b]) or _wrapped_marker(lines[a], lines[b], False)
            joins.append(Join(lines[a].end, lines[b].start, "" if glued else " "))

    units = []
    for kind, members in groups:
        start, end = lines[members[0]].start, lines[members[-1]].end
        units.append(Unit(start, end, apply_joins(text, start, end, joins), kind))
    return Reflow(text, apply_joins(text, 0, len(text), joins), units, joins)


def _word_internal_breaks(lines: list[_Line], joiner: WordJoiner | None) -> dict[int, bool]:
    """Line index -> does the break after it split a word, for breaks between two Hangul syllables.

    Asks the joiner once for the whole text. On a page wrapped at spaces Kiwi still writes a
    few noun compounds and auxiliary verbs closed up; there the rule joiner decides instead,
    recognised by Kiwi finding under `WORD_WRAPPED_SHARE` of its breaks inside words.
    """
    at = [
        i
        for i in range(len(lines) - 1)
        if lines[i].text and lines[i + 1].text
        and _HANGUL.fullmatch(lines[i].text[-1]) and _HANGUL.fullmatch(lines[i + 1].text[0])
    ]  # fmt: skip
    pairs = [(_last_word(lines[i].text), _first_word(lines[i + 1].text)) for i in at]
    verdicts = (joiner or rule_joiner)(pairs)
    if joiner is not None and len(at) >= WORD_WRAPPED_MIN and sum(verdicts) < WORD_WRAPPED_SHARE * len(at):
        verdicts = rule_joiner(pairs)
    return dict(zip(at, verdicts, strict=True))


def looks_hard_wrapped(text: str, min_breaks: int = 3, min_share: float = 0.4) -> bool:
    """True when a plain text's lines are wrapped at a width rather than at sentence ends.

    Counts lines followed by another non-blank line that are at least 70 % as long as the
    long lines (the 90th percentile) and do not end a sentence: at least `min_breaks` of
    them, and `min_share` of all such lines. A file with one paragraph or sentence per line
    has none.
    """
    lines = text.split("\n")
    pairs = [(a.strip(), b.strip()) for a, b in pairwise(lines) if a.strip() and b.strip()]
    if len(pairs) < min_breaks:
        return False
    lengths = sorted(len(a) for a, _ in pairs)
    width = lengths[int(0.9 * (len(lengths) - 1))]
    wrapped = [
        a
        for a, b in pairs
        if len(a) >= 0.7 * width and not ends_sentence(a) and _classify(b) == "text" and _classify(a) == "text"
    ]
    return len(wrapped) >= min_breaks and len(wrapped) >= min_share * len(pairs)
