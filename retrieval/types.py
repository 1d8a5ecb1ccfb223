"""Data the index stores and the retriever returns: `Chunk` and `Hit`."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_LETTER = re.compile(r"[^\W\d_]")  # a letter of any script


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

    def running_header(self) -> list[str]:
        """The running header/footer lines taken off this chunk's page that have letters
        (`metadata["furniture"]` without page numbers): ["대외비 · 인사팀 · 취업규칙"]."""
        return [line for line in self.metadata.get("furniture", ()) if _LETTER.search(line)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its 1-based rank and the score that ranked it."""

    chunk: Chunk
    score: float
    rank: int
