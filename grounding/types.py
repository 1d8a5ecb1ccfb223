"""What the checker reads (`Passage`) and returns (`SentenceCheck`, `Citation`, `Grounded`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from retrieval.types import Hit


@dataclass(frozen=True)
class Passage:
    """A source text a sentence may be checked against.

    `context` (document title, heading) counts as evidence for coverage but is never quoted.
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
        context = " ".join(part for part in (c.title, c.heading or "") if part)
        return cls(id=c.chunk_id, text=c.text, doc_id=c.doc_id, source=c.source, page=c.page, context=context)


@dataclass(frozen=True)
class Citation:
    """Source [n]: `quote` is exactly passage.text[start:end]."""

    n: int
    doc_id: str
    source: str
    page: int | None
    chunk_id: str
    quote: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence and the verdict on it.

    `reasons` name the failed checks: "numbers", "negation", "entities", "coverage", "question",
    "no_content", or "instruction" (the sentence gives orders, as a model obeying an injected
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
    quoted: bool = False  # a source sentence quoted as the answer (nothing drafted was supported)

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
