"""The writing side of `Pipeline`: ingest, delete, merge, and the parts they are built from
(chunker, OCR, load limits, the Ray preparer). `Pipeline` inherits it; it reads only
`settings`, `embedder`, `pg_index()`, `dense_config()`, `documents()`, `waiting()` and
`_count_tokens()` of it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.build import IndexBuilder, IngestReport, Progress
from ingest.chunk import Chunker, SentenceSplitter
from ingest.errors import IndexLockedError
from ingest.load import LoadLimits
from ingest.manifest import DocEntry
from ingest.ocr import Ocr
from ingest.prepare import IngestTools, Preparer
from retrieval.tokenize import KiwiTokenizer

from .settings import Settings

if TYPE_CHECKING:
    from ingest.ray_prepare import RayPreparer

log = logging.getLogger(__name__)

MB = 1024 * 1024


def ingest_tools(settings: Settings) -> IngestTools:
    """What a Ray worker needs to prepare files as this machine would (`ingest.ray_prepare`)."""
    from .pipeline import Pipeline

    pipeline = Pipeline(settings)
    return IngestTools(pipeline.load_limits(), pipeline.ocr(), pipeline.chunker(), pipeline.embedder,
                       settings.chunk.context_prefix)


class IndexWriting:
    """Ingest, delete and merge over the pipeline's index (see the module docstring)."""

    settings: Settings
    _lock: threading.Lock
    _kiwi: object
    _ingest_tokenizer: KiwiTokenizer | None
    _ocr: Ocr | None | bool
    _merger: threading.Thread | None
    embedder: Any  # and pg_index(), dense_config(), documents(), waiting(), _count_tokens(): the Pipeline's

    def builder(self, preparer: Preparer | None = None) -> IndexBuilder:
        """The index writer; `preparer` reads, chunks and embeds files elsewhere (Ray)."""
        s = self.settings
        return IndexBuilder(
            s.index_dir,
            self.embedder,
            self.ingest_tokenizer(),
            self.chunker(),
            bm25_params={"k1": s.retrieval.bm25_k1, "b": s.retrieval.bm25_b},
            limits=self.load_limits(),
            ocr=self.ocr(),
            context_prefix=s.chunk.context_prefix,
            dense_config=self.dense_config(),
            max_segments=s.retrieval.max_segments,
            pg=self.pg_index(),
            preparer=preparer,
        )

    def ingest_tokenizer(self) -> KiwiTokenizer:
        if self._ingest_tokenizer is None:  # Kiwi loads in ~0.7 s: once per pipeline, not per ingest
            self._ingest_tokenizer = KiwiTokenizer(kiwi=self._kiwi)  # the checker's, if loaded
        return self._ingest_tokenizer

    def chunker(self) -> Chunker:
        """Chunks sized in the embedding model's tokens, split at Kiwi's sentences."""
        s = self.settings
        tokenizer = self.ingest_tokenizer()
        return Chunker(
            self._count_tokens,
            max_tokens=s.chunk.max_tokens,
            overlap_tokens=s.chunk.overlap_tokens,
            splitter=SentenceSplitter(lambda: tokenizer.kiwi),  # loaded only if text is chunked
        )

    def ray_preparer(self, address: str) -> RayPreparer:
        """Files prepared on the Ray cluster at `address` ("auto" or HOST:PORT), joined now.

        Raises:
            ClusterError: ray is missing or the cluster cannot be reached (says which and why).
        """
        from ingest.ray_prepare import RayPreparer

        i = self.settings.ingest
        preparer = RayPreparer(address, partial(ingest_tools, self.settings),
                               cpus_per_worker=i.ray_cpus_per_worker, workers=i.ray_workers)
        preparer.connect()
        return preparer

    def merge(self, *, full: bool = False) -> dict[str, object] | None:
        """Merge index segments now: all of them (`full`), or the newest small ones when due."""
        self.wait_for_merge()
        return self.builder().merge(full=full)

    def wait_for_merge(self, timeout: float | None = None) -> None:
        """Wait for a background merge this pipeline started (an ingest waits, so it never
        finds the index lock taken by its own merge)."""
        thread = self._merger
        if thread is not None:
            thread.join(timeout)

    def _merge_later(self) -> None:
        """Start a background merge of the newest small segments if none runs (it does
        nothing unless more than `retrieval.max_segments` segments exist)."""
        with self._lock:
            if self._merger is not None and self._merger.is_alive():
                return
            self._merger = threading.Thread(target=self._merge_quietly, name="chulcheo-merge", daemon=True)
            self._merger.start()

    def _merge_quietly(self) -> None:
        try:
            builder = self.builder()
            if builder.merge_due():  # read without the lock: most ingests leave nothing to merge
                builder.merge()
        except IndexLockedError:
            log.info("%s: index busy; segments are merged after the next ingest", self.index_dir)
        except Exception:  # noqa: BLE001 - a failed merge leaves the index as it was; the next one retries
            log.exception("%s: background merge failed; the index is unchanged", self.index_dir)

    def ocr(self) -> Ocr | None:
        """The OCR for scanned pages and images, results cached beside the index
        (`<index_dir>/ocr-cache`); None when off or Tesseract is missing (looked up once)."""
        o = self.settings.ocr
        if not o.enabled:
            return None
        if self._ocr is False:
            self._ocr = Ocr.find(self.settings.index_dir / "ocr-cache", o.lang, timeout_s=o.page_timeout_s)
            if self._ocr is not None and o.workers:
                self._ocr.workers = o.workers
        return self._ocr

    def load_limits(self) -> LoadLimits:
        s = self.settings.limits
        return LoadLimits(
            max_file_bytes=int(s.max_file_mb * MB),
            max_uncompressed_bytes=int(s.max_uncompressed_mb * MB),
            max_compression_ratio=s.max_compression_ratio,
        )

    def ingest(
        self,
        paths: Sequence[Path],
        group: str = "public",
        *,
        sync: bool = False,
        rebuild: bool = False,
        exclude: Collection[str] = (),
        replace: Collection[str] = (),
        progress: Progress | None = None,
        ray: str | None = None,
    ) -> IngestReport:
        """`IndexBuilder.ingest`: `exclude` keeps doc ids out of their files, `replace` drops ids atomically.
        Segments are merged in the background afterwards when due. `ray`: "auto" or HOST:PORT
        reads, chunks and embeds on that Ray cluster ("" here; None: `ingest.ray` of settings)."""
        self.wait_for_merge()
        address = self.settings.ingest.ray if ray is None else ray
        # joined before the index lock is taken: an unreachable cluster changes nothing
        preparer = self.ray_preparer(address) if address else None
        try:
            report = self.builder(preparer).ingest(
                paths, group, sync=sync, rebuild=rebuild, exclude=exclude, replace=replace, progress=progress
            )
        finally:
            if preparer is not None:
                preparer.close()
        self._merge_later()
        return report

    def delete(self, specs: Sequence[str]) -> tuple[list[str], list[str]]:
        """Remove documents named by id or by file path (a JSONL path names all its lines).

        Returns (doc ids removed, specs that matched no indexed document).
        """
        docs = [*self.documents(), *self.waiting()]
        ids: list[str] = []
        missing: list[str] = []
        for spec in specs:
            matched = _doc_ids_of(spec, docs)
            ids.extend(matched)
            if not matched:
                missing.append(spec)
        self.wait_for_merge()
        deleted = self.builder().delete(list(dict.fromkeys(ids))) if ids else []
        if deleted:
            self._merge_later()
        return deleted, missing


def _doc_ids_of(spec: str, docs: list[DocEntry]) -> list[str]:
    """The doc id given, else the ids of every document read from that file path, else the one
    JSONL line whose own id it is (a line id found in several files matches none: ambiguous)."""
    if any(d.doc_id == spec for d in docs):
        return [spec]
    resolved = str(Path(spec).resolve())
    by_path = [d.doc_id for d in docs if d.source == resolved]
    if by_path:
        return by_path
    lines = [d.doc_id for d in docs if getattr(d, "record_id", None) == spec]
    return lines if len(lines) == 1 else []
