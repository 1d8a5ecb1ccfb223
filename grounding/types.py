"""What the checker reads (`Passage`) and returns (`SentenceCheck`, `Citation`, `Grounded`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from retrieval.types import Hit


@dataclass(frozen=True)
class Passage:
    """A source text a sentence may be checked against.

    `context` (document title, running header, heading) counts as evidence for coverage but is never quoted.
    Passage.from_hit(hit) for retrieved chunks; Passage(id="p1", text="연차휴가는 15일이다.").
    """

    id: str
    text: str
    doc_id: str = ""
    source: str = ""
    page: int | None = None
    context: str = ""

    @classmethod
    def from_hit(cls, hit: Hit) -> Passage:
        c = hit.chunk
        context = " ".join(part for part in (c.title, *c.running_header(), c.heading or "") if part)
        return cls(id=c.chunk_id, text=c.text, doc_id=c.doc_id, source=c.source, page=c.page, context=context)


@dataclass(frozen=True)
class Citation:
    """Source [n]: `quote` is exactly passage.text[start:end], one or more whole source sentences.

    highlight_start/highlight_end: the part of the quote the answer relies on (offsets into
    the passage text like start/end, inside [start, end]); None when no narrower part stands out.
    """

    n: int
    doc_id: str
    source: str
    page: int | None
    chunk_id: str
    quote: str
    start: int
    end: int
    highlight_start: int | None = None
    highlight_end: int | None = None
    # Where the highlighted part (else the quote) sits on its page image, as (x0, y0, x1, y1)
    # fractions of the page, origin top left; filled by the server for PDFs and scans, else empty.
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def highlighted(self) -> str:
        """The part of the quote the answer relies on (the whole quote when none stands out)."""
        if self.highlight_start is None or self.highlight_end is None:
            return self.quote
        return self.quote[self.highlight_start - self.start:self.highlight_end - self.start]


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence and the verdict on it.

    `reasons` name the failed checks: "numbers", "negation", "entities", "coverage", "question",
    "no_content", "non_answer" (every content word comes from the question: it adds nothing),
    "question_type" (a 며칠/얼마/몇/언제 question answered without the asked quantity or date of
    the asked subject), or "instruction" (the sentence gives orders, as a model obeying an injected
    document would write; its `text` is then WITHHELD, never the order itself).
    `citations` are Citation numbers ([n]); empty when unsupported.
    """

    text: str
    supported: bool
    score: float
    citations: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    coverage: float = 0.0
    similarity: float | None = None
    passage: int | None = None  # index into the passages checked against
    quoted: bool = False  # a whole source sentence quoted as (part of) the answer
    not_found: bool = False  # a note that one part of the question is not in the documents (text says which)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Grounded:
    """The checked answer: final text, per-sentence verdicts and the citations they use.

    mode: "generated" (checked draft sentences), "extractive" (quoted source sentences,
    because no draft sentence was supported) or "abstained".
    """

    answer: str
    abstained: bool
    mode: str
    sentences: list[SentenceCheck]
    citations: list[Citation]


@dataclass(frozen=True)
class Answer:
    """What `Pipeline.ask` returns: the checked answer, the chunks it drew on and timings.

    `query` is the standalone question actually searched (a follow-up rewritten with its
    history); `draft` is the model's unchecked text, kept for audits and never shown as the answer.
    """

    answer: str
    abstained: bool
    mode: str
    sentences: list[SentenceCheck]
    citations: list[Citation]
    hits: list[Hit]
    question: str
    query: str
    draft: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    loop_stopped: bool = False  # the draft was cut because the model started repeating itself

    @classmethod
    def from_grounded(cls, g: Grounded, **rest: Any) -> Answer:
        return cls(g.answer, g.abstained, g.mode, g.sentences, g.citations, **rest)
