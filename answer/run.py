"""Question -> checked Answer: condense, retrieve, prompt, draft, ground. Used by `Pipeline`.

Nothing the model writes reaches the user unchecked: `stream` yields a sentence only after
the grounding checker has found its source.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from generation.types import GenerationParams, Generator, Message
from grounding import Answer, GroundingChecker, Passage, SentenceCheck, ShouldStop, render_sentence, split_draft
from prompts import ABSTAIN, Focus, build_qa_messages, build_unit_messages
from retrieval.types import Hit

from .compose import ComposeConfig, Composer
from .loop import LoopGuard
from .select import EmbedFn, SelectConfig, Selection, select_for_question

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"[.?!。\n]")


@dataclass(frozen=True)
class StreamEvent:
    """One step of a streamed answer.

    kind "token": a raw piece of the model's draft, not checked yet (only when asked for);
    kind "sentence": a checked draft sentence (`check`), `text` as the user sees it (a sentence
    that gives orders is never supported and shows only grounding.WITHHELD);
    kind "answer": the final `answer` (same as `ask` would return).

    Token text is the model's own words. The model never sees a document sentence that
    prompts.is_instruction flags (prompts.neutralize hides it), so a token can only repeat an
    order that detector misses, which no filter built on it could catch here either.
    """

    kind: str
    text: str = ""
    check: SentenceCheck | None = None
    answer: Answer | None = None


@dataclass
class AnswerRun:
    """Everything one answer needs, already built by the pipeline.

    The answer is composed per part of the question (answer/parts.py → select.py → the
    focused prompt → compose.py) unless `compose` is False, which keeps the earlier flow: the
    whole passages in the prompt and the checker's quotes as the fallback.
    """

    question: str
    query: str
    hits: list[Hit]
    generator: Generator
    checker: GroundingChecker
    params: GenerationParams
    timings: dict[str, float]
    started: float
    tokens: bool = False  # also yield each raw piece of the draft as a "token" event
    passage_tokens: int | None = None  # cap on the passages' share of the prompt
    focus: Focus | None = None  # cuts passages over the cap to their relevant sentences
    should_stop: ShouldStop | None = None  # polled by the checker, which raises CheckCancelled
    compose: bool = True
    embed: EmbedFn | None = None  # for unit selection (part ↔ sentence similarity)
    select_config: SelectConfig | None = None
    compose_config: ComposeConfig | None = None
    loop_span: int = 24  # characters a draft may not repeat (0: no loop guard)

    def stream(self) -> Iterator[StreamEvent]:
        t = self.timings
        passages = [Passage.from_hit(h) for h in self.hits]
        session = self.checker.session(passages, self.query, should_stop=self.should_stop)
        if not passages:
            t["total"] = time.perf_counter() - self.started
            yield self._final(session.finish(), "")
            return
        composer = None
        if self.compose:
            start = time.perf_counter()
            units, selections = select_for_question(self.checker.kiwi, self.query, session.prepared,
                                                    embed=self.embed, config=self.select_config)
            composer = Composer(session, selections, self.compose_config, units)
            groups = _unit_groups(selections, self.hits, (self.select_config or SelectConfig()).prompt_units)
            t["select"] = time.perf_counter() - start
        if composer is not None and groups:
            prompt = build_unit_messages(self.query, groups)
        else:
            prompt = build_qa_messages(
                self.query, self.hits, self.generator.count_tokens, self.generator.context_size,
                passage_tokens=self.passage_tokens, focus=self.focus,
            )
        add = composer.add if composer is not None else session.add
        gen_start = time.perf_counter()
        pending = ""
        draft: list[str] = []
        abstained = looped = False
        guard = LoopGuard(self.loop_span) if self.loop_span else None
        with _closing(self.generator.stream(prompt.messages, self.params)) as pieces:
            for piece in pieces:
                if not draft:
                    t["first_token"] = time.perf_counter() - self.started
                draft.append(piece)
                if guard is not None and guard.feed(piece):
                    looped = True  # the model is repeating itself: stop it, drop the unfinished sentence
                    log.info("answer: the draft repeats itself after %d characters; generation stopped",
                             len("".join(draft)))
                    pending = ""
                    break
                pending += piece
                if self.tokens:
                    yield StreamEvent("token", piece)
                if not _SENTENCE_END.search(piece):
                    continue
                complete, pending = _complete(self.checker.splitter, pending)
                for raw in complete:
                    for sentence in split_draft(self.checker.splitter, raw):
                        abstained |= ABSTAIN.rstrip(".") in sentence
                        if not abstained:
                            yield from self._check(add, sentence)
        t["generate"] = time.perf_counter() - gen_start
        if not abstained and ABSTAIN.rstrip(".") not in pending:
            for sentence in split_draft(self.checker.splitter, pending):
                yield from self._check(add, sentence)
        if composer is not None:
            start = time.perf_counter()
            added, grounded = composer.finish()
            t["_ground"] = t.get("_ground", 0.0) + time.perf_counter() - start
            for check in added:
                yield StreamEvent("sentence", render_sentence(check), check=check)
        else:
            grounded = session.finish()
        t["ground"] = t.pop("_ground", 0.0)
        t["total"] = time.perf_counter() - self.started
        yield self._final(grounded, "".join(draft), looped)

    def _check(self, add: Callable[[str], SentenceCheck], sentence: str) -> Iterator[StreamEvent]:
        start = time.perf_counter()
        check = add(sentence)
        self.timings["_ground"] = self.timings.get("_ground", 0.0) + time.perf_counter() - start
        if check.supported and "first_sentence" not in self.timings:
            self.timings["first_sentence"] = time.perf_counter() - self.started
        yield StreamEvent("sentence", render_sentence(check), check=check)

    def _final(self, grounded, draft: str, looped: bool = False) -> StreamEvent:
        answer = Answer.from_grounded(
            grounded, hits=self.hits, question=self.question, query=self.query, draft=draft,
            timings={k: v for k, v in self.timings.items() if not k.startswith("_")}, loop_stopped=looped,
        )
        return StreamEvent("answer", answer.answer, answer=answer)


@contextmanager
def _closing(pieces: Iterable[str]) -> Iterator[Iterable[str]]:
    """Close the model's stream when the loop leaves early (a loop stopped, the client gone):
    closing the generator is what stops llama.cpp decoding."""
    try:
        yield pieces
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def _unit_groups(selections: Sequence[Selection], hits: Sequence[Hit], budget: int = 2
                 ) -> list[tuple[Hit, list[str]]]:
    """The units the model sees: every part's best, then the parts' next best in turn while
    fewer than `budget` are picked (so one part gets its best `budget`, two parts one each),
    grouped by passage (retrieval order), each passage's in text order, no repeats. When no
    part has a unit over the selection bar, the parts' best below it (`Selection.near`)."""
    if not any(sel.units for sel in selections):
        # no part has a unit over the bar: the best-scoring ones below it, so the prompt stays
        # short and keeps the cached head (the whole-passage prompt has another system message,
        # and the next question would read the head again)
        selections = [replace(sel, units=sel.near) for sel in selections]
    picked: dict[int, dict[int, str]] = {}
    count = 0
    depth = max((len(sel.units) for sel in selections), default=0)
    for level in range(depth):
        for sel in selections:
            if level >= len(sel.units) or (level > 0 and count >= budget):
                continue
            unit = sel.units[level].unit
            if unit.position not in picked.setdefault(unit.rank, {}):
                picked[unit.rank][unit.position] = unit.text
                count += 1
    return [(hits[rank], [text for _, text in sorted(picked[rank].items())]) for rank in sorted(picked) if picked[rank]]


def final_answer(events: Iterable[StreamEvent]) -> Answer:
    """Run a stream of answer events to its end and return the Answer it closes with."""
    final = None
    for event in events:
        final = event.answer or final
    if final is None:
        raise RuntimeError("the answer stream ended without an answer")
    return final


def _complete(splitter, pending: str) -> tuple[list[str], str]:
    """Split off the finished sentences of `pending`; the last one may still be growing,
    unless the text ends a line."""
    spans = splitter.split(pending)
    if pending.endswith("\n"):
        return [pending[s.start : s.end] for s in spans], ""
    if len(spans) < 2:
        return [], pending
    return [pending[s.start : s.end] for s in spans[:-1]], pending[spans[-1].start :]


def history_messages(history: Sequence[Message | dict] | None, max_turns: int) -> list[Message]:
    """Accept Message objects or {"role", "content"} dicts (API/UI); keep the last turns."""
    out = []
    for m in history or []:
        msg = m if isinstance(m, Message) else Message(m["role"], m["content"])
        if msg.role in ("user", "assistant") and msg.content.strip():
            out.append(msg)
    return out[-max_turns:] if max_turns else []


_TERM_TAGS = frozenset({"NNG", "NNP", "NR", "SN", "SL", "SH", "XR", "VV", "VA"})


class KiwiFocus:
    """`Focus` by Kiwi: sentences by the checker's splitter, terms = content morphemes.

    KiwiFocus(kiwi, splitter).terms("연차휴가는 15일을 준다") -> {"연차", "휴가", "15", "일", "주"}
    """

    def __init__(self, kiwi, splitter) -> None:
        self.kiwi = kiwi
        self.splitter = splitter

    def sentences(self, text: str) -> list[str]:
        out = [text[s.start : s.end].strip() for s in self.splitter.split(text)]
        return [s for s in out if s]

    def terms(self, text: str) -> set[str]:
        return {t.form for t in self.kiwi.tokenize(text) if t.tag in _TERM_TAGS}


def noun_extractor(kiwi) -> Callable[[str], list[str]]:
    """nouns("연차휴가는 며칠인가요?") -> ["연차", "휴가", "며칠"] (Kiwi nouns and foreign words)."""

    def nouns(text: str) -> list[str]:
        return [t.form for t in kiwi.tokenize(text) if t.tag in ("NNG", "NNP", "SL", "SH", "XR")]

    return nouns
