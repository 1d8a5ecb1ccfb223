"""PostgreSQL + pgvector as the shared index engine (`index.url = "postgresql://…"`).

Chunks, their metadata and vectors (pgvector, HNSW) and the Kiwi morpheme postings with the
numbers BM25 needs live in Postgres; both legs of a search run in SQL with the access filter
inside each query, and the same fusion as the embedded index merges them. A write (an ingest
or a delete) is one transaction: readers see the index before it or after it, never half a
document.

Schema (version 1; `chulcheo_schema` holds the version, upgraded on start by `migrate`):

    chulcheo_schema(version)                        one row
    chulcheo_config(key, value jsonb)               the build settings ("config") the index was built with
    chulcheo_docs(doc_id, entry jsonb)              one DocEntry per document
    chulcheo_chunks(id bigserial, chunk_id, doc_id, grp, source, key, dl, chunk jsonb, embedding vector(dim))
    chulcheo_postings(term, chunk_id → chulcheo_chunks.id, tf)
    chulcheo_chunks_hnsw                            pgvector HNSW on embedding (inner product), if `hnsw`

`id` orders the rows as the embedded index does (ingest order), so ties break the same way.
BM25 uses the same statistics as the embedded index: the number of chunks, each term's
document frequency and the mean length, over all chunks (not only the asker's groups).
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .segments import unit_vectors
from .types import Chunk

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "create extension if not exists vector",
        "create table if not exists chulcheo_config (key text primary key, value jsonb not null)",
        "create table if not exists chulcheo_docs (doc_id text primary key, entry jsonb not null)",
        """create table if not exists chulcheo_chunks (
               id bigserial primary key, chunk_id text not null, doc_id text not null, grp text not null,
               source text not null, key text not null, dl integer not null, chunk jsonb not null,
               embedding vector({dim}) not null)""",
        "create index if not exists chulcheo_chunks_doc on chulcheo_chunks (doc_id)",
        "create index if not exists chulcheo_chunks_grp on chulcheo_chunks (grp)",
        "create index if not exists chulcheo_chunks_key on chulcheo_chunks (key)",
        """create table if not exists chulcheo_postings (
               term text not null, chunk bigint not null references chulcheo_chunks (id) on delete cascade,
               tf integer not null)""",
        "create index if not exists chulcheo_postings_term on chulcheo_postings (term)",
        "create index if not exists chulcheo_postings_chunk on chulcheo_postings (chunk)",
    ],
}


HNSW_INDEX = """create index if not exists chulcheo_chunks_hnsw on chulcheo_chunks
                using hnsw (embedding vector_ip_ops) with (m = 16, ef_construction = 64)"""


class PgIndexError(RuntimeError):
    """The Postgres index cannot be used (no pgvector, another dimension, a newer schema)."""


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise PgIndexError("index.url needs psycopg: pip install 'psycopg[binary]'") from exc
    return psycopg.connect(url)


def _vector(v: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32)) + "]"


class PgIndex:
    """The index in one Postgres database.

    PgIndex("postgresql://chulcheo@db/chulcheo", dim=768).migrate()
    """

    def __init__(self, url: str, dim: int, *, hnsw: bool = True) -> None:
        self.url = url
        self.dim = dim
        self._local = threading.local()  # one reading connection per thread, kept open
        # pgvector's HNSW index on the vectors; without it the dense leg scans exactly
        self.hnsw = hnsw

    # ------------------------------------------------------------------ schema
    def migrate(self) -> int:
        """Create or upgrade the schema to SCHEMA_VERSION; returns the version found before (0: none).

        Raises:
            PgIndexError: the database holds a newer schema, or vectors of another dimension.
        """
        with _connect(self.url) as conn:
            conn.execute("select pg_advisory_xact_lock(7260001)")  # one migrating replica at a time
            conn.execute("create table if not exists chulcheo_schema (version integer not null)")
            row = conn.execute("select version from chulcheo_schema").fetchone()
            found = row[0] if row else 0
            if found > SCHEMA_VERSION:
                raise PgIndexError(f"{self._where()}: schema version {found} is newer than this chulcheo ({SCHEMA_VERSION})")
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement.format(dim=int(self.dim)))
            if self.hnsw:
                conn.execute(HNSW_INDEX)
            if found == 0:
                conn.execute("insert into chulcheo_schema (version) values (%s)", (SCHEMA_VERSION,))
            else:
                conn.execute("update chulcheo_schema set version = %s", (SCHEMA_VERSION,))
            dim = conn.execute(
                "select atttypmod from pg_attribute where attrelid = 'chulcheo_chunks'::regclass and attname = 'embedding'"
            ).fetchone()[0]
            if dim != self.dim:
                raise PgIndexError(f"{self._where()} holds {dim}-dim vectors; the embedding model makes {self.dim}-dim ones")
        return found

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        """This thread's autocommit connection for reads (a new one per query cost ~10 ms each);
        dropped when it breaks, so the next call connects again."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = _connect(self.url)
            conn.autocommit = True
            self._local.conn = conn
        try:
            yield conn
        except Exception:
            if conn.broken:
                self._local.conn = None
            raise

    def _where(self) -> str:
        return "the Postgres index" if "@" in self.url else self.url  # never print a password

    # ------------------------------------------------------------------ reading the manifest
    def manifest(self) -> dict[str, Any] | None:
        """{**build config, "docs": {doc_id: DocEntry dict}} as manifest.json has it, or None when empty."""
        with self._reader() as conn:
            row = conn.execute("select value from chulcheo_config where key = 'config'").fetchone()
            if row is None:
                return None
            docs = {d: e for d, e in conn.execute("select doc_id, entry from chulcheo_docs")}
        return {**row[0], "docs": docs}

    def config(self) -> dict[str, Any] | None:
        """The build settings the index was built with (tokenizer, BM25, embedding), or None when empty."""
        with self._reader() as conn:
            row = conn.execute("select value from chulcheo_config where key = 'config'").fetchone()
        return row[0] if row else None

    def keys(self) -> list[str]:
        """Every stored text key (the hash of the text that was embedded)."""
        with self._reader() as conn:
            return [k for (k,) in conn.execute("select distinct key from chulcheo_chunks")]

    def vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these text keys (the ones present)."""
        wanted = list(set(keys))
        if not wanted:
            return {}
        with self._reader() as conn:
            rows = conn.execute(
                "select distinct on (key) key, embedding::text from chulcheo_chunks where key = any(%s)", (wanted,)
            ).fetchall()
        return {k: np.asarray(json.loads(v), dtype=np.float32) for k, v in rows}

    # ------------------------------------------------------------------ writing
    def apply(
        self,
        config: dict[str, Any],
        drop: Iterable[str],
        docs: dict[str, dict[str, Any]],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        tokens: Sequence[Sequence[str]],
        keys: Sequence[str],
    ) -> int:
        """One transaction: delete the documents `drop`, insert `chunks` (with their unit-length
        vectors and postings),
        and store `docs` (DocEntry dicts of new or changed documents) and the build config.
        Returns the number of chunks in the index afterwards."""
        with _connect(self.url) as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(7260002)")  # one writer at a time, on any machine
            gone = sorted(set(drop) | {c.doc_id for c in chunks})
            if gone:
                conn.execute("delete from chulcheo_chunks where doc_id = any(%s)", (gone,))
                conn.execute("delete from chulcheo_docs where doc_id = any(%s)", (list(set(drop)),))
            with conn.cursor() as cur:
                # COPY, not row by row: ~30 postings per chunk make 3M rows for 100k chunks
                ids = [i for (i,) in cur.execute(
                    "select nextval('chulcheo_chunks_id_seq') from generate_series(1, %s)", (len(chunks),))]
                with cur.copy("copy chulcheo_chunks (id, chunk_id, doc_id, grp, source, key, dl, chunk, embedding) "
                              "from stdin") as copy:
                    for row_id, chunk, vector, terms, key in zip(ids, chunks, vectors, tokens, keys, strict=True):
                        copy.write_row((row_id, chunk.chunk_id, chunk.doc_id, chunk.group, chunk.source, key,
                                        len(terms), json.dumps(chunk.to_dict(), ensure_ascii=False), _vector(vector)))
                with cur.copy("copy chulcheo_postings (term, chunk, tf) from stdin") as copy:
                    for row_id, terms in zip(ids, tokens, strict=True):
                        for term, n in Counter(terms).items():
                            copy.write_row((term, row_id, n))
                for doc_id, entry in docs.items():
                    cur.execute("insert into chulcheo_docs (doc_id, entry) values (%s, %s) on conflict (doc_id) "
                                "do update set entry = excluded.entry", (doc_id, json.dumps(entry, ensure_ascii=False)))
                cur.execute("insert into chulcheo_config (key, value) values ('config', %s) on conflict (key) "
                            "do update set value = excluded.value", (json.dumps(config, ensure_ascii=False),))
            return conn.execute("select count(*) from chulcheo_chunks").fetchone()[0]

    # ------------------------------------------------------------------ searching
    def count(self, where: str = "true", params: Sequence[Any] = ()) -> int:
        with self._reader() as conn:
            return conn.execute(f"select count(*) from chulcheo_chunks c where {where}", params).fetchone()[0]

    def bm25(self, tokens: Sequence[str], k: int, k1: float, b: float, where: str = "true",
             params: Sequence[Any] = ()) -> list[tuple[int, float]]:
        """[(row id, score)] best first, ties by row id; only rows that hold a query term and pass `where`.

        The statistics (row count, document frequency, mean length) are over all rows, as in the
        embedded index, so the access filter changes which rows come back, never their scores.
        """
        counts = Counter(tokens)
        if not counts or k <= 0:
            return []
        with self._reader() as conn:
            n, total = conn.execute("select count(*), coalesce(sum(dl), 0) from chulcheo_chunks").fetchone()
            if n == 0:
                return []
            df = dict(conn.execute("select term, count(*) from chulcheo_postings where term = any(%s) group by term",
                                   (list(counts),)).fetchall())
            terms = [t for t in counts if t in df]
            if not terms:
                return []
            idf = [math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms]
            avgdl = total / n
            rows = conn.execute(
                f"""with q(term, qtf, idf) as (select * from unnest(%s::text[], %s::int[], %s::float8[]))
                    select c.id, sum(q.qtf * ((p.tf * (%s + 1.0)
                                              / ((c.dl * %s / %s + (1.0 - %s)) * %s + p.tf) * q.idf)::real)::float8)
                           as score
                    from chulcheo_postings p join q on p.term = q.term join chulcheo_chunks c on c.id = p.chunk
                    where {where}
                    group by c.id order by score desc, c.id limit %s""",
                # the embedded index's arithmetic, in its order: tf * (k1 + 1) / denom * idf, as float32
                (terms, [counts[t] for t in terms], idf, k1, b, avgdl, b, k1, *params, k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def dense(self, query: np.ndarray, k: int, where: str = "true", params: Sequence[Any] = ()) -> list[tuple[int, float]]:
        """[(row id, cosine)] best first among rows passing `where`: the HNSW index (with
        pgvector 0.8's iterative scan where there), then an exact scan when it found fewer than
        k of the rows the filter allows, so a narrow filter never returns fewer rows."""
        if k <= 0:
            return []
        q = _vector(unit_vectors(np.asarray(query, dtype=np.float32).reshape(1, -1))[0])
        sql = (f"select c.id, -(c.embedding <#> %s::vector) from chulcheo_chunks c where {where} "
               f"order by c.embedding <#> %s::vector, c.id limit %s")
        with self._reader() as conn:
            if self._iterative(conn):  # pgvector 0.8+: the HNSW walk goes on until k rows pass the filter
                conn.execute("set hnsw.iterative_scan = relaxed_order")
            # the beam at least twice the depth asked for: hybrid search asks for 100 candidates
            conn.execute(f"set hnsw.ef_search = {min(1000, max(128, 2 * int(k)))}")
            rows = conn.execute(sql, (q, *params, q, k)).fetchall()
            if len(rows) < k:
                allowed = conn.execute(f"select count(*) from chulcheo_chunks c where {where}", params).fetchone()[0]
                if len(rows) < min(k, allowed):
                    conn.execute("set enable_indexscan = off")
                    try:
                        rows = conn.execute(sql, (q, *params, q, k)).fetchall()
                    finally:
                        conn.execute("reset enable_indexscan")
        hits = sorted(((int(i), float(s)) for i, s in rows), key=lambda r: (-r[1], r[0]))
        return hits[:k]

    def _iterative(self, conn: Any) -> bool:
        if not hasattr(self, "_iterative_scan"):
            version = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()[0]
            self._iterative_scan = tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)
        return self._iterative_scan

    def chunks_by_chunk_id(self, chunk_ids: Iterable[str]) -> dict[str, Chunk]:
        wanted = list(set(chunk_ids))
        if not wanted:
            return {}
        with self._reader() as conn:
            rows = conn.execute("select chunk from chulcheo_chunks where chunk_id = any(%s)", (wanted,)).fetchall()
        return {c["chunk_id"]: Chunk.from_dict(c) for (c,) in rows}

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        with self._reader() as conn:
            rows = conn.execute("select id, chunk from chulcheo_chunks where id = any(%s)", (list(ids),)).fetchall()
        return {int(i): Chunk.from_dict(c) for i, c in rows}


def filter_sql(filters: Any) -> tuple[str, list[Any]] | None:
    """SearchFilters -> (SQL condition on chunks `c`, params); None when it allows no row."""
    if filters is None or filters.is_unrestricted():
        return "true", []
    parts, params = [], []
    for column, values in (("grp", filters.groups), ("source", filters.sources), ("doc_id", filters.doc_ids)):
        if values is None:
            continue
        if not values:
            return None
        parts.append(f"c.{column} = any(%s)")
        params.append(sorted(values))
    return " and ".join(parts), params


class PgRetriever:
    """`HybridRetriever`'s search over a `PgIndex`: both legs in SQL with the filter inside each
    query, fused by the same `FusionConfig`."""

    def __init__(self, index: PgIndex, embedder: Any, tokenizer: Any, *, fusion: Any = None,
                 bm25: dict[str, float] | None = None) -> None:
        from .retriever import FusionConfig

        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.fusion = fusion or FusionConfig()
        self.k1 = (bm25 or {}).get("k1", 1.2)
        self.b = (bm25 or {}).get("b", 0.75)

    def search(self, query: str, k: int = 10, filters: Any = None, mode: str = "hybrid", fusion: Any = None) -> list:
        from .retriever import MODES
        from .types import Hit

        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; expected one of {MODES}")
        where = filter_sql(filters)
        if k <= 0 or not query.strip() or where is None:
            return []
        sql, params = where
        if mode == "bm25":
            ranked = self.index.bm25(self.tokenizer.tokenize(query), k, self.k1, self.b, sql, params)
        elif mode == "dense":
            ranked = self.index.dense(self.embedder.embed_query(query), k, sql, params)
        else:
            fusion = fusion or self.fusion
            depth = max(fusion.candidates, k)
            bm25 = self.index.bm25(self.tokenizer.tokenize(query), depth, self.k1, self.b, sql, params)
            dense = self.index.dense(self.embedder.embed_query(query), depth, sql, params)
            pool = min(depth, self.index.count(sql, params))
            ranked = fusion.fuse(bm25, dense, pool)[:k]
        chunks = self.index.chunks([row for row, _ in ranked])
        return [Hit(chunk=chunks[row], score=score, rank=rank) for rank, (row, score) in enumerate(ranked, 1)]
