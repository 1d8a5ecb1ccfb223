"""On-disk index generations, their segments, and the atomic CURRENT pointer.

    INDEX_DIR/
      CURRENT              name of the live generation, e.g. "gen-000007" (swapped atomically)
      gen-000007/
        manifest.json      the documents, the build settings and the generation's segments
                           with their deleted rows; written last: it marks the generation complete
      segments/seg-000012/ immutable chunks, vectors and term counts (see segments.py)
      .lock                writer lock, taken by the build code; readers never take it

A generation is a list of segments plus the rows deleted from each since it was written. A
build writes its new chunks as a new segment, then a new generation's manifest naming the
old segments, the new one and the new deletions, and `publish`es it; a crash at any point
leaves the previous generation serving. Segments are shared by generations and removed when
no kept generation names them.

Schema 1 generations (chunks.jsonl, dense.faiss and bm25/ inside the generation directory)
are still read; the next write turns them into one segment.
Writers (new_generation_path, IndexGeneration.write, write_segment, commit_generation,
publish, cleanup_generations) are expected to run under the writer lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .bm25 import BM25Index
from .dense import DenseIndex, DenseIndexConfig
from .errors import IndexCorruptError, IndexNotFoundError
from .segments import (
    SEGMENT_META,
    Part,
    Segment,
    SegmentedBM25,
    SegmentedDense,
    TermCounts,
    new_segment_path,
    parts_of,
    segment_dirs,
    segments_dir,
)
from .types import Chunk

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: segments; 1: one directory per generation (still read)
READABLE_SCHEMAS = (1, 2)
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
SEGMENTS_FILE = "segments.json"  # beside manifest.json: the segment list alone
CHUNKS_FILE = "chunks.jsonl"
DENSE_FILE = "dense.faiss"
BM25_DIR = "bm25"

_GEN_RE = re.compile(r"^gen-(\d{6,})$")


@dataclass
class IndexGeneration:
    """One complete, immutable index: chunks plus the dense and BM25 indexes over them.

    `parts`: the segments a schema-2 generation reads, with their live rows (empty for schema 1).
    """

    path: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    dense: DenseIndex | SegmentedDense
    bm25: BM25Index | SegmentedBM25
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, ef_search: int | None = None, reuse: IndexGeneration | None = None,
    ) -> IndexGeneration:
        """Read a generation directory; `ef_search` overrides an HNSW dense index's saved beam.

        `reuse`: an already loaded generation of the same index whose segments are taken as
        they are (segments never change), so loading the next generation after a small
        ingest reads only its new segment and recomputes the BM25 statistics.

        Raises:
            IndexCorruptError: manifest.json missing (incomplete generation), wrong schema
                version, unreadable files, or row counts that disagree.
        """
        path = Path(path)
        manifest = read_manifest(path)
        if "segments" not in manifest:
            return cls._load_v1(path, manifest, ef_search)
        known = {p.segment.name: p.segment for p in (reuse.parts if reuse is not None else [])}
        loaded = []
        for entry in manifest["segments"]:
            name = entry["name"]
            segment = known.get(name) or Segment.load(segments_dir(path.parent) / name, ef_search=ef_search)
            if len(segment) != entry["rows"]:
                raise IndexCorruptError(f"{path}: segment {name} has {len(segment)} rows, the manifest says {entry['rows']}")
            loaded.append((segment, entry.get("deleted", [])))
        parts = parts_of(loaded)
        chunks: list[Chunk] = []
        for part in parts:
            chunks += part.segment.chunks if part.all_live else [part.segment.chunks[i] for i in part.live]
        bm25 = manifest.get("bm25", {})
        return cls(
            path=path, manifest=manifest, chunks=chunks,
            dense=SegmentedDense(parts, int(manifest.get("embedding", {}).get("dim") or _segment_dim(parts))),
            bm25=SegmentedBM25(parts, k1=bm25.get("k1", 1.2), b=bm25.get("b", 0.75)),
            parts=parts,
        )

    @classmethod
    def _load_v1(cls, path: Path, manifest: dict[str, Any], ef_search: int | None) -> IndexGeneration:
        chunks = _read_chunks(path / CHUNKS_FILE)
        dense = DenseIndex.load(path / DENSE_FILE, ef_search=ef_search)
        bm25 = BM25Index.load(path / BM25_DIR)
        if not len(chunks) == len(dense) == len(bm25):
            raise IndexCorruptError(
                f"{path}: row counts disagree: {len(chunks)} chunks, {len(dense)} vectors, {len(bm25)} BM25 rows"
            )
        return cls(path=path, manifest=manifest, chunks=chunks, dense=dense, bm25=bm25)

    @classmethod
    def write(
        cls,
        path: str | os.PathLike[str],
        manifest: dict[str, Any],
        chunks: Sequence[Chunk],
        dense: DenseIndex,
        bm25: BM25Index,
        *,
        dense_config: DenseIndexConfig | None = None,
        keys: Sequence[str] | None = None,
    ) -> IndexGeneration:
        """Write a generation of one new segment holding these rows; manifest.json goes last.

        The generation directory `path` lies in its index directory, and the segment goes into
        that directory's segments/. `manifest` gets "schema_version" and "segments".
        `dense_config` picks the segment's FAISS index (HNSW from 10k rows on, see
        `DenseIndexConfig`); None keeps it exact. `keys`: per row, the hash of the text that
        was embedded (lets a later ingest reuse the vector); default: sha256 of the chunk text.

        Raises:
            ValueError: row counts disagree, or the manifest has another schema version.
            FileExistsError: `path` already holds a complete generation.
        """
        path = Path(path)
        if not len(chunks) == len(dense) == len(bm25):
            raise ValueError(f"row counts disagree: {len(chunks)} chunks, {len(dense)} vectors, {len(bm25)} BM25 rows")
        if (path / MANIFEST_FILE).exists():
            raise FileExistsError(f"{path} already holds a complete generation")
        if keys is None:
            keys = [hashlib.sha256(c.text.encode("utf-8")).hexdigest() for c in chunks]
        vectors = dense.vectors(range(len(dense))) if len(dense) else np.zeros((0, dense.dim), dtype=np.float32)
        entry = write_segment(path.parent, chunks, vectors, TermCounts.from_token_lists(bm25.token_lists), keys,
                              dense_config=dense_config)
        commit_generation(path, {**manifest, "segments": [entry]})
        return cls.load(path)


def _segment_dim(parts: list[Part]) -> int:
    return parts[0].segment.dense.dim if parts else 1


def doc_runs(chunks: Sequence[Chunk]) -> dict[str, list[int]]:
    """{doc_id: [first row, row count]}; a document's chunks lie side by side.

    Raises:
        ValueError: a document's chunks are not contiguous.
    """
    runs: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        run = runs.get(chunk.doc_id)
        if run is None:
            runs[chunk.doc_id] = [row, 1]
        elif run[0] + run[1] == row:
            run[1] += 1
        else:
            raise ValueError(f"the chunks of {chunk.doc_id} are not contiguous (rows {run[0]}.. and {row})")
    return runs


def write_segment(
    index_dir: Path, chunks: Sequence[Chunk], vectors: np.ndarray, counts: TermCounts, keys: Sequence[str],
    *, dense_config: DenseIndexConfig | None = None,
) -> dict[str, Any]:
    """Write a new complete segment of `index_dir` (segment.json last, fsynced) and return its
    manifest entry: {"name", "rows", "deleted": [], "docs": {doc_id: [first row, count]}}."""
    docs = doc_runs(chunks)
    path = new_segment_path(index_dir)
    meta = Segment.write_files(path, chunks, vectors, counts, keys, dense_config=dense_config)
    _fsync_tree(path)
    _write_durably(path / SEGMENT_META, json.dumps(meta) + "\n")
    _fsync_dir(path)
    _fsync_dir(path.parent)
    return {"name": path.name, "rows": len(chunks), "deleted": [], "docs": docs}


def merge_segments(
    index_dir: Path, entries: Sequence[dict[str, Any]], *, dense_config: DenseIndexConfig | None = None,
) -> dict[str, Any]:
    """Write the live rows of the segments `entries` names, in order, as one new segment;
    returns its manifest entry. Vectors, term counts and keys are copied, nothing is embedded."""
    root = segments_dir(index_dir)
    loaded = [(Segment.load(root / e["name"], dense=False), e["deleted"]) for e in entries]
    parts = parts_of(loaded)
    chunks = [part.segment.chunks[i] for part in parts for i in part.live]
    dim = max((part.segment.vectors.shape[1] for part in parts), default=0)
    vectors = np.concatenate([np.asarray(part.segment.vectors[part.live], dtype=np.float32) for part in parts]
                             ) if parts else np.zeros((0, dim), dtype=np.float32)
    counts = TermCounts.concat([(part.segment.counts, part.live) for part in parts])
    keys = [part.segment.keys[i] for part in parts for i in part.live]
    return write_segment(index_dir, chunks, vectors, counts, keys, dense_config=dense_config)


def merge_run(live_rows: Sequence[int], max_segments: int) -> tuple[int, int] | None:
    """Which neighbouring segments a background merge takes: (start, end) or None.

    Due once there are more than `max_segments`: the newest segments from the first one whose
    followers together hold no more rows than it (a big old segment is not rewritten for a
    few new documents; size tiers form by themselves).
    merge_run([100_000, 40, 35, 50, 20, 10, 5, 5, 5], 8) -> (1, 9)
    """
    n = len(live_rows)
    if n <= max_segments:
        return None
    for i in range(1, n - 1):  # the longest suffix (two segments at least) no bigger than the one before it
        if sum(live_rows[i:]) <= live_rows[i - 1]:
            return (i, n)
    return (0, n)


def commit_generation(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write a generation's manifest.json (durably, last) into `path`; returns the manifest as written.

    Raises:
        ValueError: the manifest has another schema version.
    """
    manifest = {**manifest, "schema_version": manifest.get("schema_version", SCHEMA_VERSION)}
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"manifest schema_version {manifest['schema_version']!r} != {SCHEMA_VERSION}")
    path.mkdir(parents=True, exist_ok=True)
    if "segments" in manifest:  # a small copy of the segment list, for cleanup and merge checks
        summary = [{"name": e["name"], "rows": e["rows"], "deleted": len(e["deleted"])} for e in manifest["segments"]]
        _fsync_write(path / SEGMENTS_FILE, json.dumps(summary) + "\n")
    # orjson: a 100k-chunk manifest is ~20 MB, json took 0.6 s to write it and 0.8 s to read it
    _write_durably(path / MANIFEST_FILE, orjson.dumps(manifest).decode("utf-8") + "\n")
    _fsync_dir(path)
    _fsync_dir(path.parent)
    return manifest


def current_generation_path(index_dir: str | os.PathLike[str]) -> Path | None:
    """The live generation named by CURRENT, or None when no index was published yet.

    Raises:
        IndexCorruptError: CURRENT names a missing or incomplete generation.
    """
    index_dir = Path(index_dir)
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not _GEN_RE.match(name):
        raise IndexCorruptError(f"{index_dir / CURRENT_FILE} holds {name!r}, not a generation name")
    gen_path = index_dir / name
    if not (gen_path / MANIFEST_FILE).is_file():
        raise IndexCorruptError(f"{index_dir / CURRENT_FILE} points to {name}, which is missing or incomplete")
    return gen_path


def open_index(index_dir: str | os.PathLike[str]) -> IndexGeneration:
    """Load the live generation.

    Raises:
        IndexNotFoundError: nothing published in `index_dir` yet.
        IndexCorruptError: CURRENT or the generation it names is broken.
    """
    gen_path = current_generation_path(index_dir)
    if gen_path is None:
        raise IndexNotFoundError(
            f"no index in {Path(index_dir)}; run `chulcheo ingest <folder>` to build one"
        )
    return IndexGeneration.load(gen_path)


def new_generation_path(index_dir: str | os.PathLike[str]) -> Path:
    """Create and return the next generation dir, numbered above every existing one.

    Example: with gen-000006 (live) and gen-000007 (crashed, incomplete) -> INDEX_DIR/gen-000008.
    Numbers are never reused, so a reader can never confuse an old generation with a new one.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    numbers = [number for number, _ in _generation_dirs(index_dir)]
    gen_path = index_dir / _gen_name(max(numbers, default=0) + 1)
    gen_path.mkdir()
    return gen_path


def publish(index_dir: str | os.PathLike[str], gen_path: str | os.PathLike[str]) -> None:
    """Make `gen_path` the live generation: write CURRENT.tmp, fsync, os.replace, fsync dir.

    Raises:
        ValueError: `gen_path` is not a generation directory directly inside `index_dir`.
        IndexCorruptError: `gen_path` is incomplete (no manifest.json).
    """
    index_dir, gen_path = Path(index_dir), Path(gen_path)
    if gen_path.resolve().parent != index_dir.resolve() or not _GEN_RE.match(gen_path.name):
        raise ValueError(f"{gen_path} is not a generation directory of {index_dir}")
    if not (gen_path / MANIFEST_FILE).is_file():
        raise IndexCorruptError(f"refusing to publish incomplete generation {gen_path}")
    tmp = index_dir / (CURRENT_FILE + ".tmp")
    _write_durably(tmp, gen_path.name + "\n")
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    logger.info("published index generation %s", gen_path.name)


def cleanup_generations(index_dir: str | os.PathLike[str], keep: int = 2) -> list[Path]:
    """Delete generations no reader needs; return what was removed.

    Kept: the current generation and the `keep - 1` newest complete ones older than it
    (a reader that read CURRENT just before a swap may still be loading the previous one).
    Removed: older complete generations, incomplete ones (no manifest.json: a crashed
    build's debris), complete but never-published ones newer than the current, and a
    leftover CURRENT.tmp. With no CURRENT yet every generation is removed: under the writer
    lock, a generation nothing ever published is a crashed first build's debris.

    Run it under the writer lock *before* writing a new generation too: after a crash between
    a generation's manifest and the CURRENT swap, that never-published generation is still
    newer than CURRENT then (afterwards it would pass for the previous one).

    Raises:
        ValueError: keep < 1.
        IndexCorruptError: CURRENT is broken (nothing is deleted then).
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return []
    current = current_generation_path(index_dir)
    generations = _generation_dirs(index_dir)
    complete = {number for number, path in generations if (path / MANIFEST_FILE).is_file()}
    if current is None:
        keep_numbers: set[int] = set()
    else:
        current_number = int(_GEN_RE.match(current.name).group(1))
        older = sorted((n for n in complete if n < current_number), reverse=True)
        keep_numbers = {current_number, *older[: keep - 1]}

    removed = []
    for number, path in generations:
        if number not in keep_numbers:
            shutil.rmtree(path)
            removed.append(path)
    tmp = index_dir / (CURRENT_FILE + ".tmp")
    if tmp.exists():
        tmp.unlink()
        removed.append(tmp)
    removed += _cleanup_segments(index_dir, [path for number, path in generations if number in keep_numbers])
    if removed:
        _fsync_dir(index_dir)
        logger.info("removed %d old or incomplete index generation(s) from %s", len(removed), index_dir)
    return removed


def segment_summary(gen: Path) -> list[dict[str, Any]] | None:
    """[{"name", "rows", "deleted": count}] of a complete generation without reading its whole
    manifest (at 100k chunks that is ~20 MB of JSON); None for schema 1."""
    try:
        return json.loads((gen / SEGMENTS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        entries = read_manifest(gen).get("segments")
        if entries is None:
            return None
        return [{"name": e["name"], "rows": e["rows"], "deleted": len(e["deleted"])} for e in entries]


def _cleanup_segments(index_dir: Path, kept: list[Path]) -> list[Path]:
    """Remove the segments no kept generation names, and incomplete ones (a crashed write's)."""
    named: set[str] = set()
    for gen in kept:
        named |= {entry["name"] for entry in segment_summary(gen) or []}
    removed = []
    for _, path in segment_dirs(index_dir):
        if path.name not in named or not (path / SEGMENT_META).is_file():
            shutil.rmtree(path)
            removed.append(path)
    if removed:
        _fsync_dir(segments_dir(index_dir))
    return removed


def _gen_name(number: int) -> str:
    return f"gen-{number:06d}"


def _generation_dirs(index_dir: Path) -> list[tuple[int, Path]]:
    """[(number, path)] of every gen-NNNNNN directory, complete or not, by number."""
    found = []
    for entry in index_dir.iterdir():
        match = _GEN_RE.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def read_manifest(path: Path) -> dict[str, Any]:
    """manifest.json of a generation, checked for completeness and schema version."""
    try:
        manifest = orjson.loads((path / MANIFEST_FILE).read_bytes())
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path} has no {MANIFEST_FILE}: incomplete generation") from exc
    except ValueError as exc:
        raise IndexCorruptError(f"{path / MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") not in READABLE_SCHEMAS:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise IndexCorruptError(
            f"{path / MANIFEST_FILE} has schema_version {found!r}, this version reads {READABLE_SCHEMAS}; "
            "rebuild the index"
        )
    return manifest


def _read_chunks(path: Path) -> list[Chunk]:
    try:
        with open(path, encoding="utf-8") as f:
            return [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorruptError(f"cannot read chunks from {path}: {exc}") from exc


def _write_durably(path: Path, text: str) -> None:
    """Write and fsync a file that marks a step (manifest.json, CURRENT.tmp, segment.json)."""
    _fsync_write(path, text)


def _fsync_write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then every directory bottom-up."""
    dirs = []
    for dirpath, _, filenames in os.walk(root):
        dirs.append(dirpath)
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for dirpath in reversed(dirs):
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    """Persist a directory's entries (new names, renames); Windows cannot open directories."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
