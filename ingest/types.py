"""What loaders produce: `SourceDoc`, a document split into `Block`s that keep page and heading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Block:
    """A run of text from one page (1-based, None where the format has no pages) under one heading.

    `layout` is True where the text keeps layout line breaks inside sentences (a PDF page, a
    hard-wrapped text file, a paragraph with soft line breaks, a page read by OCR): the chunker
    reflows it (`ingest.reflow`) before splitting sentences.
    """

    text: str
    page: int | None = None
    heading: str | None = None
    layout: bool = False
    ocr_confidence: float | None = None  # mean word confidence (0-100) of a page read by OCR


@dataclass
class SourceDoc:
    """One document as read from a file (or one line of a JSONL corpus).

    `doc_id` is the resolved absolute path for files and "<resolved path>#<line id>" for JSONL
    lines (`jsonl_doc_id`), so lines of two files never share an id; `record_id` keeps the
    line's own "id" field ("faq-1"), None for files. `sha256` is the hash of the file's bytes
    (of the line's canonical JSON for JSONL).
    """

    doc_id: str
    source: str
    title: str
    blocks: list[Block]
    sha256: str
    group: str = "public"
    metadata: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None

    @property
    def pages(self) -> list[int]:
        """Distinct page numbers in reading order, e.g. [1, 2, 3]; [] for page-less formats."""
        seen: list[int] = []
        for block in self.blocks:
            if block.page is not None and block.page not in seen:
                seen.append(block.page)
        return seen

    @property
    def text(self) -> str:
        return "\n".join(block.text for block in self.blocks)
