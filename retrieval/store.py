"""On-disk index generations and the atomic CURRENT pointer.

    INDEX_DIR/
      CURRENT              name of the live generation, e.g. "gen-000007" (swapped atomically)
      gen-000007/
        chunks.jsonl       one Chunk.to_dict() per line; row i = dense row i = BM25 row i
        dense.faiss        DenseIndex
        bm25/              BM25Index (params.json, tokens.jsonl.gz)
        manifest.json      written last: its presence marks the generation complete
      .lock                writer lock, taken by the build code; readers never take it

Readers only follow CURRENT, so a build writes a fresh generation beside the live one and
`publish`es it; a crash at any point leaves the previous generation serving.
Writers (new_generation_path, IndexGeneration.write, publish, cleanup_generations) are
expected to run under the writer lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bm25 import BM25Index
from .dense import DenseIndex, DenseIndexConfig
from .errors import IndexCorruptError, IndexNotFoundError
from .types import Chunk

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
CHUNKS_FILE = "chunks.jsonl"
DENSE_FILE = "dense.faiss"
BM25_DIR = "bm25"

_GEN_RE = re.compile(r"^gen-(\d{6,})$")


@dataclass
class IndexGeneration:
    """One complete, immutable index: chunks plus the dense and BM25 indexes over them."""

    path: Path
    manifest: dict[str, Any]
    chunks: list[Chunk]
    dense: DenseIndex
    bm25: BM25Index

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, ef_search: int | None = None) -> IndexGeneration:
        """Read a generation directory; `ef_search` overrides an HNSW dense index's saved beam.

        Raises:
            IndexCorruptError: manifest.json missing (incomplete generation), wrong schema
                version, unreadable files, or row counts that disagree.
        """
        path = Path(path)
        manifest = read_manifest(path)
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
    ) -> IndexGeneration:
        """Write a generation to `path` (new or empty dir); manifest.json goes last, all fsynced.

        `manifest` gets "schema_version": SCHEMA_VERSION if it has none. `dense_config`
        picks the stored FAISS index (e.g. HNSW from 10k rows on, see `DenseIndexConfig`);
        None stores `dense` as it is. The kind is not recorded in the manifest: the vectors
        are the same either way, and the FAISS file says which index it holds.

        Raises:
            ValueError: row counts disagree, or the manifest has another schema version.
            FileExistsError: `path` already holds a complete generation.
        """
        path = Path(path)
        if not len(chunks) == len(dense) == len(bm25):
            raise ValueError(f"row counts disagree: {len(chunks)} chunks, {len(dense)} vectors, {len(bm25)} BM25 rows")
        manifest = {"schema_version": SCHEMA_VERSION, **manifest}
        if manifest["schema_version"] != SCHEMA_VERSION:
            raise ValueError(f"manifest schema_version {manifest['schema_version']!r} != {SCHEMA_VERSION}")
        if (path / MANIFEST_FILE).exists():
            raise FileExistsError(f"{path} already holds a complete generation")
        if dense_config is not None:
            dense = dense.with_config(dense_config)
        path.mkdir(parents=True, exist_ok=True)

        with open(path / CHUNKS_FILE, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        dense.save(path / DENSE_FILE)
        bm25.save(path / BM25_DIR)
        _fsync_tree(path)

        _write_durably(path / MANIFEST_FILE, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        _fsync_dir(path)
        _fsync_dir(path.parent)
        return cls(path=path, manifest=manifest, chunks=list(chunks), dense=dense, bm25=bm25)


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
    if removed:
        _fsync_dir(index_dir)
        logger.info("removed %d old or incomplete index generation(s) from %s", len(removed), index_dir)
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
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path} has no {MANIFEST_FILE}: incomplete generation") from exc
    except ValueError as exc:
        raise IndexCorruptError(f"{path / MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise IndexCorruptError(
            f"{path / MANIFEST_FILE} has schema_version {found!r}, this version reads {SCHEMA_VERSION}; "
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
