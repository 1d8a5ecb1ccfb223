"""Compose the answer an employee reads: every part of the question answered, in whole sentences.

composer = Composer(session, selections, config)
composer.add("출장 숙박비는 1박 10만 원입니다.")   -> SentenceCheck (shown if supported and on a part)
composer.finish()                                  -> ([quotes and notes added], Grounded)

Drafted sentences come first, each checked by the grounding session and kept only if it is
supported, adds something the question did not already say, answers the kind of thing its
part asks (a 며칠 part needs the number stated next to the asked subject) and fits the budget.
Then every part that no kept sentence answers gets its best source units quoted whole and
cited; a part nothing answers is named as not found. While the budget lasts, what the source
goes on to say around a shown sentence (the paragraph it builds on, the rest of its cited
span, then the next units of the same section: "다만 …", the bullets under the same heading,
the items of a list it announces or that its span starts inside, and the paragraph before it
that speaks of the asked thing) is quoted after it, and then further best units of the
passages already cited; of a table, only the rows that name what was asked. Only when no part is answered at all
does the answer fall back to quoting the source sentences that best cover the whole question (the checker's extractive fallback), or abstain. Sources are numbered in the order the answer shows them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from grounding import Citation, Grounded, SentenceCheck, extract_quantities
from grounding.checks import analyze, content_keys, cut_short
from grounding.ground import GroundingSession, render_all
from grounding.prepare import Window, has_words
from grounding.numbers import unmatched
from ingest.reflow import figures
from ingest.tables import carries_headers
from prompts import not_found_note

from .parts import LIGHT, Part
from .select import ANNOUNCES, ITEM, Scored, Selection, Unit, has_date

_RULE = re.compile(r"^[\s|:\-+=]+$")  # a markdown table's |---|---| line
_CAPTION_START = re.compile(r"^\s*[<\[［〈]\s*(?:표|그림|도표)")
# A drafted "sentence" that is only an article number or item mark ("제2조(대상) ①"): no answer.
_MARKER_ONLY = re.compile(r"^\s*(?:제\s*\d+\s*(?:장|절|조)(?:의\s*\d+)?\s*(?:\([^)]{0,20}\))?)?\s*"
                          r"(?:[①-⑳]|\d{1,2}[.)]|[가-하][.)]|[○●•·\-–□■])?\s*\.?\s*$")
VERIFY_REASONS = frozenset({"numbers", "negation", "entities", "coverage", "question", "no_content",
                            "non_answer", "question_type", "instruction", "fragment"})


@dataclass(frozen=True)
class ComposeConfig:
    """The length budget and how much a further quote must add."""

    max_sentences: int = 5
    max_chars: int = 400  # answer text, besides the citation cards
    part_coverage: float = 0.5  # share of a part's words a sentence (with its cited span) must hold to answer it
    new_words: int = 2  # content words a further quote must add to what is shown
    subject_slack: float = 0.15  # 며칠/얼마: the number's unit may name the subject this much less than the best unit
    follow: int = 2  # units after a shown sentence's span that may be quoted as its continuation
    source_overlap: float = 0.5  # share of a unit's content words a drafted sentence states: its source
    fuller: int = 3  # content words a drafted sentence's source adds beyond it, to be quoted after it


class Composer:
    """Drafted sentences in, the composed answer out (see the module docstring)."""

    def __init__(self, session: GroundingSession, selections: list[Selection], config: ComposeConfig | None = None,
                 units: Sequence[Unit] = ()) -> None:
        self.session = session
        self.selections = selections
        self.config = config or ComposeConfig()
        self.kiwi = session.checker.kiwi
        self.shown: list[SentenceCheck] = []
        self.answered: set[int] = set()  # parts answered by a shown sentence
        self.touched: set[int] = set()  # parts a shown sentence speaks to, if below part_coverage
        self.used_spans: list[Window] = []  # the span each shown sentence cites, in shown order
        self.sources: set[tuple[int, int]] = set()  # (passage, start) of units a shown sentence states
        self.shown_keys: set[str] = set()  # content words of the shown text
        self.chars = 0
        self.items = 0  # shown list items that continue a shown announcing unit (not counted as sentences)
        self.near: list[tuple[float, Window]] = []  # spans of drafted sentences refused on coverage alone
        self.passage_units: dict[int, list[Unit]] = {}
        for u in units:
            self.passage_units.setdefault(u.window.passage, []).append(u)
        self.question_keys = frozenset().union(*(sel.part.terms for sel in selections)) if selections else frozenset()

    # ------------------------------------------------------------------ drafted sentences
    def add(self, sentence: str) -> SentenceCheck:
        """Check one drafted sentence and decide whether the employee sees it."""
        check, window = self.session.check(sentence)
        if check.supported and _MARKER_ONLY.match(check.text):
            check = replace(check, supported=False, reasons=["no_content"])
        elif check.supported and cut_short(analyze(self.kiwi, check.text)):
            check = replace(check, supported=False, reasons=["fragment"])  # "… 파동이 일어난 후에"
        if check.supported and window is not None:
            part, touched = self._part_of(check.text, window)
            if part is not None and not self._answers_kind(part, check.text):
                check = replace(check, supported=False, reasons=["question_type"])
            elif self._repeats(check.text) or not self._fits(check.text):
                self.session.checks.append(replace(check, supported=False, reasons=["budget"]))
                return replace(check, supported=False, reasons=["budget"])
            else:
                check = self.session.keep(check, window)
                self._show(check, window, part)
                if touched is not None:
                    self.touched.add(touched)
                return check
        if (window is not None and check.reasons == ["coverage"]
                and check.coverage >= self.session.checker.config.weak_coverage):
            self.near.append((check.coverage, window))  # the source it paraphrased too loosely
        return self.session.keep(check, window)

    def _part_of(self, text: str, window: Window) -> tuple[int | None, int | None]:
        """(the part the sentence answers best, by its words and its cited span, or None;
        the part it only speaks to with fewer words, or None). A part spoken to (the source says
        "사용하지 않은 계정" where the question said "쓰지 않은 계정") gets no not-found note."""
        said = content_keys(analyze(self.kiwi, text)) | content_keys(window.analysis)
        best, best_cov = None, 0.0
        for i, sel in enumerate(self.selections):
            terms = sel.part.terms
            if not terms:
                continue
            cov = sum(min(len(t), 4) for t in terms if t in said) / sum(min(len(t), 4) for t in terms)
            if cov > best_cov:
                best, best_cov = i, cov
        if best is not None and best_cov < self.config.part_coverage:
            return None, best
        return best, None

    def _answers_kind(self, i: int, text: str) -> bool:
        """A 며칠/얼마/몇 part needs a number that its best units state next to the asked subject;
        a 언제 part needs a date."""
        sel = self.selections[i]
        asks = sel.part.asks
        if asks not in ("count", "amount", "date"):
            return True
        if asks == "date":
            return has_date(text)
        said = extract_quantities(text)
        if not said:
            return False
        typed = [s for s in sel.units if s.typed and s.unit.window.quantities]
        if not typed:
            return True  # no unit states a number: nothing to hold the sentence to
        top = max(s.words for s in typed)
        near = [q for s in typed if s.words >= top - self.config.subject_slack for q in s.unit.window.quantities]
        return len(unmatched(said, near)) < len(said)

    def _repeats(self, text: str) -> bool:
        """Nothing new: every content word of `text` is already shown."""
        keys = content_keys(analyze(self.kiwi, text))
        return bool(self.shown) and keys <= self.shown_keys

    def _fits(self, text: str) -> bool:
        return not self._full() and (
            not self.shown or self.chars + len(text) <= self.config.max_chars
        )

    def _full(self, more: int = 1) -> bool:
        """No room for `more` sentences (list items after their announcing unit are not counted)."""
        return len(self.shown) - self.items + more > self.config.max_sentences

    def _show(self, check: SentenceCheck, window: Window, part: int | None) -> None:
        self.shown.append(check)
        self.used_spans.append(window)
        said = content_keys(analyze(self.kiwi, check.text))
        self.shown_keys |= said
        self.chars += len(check.text)
        if part is not None:
            self.answered.add(part)
        if check.quoted:
            self.sources.add((window.passage, window.start))
            self.sources.update((u.window.passage, u.window.start) for u in self._units_in(window))
            # a unit quoted for one part (or as a continuation) that is another part's best unit
            # answers that part too: its must-quote would otherwise fall to a weaker unit elsewhere
            for i, sel in enumerate(self.selections):
                if sel.units and (sel.units[0].unit.window.passage, sel.units[0].unit.window.start) == (
                        window.passage, window.start):
                    self.answered.add(i)  # its best unit: a weaker one leaves the part to its own quote
            return
        # the units of the cited span the drafted sentence restates are its source (the one it
        # shares most with, and any it mostly states): never quoted again. A source that says
        # more (its conditions and figures: "대상 PC 612대 중 574대가 …" behind "준수율은
        # 93.8%입니다") and a bare confirmation ("배우자도 지원받을 수 있습니다": only the
        # question's words) do not count: that unit is quoted after the sentence.
        inside = self._units_in(window)
        if not inside:
            self.sources.add((window.passage, window.start))
            return
        confirms = said <= self.question_keys | LIGHT | {"가능"}
        shares = [(content_keys(u.window.analysis), u) for u in inside]
        best = max(shares, key=lambda t: len(t[0] & said))[1]
        focus = self.selections[part].part.focus if part is not None else frozenset()
        for keys, u in shares:
            adds = keys - self.shown_keys - self.question_keys
            if len(adds) >= self.config.fuller or (adds and (focus & keys) - said):
                continue  # it says more than the sentence, or states the asked relation it left out: quoted after it
            if (u is best and not confirms) or (keys and len(keys & said) >= self.config.source_overlap * len(keys)):
                self.sources.add((u.window.passage, u.window.start))

    def _units_in(self, window: Window) -> list[Unit]:
        return [u for u in self.passage_units.get(window.passage, [])
                if window.start <= u.window.start and u.window.end <= window.end]

    # ------------------------------------------------------------------ the rest
    def finish(self) -> tuple[list[SentenceCheck], Grounded]:
        """Quote whole units for the parts left unanswered (then, while the budget lasts, units
        that add to the answer), note the parts nothing answers; -> (added checks, Grounded)."""
        added: list[SentenceCheck] = []
        missing: list[Part] = []
        for i, sel in enumerate(self.selections):
            if i in self.answered:
                continue
            if not sel.units:
                if i not in self.touched:
                    missing.append(sel.part)
                continue
            first = True
            for s in _rows_named(sel.units):
                if not first and s.unit.window.passage not in {w.passage for w in self.used_spans}:
                    continue  # after the part's first quote, more only from the passages cited
                if n := self._quote(s, sel.part, must=first):
                    added += self.shown[-n:]
                    self.answered.add(i)
                    first = False
        # while the budget lasts (answers run 2–5 sentences): what the sources go on to say right
        # after each shown sentence, then more of the best units of the passages already cited
        added += self._continue()
        cited = {w.passage for w in self.used_spans}
        for sel in self.selections:
            for s in _rows_named(sel.units):
                if s.unit.window.passage in cited and (n := self._quote(s, sel.part, must=False)):
                    added += self.shown[-n:]
        near = [t for t in self.near if has_words(t[1].analysis.text)]
        if not self.shown and near:
            # nothing answered, yet the model drew a sentence from a span it paraphrased too
            # loosely (coverage only; its numbers, negation and names held): quote that span
            _, w = max(near, key=lambda t: t[0])
            check = self.session.quote(w, analyze(self.kiwi, " ".join(sorted(self.question_keys))), 0.0)
            self._show(check, w, None)
            added.append(check)
            part, spoken = self._part_of(check.text, w)
            missing = [sel.part for i, sel in enumerate(self.selections) if sel.part in missing and i not in (part, spoken)]
            added += self._continue()  # what the source goes on to say, as after any shown sentence
        if not self.shown:
            # no part answered by the selection: the checker's own fallback quotes the source
            # sentences that best cover the whole question, else abstains
            before = len(self.session.checks)
            grounded = self.session.finish()
            return list(grounded.sentences[before:]), grounded
        for part in missing:
            note = SentenceCheck(not_found_note(part.text), False, 0.0, reasons=["not_found"], not_found=True)
            self.session.checks.append(note)
            added.append(note)
        mode = "generated" if any(not c.quoted for c in self.shown) else "extractive"
        mark = self.session.checker.config.unsupported == "mark"
        checks, citations, added = _renumbered(self.session.checks, self.session.numbering.citations, added)
        listed = [c for c in checks if c.supported or c.not_found or (mark and VERIFY_REASONS.intersection(c.reasons))]
        return added, Grounded(render_all(listed), False, mode, checks, citations)

    def _continue(self) -> list[SentenceCheck]:
        """Quote, after each shown sentence, the unit before it that its span builds on, the rest
        of its cited span and the units that follow it in the same section of its passage (up to
        `follow`), while each shares a word with the question or the unit before it and the
        budget lasts; each goes right after its anchor.
        The items of a list the unit before announced all follow (not counted in `follow`; also
        when the span starts inside the list), and so do the bullets under a heading the question
        names; a table row never does (it is quoted only when selected for a part). Last, the
        unit before the span that shares a word with it (the question's too) is quoted after them.
        A quoted span of several units counts all of them as shown."""
        added: list[SentenceCheck] = []
        for anchor, window in list(zip(self.shown, self.used_spans)):
            prev = content_keys(window.analysis)
            after = 0
            place = anchor
            units = self.passage_units.get(window.passage, [])
            first = next((u for u in units if u.window.start >= window.start), None)
            # the unit before announced a list, or was one of its items (a span may start inside a list)
            listing = _in_list(units, first)
            # bullets under a heading the question names ("□ 하반기 추진 계획") all belong to the
            # answer, even when they share no word with the one before ("○ 베트남 법인 설립")
            asked = (first is not None and bool(first.heading) and not (units[0].is_title and first.heading == units[0].text)
                     and bool(content_keys(analyze(self.kiwi, first.heading)) & self.question_keys))
            if (n := self._preceding(anchor, window, first, units, builds_on=True)):
                place = self.shown[-1]
                added += self.shown[-n:]
            for u in units:
                if u.window.start < window.start:
                    continue
                item = listing and bool(ITEM.match(u.text))
                listing = item or bool(ANNOUNCES.search(u.text))
                inside = u.window.end <= window.end
                if not inside and not item and (u.starts_section or after >= self.config.follow):
                    break
                if (u.window.passage, u.window.start) in self.sources:
                    continue
                if u.is_row:  # a row is quoted only when selected: the next rows are other matters
                    if inside:
                        continue
                    break
                keys = content_keys(u.window.analysis)
                if not item and not keys & (prev | self.question_keys) and not (asked and u.heading == first.heading):
                    break
                after += not inside and not item
                prev = keys
                n = self._quote(Scored(u, 0.0, 0.0, False), None, must=False, after=place, item=item)
                if not n:
                    if self._full():
                        return added
                    if item:
                        break  # a list shown in part says what it leaves out: stop there
                    continue
                place = self.shown[-1]
                added += self.shown[-n:]
            # the paragraph before that speaks of the same asked thing ("① 퇴직하는 직원의 계정은 …"
            # before "② 90일 이상 사용하지 않은 계정은 …"): after what the span goes on to say
            if (n := self._preceding(place, window, first, units, builds_on=False)):
                added += self.shown[-n:]
        return added

    def _preceding(self, anchor: SentenceCheck, window: Window, first: Unit | None, units: Sequence[Unit],
                   builds_on: bool) -> int:
        """Quote, right after `anchor`, the unit before `window`'s span in the same section when
        they share a subject: with `builds_on`, a word the question did not bring (the span
        builds on it: "② 갑은 검수 완료 후 20일 이내에 대금을 지급한다" rests on "① 갑은
        납품일부터 7일 이내에 검수를 마치고 …"); else any word of two or more letters (the
        question's too). -> the number of sentences quoted (0: none)."""
        if first is None or first.starts_section or self._full():
            return 0
        at = units.index(first)
        if at == 0:
            return 0
        u = units[at - 1]
        if u.is_heading or u.is_row or u.heading != first.heading:
            return 0
        shared = content_keys(u.window.analysis) & content_keys(window.analysis)
        if not any(len(k) >= 2 and has_words(k) for k in shared - LIGHT - (self.question_keys if builds_on else set())):
            return 0  # a number ("제3조" and "3개월") or a one-syllable word is no shared subject
        return self._quote(Scored(u, 0.0, 0.0, False), None, must=False, after=anchor)

    def _quote(self, scored: Scored, part: Part | None, must: bool, after: SentenceCheck | None = None,
               item: bool = False) -> int:
        """Quote one unit if it is new, adds enough and fits (a part's first unit needs only to
        fit the sentence count: whole units are never cut); `after`: the shown sentence it
        continues, which it is listed right after. A table row comes with its table's header
        row ("구분 2025년 2026년 2027년" before "지원 금액 16 20 24"), which says what its figures
        are, when the budget has room. `item`: a list item after its announcing unit, which needs
        only to add one word and is not counted as a sentence. -> the number of sentences quoted
        (0: none)."""
        w = scored.unit.window
        text = w.analysis.text.strip()
        if scored.unit.is_heading or (w.passage, w.start) in self.sources or not has_words(text):
            return 0
        keys = content_keys(w.analysis)
        new = keys - self.shown_keys
        if not item and self._full():
            return 0
        if not must and (len(new) < (1 if item else self.config.new_words)
                         or self.chars + len(text) > self.config.max_chars):
            return 0
        if must and self.shown and not new:
            return 0
        terms = analyze(self.kiwi, part.text if part is not None else " ".join(sorted(self.question_keys)))
        quoted = 0
        header = self._header_of(scored.unit) if scored.unit.is_row else None
        if header is not None and not self._full(2):
            check = self.session.quote(header.window, terms, 0.0)
            self._place(check, after)
            self._show(check, header.window, None)
            after, quoted = check, 1
        check = self.session.quote(w, terms, scored.score, numbers=part is not None and part.asks in ("count", "amount"))
        self._place(check, after)
        self._show(check, w, None)
        self.items += item
        return quoted + 1

    def _place(self, check: SentenceCheck, after: SentenceCheck | None) -> None:
        """List the just-quoted `check` right after `after` (else it stays last)."""
        checks = self.session.checks
        at = next((i for i, c in enumerate(checks) if c is after), None) if after is not None else None
        if at is not None and checks[-1] is check:
            checks.insert(at + 1, checks.pop())

    def _header_of(self, row: Unit) -> Unit | None:
        """The header row of the table `row` is in: the unit before the first of the rows above
        it, when that is a short line with no sentence ending and not yet shown; else None (also
        for a row that carries its headers itself: "구분: 2024년 | 예산: 12.5")."""
        if carries_headers(row.text):
            return None
        units = self.passage_units.get(row.window.passage, [])
        at = next((i for i, u in enumerate(units) if u.window.start == row.window.start), None)
        if at is None:
            return None
        while at > 0 and units[at - 1].is_row and (figures(units[at - 1].text) or _RULE.match(units[at - 1].text)):
            at -= 1  # rows of figures (and a |---| rule) above it; a row without figures is the header
        if at == 0:
            return None
        head = units[at - 1]
        text = head.text
        if (len(text) > 60 or text.endswith((".", "다")) or _CAPTION_START.match(text)
                or (head.window.passage, head.window.start) in self.sources
                or any(u.passage == head.window.passage and u.start == head.window.start for u in self.used_spans)):
            return None
        return head


def _in_list(units: Sequence[Unit], first: Unit | None) -> bool:
    """`first` is an item of a list that the units before it announce ("다음 각 호의 경조금을
    지급한다." then "1. 본인 결혼: 100만원"), so the items after it belong with it."""
    if first is None or not ITEM.match(first.text):
        return False
    at = units.index(first)
    while at > 0 and ITEM.match(units[at - 1].text) and units[at - 1].heading == first.heading:
        at -= 1
    return at > 0 and bool(ANNOUNCES.search(units[at - 1].text))


def _rows_named(units: Sequence[Scored]) -> list[Scored]:
    """The selected units without the table rows that hold fewer of the part's words than its
    best row: every row of a table shares the header's words ("집행 예산"), only the asked row
    names what was asked ("직무 전문교육 | 310 | 287 | 92.6 | 8,450")."""
    rows = [s.words for s in units if s.unit.is_row]
    if not rows:
        return list(units)
    best = max(rows)
    return [s for s in units if not s.unit.is_row or s.words >= best - 1e-6]


def _renumbered(checks: Sequence[SentenceCheck], citations: Sequence[Citation], added: Sequence[SentenceCheck]
                ) -> tuple[list[SentenceCheck], list[Citation], list[SentenceCheck]]:
    """Number the sources in the order the answer shows them (a continuation listed after its
    anchor was cited later): -> (checks, citations, added) renumbered."""
    order: dict[int, int] = {}
    for c in checks:
        for n in c.citations:
            order.setdefault(n, len(order) + 1)
    for cit in citations:
        order.setdefault(cit.n, len(order) + 1)
    if all(old == new for old, new in order.items()):
        return list(checks), list(citations), list(added)
    new = {id(c): replace(c, citations=[order[n] for n in c.citations]) for c in checks}
    cits = sorted((replace(c, n=order[c.n]) for c in citations), key=lambda c: c.n)
    return [new[id(c)] for c in checks], cits, [new.get(id(c), c) for c in added]
