"""Append-only index segments: small changes cost small time.

A generation (see store.py) is a list of immutable segments plus, per segment, the rows
deleted since it was written (tombstones). An ingest writes only its new chunks as a new
segment and records the rows of replaced or deleted documents as deleted; merging rewrites
a run of neighbouring segments as one, keeping the live rows in order.

    INDEX_DIR/segments/seg-000012/
      chunks.jsonl     one Chunk.to_dict() per row
      vectors.npy      float32 (rows, dim), unit length: the dense leg and vector reuse
      terms.json       the segment's BM25 vocabulary (term per column)
      counts.npz       term counts (rows x terms, CSR) and row lengths
      keys.txt         per row, the sha256 of the text that was embedded (vector reuse)
      dense.faiss      an HNSW graph, only for segments of `auto_min_rows` rows and more
      segment.json     written last: its presence marks the segment complete

The rows a search sees are the live rows of every segment, in segment order: row numbers do
not depend on how the rows are split into segments, and neither do scores. BM25 statistics
(row count, document frequencies, mean length) are taken over all live rows of the
generation, so a merge leaves every score and every tie-break as it was.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from scipy import sparse

from .bm25 import top_rows
from .dense import DenseIndex, DenseIndexConfig, _normalized
from .errors import IndexCorruptError
from .types import Chunk

SEGMENTS_DIR = "segments"
SEGMENT_META = "segment.json"
CHUNKS_FILE = "chunks.jsonl"
VECTORS_FILE = "vectors.npy"
TERMS_FILE = "terms.json"
COUNTS_FILE = "counts.npz"
KEYS_FILE = "keys.txt"
DENSE_FILE = "dense.faiss"

unit_vectors = _normalized  # rows scaled to length 1 (all-zero rows stay zero)

_SEG_RE = re.compile(r"^seg-(\d{6,})$")


@dataclass
class TermCounts:
    """Term counts of a segment's rows: the raw material of BM25, before any statistics.

    TermCounts.from_token_lists([["휴가", "휴가"], ["출장"]]).lengths -> array([2, 1])
    """

    terms: list[str]
    counts: sparse.csr_array  # rows x terms, int32
    lengths: np.ndarray  # int64 token count per row (repeats included)

    @classmethod
    def from_token_lists(cls, token_lists: Sequence[Sequence[str]]) -> TermCounts:
        vocab: dict[str, int] = {}
        indptr = [0]
        cols: list[int] = []
        data: list[int] = []
        for tokens in token_lists:
            for term, n in Counter(tokens).items():
                cols.append(vocab.setdefault(term, len(vocab)))
                data.append(n)
            indptr.append(len(cols))
        counts = sparse.csr_array(
            (np.asarray(data, dtype=np.int32), np.asarray(cols, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(token_lists), len(vocab)),
        )
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        return cls(list(vocab), counts, lengths)

    @classmethod
    def concat(cls, parts: Sequence[tuple[TermCounts, np.ndarray]]) -> TermCounts:
        """The chosen rows of several segments, in order, over one vocabulary."""
        vocab: dict[str, int] = {}
        blocks, lengths = [], []
        for tc, rows in parts:
            remap = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tc.terms), dtype=np.int64, count=len(tc.terms))
            sub = tc.counts[rows] if len(rows) else sparse.csr_array((0, len(tc.terms)), dtype=np.int32)
            sub = sparse.csr_array(sub)
            blocks.append((sub.data, remap[sub.indices] if sub.nnz else sub.indices.astype(np.int64), sub.indptr))
            lengths.append(tc.lengths[rows])
        data = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.int32)
        indices = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int64)
        indptr = [np.zeros(1, dtype=np.int64)]
        offset = 0
        for b in blocks:
            indptr.append(b[2][1:].astype(np.int64) + offset)
            offset += int(b[2][-1])
        rows = sum(len(x) for x in lengths)
        counts = sparse.csr_array((data.astype(np.int32), indices, np.concatenate(indptr)), shape=(rows, len(vocab)))
        return cls(list(vocab), counts, np.concatenate(lengths) if lengths else np.zeros(0, np.int64))

    def token_lists(self) -> list[list[str]]:
        """Each row's terms, repeated by count, sorted (their order in the text is not kept)."""
        out = []
        c = self.counts
        for i in range(c.shape[0]):
            lo, hi = c.indptr[i], c.indptr[i + 1]
            out.append(sorted(self.terms[j] for j, n in zip(c.indices[lo:hi], c.data[lo:hi], strict=True) for _ in range(n)))
        return out

    def save(self, directory: Path) -> None:
        (directory / TERMS_FILE).write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
        np.savez(directory / COUNTS_FILE, data=self.counts.data, indices=self.counts.indices,
                 indptr=self.counts.indptr, lengths=self.lengths)

    @classmethod
    def load(cls, directory: Path) -> TermCounts:
        terms = json.loads((directory / TERMS_FILE).read_text(encoding="utf-8"))
        with np.load(directory / COUNTS_FILE) as z:
            lengths = z["lengths"]
            counts = sparse.csr_array((z["data"], z["indices"], z["indptr"]), shape=(len(lengths), len(terms)))
        return cls(terms, counts, lengths)


class Segment:
    """One immutable segment on disk (see the module docstring), loaded for searching."""

    def __init__(self, path: Path, meta: dict[str, Any], chunks: list[Chunk], vectors: np.ndarray,
                 counts: TermCounts, dense: DenseIndex | None) -> None:
        self.path = path
        self.name = path.name
        self.meta = meta
        self.chunks = chunks
        self.vectors = vectors
        self.counts = counts
        self.dense = dense

    def __len__(self) -> int:
        return len(self.chunks)

    @cached_property
    def keys(self) -> list[str]:
        return read_keys(self.path)

    @staticmethod
    def write_files(
        path: Path, chunks: Sequence[Chunk], vectors: np.ndarray, counts: TermCounts, keys: Sequence[str],
        *, dense_config: DenseIndexConfig | None = None,
    ) -> dict[str, Any]:
        """Write a segment's data files into the new directory `path` and return its meta
        ({"rows", "dim", "dense"}); the caller fsyncs them and writes segment.json last
        (store.write_segment). `vectors` are stored as given: unit length, as `unit_vectors`
        makes them (normalizing twice can change the last bit).

        Raises:
            ValueError: row counts disagree.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        rows = len(chunks)
        if not (vectors.shape[0] == counts.counts.shape[0] == len(keys) == rows):
            raise ValueError(f"segment rows disagree: {rows} chunks, {vectors.shape[0]} vectors, "
                             f"{counts.counts.shape[0]} term rows, {len(keys)} keys")
        path.mkdir(parents=True)
        with open(path / CHUNKS_FILE, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
        np.save(path / VECTORS_FILE, vectors)
        counts.save(path)
        (path / KEYS_FILE).write_text("".join(k + "\n" for k in keys), encoding="ascii")
        kind = dense_config.resolve(rows) if dense_config is not None else "flat"
        if kind == "hnsw":
            dense = DenseIndex(vectors.shape[1])
            dense.add(vectors)
            dense.with_config(dense_config).save(path / DENSE_FILE)
        return {"rows": rows, "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0, "dense": kind}

    @classmethod
    def load(cls, path: Path, *, ef_search: int | None = None, dense: bool = True) -> Segment:
        """Read a complete segment; vectors are memory-mapped. dense=False: no FAISS index
        (a merge only copies the vectors; `dense` stays None).

        Raises:
            IndexCorruptError: incomplete (no segment.json) or unreadable files, or counts that disagree.
        """
        try:
            meta = json.loads((path / SEGMENT_META).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"{path} has no {SEGMENT_META}: incomplete segment") from exc
        try:
            with open(path / CHUNKS_FILE, encoding="utf-8") as f:
                chunks = [Chunk.from_dict(json.loads(line)) for line in f if line.strip()]
            vectors = np.load(path / VECTORS_FILE, mmap_mode="r")
            counts = TermCounts.load(path)
            if not dense:
                index = None
            elif meta.get("dense") == "hnsw":
                index = DenseIndex.load(path / DENSE_FILE, ef_search=ef_search)
            else:
                flat = faiss.IndexFlatIP(int(meta["dim"]) or 1)
                if len(vectors):
                    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))  # stored unit length
                index = DenseIndex(flat.d, _index=flat)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise IndexCorruptError(f"cannot read segment {path}: {exc}") from exc
        dense_rows = len(index) if index is not None else vectors.shape[0]
        if not (len(chunks) == vectors.shape[0] == dense_rows == len(counts.lengths) == meta["rows"]):
            raise IndexCorruptError(f"{path}: row counts disagree ({len(chunks)} chunks, {vectors.shape[0]} vectors, "
                                    f"{dense_rows} dense rows, {len(counts.lengths)} term rows, meta {meta['rows']})")
        return cls(path, meta, chunks, vectors, counts, index)


def read_keys(path: Path) -> list[str]:
    return (path / KEYS_FILE).read_text(encoding="ascii").split()


@dataclass
class Part:
    """A segment as one generation sees it: its live rows and where they start among all rows."""

    segment: Segment
    live: np.ndarray  # local row numbers that are not deleted, ascending
    base: int  # the generation row of live[0]

    @property
    def all_live(self) -> bool:
        return len(self.live) == len(self.segment)


def parts_of(segments: Sequence[tuple[Segment, Sequence[int]]]) -> list[Part]:
    """[(segment, deleted local rows)] -> the live view of each, in order."""
    parts, base = [], 0
    for seg, deleted in segments:
        mask = np.ones(len(seg), dtype=bool)
        if len(deleted):
            mask[np.asarray(list(deleted), dtype=np.int64)] = False
        live = np.flatnonzero(mask)
        parts.append(Part(seg, live, base))
        base += len(live)
    return parts


class SegmentedDense:
    """The dense leg over the live rows of several segments (same contract as DenseIndex.search)."""

    def __init__(self, parts: Sequence[Part], dim: int) -> None:
        self.parts = list(parts)
        self.dim = dim
        self._rows = sum(len(p.live) for p in self.parts)

    def __len__(self) -> int:
        return self._rows

    @cached_property
    def _biggest(self) -> DenseIndex | None:
        """The dense index of the biggest segment: it stands for the whole (parts never change)."""
        biggest = max(self.parts, key=lambda p: len(p.segment), default=None)
        return biggest.segment.dense if biggest is not None else None

    @property
    def kind(self) -> str:
        return self._biggest.kind if self._biggest is not None else "flat"

    @property
    def ef_search(self) -> int | None:
        return self._biggest.ef_search if self._biggest is not None else None

    def search(self, qvec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype != np.bool_ or allowed.shape != (self._rows,):
                raise ValueError(f"allowed must be a bool array of shape ({self._rows},), got {allowed.dtype} {allowed.shape}")
        if k <= 0 or self._rows == 0:
            return []
        # Scores are computed again here, one row at a time in float64: FAISS's own differ in the
        # last bit between its masked and unmasked scans, and a merge must not change a score.
        query = np.asarray(_normalized(np.asarray(qvec, dtype=np.float32).reshape(1, -1))[0], dtype=np.float64)
        found: list[tuple[int, float]] = []
        for p in self.parts:
            n = len(p.live)
            if n == 0:
                continue
            mask = None
            if allowed is not None or not p.all_live:
                share = allowed[p.base : p.base + n] if allowed is not None else np.ones(n, dtype=bool)
                if not share.any():
                    continue
                mask = np.zeros(len(p.segment), dtype=bool)
                mask[p.live[share]] = True
            for row, _ in p.segment.dense.search(qvec, k, mask):
                # live rows are ascending: a row's place among them is its generation row
                score = float(np.float32(np.dot(np.asarray(p.segment.vectors[row], dtype=np.float64), query)))
                found.append((p.base + (row if p.all_live else int(np.searchsorted(p.live, row))), score))
        found.sort(key=lambda rs: (-rs[1], rs[0]))
        return found[:k]

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        ids = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((ids.size, self.dim), dtype=np.float32)
        for p in self.parts:
            inside = (ids >= p.base) & (ids < p.base + len(p.live))
            if inside.any():
                out[inside] = p.segment.vectors[p.live[ids[inside] - p.base]]
        return out


class SegmentedBM25:
    """Okapi BM25 over the live rows of several segments, with statistics over all of them.

    Same formula and idf as BM25Index (Lucene's idf; weights rounded to float32), so a
    generation scores as one BM25Index over the same rows would, whatever its segments.
    """

    def __init__(self, parts: Sequence[Part], k1: float = 1.2, b: float = 0.75) -> None:
        self.parts = list(parts)
        self.k1, self.b = k1, b
        self._rows = sum(len(p.live) for p in self.parts)
        live_counts = [p.segment.counts.counts[p.live] if not p.all_live else p.segment.counts.counts
                       for p in self.parts]
        lengths = [p.segment.counts.lengths[p.live] for p in self.parts]
        total = int(sum(int(x.sum()) for x in lengths))
        df: Counter[str] = Counter()
        for p, c in zip(self.parts, live_counts, strict=True):
            per_term = np.diff(sparse.csc_array(c).indptr) if c.shape[0] else np.zeros(c.shape[1], np.int64)
            for term, n in zip(p.segment.counts.terms, per_term.tolist(), strict=True):
                if n:
                    df[term] += n
        n_rows = self._rows
        self._idf = {t: math.log(1.0 + (n_rows - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        avgdl = total / n_rows if n_rows else 0.0
        self._weights: list[tuple[dict[str, int], sparse.csc_array | None]] = []
        for p, c, dl in zip(self.parts, live_counts, lengths, strict=True):
            c = sparse.csr_array(c)
            if c.nnz == 0 or avgdl == 0:
                self._weights.append(({}, None))
                continue
            terms = p.segment.counts.terms
            idf = np.array([self._idf.get(t, 0.0) for t in terms], dtype=np.float64)
            row_terms = np.diff(c.indptr)
            tf = c.data.astype(np.float64)
            denom = np.repeat(dl.astype(np.float64), row_terms)
            denom *= b
            denom /= avgdl
            denom += 1 - b
            denom *= k1
            denom += tf
            weights = tf
            weights *= k1 + 1
            weights /= denom
            weights *= idf[c.indices]
            matrix = sparse.csr_array((weights.astype(np.float32), c.indices, c.indptr), shape=c.shape).tocsc()
            self._weights.append(({t: i for i, t in enumerate(terms)}, matrix))

    def __len__(self) -> int:
        return self._rows

    def stats(self) -> dict[str, int]:
        mats = [m for _, m in self._weights if m is not None]
        nnz = sum(int(m.nnz) for m in mats)
        size = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in mats)
        return {"rows": self._rows, "terms": len(self._idf), "nnz": nnz, "matrix_bytes": size,
                "segments": len(self.parts)}

    @property
    def token_lists(self) -> list[list[str]]:
        """Each live row's terms, repeated by count, sorted (order within a row is not kept)."""
        out: list[list[str]] = []
        for p in self.parts:
            out += TermCounts.concat([(p.segment.counts, p.live)]).token_lists()
        return out

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        scores = np.zeros(self._rows, dtype=np.float64)
        wanted = Counter(t for t in query_tokens if t in self._idf)
        for p, (vocab, matrix) in zip(self.parts, self._weights, strict=True):
            if matrix is None:
                continue
            indptr, rows, weights = matrix.indptr, matrix.indices, matrix.data
            block = scores[p.base : p.base + len(p.live)]
            for term, count in wanted.items():
                col = vocab.get(term)
                if col is None:
                    continue
                start, end = indptr[col], indptr[col + 1]
                block[rows[start:end]] += count * weights[start:end]
        return scores

    def search(self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if k <= 0 or self._rows == 0:
            return []
        return top_rows(self.scores(query_tokens), k, allowed)


def segments_dir(index_dir: Path) -> Path:
    return Path(index_dir) / SEGMENTS_DIR


def segment_dirs(index_dir: Path) -> list[tuple[int, Path]]:
    root = segments_dir(index_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), e) for e in root.iterdir() if (m := _SEG_RE.match(e.name)) and e.is_dir()]
    return sorted(found)


def new_segment_path(index_dir: Path) -> Path:
    """The next segment directory's path (not created); numbers are never reused."""
    root = segments_dir(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    number = max((n for n, _ in segment_dirs(index_dir)), default=0) + 1
    return root / f"seg-{number:06d}"
