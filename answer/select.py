"""Pick, for each part of a question, the source units that answer it best, across all passages.

units = source_units(prepared)                         # one per source sentence (reflowed unit)
picks = select_units(parts, units, embed=embedder.embed_documents)
  -> [Selection(part, [Scored(unit, score=0.83, ...), ...]), ...]

A unit's score for a part mixes what the words say and what the meaning says: the share of
the part's content words found in the unit itself (its document title or heading counts half:
"연차휴가는 며칠" is answered by the sentence that names 연차휴가, not by any sentence under the
heading "제4조(연차휴가)"), the share of the question's other words (a part such as "얼마나 자주
바꿔야 하나요" leans on the subject named earlier), the embedding similarity of part and unit,
and whether the unit holds the kind of answer asked for (a quantity for 며칠/얼마/몇, a date for
언제, a name for 누구).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grounding.prepare import BULLET, Prepared, Window, has_words, is_row
from ingest.reflow import figure_row
from retrieval.embed import embed_apart

from .parts import Part, split_question

EmbedFn = Callable[[list[str]], np.ndarray]

_DATE = re.compile(r"\d{1,4}\s*(?:년|월|일|시|분)|\d{4}\s*[./-]\s*\d{1,2}|상반기|하반기|분기|까지|부터|매년|매월|매주")
_PERSON_TAGS = frozenset({"NNP"})
_PERSON_NOUNS = re.compile(r"(?:장|관|자|원|사|인|위원|대표|책임자|담당|팀)$")
_QUANTITY = re.compile(r"\d")
# How a heading or a new section starts: □ 추진 배경, Ⅱ. 성과, 1. 개요, 가. 목적, 제5조(병가), <표 1>.
_SECTION = re.compile(r"^\s*(?:[□■◆◇▣▶►◎]|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ]+\.?|[IVX]+\.|\d{1,2}\.(?!\d)|[가-하]\.|"
                      r"제\s*\d+\s*(?:장|절|조)|<[^>]{1,20}>|\[[^\]]{1,20}\])")
_SENTENCE_FINAL = frozenset({"EF"})
_CAPTION = re.compile(r"^\s*[<\[［〈]\s*(?:표|그림|도표|참고)\s*\d*\s*[>\]］〉]")
# A unit that announces a list ("다음 각 호의 직원은 …", "… 다음과 같다", "신청 방법:") and the
# items that follow it ("1. …", "가. …", "○ …"): the items belong to it (never headings, however
# short: "2. 임신 중인 직원"), and an answer quoting it goes on with them.
ANNOUNCES = re.compile(r"다음\s*각\s*(?:호|목)|다음과\s*같|아래와\s*같|[:：]\s*$")
ITEM = re.compile(r"^\s*(?:\d{1,2}[.)](?!\d)|[가-하][.)]|\(\d{1,2}\)|[○●•·\-–])")


@dataclass(frozen=True)
class Unit:
    """One source sentence (a reflowed unit, never cut) of one passage."""

    window: Window
    rank: int  # the unit's passage index (retrieval rank)
    position: int  # order inside the passage
    heading: str = ""  # the heading the unit stands under inside its passage ("□ 기대 효과")
    is_heading: bool = False  # a heading itself: context for what follows, never an answer

    @property
    def text(self) -> str:
        return self.window.analysis.text.strip()

    @property
    def is_row(self) -> bool:
        """A table row: cells separated by | or tabs, or a row of figures ("임원 30,000 40,000 120,000")."""
        return is_row(self.text)

    @property
    def is_title(self) -> bool:
        """A passage's first line taken as heading without a section mark: the document title
        or the page's running header ("대외비 · 경영기획팀 · 제3차 경영위원회 회의록")."""
        return self.is_heading and self.position == 0 and not _SECTION.match(self.text)

    @property
    def starts_section(self) -> bool:
        """A heading, or a unit opening a new article or section ("제5조(병가) …", "□ …")."""
        return self.is_heading or bool(_SECTION.match(self.text))


@dataclass(frozen=True)
class Scored:
    unit: Unit
    score: float
    words: float  # coverage of the part's words by the unit text (context counted half)
    typed: bool  # holds the kind of answer the part asks for (True when it asks for no kind)


@dataclass(frozen=True)
class Selection:
    """A part and its units, best first (empty: nothing retrieved answers it); `near`: the
    part's best-scoring units below the bar, for the model's prompt when no part has units."""

    part: Part
    units: list[Scored]
    near: list[Scored] = field(default_factory=list)


@dataclass(frozen=True)
class SelectConfig:
    min_words: float = 0.4  # a unit answers a part only if it holds this share of the part's words ...
    min_score: float = 0.45  # ... and scores this much overall
    per_part: int = 3  # units kept per part
    # units shown to the model in all: each part's best, then the next best in turn while fewer
    # (a short prompt: the model reads ~58 tokens/s on 2 cores, and the first token waits for it)
    prompt_units: int = 2
    relative: float = 0.8  # a further unit must score this share of the part's best
    w_words: float = 0.5
    w_context: float = 0.15
    w_similarity: float = 0.35
    typed_bonus: float = 0.1
    untyped_penalty: float = 0.2
    max_embed: int = 8  # units compared by embedding per question (the rest by words only)


def looks_like_heading(w: Window, followed: bool, first: bool = False) -> bool:
    """A short line with no sentence ending and no number, that something follows: "□ 기대 효과",
    "2. 추진 실적", "제4조(연차휴가)", or a passage's first line with no bullet ("업무용 노트북
    물품 공급 계약서", a document title). A 개조식 bullet with a figure ("○ 불량률 15% 감축") is content."""
    text = w.analysis.text.strip()
    if _CAPTION.match(text) and len(text) <= 60:
        return True  # "<표 1> 계약 물품 내역 (단위: 대, 원)": names a table, answers nothing
    if not followed or any(m.tag in _SENTENCE_FINAL for m in w.analysis.morphs) or text.endswith((".", "?", "!", ":")):
        return False
    words = [m for m in w.analysis.morphs if m.tag in ("NNG", "NNP", "SL", "XR")]
    if (first and not BULLET.match(text) and len(text) <= 60 and not figure_row(text) and "|" not in text
            and not re.search(r"[:：]\s*\S", text)):  # "일시: 2025. 3. 14." is a field, not a title
        # a passage's first line: the document title, or the page's running header over it
        # ("대외비 · 경영기획팀 · 제3차 경영위원회 회의록"), numbers and all
        return 0 < len(words) <= 12
    body = _SECTION.sub("", text, count=1)
    if len(text) > 30 or _QUANTITY.search(body):
        return False
    return 0 < len(words) <= 4


def source_units(prepared: Sequence[Prepared]) -> list[Unit]:
    """Every single-sentence window of the prepared passages, in passage and text order, each
    with the heading it stands under."""
    out = []
    for rank, prep in enumerate(prepared):
        windows = [w for w in prep.windows if len(w.sentences) == 1 and w.analysis.text.strip()]
        heading = header = ""
        listing = False  # the unit before announced a list, or was one of its items
        for position, w in enumerate(windows):
            text = w.analysis.text.strip()
            item = listing and bool(ITEM.match(text))
            listing = item or bool(ANNOUNCES.search(text))
            is_heading = not item and looks_like_heading(w, position + 1 < len(windows), first=position == 0)
            unit = Unit(w, rank, position, "" if is_heading else heading, is_heading)
            if unit.is_row and header:
                # a table row stands under its header row too: "지원 금액 16 20 24" is about 2026
                # when the header says "구분 2025년 2026년 2027년"
                unit = Unit(w, rank, position, f"{heading} {header}".strip(), False)
            elif not unit.is_row:
                text = unit.text
                header = text if len(text) <= 60 and not text.endswith((".", "다")) and not is_heading else ""
            out.append(unit)
            if is_heading:
                heading = w.analysis.text.strip()
    return out


def word_coverage(terms: frozenset[str], unit: Window, context_weight: float = 0.5, heading: str = "",
                  heading_weight: float = 0.75, optional: frozenset[str] = frozenset()) -> float:
    """Share of `terms` (weighted by length, up to 4) the unit holds: in its own text 1, in the
    heading it stands under inside the passage `heading_weight` (a bullet under "□ 기대 효과" is
    about the expected effects), only in its document's title or chunk heading `context_weight`.
    An `optional` term counts only where it is found ("이 사업의 기대 효과": 사업)."""
    if not terms:
        return 0.0
    own = unit.analysis
    own_keys = {m.form.lower() for m in own.morphs}
    own_text = own.text.lower()
    ctx_text = unit.evidence.text[len(own.text):].lower()
    head = heading.lower()
    total = hit = 0.0
    for t in terms:
        w = min(len(t), 4)
        got = 0.0
        if t in own_keys or (len(t) >= 2 and t in own_text):
            got = w
        elif len(t) >= 2 and t in head:
            got = w * heading_weight
        elif t in ctx_text and (len(t) >= 2 or t in {m.form.lower() for m in unit.evidence.morphs}):
            got = w * context_weight
        if got or t not in optional:
            total += w
            hit += got
    return hit / total if total else 0.0


def has_date(text: str) -> bool:
    """has_date("2025년 3월 5일까지") -> True; has_date("15일의 휴가") -> True (a day count reads as one)."""
    return bool(_DATE.search(text))


def holds_kind(asks: str | None, unit: Window) -> bool:
    """Whether the unit holds the kind of answer asked for: holds_kind("count", "15일을 준다") -> True."""
    if asks is None:
        return True
    text = unit.analysis.text
    if asks in ("count", "amount"):
        return bool(unit.quantities) or bool(_QUANTITY.search(text))
    if asks == "date":
        return has_date(text)
    if asks == "person":
        return any(m.tag in _PERSON_TAGS or (m.tag == "NNG" and _PERSON_NOUNS.search(m.form))
                   for m in unit.analysis.morphs)
    return True


def select_units(
    parts: Sequence[Part], units: Sequence[Unit], *, question_terms: frozenset[str] = frozenset(),
    embed: EmbedFn | None = None, config: SelectConfig | None = None,
) -> list[Selection]:
    """The best-supported units for each part (see the module docstring for the score)."""
    cfg = config or SelectConfig()
    if not units:
        return [Selection(p, []) for p in parts]
    words = np.array([[word_coverage(p.terms | p.labels, u.window, heading=u.heading, optional=p.optional | p.labels)
                       for u in units] for p in parts])
    context = np.array([[word_coverage(question_terms - p.terms, u.window, heading=u.heading)
                         if question_terms - p.terms else 0.0 for u in units] for p in parts])
    sims = np.zeros_like(words)
    if embed is not None:
        # Only the units some part's words point at are embedded (time to first token matters).
        best_words = words.max(axis=0)
        order = np.argsort(-best_words, kind="stable")[: cfg.max_embed]
        chosen = [int(i) for i in order if best_words[i] > 0]
        if chosen:
            # a unit under a heading is embedded with it: "일시: 2025. 3. 14." alone means little,
            # under "제3차 경영위원회 회의록" it is when that meeting was held
            # the parts are the asker's words: an EmbedCache never keeps them (retrieval.embed)
            vecs = embed_apart(embed, [p.text for p in parts],
                               [f"{units[i].heading} {units[i].text}".strip() for i in chosen])
            pv, uv = vecs[: len(parts)], vecs[len(parts):]
            sims[:, chosen] = np.clip(pv @ uv.T, 0.0, 1.0)
    w_sim = cfg.w_similarity if embed is not None else 0.0
    scale = cfg.w_words + cfg.w_context + w_sim
    out = []
    for i, part in enumerate(parts):
        scored = []
        for j, u in enumerate(units):
            typed = holds_kind(part.asks, u.window)
            score = (cfg.w_words * words[i, j] + cfg.w_context * context[i, j] + w_sim * sims[i, j]) / scale
            if part.asks is not None:
                score += cfg.typed_bonus if typed else -cfg.untyped_penalty
            scored.append(Scored(u, round(float(score), 4), round(float(words[i, j]), 4), typed))
        scored.sort(key=lambda s: (s.score, -s.unit.rank, -s.unit.position), reverse=True)
        kept: list[Scored] = []
        seen: set[str] = set()
        for s in scored:
            if len(kept) == cfg.per_part:
                break
            if s.words < cfg.min_words or s.score < cfg.min_score or s.unit.is_heading:
                continue
            if kept and s.score < cfg.relative * kept[0].score:
                break
            if s.unit.text in seen:  # the same sentence in another document says nothing new
                continue
            seen.add(s.unit.text)
            kept.append(s)
        near = [] if kept else [s for s in scored if not s.unit.is_heading and has_words(s.unit.text)][: cfg.per_part]
        out.append(Selection(part, kept, near))
    return out


def select_for_question(kiwi, query: str, prepared: Sequence[Prepared], *, embed: EmbedFn | None = None,
                        config: SelectConfig | None = None) -> tuple[list[Unit], list[Selection]]:
    """The passages' units and, for each part of the question, its best ones (as `AnswerRun` picks them).

    select_for_question(kiwi, "연차휴가는 며칠인가요?", session.prepared, embed=embed)
      -> ([Unit(...), ...], [Selection(Part("연차휴가는 며칠인가요?"), [Scored(...), ...])])
    """
    parts = split_question(kiwi, query)
    units = source_units(prepared)
    terms = frozenset().union(*(p.terms for p in parts))
    return units, select_units(parts, units, question_terms=terms, embed=embed, config=config)
