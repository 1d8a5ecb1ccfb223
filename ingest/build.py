"""Incremental index builds: read files, re-chunk and re-embed only what changed, swap atomically.

A build writes the new and changed documents' chunks as one new segment and a new generation
naming the old segments (rows of replaced or deleted documents marked deleted) and the new one,
then publishes it by renaming the CURRENT pointer; a crash anywhere leaves the previous
generation live and the next build removes the debris. One writer at a time holds
`INDEX_DIR/.lock`; readers never take it. Because one generation holds every change of an
ingest, `replace=` drops old documents in the same swap that makes their new version live:
readers see one or the other, never both or none. `merge` rewrites neighbouring segments as one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from retrieval.dense import DenseIndexConfig
from retrieval.embed import Embedder
from retrieval.errors import EmbeddingModelMismatch
from retrieval.pg import PgIndex
from retrieval.segments import (
    VECTORS_FILE,
    TermCounts,
    read_keys,
    segments_dir,
)
from retrieval.store import (
    IndexGeneration,
    cleanup_generations,
    commit_generation,
    current_generation_path,
    merge_run,
    merge_segments,
    new_generation_path,
    publish,
    read_manifest,
    segment_summary,
    write_segment,
)
from retrieval.types import Chunk

from .chunk import Chunker, index_text
from .errors import IndexLockedError, LoadError, NeedsOcrError
from .load import SUPPORTED_EXTENSIONS, LoadLimits, load_file
from .manifest import (
    ChangePlan,
    DocEntry,
    Manifest,
    config_differences,
    now_iso,
    plan_changes,
)
from .ocr import Ocr
from .pending import Waiting, WaitingForOcr
from .prepare import EMBED_GROUP, FileJob, PreparedFile, Preparer, embed_keyed, text_key
from .tables import TABLES_VERSION
from .types import SourceDoc

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total), e.g. progress("embed", 64, 300)."""



@dataclass
class IngestReport:
    """What one ingest did; `to_dict()` is the CLI's `--json` contract (keys are only ever added).

    `replaced`: the doc ids given as `replace=` that this ingest dropped (to_dict counts them).
    `rechunked`: the chunking settings that differ from the index's (["chunking.reflow: index
    '2', settings '3'"]); when not empty every indexed document was read and chunked again.
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    replaced: list[str] = field(default_factory=list)
    rechunked: list[str] = field(default_factory=list)
    # files whose pages need OCR where it is missing: remembered as "needs OCR" (ingest.pending)
    waiting: list[Waiting] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": self.failed,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "replaced": len(self.replaced),
            "rechunked": self.rechunked,
            "needs_ocr": [w.source for w in self.waiting],
        }


def _failed(report: IngestReport, path: Path, group: str, exc: LoadError) -> None:
    """Report a file that could not be read (and remember it when it needs OCR)."""
    log.debug("skipped %s", exc)  # the report carries it to the user
    report.failed.append({"path": str(path), "error": str(exc)})
    if isinstance(exc, NeedsOcrError):
        report.failed[-1]["needs_ocr"] = True
        report.waiting.append(_waiting(path, group, exc))


def _waiting(path: Path, group: str, exc: LoadError) -> Waiting:
    """The "needs OCR" entry of a file (its id as load_file would give it)."""
    resolved = path.resolve()
    try:
        with resolved.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        digest = ""
    return Waiting(str(resolved), str(resolved), group, getattr(exc, "reason", str(exc)), digest, now_iso())


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Files named directly plus every regular file under named folders, sorted.

    Hidden files and folders are skipped; a path that does not exist is reported as failed.
    expand_paths([Path("docs")]) -> ([docs/a.txt, docs/sub/b.pdf], [])
    """
    files: list[Path] = []
    failed: list[dict[str, str]] = []
    def unreadable(exc: OSError) -> None:
        failed.append({"path": str(exc.filename), "error": f"{_printable(exc.filename)}: cannot read folder ({exc.strerror})"})

    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            failed.append({"path": str(path), "error": f"{_printable(path)}: no such file or directory"})
    unique = {str(f.resolve()): f for f in files}  # a file named twice is read once
    return sorted(unique.values()), failed


class IndexBuilder:
    """Builds and updates the index in `index_dir`.

    Args:
        index_dir: where generations and CURRENT live.
        embedder: any `Embedder`; its `model_id` is recorded and must match on later builds.
        tokenizer: BM25 tokenizer with `tokenize_many` and `config()`.
        chunker: sizes chunks with the same embedder's tokenizer.
        bm25_params: {"k1": .., "b": ..}.
        limits: bounds on input files.
        ocr: reads scanned PDF pages and image files (None: such files are reported as needing OCR).
        lock_timeout: seconds to wait for another writer before IndexLockedError.
        context_prefix: index each chunk under its document title and heading (`index_text`).
        dense_config: the FAISS index of each new segment (exact, or HNSW for big ones).
        max_segments: `merge` merges the newest small segments once there are more.
        pg: write into this Postgres index instead of index_dir's files (one transaction per write).
        preparer: reads, OCRs, chunks and embeds new and changed files elsewhere (Ray workers,
            `ingest.ray_prepare`); this builder still plans and commits, as the one writer.
    """

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        tokenizer,
        chunker: Chunker,
        bm25_params: dict[str, float] | None = None,
        limits: LoadLimits | None = None,
        ocr: Ocr | None = None,
        lock_timeout: float = 0.0,
        context_prefix: bool = False,
        dense_config: DenseIndexConfig | None = None,
        max_segments: int = 8,
        pg: PgIndex | None = None,
        preparer: Preparer | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.chunker = chunker
        self.bm25_params = bm25_params or {"k1": 1.2, "b": 0.75}
        self.limits = limits or LoadLimits()
        self.ocr = ocr
        self.lock_timeout = lock_timeout
        self.context_prefix = context_prefix
        # Which FAISS index each new generation gets (exact or HNSW); not part of the build
        # config, so changing it never forces re-embedding: it applies at the next write.
        self.dense_config = dense_config
        self.max_segments = max_segments  # more segments than this: the newest small ones are merged
        self.pg = pg  # the index lives in Postgres (index.url); index_dir keeps the lock and OCR state
        self.preparer = preparer

    # ----------------------------------------------------------------- public verbs
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
    ) -> IngestReport:
        """Add or replace the documents under `paths`; with `sync`, drop those whose files are gone.

        Args:
            exclude: doc ids treated as absent from their file when it is read: never added,
                and deleted if indexed (e.g. one line of a JSONL file an admin deleted, while
                its sibling lines stay). A file that fails to read keeps what it had.
            replace: doc ids to drop in the same new generation that adds `paths` (the old
                version of a re-uploaded document), only if every path was read without
                failure; otherwise nothing is dropped. Ids read in this ingest are never
                dropped. `report.replaced` lists what was. With `rebuild` nothing old is kept
                anyway, so nothing counts as replaced.

        ingest([Path("/up/hr/규정-v2.txt")], "hr", replace=["/up/hr/규정-v1.txt"])
        -> IngestReport(added=1, replaced=["/up/hr/규정-v1.txt"], ...)
        """
        started = time.perf_counter()
        progress = progress or (lambda stage, done, total: None)
        exclude = frozenset(exclude)
        with self._lock():
            self._cleanup()  # first: a crashed, never-published generation must not pass for the previous one
            old = None if rebuild else self._open_current()
            report = IngestReport()
            files, report.failed = expand_paths(paths)
            indexed = old.manifest_obj.docs if old else {}
            if old is not None and old.rechunk:
                # Chunking settings changed: every indexed document is chunked again, those
                # of files not named here too (read from their sources, in their own group).
                report.rechunked = old.rechunk
                log.warning(
                    "%s: chunking settings changed (%s); re-chunking all %d indexed documents",
                    self.index_dir, "; ".join(old.rechunk), len(indexed),
                )
            prepared = _Prepared(self, old, {} if report.rechunked else indexed, progress)
            load = self._load_while_embedding if self.preparer is None else self._load_prepared
            loaded, read_sources = load(
                files, group, indexed, report, progress, prepared, exclude, rechunk=bool(report.rechunked)
            )
            plan = plan_changes(
                indexed, loaded, read_sources, sync_roots=[p for p in paths if sync and p.is_dir()]
            )
            if report.rechunked:
                _rechunk_all(plan, loaded)
            report.added, report.updated = len(plan.add), len(plan.update)
            report.unchanged, report.deleted = len(plan.unchanged), len(plan.delete)
            report.replaced = _replaced(replace, indexed, loaded, plan, report)
            if report.rechunked:
                self._check_all_rechunked(old, indexed, loaded, plan, report)
            if rebuild:  # everything not read again is gone from the fresh index
                report.deleted = len(set(self._indexed_ids()) - {d.doc_id for d in loaded})
            if plan.changes_index or report.replaced or old is None or old.rescore_bm25 or report.rechunked:
                drop = set(plan.delete) | {d.doc_id for d in plan.update} | set(report.replaced)
                report.embedded, report.chunks = self._write_generation(
                    old, drop, plan.add + plan.update, progress, prepared
                )
            else:  # nothing changed: the old generation's vectors are never even loaded
                report.chunks = sum(len(d.chunk_ids) for d in old.manifest_obj.docs.values())
            # after the publish: a file read now is no longer waiting, one that needs OCR is
            WaitingForOcr(self.index_dir).update(add=report.waiting, remove=read_sources)
            self._cleanup()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, doc_ids: Iterable[str]) -> list[str]:
        """Remove documents by id, indexed or waiting for OCR; returns the ids that were there."""
        doc_ids = list(doc_ids)
        with self._lock():
            self._cleanup()
            waiting = WaitingForOcr(self.index_dir)
            was = waiting.load()
            old = self._open_current()
            present = [d for d in doc_ids if old is not None and d in old.manifest_obj.docs]
            if present:
                self._write_generation(old, set(present), [], lambda *a: None)
            waiting.update(remove=doc_ids)
            self._cleanup()
            return present + [d for d in doc_ids if d in was and d not in present]

    # ----------------------------------------------------------------- steps
    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the single-writer lock; readers never take it."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.index_dir / ".lock", timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise IndexLockedError(
                f"{self.index_dir}: another ingest holds the index lock; try again when it ends"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def _indexed_ids(self) -> list[str]:
        """Doc ids of the live generation, whatever settings built it."""
        if self.pg is not None:
            return list((self.pg.manifest() or {}).get("docs", {}))
        path = current_generation_path(self.index_dir)
        return list(read_manifest(path)["docs"]) if path else []

    def _cleanup(self) -> None:
        """Remove old and crashed generations; a failure here never undoes a publish."""
        try:
            cleanup_generations(self.index_dir, keep=2)
        except OSError as exc:
            log.warning("%s: could not remove old generations: %s", self.index_dir, exc)

    def _open_current(self) -> _Current | None:
        if self.pg is not None:
            path, raw = None, self.pg.manifest()
            if raw is None:
                return None
        else:
            path = current_generation_path(self.index_dir)
            if path is None:
                return None
            raw = read_manifest(path)
        manifest = Manifest.from_dict(raw)
        differences = config_differences(manifest.build_config(), self._build_config())
        # BM25 parameters need no re-embedding: the next generation rebuilds BM25 from the
        # stored token lists. Chunking settings need every document chunked again, which an
        # ingest does by itself (same model: unchanged chunk texts keep their vectors).
        # Anything else (embedding model, tokenizer) invalidates every vector or token list.
        rescore = any(d.startswith("bm25.") for d in differences)
        rechunk = [d for d in differences if d.startswith("chunking.")]
        if any(not d.startswith(("bm25.", "chunking.")) for d in differences):
            named = [d for d in differences if not d.startswith("bm25.")]
            raise EmbeddingModelMismatch(
                f"{self.index_dir}: the index was built with other settings "
                f"({'; '.join(named)}); re-ingest everything with --rebuild"
            )
        return _Current(path, manifest, rescore_bm25=rescore, rechunk=rechunk, raw=raw)

    def _check_all_rechunked(
        self, old: _Current, indexed: dict[str, DocEntry], loaded: list[SourceDoc], plan: ChangePlan,
        report: IngestReport,
    ) -> None:
        """Refuse to publish a generation that would mix chunks of the old and new settings.

        Raises:
            EmbeddingModelMismatch: an indexed document that stays was not read again (its
                file is gone or failed to load), so it cannot be chunked the new way.
        """
        stale = set(indexed) - {d.doc_id for d in loaded} - set(plan.delete) - set(report.replaced)
        if not stale:
            return
        sources = sorted({indexed[d].source for d in stale})
        shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
        raise EmbeddingModelMismatch(
            f"{self.index_dir}: the chunking settings changed ({'; '.join(old.rechunk)}) and "
            f"{len(stale)} indexed documents could not be read again to re-chunk them ({shown}); "
            "restore those files, or re-ingest everything with --rebuild"
        )

    def _load_while_embedding(
        self,
        files: list[Path],
        group: str,
        indexed: dict[str, DocEntry],
        report: IngestReport,
        progress: Progress,
        prepared: _Prepared,
        exclude: frozenset[str] = frozenset(),
        rechunk: bool = False,
    ) -> tuple[list[SourceDoc], set[str]]:
        """`_load` on a reader thread while this thread chunks and embeds what it has read.

        Parsing (pypdf, XML, decoding) is Python code and embedding is torch/ONNX code that
        releases the GIL, so the next files are parsed while the model embeds the previous
        ones. Only documents that are new or changed are prepared ahead: the rest cost nothing.
        """
        docs: queue.Queue[SourceDoc | None] = queue.Queue(maxsize=64)  # bounds parsed-but-waiting text
        result: dict[str, object] = {}
        stop = threading.Event()

        def hand_over(doc: SourceDoc) -> None:
            if stop.is_set():  # this thread failed: stop reading
                raise _ReadStopped
            docs.put(doc)

        def read() -> None:
            try:
                result["value"] = self._load(files, group, indexed, report, progress, hand_over, exclude, rechunk)
            except BaseException as exc:  # re-raised on the calling thread
                result["error"] = exc
            finally:
                docs.put(None)

        reader = threading.Thread(target=read, name="chulcheo-ingest-read", daemon=True)
        reader.start()
        try:
            while (doc := docs.get()) is not None:
                prepared.add(doc)
        finally:
            stop.set()
            while reader.is_alive():  # an embedding error: let the reader stop, never block it
                with contextlib.suppress(queue.Empty):
                    docs.get(timeout=0.1)
            reader.join()
        if "error" in result:
            raise result["error"]  # type: ignore[misc]
        prepared.flush()
        return result["value"]  # type: ignore[return-value]

    def _load(
        self,
        files: list[Path],
        group: str,
        indexed: dict[str, DocEntry],
        report: IngestReport,
        progress: Progress,
        on_doc: Callable[[SourceDoc], None] | None = None,
        exclude: frozenset[str] = frozenset(),
        rechunk: bool = False,
    ) -> tuple[list[SourceDoc], set[str]]:
        """Read every file: (documents read, minus `exclude`d ids; resolved paths read without failure).

        rechunk: chunking settings changed, so every indexed document must be chunked again:
            unchanged files are parsed too, and the sources of indexed documents not among
            `files` are read as well, each in its documents' group, keeping only those documents.
        """
        loaded: list[SourceDoc] = []
        read_sources: set[str] = set()
        jobs = _read_jobs(files, group, indexed, rechunk)
        if self.ocr is not None:  # scanned pages: a bar of their own (a 40-page scan is one file)
            self.ocr.on_page = lambda done, total: progress("ocr", done, total)
        for i, (path, file_group, again) in enumerate(jobs, 1):
            try:
                if (bad := _name_error(path)) is not None:  # checked before anything derives ids from the name
                    raise bad
                docs = (not rechunk and _unchanged(path, file_group, indexed)) or load_file(
                    path, file_group, limits=self.limits, ocr=self.ocr
                )
            except LoadError as exc:
                _failed(report, path, file_group, exc)
            else:
                docs = [d for d in docs if d.doc_id not in exclude]  # as if the file lacked them
                if again:  # what this source added to the index, nothing it holds beside
                    docs = [d for d in docs if d.doc_id in indexed and indexed[d.doc_id].group == file_group]
                loaded.extend(docs)
                read_sources.add(str(path.resolve()))
                for doc in docs if on_doc is not None else ():
                    on_doc(doc)
            progress("read", i, len(jobs))
        return _dedupe(loaded, indexed, report), read_sources

    def _load_prepared(
        self,
        files: list[Path],
        group: str,
        indexed: dict[str, DocEntry],
        report: IngestReport,
        progress: Progress,
        prepared: _Prepared,
        exclude: frozenset[str] = frozenset(),
        rechunk: bool = False,
    ) -> tuple[list[SourceDoc], set[str]]:
        """`_load` with the new and changed files read, chunked and embedded by `self.preparer`.

        Unchanged files are recognised here by their hash and never sent; the preparer's results
        are taken in file order, so documents, chunks and rows come out as a local ingest's.
        """
        loaded: list[SourceDoc] = []
        read_sources: set[str] = set()
        jobs = _read_jobs(files, group, indexed, rechunk)
        by_source: dict[str, dict[str, tuple[str, str]]] = {}
        for doc_id, entry in prepared.indexed.items():  # {} when re-chunking: nothing is kept as it was
            by_source.setdefault(entry.source, {})[doc_id] = (entry.sha256, entry.group)
        outcomes: list[list[SourceDoc] | LoadError | None] = []  # None: the preparer's next result
        remote: list[FileJob] = []
        for path, file_group, again in jobs:
            if (bad := _name_error(path)) is not None:
                outcomes.append(bad)
                continue
            same = [] if rechunk else _unchanged(path, file_group, indexed)
            if same:
                outcomes.append([d for d in same if d.doc_id not in exclude])
                continue
            resolved = str(path.resolve())
            only = frozenset(d for d, e in indexed.items() if e.source == resolved and e.group == file_group) \
                if again else None
            outcomes.append(None)
            remote.append(FileJob(path, file_group, exclude, only, by_source.get(resolved, {})))
        results = self.preparer.prepare(remote, frozenset(prepared.reusable))
        for i, ((path, file_group, _), outcome) in enumerate(zip(jobs, outcomes, strict=True), 1):
            if outcome is None:
                done: PreparedFile = next(results)
                prepared.take(done)
                outcome = done.error or done.docs
            if isinstance(outcome, LoadError):
                _failed(report, path, file_group, outcome)
            else:
                loaded.extend(outcome)
                read_sources.add(str(path.resolve()))
            progress("read", i, len(jobs))
        return _dedupe(loaded, indexed, report), read_sources

    def _write_generation(
        self,
        old: _Current | None,
        drop: set[str],
        new_docs: list[SourceDoc],
        progress: Progress,
        prepared: _Prepared | None = None,
    ) -> tuple[int, int]:
        """Publish a generation of old-minus-drop plus new_docs: the old segments with the rows
        of `drop` marked deleted, and the new documents' chunks as one new segment.

        `prepared` holds chunks and vectors made while the files were still being read.
        An index of schema 1 (one directory per generation) is written whole, as one segment.
        Returns (number of texts embedded, total live chunks).
        """
        prepared = prepared or _Prepared(self, old, {}, progress)
        docs: dict[str, DocEntry] = {}
        if old is not None:
            docs = {d: e for d, e in old.manifest_obj.docs.items() if d not in drop}

        new_chunks: list[Chunk] = []
        for i, doc in enumerate(new_docs, 1):
            chunks = prepared.chunks_of(doc)
            new_chunks.extend(chunks)
            docs[doc.doc_id] = DocEntry(
                doc_id=doc.doc_id,
                source=doc.source,
                title=doc.title,
                sha256=doc.sha256,
                group=doc.group,
                chunk_ids=[c.chunk_id for c in chunks],
                pages=doc.pages,
                ingested_at=now_iso(),
                record_id=doc.record_id,
                ocr_pages={str(b.page): b.ocr_confidence for b in doc.blocks if b.ocr_confidence is not None},
            )
            progress("chunk", i, len(new_docs))

        vectors = prepared.vectors_for(new_chunks)
        texts = [self._index_text(c) for c in new_chunks]
        tokens = self.tokenizer.tokenize_many(texts)
        progress("write", 0, 1)
        if self.pg is not None:
            config = self._build_config()
            if old is not None and old.rechunk and set(old.manifest_obj.docs) - drop:
                config["chunking"] = old.manifest_obj.build_config()["chunking"]
            changed = {d: asdict(docs[d]) for d in {doc.doc_id for doc in new_docs}}
            total = self.pg.apply(config, drop, changed, new_chunks, vectors, tokens, [text_key(t) for t in texts])
            progress("write", 1, 1)
            log.info("committed %d new chunks to the Postgres index (%d in all)", len(new_chunks), total)
            return prepared.embedded, total
        kept = self._kept_segments(old, drop)
        segments = list(kept)
        if new_chunks:
            segments.append(write_segment(
                self.index_dir, new_chunks, vectors, TermCounts.from_token_lists(tokens),
                [text_key(t) for t in texts], dense_config=self.dense_config,
            ))
        config = self._build_config()
        if old is not None and old.rechunk and kept:
            # Chunks of the old settings remain (a delete): the index still holds those.
            config["chunking"] = old.manifest_obj.build_config()["chunking"]
        manifest = Manifest(**config, docs=docs, created_at=now_iso()).to_dict()
        gen_path = new_generation_path(self.index_dir)
        commit_generation(gen_path, {**manifest, "segments": segments})
        publish(self.index_dir, gen_path)
        progress("write", 1, 1)
        total = sum(e["rows"] - len(e["deleted"]) for e in segments)
        log.info("published %s with %d chunks in %d segments (%d embedded)",
                 gen_path.name, total, len(segments), prepared.embedded)
        return prepared.embedded, total

    def _kept_segments(self, old: _Current | None, drop: set[str]) -> list[dict]:
        """The live generation's segment entries with the rows of `drop` marked deleted
        (segments left with no live row are left out); a schema-1 generation's kept rows are
        written as one segment first."""
        if old is None:
            return []
        if not old.segmented:
            gen = old.generation
            kept = [i for i, c in enumerate(gen.chunks) if c.doc_id not in drop]
            if not kept:
                return []
            chunks = [gen.chunks[i] for i in kept]
            tokens = gen.bm25.token_lists
            return [write_segment(
                self.index_dir, chunks, gen.dense.vectors(kept), TermCounts.from_token_lists([tokens[i] for i in kept]),
                [text_key(self._index_text(c)) for c in chunks], dense_config=self.dense_config,
            )]
        out = []
        for entry in old.raw["segments"]:
            runs = dict(entry["docs"])
            gone = [d for d in runs if d in drop]
            if not gone:
                out.append(entry)
                continue
            deleted = set(entry["deleted"])
            for d in gone:
                first, count = runs.pop(d)
                deleted.update(range(first, first + count))
            if len(deleted) < entry["rows"]:
                out.append({**entry, "deleted": sorted(deleted), "docs": runs})
        return out

    def merge_due(self) -> bool:
        """Whether `merge()` would merge now (read without the lock, so only a hint)."""
        path = current_generation_path(self.index_dir)
        entries = segment_summary(path) if path is not None else None
        return entries is not None and merge_run([e["rows"] - e["deleted"] for e in entries],
                                                 self.max_segments) is not None

    def merge(self, *, full: bool = False) -> dict[str, object] | None:
        """Merge segments of the live generation into one and publish the result.

        full: every segment, deleted rows dropped (`chulcheo index compact`). Otherwise only
        when due (`merge_run`): the newest small segments once there are more than
        `max_segments`. Rows keep their order, so results are the same before and after.
        Returns {"merged": [names], "into": name, "rows": n, "seconds": s}, or None when
        nothing was due (or the index is of schema 1, which the next ingest rewrites whole).
        """
        started = time.perf_counter()
        with self._lock():
            self._cleanup()
            path = current_generation_path(self.index_dir)
            if path is None:
                return None
            raw = read_manifest(path)
            entries = raw.get("segments")
            if entries is None:
                return None
            live = [e["rows"] - len(e["deleted"]) for e in entries]
            if full:
                run = (0, len(entries)) if len(entries) > 1 or any(e["deleted"] for e in entries) else None
            else:
                run = merge_run(live, self.max_segments)
            if run is None:
                return None
            start, end = run
            merged = merge_segments(self.index_dir, entries[start:end], dense_config=self.dense_config)
            segments = entries[:start] + ([merged] if merged["rows"] else []) + entries[end:]
            gen_path = new_generation_path(self.index_dir)
            commit_generation(gen_path, {**raw, "segments": segments, "created_at": now_iso()})
            publish(self.index_dir, gen_path)
            self._cleanup()
        names = [e["name"] for e in entries[start:end]]
        log.info("%s: merged %d segments (%s) into %s", self.index_dir, len(names), ", ".join(names), merged["name"])
        return {"merged": names, "into": merged["name"], "rows": merged["rows"],
                "seconds": round(time.perf_counter() - started, 3)}

    def _index_text(self, chunk: Chunk) -> str:
        return index_text(chunk, self.context_prefix)

    def _build_config(self) -> dict[str, dict]:
        return {
            "embedding": {
                "model_id": self.embedder.model_id,
                "dim": self.embedder.dim,
                # Truncation changes vectors: a different limit must not mix with old ones.
                "max_seq_length": getattr(self.embedder, "max_seq_length", None),
            },
            "tokenizer": self.tokenizer.config(),
            "bm25": dict(self.bm25_params),
            "chunking": {
                "max_tokens": self.chunker.max_tokens,
                "overlap_tokens": self.chunker.overlap_tokens,
                "context_prefix": self.context_prefix,
                # Reflow rules change the chunks of documents with layout line breaks.
                "reflow": getattr(self.chunker, "reflow_version", None),
                # How loaders write table rows (with their headers) changes those documents' chunks.
                "tables": TABLES_VERSION,
            },
        }


class _ReadStopped(Exception):
    """Raised on the reader thread when the embedding side has failed."""


class _Prepared:
    """Chunks and vectors of new or changed documents, made as soon as each is read.

    Vectors are keyed by the hash of the text the model embeds, so a text that is already in
    the live generation (an unchanged paragraph of an edited file, a moved file, a re-added
    document) is copied from there instead of embedded again, and a text that occurs twice
    is embedded once.
    """

    def __init__(
        self, builder: IndexBuilder, old: _Current | None, indexed: dict[str, DocEntry], progress: Progress
    ) -> None:
        self.builder = builder
        self.old = old
        self.indexed = indexed
        self.progress = progress
        self.chunks: dict[tuple[str, str], list[Chunk]] = {}  # (doc_id, sha256) -> chunks
        self.vectors: dict[str, np.ndarray] = {}  # text hash -> vector
        self.pending: dict[str, str] = {}  # text hash -> text, waiting for a full embedding call
        self.embedded = 0
        self.seen = 0

    @cached_property
    def reusable(self) -> dict[str, tuple[str, int]]:
        """Text hash -> (segment name, row) holding its vector in the live generation: read
        from each segment's keys.txt (a schema-1 generation: its chunks, loaded on first use)."""
        if self.old is None:
            return {}
        if self.builder.pg is not None:
            return dict.fromkeys(self.builder.pg.keys(), ("pg", 0))
        if not self.old.segmented:
            return {text_key(self.builder._index_text(c)): ("", i) for i, c in enumerate(self.old.generation.chunks)}
        found: dict[str, tuple[str, int]] = {}
        for entry in self.old.raw["segments"]:
            name = entry["name"]
            for row, key in enumerate(read_keys(segments_dir(self.builder.index_dir) / name)):
                found.setdefault(key, (name, row))
        return found

    def add(self, doc: SourceDoc) -> None:
        """Chunk a freshly read document now and embed its new texts in full groups."""
        entry = self.indexed.get(doc.doc_id)
        if not doc.blocks or (entry is not None and (entry.sha256, entry.group) == (doc.sha256, doc.group)):
            return  # unchanged: nothing to prepare
        for chunk in self.chunks_of(doc):
            text = self.builder._index_text(chunk)
            self._want(text_key(text), text)
        if len(self.pending) >= EMBED_GROUP:
            self.flush()

    def take(self, done: PreparedFile) -> None:
        """Keep the chunks and vectors another process made of one file (`_load_prepared`)."""
        for doc in done.docs:
            if doc.doc_id in done.chunks:
                self.chunks[(doc.doc_id, doc.sha256)] = done.chunks[doc.doc_id]
        new = [k for k in done.vectors if k not in self.vectors and k not in self.reusable]
        self.vectors.update((k, done.vectors[k]) for k in new)
        self.seen += len(new)
        self.embedded += len(new)
        if new:
            self.progress("embed", self.embedded, self.seen)

    def chunks_of(self, doc: SourceDoc) -> list[Chunk]:
        key = (doc.doc_id, doc.sha256)
        if key not in self.chunks:
            self.chunks[key] = self.builder.chunker.chunk(doc)
        return self.chunks[key]

    def flush(self) -> None:
        """Embed every pending text, EMBED_GROUP at a time, longest first."""
        todo = sorted(self.pending.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        self.pending = {}
        for start in range(0, len(todo), EMBED_GROUP):
            group = todo[start : start + EMBED_GROUP]
            self.vectors.update(embed_keyed(self.builder.embedder, dict(group), len(group)))
            self.embedded += len(group)
            self.progress("embed", self.embedded, self.seen)

    def vectors_for(self, chunks: list[Chunk]) -> np.ndarray:
        """One row per chunk, in order: prepared, copied from the live generation, or embedded now."""
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        texts = [self.builder._index_text(c) for c in chunks]
        keys = [text_key(t) for t in texts]
        for key, text in zip(keys, texts, strict=True):
            self._want(key, text)
        self.flush()
        copy = sorted({k for k in keys if k not in self.vectors}, key=self.reusable.__getitem__)
        by_segment: dict[str, list[str]] = {}
        for k in copy:  # read in row order, one segment at a time
            by_segment.setdefault(self.reusable[k][0], []).append(k)
        for name, wanted in by_segment.items():
            rows = [self.reusable[k][1] for k in wanted]
            if name == "pg":
                stored = self.builder.pg.vectors(wanted)
                found = np.asarray([stored[k] for k in wanted], dtype=np.float32)
            elif name:
                stored = np.load(segments_dir(self.builder.index_dir) / name / VECTORS_FILE, mmap_mode="r")
                found = np.asarray(stored[rows], dtype=np.float32)
            else:
                found = self.old.generation.dense.vectors(rows)
            self.vectors.update(zip(wanted, found, strict=True))
        return np.asarray([self.vectors[k] for k in keys], dtype=np.float32)

    def _want(self, key: str, text: str) -> None:
        if key in self.vectors or key in self.pending or key in self.reusable:
            return
        self.pending[key] = text
        self.seen += 1


@dataclass
class _Current:
    """The live generation: its manifest at once, its chunks and vectors only when needed."""

    path: Path
    manifest_obj: Manifest
    rescore_bm25: bool = False  # BM25 k1/b changed: write a generation even if no doc did
    rechunk: list[str] = field(default_factory=list)  # chunking settings that changed: re-chunk all
    raw: dict = field(default_factory=dict)  # manifest.json as read

    @property
    def segmented(self) -> bool:
        """Schema 2: segments with deleted rows (schema 1 keeps everything in the generation)."""
        return "segments" in self.raw

    @cached_property
    def generation(self) -> IndexGeneration:
        return IndexGeneration.load(self.path)


def _unchanged(path: Path, group: str, indexed: dict[str, DocEntry]) -> list[SourceDoc]:
    """An already indexed file whose bytes and group are unchanged, without parsing it again.

    Returns [] (parse it) for new or changed files and for JSONL corpora, whose documents are
    lines. The placeholder has no blocks: an unchanged document is never re-chunked.
    """
    resolved = str(path.resolve())
    entry = indexed.get(resolved)
    if entry is None or entry.group != group or entry.source != resolved:
        return []
    try:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return []  # let the loader report it
    if digest != entry.sha256:
        return []
    return [SourceDoc(resolved, resolved, entry.title, [], digest, group)]


def _other_sources(indexed: dict[str, DocEntry], files: list[Path]) -> list[tuple[Path, str]]:
    """(source, group) of the indexed documents whose file is not among `files`, sorted.

    _other_sources({"/d/a.txt": <hr entry>, "/e/b.jsonl#1": <public entry>}, [Path("/d/a.txt")])
    -> [(Path("/e/b.jsonl"), "public")]
    """
    named = {str(f.resolve()) for f in files}
    return sorted({(Path(e.source), e.group) for e in indexed.values() if e.source not in named})


def _read_jobs(files: list[Path], group: str, indexed: dict[str, DocEntry],
               rechunk: bool) -> list[tuple[Path, str, bool]]:
    """(path, group, read again only for its indexed documents) of every file an ingest reads:
    `files` in `group`, and when re-chunking every other indexed source in its own group."""
    reread = _other_sources(indexed, files) if rechunk else []
    return [(path, group, False) for path in files] + [(path, g, True) for path, g in reread]


def _rechunk_all(plan: ChangePlan, loaded: list[SourceDoc]) -> None:
    """Under new chunking settings nothing read is unchanged: move `unchanged` to `update`."""
    by_id = {d.doc_id: d for d in loaded}
    plan.update.extend(by_id[doc_id] for doc_id in plan.unchanged)
    plan.unchanged = []


def _dedupe(docs: list[SourceDoc], indexed: dict[str, DocEntry], report: IngestReport) -> list[SourceDoc]:
    """One document per doc id: the first read, and never one whose id is indexed from another file.

    Doc ids hold the file's path, so a clash needs contrived names (a file "a.jsonl#k.txt" beside
    a.jsonl with a line "k.txt"); the document already indexed keeps its id rather than being
    replaced by another file's, and the clash is reported.
    """
    seen: dict[str, SourceDoc] = {}
    for doc in docs:
        entry = indexed.get(doc.doc_id)
        if doc.doc_id in seen:
            clash = f"already read from {seen[doc.doc_id].source}"
        elif entry is not None and entry.source != doc.source:
            clash = f"already indexed from {entry.source}"
        else:
            seen[doc.doc_id] = doc
            continue
        report.failed.append({"path": doc.source, "error": f"{doc.source}: document id {doc.doc_id!r} {clash}; skipped"})
    return list(seen.values())


def _replaced(
    replace: Collection[str],
    indexed: dict[str, DocEntry],
    loaded: list[SourceDoc],
    plan: ChangePlan,
    report: IngestReport,
) -> list[str]:
    """The `replace` ids this ingest drops: indexed ones, not read now, none if anything failed.

    Ids the plan deletes anyway (their file was read without them) count as deleted, not replaced.
    """
    if report.failed or not replace:
        return []
    keep = {d.doc_id for d in loaded} | set(plan.delete)
    return sorted(d for d in set(replace) if d in indexed and d not in keep)


def _printable(path: Path | str) -> str:
    """A path for messages: bytes that are not UTF-8 shown as escapes, never surrogates.

    _printable(os.fsdecode(b"\\xb1\\xd4.txt")) -> "\\xb1\\xd4.txt"
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _name_error(path: Path) -> LoadError | None:
    """The error of a file name that is not valid UTF-8 (see _utf8_name), else None."""
    if _utf8_name(path):
        return None
    return LoadError(_printable(path), "file name is not valid UTF-8; rename it (e.g. convmv -f cp949 -t utf-8)")


def _utf8_name(path: Path) -> bool:
    """Whether the path (and the absolute path it resolves to) is valid UTF-8.

    Python keeps undecodable bytes (CP949 names from Windows zips) as surrogate escapes; they
    would reach doc ids, hashes and chunks.jsonl, where the first UTF-8 encode fails.
    """
    try:
        str(path).encode("utf-8")
        str(path.resolve()).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = ["IndexBuilder", "IngestReport", "SUPPORTED_EXTENSIONS", "expand_paths"]
