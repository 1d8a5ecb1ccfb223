"""Preparing one file for the index away from the writer: read (OCR) → chunk → embed.

`prepare_file(job, tools)` is a pure function of the file and the tools built from settings,
so it can run on another process or machine (Ray workers, `ingest.ray_prepare`); the one
writer (`IndexBuilder`) takes its `PreparedFile`s in file order and commits them as it
commits what it prepared itself. The chunks and vectors are the ones a local ingest makes:
the same chunker, the same index text, every text embedded on its own key.

prepare_file(FileJob(Path("규정.txt"), "hr"), tools)
-> PreparedFile(docs=[SourceDoc(...)], chunks={doc_id: [Chunk, ...]}, vectors={text hash: vector})
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.embed import Embedder
from retrieval.segments import unit_vectors
from retrieval.types import Chunk

from .chunk import Chunker, index_text
from .errors import LoadError
from .load import LoadLimits, load_file
from .ocr import Ocr
from .types import SourceDoc

# Texts per embedding call. The embedder sorts each call's texts by length and pads batches of
# similar length (encode_sorted), so a bigger call wastes less padding; 256 keeps progress lively.
EMBED_GROUP = 256


@dataclass
class IngestTools:
    """What preparing a file needs, built once per process from settings."""

    limits: LoadLimits
    ocr: Ocr | None
    chunker: Chunker
    embedder: Embedder
    context_prefix: bool


@dataclass
class FileJob:
    """One file to read for an ingest, and what of it to keep.

    exclude: doc ids dropped as if the file lacked them. only: when not None, keep only these
    doc ids (a file re-read to re-chunk what the index holds of it). unchanged: doc id ->
    (sha256, group) of its indexed documents: those read back the same are not chunked again.
    """

    path: Path
    group: str
    exclude: frozenset[str] = frozenset()
    only: frozenset[str] | None = None
    unchanged: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class PreparedFile:
    """What a worker made of one file: its documents (or the load error), their chunks, and
    the unit vectors of the chunk texts it embedded, keyed by `text_key` of the index text."""

    path: Path
    docs: list[SourceDoc] = field(default_factory=list)
    chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    error: LoadError | None = None


class Preparer(Protocol):
    """Prepares files somewhere else (other processes, other machines) for one writer.

    prepare(jobs, known) yields one PreparedFile per job, in the jobs' order, embedding no text
    whose key is in `known`. A failure of the machinery itself (not of a file) raises an
    IngestError naming it; nothing is committed then.
    """

    def prepare(self, jobs: Sequence[FileJob], known: Collection[str]) -> Iterator[PreparedFile]: ...


def text_key(text: str) -> str:
    """The key of an embedded text: its sha256 (what `keys.txt` of a segment holds)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare_file(job: FileJob, tools: IngestTools, known: Collection[str] = ()) -> PreparedFile:
    """Read, chunk and embed one file; `known`: text keys whose vectors the writer already has.

    A load failure is returned in `error` (the writer reports it as it does its own).
    """
    out = PreparedFile(job.path)
    try:
        docs = load_file(job.path, job.group, limits=tools.limits, ocr=tools.ocr)
    except LoadError as exc:
        out.error = exc
        return out
    docs = [d for d in docs if d.doc_id not in job.exclude and (job.only is None or d.doc_id in job.only)]
    out.docs = docs
    pending: dict[str, str] = {}
    for doc in docs:
        if not doc.blocks or job.unchanged.get(doc.doc_id) == (doc.sha256, doc.group):
            continue  # unchanged: the writer keeps what the index holds
        chunks = tools.chunker.chunk(doc)
        out.chunks[doc.doc_id] = chunks
        for chunk in chunks:
            text = index_text(chunk, tools.context_prefix)
            key = text_key(text)
            if key not in known:
                pending[key] = text
    out.vectors = embed_keyed(tools.embedder, pending)
    return out


def embed_keyed(embedder: Embedder, texts: dict[str, str], per_call: int = EMBED_GROUP) -> dict[str, np.ndarray]:
    """{key: text} -> {key: unit vector}, `per_call` texts per embedding call, longest first."""
    todo = sorted(texts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(todo), max(1, per_call)):
        group: Sequence[tuple[str, str]] = todo[start : start + max(1, per_call)]
        rows = unit_vectors(embedder.embed_documents([text for _, text in group]))
        vectors.update(zip((k for k, _ in group), rows, strict=True))
    return vectors
