"""The manifest of an index generation: which documents it holds, their hashes and chunk ids.

`plan_changes` is the pure heart of incremental ingestion: given what is indexed and what was
just read, it says what to add, replace, keep and delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .ocr import LOW_CONFIDENCE
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrieval.store import SCHEMA_VERSION

from .types import SourceDoc

# Build settings introduced after schema version 1, with the value older indexes were built with.
ADDED_LATER: dict[str, dict[str, Any]] = {
    "embedding": {"max_seq_length": None},
    "chunking": {"context_prefix": False, "reflow": None},  # reflow: layout breaks kept
}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Readable differences of two build configs.

    config_differences({"chunking": {"max_tokens": 256}}, {"chunking": {"max_tokens": 200}})
    -> ["chunking.max_tokens: index 256, settings 200"]
    """
    out = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{section}.{key}: index {a.get(key)!r}, settings {b.get(key)!r}")
    return out


@dataclass
class DocEntry:
    """One indexed document: DocEntry(doc_id="/d/규정.txt", source="/d/규정.txt", sha256="ab..", ...).

    A JSONL line: DocEntry(doc_id="/d/faq.jsonl#faq-1", source="/d/faq.jsonl", record_id="faq-1", ...);
    record_id is None for files and in manifests written before it existed.
    """

    doc_id: str
    source: str
    title: str
    sha256: str
    group: str
    chunk_ids: list[str]
    pages: list[int] = field(default_factory=list)
    ingested_at: str = ""
    record_id: str | None = None
    # pages read by OCR -> their mean word confidence (0-100); JSON keys are the page numbers as text
    ocr_pages: dict[str, float] = field(default_factory=dict)

    def low_confidence_pages(self, threshold: float = LOW_CONFIDENCE) -> list[int]:
        """Pages OCR read with less confidence than `threshold`: worth a look, or a better scan."""
        return sorted(int(p) for p, c in self.ocr_pages.items() if c < threshold)


@dataclass
class Manifest:
    """What a generation was built with (so a reader can rebuild the same query path) and holds."""

    embedding: dict[str, Any]
    tokenizer: dict[str, Any]
    bm25: dict[str, Any]
    chunking: dict[str, Any]
    docs: dict[str, DocEntry] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    created_at: str = ""

    def build_config(self) -> dict[str, Any]:
        """The settings that, when changed, make existing chunks or vectors invalid.

        Keys added after an index was built read as the value that reproduces the old
        behaviour, so an upgrade alone never invalidates an index.
        """
        config = {
            "embedding": self.embedding,
            "tokenizer": self.tokenizer,
            "bm25": self.bm25,
            "chunking": self.chunking,
        }
        return {
            section: {**ADDED_LATER.get(section, {}), **values} for section, values in config.items()
        }

    def to_dict(self) -> dict[str, Any]:
        # Shallow copies: asdict's deep copy took 3.5 s for 50k documents (a 100k-chunk index),
        # more than the rest of a one-document ingest; the result is only serialized.
        data = dict(vars(self))
        data["docs"] = {doc_id: dict(vars(entry)) for doc_id, entry in self.docs.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        docs = {doc_id: DocEntry(**entry) for doc_id, entry in data.get("docs", {}).items()}
        return cls(
            embedding=data["embedding"],
            tokenizer=data["tokenizer"],
            bm25=data["bm25"],
            chunking=data["chunking"],
            docs=docs,
            schema_version=data.get("schema_version", SCHEMA_VERSION),
            created_at=data.get("created_at", ""),
        )


@dataclass
class ChangePlan:
    """Doc ids to add (new), update (changed content, group or source file), keep and delete."""

    add: list[SourceDoc] = field(default_factory=list)
    update: list[SourceDoc] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    @property
    def changes_index(self) -> bool:
        return bool(self.add or self.update or self.delete)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def plan_changes(
    indexed: dict[str, DocEntry],
    loaded: Iterable[SourceDoc],
    read_sources: set[str],
    sync_roots: Iterable[Path] = (),
) -> ChangePlan:
    """Compare the indexed documents with freshly loaded ones.

    Args:
        indexed: the current manifest's docs.
        loaded: documents read in this run (a JSONL file yields several).
        read_sources: sources that were read successfully in this run; an indexed doc from one of
            them that is no longer present (a line removed from a JSONL file) is deleted.
        sync_roots: folders given with --sync; an indexed doc whose source lies under one of
            them and no longer exists on disk is deleted. A file that exists but failed to load
            is kept: nothing already stored is lost to a bad read.

    Example: indexed {"a"}, loaded [a (same hash), b] -> add [b], unchanged ["a"].
    """
    plan = ChangePlan()
    seen: set[str] = set()
    for doc in loaded:
        seen.add(doc.doc_id)
        old = indexed.get(doc.doc_id)
        if old is None:
            plan.add.append(doc)
        elif (old.sha256, old.group, old.source) != (doc.sha256, doc.group, doc.source):
            plan.update.append(doc)
        else:
            plan.unchanged.append(doc.doc_id)

    roots = [root.resolve() for root in sync_roots]
    for doc_id, entry in indexed.items():
        if doc_id in seen:
            continue
        if entry.source in read_sources:
            plan.delete.append(doc_id)
        elif roots and _under_any(Path(entry.source), roots) and _gone(Path(entry.source)):
            plan.delete.append(doc_id)
    return plan


def _gone(path: Path) -> bool:
    """True only when the file is known not to exist; an unreadable path is kept."""
    try:
        return not path.exists()
    except OSError:
        return False


def _under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)
