"""Data the index stores and the retriever returns: `Chunk` and `Hit`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One retrievable span of a document.

    Example: Chunk(chunk_id="/docs/규정.txt#0002-3f9a1c2e", doc_id="/docs/규정.txt",
    text="연차휴가는 15일이다.", source="/docs/규정.txt", page=1, group="public").
    """

    chunk_id: str
    doc_id: str
    text: str
    source: str
    page: int | None = None
    group: str = "public"
    title: str = ""
    heading: str | None = None
    position: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its 1-based rank and the score that ranked it."""

    chunk: Chunk
    score: float
    rank: int
