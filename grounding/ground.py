"""The factual-consistency checker: every answer sentence must be backed by a source span.

checker = GroundingChecker(kiwi)
checker.ground("연차휴가는 16일입니다.", [Passage("p1", "연차휴가는 15일을 준다.")])
  -> Grounded(answer=<abstained or quoted>, sentences=[SentenceCheck(supported=False, reasons=["numbers"])])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ingest.chunk import SentenceSplitter
from prompts.injection import is_instruction
from prompts.templates import ABSTAIN

from .checks import (
    Analysis,
    adds_nothing,
    analyze,
    clauses,
    coverage,
    is_fragment,
    missing_entities,
    negation_consistent,
)
from .errors import ShouldStop, check_point
from .numbers import extract_quantities, unmatched, wrong_column
from .prepare import CHECK_EVERY, Prepared, Window, has_words, heading_lines, prepare_passages, text_blocks
from .split import split_draft, strip_markers
from .types import Citation, Grounded, Passage, SentenceCheck

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[str]], np.ndarray]  # texts -> L2-normalized rows
# What the user sees instead of a drafted sentence that gives orders (the draft keeps it for audits).
WITHHELD = "(지시문 형태의 문장이라 표시하지 않음)"


@dataclass(frozen=True)
class GroundingConfig:
    """Thresholds of the checker (chosen on the corruption benchmark, docs/benchmarks.md)."""

    min_coverage: float = 0.75  # share of the sentence's content morphemes found in the span
    weak_coverage: float = 0.5  # below min_coverage, similarity may still carry the sentence
    min_similarity: float = 0.8
    unsupported: str = "remove"  # or "mark": keep unsupported sentences, flagged
    extractive_min_coverage: float = 0.4  # question coverage a quoted source sentence needs
    fragment_min_coverage: float = 0.6  # question coverage the span of a bare answer ("15일") needs
    min_subject_coverage: float = 0.5  # share of the question's nouns a sentence repeats that its span must hold
    subject_reach: int = 150  # characters before the span that still name its subject (a heading above)
    extractive_max_sentences: int = 2
    window: int = 2  # a span is up to this many adjacent source sentences


class GroundingChecker:
    """Checks draft sentences against passages and writes the cited answer."""

    def __init__(self, kiwi, *, embed: EmbedFn | None = None, config: GroundingConfig | None = None) -> None:
        self.kiwi = kiwi
        self.embed = embed
        self.config = config or GroundingConfig()
        self.splitter = SentenceSplitter(kiwi)

    # ------------------------------------------------------------------ preparation
    def prepare(self, passages: Sequence[Passage], should_stop: ShouldStop | None = None) -> list[Prepared]:
        """Analyse each passage once: morphemes, sentence spans and windows of adjacent sentences.

        Raises:
            CheckCancelled: should_stop() returned True.
        """
        return prepare_passages(self.kiwi, self.splitter, passages, self.config.window, check_point(should_stop))

    # ------------------------------------------------------------------ one sentence
    def check_sentence(
        self, sentence: str, prepared: Sequence[Prepared], question: Analysis | None = None,
        should_stop: ShouldStop | None = None,
    ) -> tuple[SentenceCheck, Window | None]:
        """Verdict on one sentence and the span that supports it best (None if no passage).

        Every content word of the sentence must be in the span (or its document's title and
        heading), even the question's own words: they are what ties a fact to its subject
        ("연차휴가는 5일" must not pass on a span about 경조휴가 5일). A bare fragment ("15일",
        "이명박") asserts "the answer to the question is …", so with a `question` its span must
        also cover the question (reason "question" otherwise). A sentence that gives orders
        (a model obeying an injected document) is never supported and never shown: its text
        becomes WITHHELD, reason "instruction".

        Raises:
            CheckCancelled: should_stop() returned True.
        """
        check = check_point(should_stop)
        if is_instruction(sentence):
            return SentenceCheck(WITHHELD, False, 0.0, reasons=["instruction"]), None
        claim = analyze(self.kiwi, sentence)
        quantities = extract_quantities(sentence)
        if not claim.content() and not quantities:
            return SentenceCheck(sentence, False, 0.0, reasons=["no_content"]), None
        fragment = question is not None and question.content() and is_fragment(claim)
        best: tuple[tuple[float, ...], Window, float, int, float] | None = None
        for prep in prepared:
            for k, w in enumerate(prep.windows):
                if k % CHECK_EVERY == 0:
                    check()
                cov = coverage(claim, w.evidence)
                missing = unmatched(quantities, w.quantities + w.context_quantities)
                q_cov = coverage(question, w.evidence) if fragment else 0.0
                # Coverage picks the span; a wider span wins only by covering more, so a changed
                # number cannot hide behind the same number in a neighbouring sentence.
                key = (round(cov, 2), -len(w.sentences), -len(missing), round(q_cov, 2), w.start - w.end)
                if best is None or key > best[0]:
                    best = (key, w, cov, len(missing), q_cov)
        if best is None:
            return SentenceCheck(sentence, False, 0.0, reasons=["coverage"]), None
        _, w, cov, n_missing, q_cov = best
        prep = prepared[w.passage]
        reasons = []
        if n_missing or (quantities and wrong_column(sentence, quantities, [s.text for s in w.sentences])):
            reasons.append("numbers")  # a changed figure, or one read from another column of its row
        predicate = max(w.sentences, key=lambda s: coverage(claim, s))
        if not negation_consistent(claim, predicate):
            reasons.append("negation")
        if missing_entities(claim, prep.evidence):
            reasons.append("entities")
        if fragment and q_cov < self.config.fragment_min_coverage:
            reasons.append("question")
        if question is not None and question.content() and not fragment and adds_nothing(claim, question):
            reasons.append("non_answer")
        subject_cov = 1.0
        if question is not None and not fragment:
            subject_cov = subject_coverage(claim, question, prep, w, self.config.subject_reach)
        similarity = None
        ok_cov = cov >= self.config.min_coverage
        if not ok_cov and cov >= self.config.weak_coverage and self.embed is not None and not reasons:
            vecs = self.embed([sentence, w.analysis.text])
            similarity = float(np.dot(vecs[0], vecs[1]))
            ok_cov = similarity >= self.config.min_similarity
        if not ok_cov or subject_cov < self.config.min_subject_coverage:
            reasons.append("coverage")
        score = cov if similarity is None else (cov + similarity) / 2
        return SentenceCheck(sentence, not reasons, round(score, 4), reasons=reasons,
                             coverage=round(cov, 4), similarity=similarity, passage=w.passage), w

    # ------------------------------------------------------------------ whole answer
    def session(
        self, passages: Sequence[Passage], question: str = "", *, should_stop: ShouldStop | None = None
    ) -> GroundingSession:
        """A checker bound to one answer's passages: feed sentences as they arrive, then finish.

        should_stop: polled at every check point of the session; see `ground`.
        """
        return GroundingSession(self, passages, question, should_stop=should_stop)

    def ground(
        self, answer: str, passages: Sequence[Passage], question: str = "", *, should_stop: ShouldStop | None = None
    ) -> Grounded:
        """Check every sentence of `answer`; cite the supported, drop (or mark) the rest; fall
        back to quoting the sources, or abstain, when nothing is supported.

        should_stop: polled between passages, between blocks of ~2,000 characters while
        passages and the answer are analysed, and every few dozen sentences or spans inside
        each loop over them, so a True lands within a fraction of a second even for 50
        passages of 100,000 characters.

        Raises:
            CheckCancelled: should_stop() returned True; nothing partial is returned.
        """
        check = check_point(should_stop)
        session = self.session(passages, question, should_stop=should_stop)
        if ABSTAIN.rstrip(".") not in strip_markers(answer):
            for a, b in text_blocks(answer):
                check()
                for sentence in split_draft(self.splitter, answer[a:b]):
                    session.add(sentence)
        return session.finish()

    def extract(
        self, question: str, prepared: Sequence[Prepared], numbering: _Numbering,
        should_stop: ShouldStop | None = None,
    ) -> list[SentenceCheck]:
        """The source sentences that best cover the question, quoted verbatim and cited.

        Raises:
            CheckCancelled: should_stop() returned True.
        """
        check = check_point(should_stop)
        q = analyze(self.kiwi, question)
        scored = []
        for prep in prepared:
            for k, w in enumerate(prep.windows):
                if k % CHECK_EVERY == 0:
                    check()
                if len(w.sentences) != 1 or not has_words(w.analysis.text):
                    continue
                cov = coverage(q, w.evidence)
                scored.append((cov, -w.passage, w))
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        out: list[SentenceCheck] = []
        quoted: set[str] = set()
        for cov, _, w in scored:
            if len(out) == self.config.extractive_max_sentences or cov < self.config.extractive_min_coverage:
                break
            if w.analysis.text.strip() in quoted:  # the same sentence in another document says nothing new
                continue
            quoted.add(w.analysis.text.strip())
            n = numbering.cite(w)
            out.append(SentenceCheck(w.analysis.text.strip(), True, round(cov, 4), [n], [], round(cov, 4),
                                     None, w.passage, quoted=True))
        return out


class GroundingSession:
    """Checks one answer's sentences in order, numbering citations as they are first used.

    s = checker.session(passages, question); s.add("연차휴가는 15일입니다.") -> SentenceCheck(...)
    s.finish() -> Grounded (the fallback to quotes or abstention happens here).
    """

    def __init__(
        self, checker: GroundingChecker, passages: Sequence[Passage], question: str,
        *, should_stop: ShouldStop | None = None,
    ) -> None:
        self.checker = checker
        self.question = question
        self.should_stop = should_stop
        self.prepared = checker.prepare(passages, should_stop)
        kiwi = checker.kiwi
        self.question_analysis = analyze(kiwi, question) if question.strip() else None
        self.numbering = _Numbering(passages)
        self.checks: list[SentenceCheck] = []

    def add(self, sentence: str) -> SentenceCheck:
        check, window = self.check(sentence)
        return self.keep(check, window)

    def check(self, sentence: str) -> tuple[SentenceCheck, Window | None]:
        """The verdict on one sentence and its best span, without numbering or keeping it."""
        return self.checker.check_sentence(sentence, self.prepared, self.question_analysis, self.should_stop)

    def keep(self, check: SentenceCheck, window: Window | None) -> SentenceCheck:
        """Record a verdict; a supported one cites its span, with the clauses it relies on highlighted."""
        if check.supported and window is not None:
            claim = analyze(self.checker.kiwi, check.text)
            check = replace(check, citations=[self.numbering.cite(window, relied_on(window, claim))])
        self.checks.append(check)
        return check

    def quote(self, window: Window, terms: Analysis, score: float, numbers: bool = False) -> SentenceCheck:
        """A whole source span quoted verbatim and cited, the clauses holding `terms` (and, with
        `numbers`, a number) highlighted."""
        n = self.numbering.cite(window, relied_on(window, terms, numbers))
        check = SentenceCheck(window.analysis.text.strip(), True, round(score, 4), [n], [], round(score, 4),
                              None, window.passage, quoted=True)
        self.checks.append(check)
        return check

    def finish(self) -> Grounded:
        kept = [c for c in self.checks if c.supported]
        if kept:
            shown = self.checks if self.checker.config.unsupported == "mark" else kept
            return Grounded(render_all(shown), False, "generated", self.checks, self.numbering.citations)
        extractive = (
            self.checker.extract(self.question, self.prepared, self.numbering, self.should_stop)
            if self.question else []
        )
        if extractive:
            return Grounded(render_all(extractive), False, "extractive", self.checks + extractive,
                            self.numbering.citations)
        return Grounded(ABSTAIN, True, "abstained", self.checks, [])


def relied_on(window: Window, claim: Analysis, numbers: bool = False) -> tuple[int, int] | None:
    """[start, end) in the passage text of the window's clauses that hold the claim's words and
    numbers: the best clause, widened over neighbouring clauses that hold at least half as much.
    None when no clause holds any. `numbers`: the claim asks for a number (a 며칠/얼마 part quoted
    whole), so a clause stating one weighs more.

    relied_on(<window "제4조(연차휴가) 직원에게는 15일의 유급 연차휴가를 준다.">, analyze("연차휴가는 15일")) covers
    "직원에게는 15일의 유급 연차휴가를 준다".
    """
    span = window.analysis
    wanted = {m.form.lower() for m in claim.content()} | {m.form for m in claim.morphs if m.tag == "SN"}
    if not wanted or not span.morphs:
        return None
    ranges = clauses(span)
    scores = [
        sum(min(len(m.form), 4) for m in span.morphs[a:b] if m.form.lower() in wanted)
        + (4 if numbers and any(m.tag == "SN" for m in span.morphs[a:b]) else 0)
        for a, b in ranges
    ]
    best = max(range(len(ranges)), key=lambda i: scores[i])
    if scores[best] == 0:
        return None
    enough = scores[best] / 2
    lo = hi = best
    while lo > 0 and scores[lo - 1] >= enough:
        lo -= 1
    while hi < len(ranges) - 1 and scores[hi + 1] >= enough:
        hi += 1
    first, last = span.morphs[ranges[lo][0]], span.morphs[ranges[hi][1] - 1]
    text = span.text[first.start : last.end]
    lead = len(text) - len(text.lstrip())
    return window.start + first.start + lead, window.start + first.start + len(text.rstrip())


def render_sentence(check: SentenceCheck) -> str:
    """One sentence as the user sees it: "연차휴가는 15일입니다 [1]." or flagged."""
    return render_all([check])


class _Numbering:
    """Citations numbered 1, 2, ... in order of first use; one number per (passage, span)."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = passages
        self.citations: list[Citation] = []
        self._by_span: dict[tuple[int, int, int], int] = {}

    def cite(self, w: Window, highlight: tuple[int, int] | None = None) -> int:
        """The number of span `w` (new on first use); `highlight`: [start, end) in the passage text."""
        key = (w.passage, w.start, w.end)
        if key not in self._by_span:
            p = self.passages[w.passage]
            n = len(self.citations) + 1
            raw = p.text[w.start : w.end]
            lead = len(raw) - len(raw.lstrip())
            quote = raw.strip()
            start, end = w.start + lead, w.start + lead + len(quote)
            hs, he = highlight if highlight is not None else (None, None)
            if hs is not None and not (start <= hs < he <= end and (hs, he) != (start, end)):
                hs = he = None  # outside the quote or all of it: nothing to single out
            self.citations.append(Citation(n, p.doc_id or p.id, p.source, p.page, p.id, quote, start, end, hs, he))
            self._by_span[key] = n
        return self._by_span[key]


def render_all(checks: Sequence[SentenceCheck]) -> str:
    """"연차휴가는 15일입니다 [1]." — markers before the closing punctuation; unsupported flagged,
    notes (a part not found) as they are."""
    parts = []
    for c in checks:
        text = c.text.rstrip()
        end = len(text)
        while end > 0 and text[end - 1] in ".!?。":
            end -= 1
        body, punct = text[:end].rstrip(), text[end:]
        if c.not_found:
            parts.append(f"{body}{punct}")
        elif c.supported:
            marks = "".join(f"[{n}]" for n in c.citations)
            parts.append(f"{body} {marks}{punct}")
        else:
            parts.append(f"[확인되지 않음] {body}{punct}")
    return " ".join(parts)


_NOUN_TAGS = ("NNG", "NNP", "SL", "SH", "XR")


def subject_coverage(claim: Analysis, question: Analysis, prep: Prepared, w: Window, reach: int) -> float:
    """Share (by length) of the question's nouns the claim repeats that its span, the text up to
    headings right above it (prepare.heading_lines) or the document's title and heading hold.
    "성과급 지급 기준 변경안은 … 총 75명으로 보고하였다" over a span about hiring repeats four of
    the question's nouns and the span holds none: the fact is tied to the wrong subject, even
    when the rest of the sentence covers the span. 1.0 when the claim repeats under two."""
    asked = {m.form.lower() for m in question.morphs if m.tag in _NOUN_TAGS}
    said = [m.form.lower() for m in claim.morphs if m.tag in _NOUN_TAGS and m.form.lower() in asked]
    if sum(min(len(f), 4) for f in set(said)) < 4:
        return 1.0
    text = prep.passage.text
    where = (text[w.start : w.end] + "\n" + "\n".join(text[a:b] for a, b in heading_lines(text, w.start, reach))
             + "\n" + prep.passage.context).lower()
    total = hit = 0.0
    for form in set(said):
        weight = min(len(form), 4)
        total += weight
        hit += weight if form in where else 0.0
    return hit / total

