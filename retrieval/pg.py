"""PostgreSQL + pgvector as the shared index engine (`index.url = "postgresql://…"`).

Chunks, their metadata and vectors (pgvector, HNSW) and the Kiwi morpheme postings with the
numbers BM25 needs live in Postgres; both legs of a search run in SQL with the access filter
inside each query, and the same fusion as the embedded index merges them. A write (an ingest
or a delete) is one transaction: readers see the index before it or after it, never half a
document.

Schema (version 2; `chulcheo_schema` holds the version, upgraded on start by `migrate`):

    chulcheo_schema(version)                        one row
    chulcheo_config(key, value jsonb)               the build settings ("config") the index was built with
    chulcheo_stats(id = 1, chunks, total_dl, config_key)  one row: row count, total length, md5 of the config
    chulcheo_terms(term, df)                        each term's document frequency
    chulcheo_docs(doc_id, entry jsonb)              one DocEntry per document
    chulcheo_chunks(id bigserial, chunk_id, doc_id, grp, source, key, dl, chunk jsonb, embedding vector(dim))
    chulcheo_postings(term, chunk → chulcheo_chunks.id, tf, dl, grp)
    chulcheo_postings_term                          btree on term including (chunk, tf, dl, grp)
    chulcheo_chunks_hnsw                            pgvector HNSW on embedding (inner product), if `hnsw`

`id` orders the rows as the embedded index does (ingest order), so ties break the same way.
BM25 uses the same statistics as the embedded index: the number of chunks, each term's
document frequency and the mean length, over all chunks (not only the asker's groups).
A write keeps them in `chulcheo_stats` and `chulcheo_terms` in its own transaction, so a
search reads them by key instead of counting. A posting carries its chunk's length and group:
the BM25 leg reads only its query terms' postings, from the index alone (an index-only scan),
and joins no chunk row before the top k.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .segments import unit_vectors
from .types import Chunk

SCHEMA_VERSION = 2

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
    # statistics kept by the writes; postings that score without the chunks table
    2: [
        """create table if not exists chulcheo_stats (
               id integer primary key check (id = 1), chunks bigint not null, total_dl bigint not null,
               config_key text)""",
        """insert into chulcheo_stats (id, chunks, total_dl, config_key)
               select 1, count(*), coalesce(sum(dl), 0),
                      (select md5(value::text) from chulcheo_config where key = 'config')
               from chulcheo_chunks on conflict (id) do nothing""",
        "create table if not exists chulcheo_terms (term text primary key, df integer not null)",
        """insert into chulcheo_terms (term, df) select term, count(*) from chulcheo_postings group by term
               on conflict (term) do nothing""",
        "alter table chulcheo_postings add column if not exists dl integer, add column if not exists grp text",
        "update chulcheo_postings p set dl = c.dl, grp = c.grp from chulcheo_chunks c where c.id = p.chunk",
        "alter table chulcheo_postings alter column dl set not null, alter column grp set not null",
        "drop index if exists chulcheo_postings_term",
        "create index chulcheo_postings_term on chulcheo_postings (term) include (chunk, tf, dl, grp)",
        # vectors inside the row, not in TOAST (3 KB at 768 dims is over its 2 KB threshold): a
        # filtered exact scan read each vector through the TOAST index (~250 ms for 10k rows);
        # rows written before the upgrade keep theirs in TOAST until rewritten
        "alter table chulcheo_chunks alter column embedding set storage plain",
    ],
}

# the settings of a reading connection: the BM25 leg's hash aggregate over ~200k postings
# spilled to disk with the default 4 MB
READER_SETTINGS = ("set work_mem = '64MB'",)


HNSW_INDEX = """create index if not exists chulcheo_chunks_hnsw on chulcheo_chunks
                using hnsw (embedding vector_ip_ops) with (m = 16, ef_construction = 64)"""


@dataclass(frozen=True)
class PgStats:
    """What the writes keep for the searches: PgStats(chunks=357, total_dl=31120, config_key="9f0c…")."""

    chunks: int
    total_dl: int
    config_key: str | None  # md5 of the stored build config; None: nothing indexed yet


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

    def __init__(self, url: str, dim: int, *, hnsw: bool = True, exact_below: int = 10_000) -> None:
        self.url = url
        self.dim = dim
        self._local = threading.local()  # one reading connection per thread, kept open
        # pgvector's HNSW index on the vectors; without it the dense leg scans exactly
        self.hnsw = hnsw
        # below this many rows the dense leg scans exactly, as the embedded index's "auto" kind
        # does (DenseIndexConfig.auto_min_rows): fast there, and ties break by row id
        self.exact_below = exact_below

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
        dropped when it breaks, so the next call connects again. Inside `snapshot` it is the
        snapshot's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            import psycopg

            conn = _connect(self.url)
            conn.autocommit = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # for `snapshot`'s transactions
            for statement in READER_SETTINGS:
                conn.execute(statement)
            self._local.conn = conn
        try:
            yield conn
        except Exception:
            if conn.broken:
                self._local.conn = None
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside sees one committed state of the index (a read-only
        repeatable-read transaction): a search's statistics, both legs and the chunks it
        returns agree even while another replica writes."""
        with self._reader() as conn:
            if conn.info.transaction_status != 0:  # already inside one (psycopg: 0 = idle)
                yield
                return
            with conn.transaction():
                conn.execute("set transaction read only")
                yield

    def stats(self) -> PgStats:
        """The statistics the writes keep: one primary-key read, no count."""
        with self._reader() as conn:
            row = conn.execute("select chunks, total_dl, config_key from chulcheo_stats where id = 1").fetchone()
        return PgStats(*row) if row else PgStats(0, 0, None)

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
        vectors and postings), store `docs` (DocEntry dicts of new or changed documents) and the
        build config, and bring the statistics (row count, total length, document frequencies)
        up to date. Returns the number of chunks in the index afterwards."""
        with _connect(self.url) as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(7260002)")  # one writer at a time, on any machine
            gone = sorted(set(drop) | {c.doc_id for c in chunks})
            removed, removed_dl = 0, 0
            if gone:
                self._forget_postings(conn, gone)
                removed, removed_dl = conn.execute(
                    "with gone as (delete from chulcheo_chunks where doc_id = any(%s) returning dl) "
                    "select count(*), coalesce(sum(dl), 0) from gone", (gone,)).fetchone()
                conn.execute("delete from chulcheo_docs where doc_id = any(%s)", (list(set(drop)),))
            df: Counter[str] = Counter()
            with conn.cursor() as cur:
                # COPY, not row by row: ~80 postings per chunk make 8M rows for 100k chunks
                ids = [i for (i,) in cur.execute(
                    "select nextval('chulcheo_chunks_id_seq') from generate_series(1, %s)", (len(chunks),))]
                with cur.copy("copy chulcheo_chunks (id, chunk_id, doc_id, grp, source, key, dl, chunk, embedding) "
                              "from stdin") as copy:
                    for row_id, chunk, vector, terms, key in zip(ids, chunks, vectors, tokens, keys, strict=True):
                        copy.write_row((row_id, chunk.chunk_id, chunk.doc_id, chunk.group, chunk.source, key,
                                        len(terms), json.dumps(chunk.to_dict(), ensure_ascii=False), _vector(vector)))
                with cur.copy("copy chulcheo_postings (term, chunk, tf, dl, grp) from stdin") as copy:
                    for row_id, chunk, terms in zip(ids, chunks, tokens, strict=True):
                        tf = Counter(terms)
                        df.update(tf.keys())
                        for term, n in tf.items():
                            copy.write_row((term, row_id, n, len(terms), chunk.group))
                if df:
                    cur.execute("insert into chulcheo_terms (term, df) select * from unnest(%s::text[], %s::int[]) "
                                "on conflict (term) do update set df = chulcheo_terms.df + excluded.df",
                                (list(df), list(df.values())))
                for doc_id, entry in docs.items():
                    cur.execute("insert into chulcheo_docs (doc_id, entry) values (%s, %s) on conflict (doc_id) "
                                "do update set entry = excluded.entry", (doc_id, json.dumps(entry, ensure_ascii=False)))
                config_text = json.dumps(config, ensure_ascii=False)
                cur.execute("insert into chulcheo_config (key, value) values ('config', %s) on conflict (key) "
                            "do update set value = excluded.value", (config_text,))
                added_dl = sum(len(t) for t in tokens)
                return cur.execute(
                    "update chulcheo_stats set chunks = chunks - %s + %s, total_dl = total_dl - %s + %s, "
                    "config_key = (select md5(value::text) from chulcheo_config where key = 'config') "
                    "where id = 1 returning chunks", (removed, len(chunks), removed_dl, added_dl)).fetchone()[0]

    @staticmethod
    def _forget_postings(conn: Any, doc_ids: list[str]) -> None:
        """Delete the postings of these documents' chunks and take them off the document frequencies."""
        rows = conn.execute(
            """with gone as (delete from chulcheo_postings p using chulcheo_chunks c
                             where c.id = p.chunk and c.doc_id = any(%s) returning p.term),
                    per as (select term, count(*) as n from gone group by term)
               update chulcheo_terms t set df = t.df - per.n from per where t.term = per.term
               returning t.term, t.df""", (doc_ids,)).fetchall()
        unused = [term for term, df in rows if df <= 0]
        if unused:
            conn.execute("delete from chulcheo_terms where term = any(%s)", (unused,))

    # ------------------------------------------------------------------ searching
    def count(self, where: str = "true", params: Sequence[Any] = ()) -> int:
        """The rows passing `where` (a condition on chunks `c`), counted: for status and tests,
        not for searches (they read `stats`)."""
        with self._reader() as conn:
            return conn.execute(f"select count(*) from chulcheo_chunks c where {where}", params).fetchone()[0]

    def bm25(self, tokens: Sequence[str], k: int, k1: float, b: float, stats: PgStats,
             where: SqlFilter | None = None) -> list[tuple[int, float]]:
        """[(row id, score)] best first, ties by row id; only rows that hold a query term and pass `where`.

        The statistics (`stats`: row count and mean length; document frequencies from
        chulcheo_terms) are over all rows, as in the embedded index, so the access filter
        changes which rows come back, never their scores. Only the query terms' postings are
        read, from the term index (each carries its chunk's length and group).
        """
        counts = Counter(tokens)
        if not counts or k <= 0 or stats.chunks == 0:
            return []
        where = where or SqlFilter()
        with self._reader() as conn:
            df = dict(conn.execute("select term, df from chulcheo_terms where term = any(%s)", (list(counts),)).fetchall())
            terms = [t for t in counts if t in df]
            if not terms:
                return []
            n = stats.chunks
            idf = [math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms]
            avgdl = stats.total_dl / n
            rows = conn.execute(
                f"""with q(term, qtf, idf) as (select * from unnest(%s::text[], %s::int[], %s::float8[]))
                    select p.chunk, sum(q.qtf * ((p.tf * (%s + 1.0)
                                                 / ((p.dl * %s / %s + (1.0 - %s)) * %s + p.tf) * q.idf)::real)::float8)
                           as score
                    from q join chulcheo_postings p on p.term = q.term
                    where {where.postings}
                    group by p.chunk order by score desc, p.chunk limit %s""",
                # the embedded index's arithmetic, in its order: tf * (k1 + 1) / denom * idf, as float32
                (terms, [counts[t] for t in terms], idf, k1, b, avgdl, b, k1, *where.postings_params, k),
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def dense(self, query: np.ndarray, k: int, stats: PgStats, where: SqlFilter | None = None) -> list[tuple[int, float]]:
        """[(row id, cosine)] best first among rows passing `where`: the HNSW index (with
        pgvector 0.8's iterative scan where there) from `exact_below` rows on, then an exact scan
        when it found fewer than k rows and more may pass the filter, so the leg returns
        min(k, rows allowed) rows."""
        if k <= 0 or stats.chunks == 0:
            return []
        where = where or SqlFilter()
        q = _vector(unit_vectors(np.asarray(query, dtype=np.float32).reshape(1, -1))[0])
        # the distance alone in ORDER BY: a second key (c.id) keeps the planner from the HNSW index
        # (it scanned every row: 0.8-1.6 s at 100k chunks); ties are ordered by id below
        sql = (f"select c.id, -(c.embedding <#> %s::vector) from chulcheo_chunks c where {where.chunks} "
               f"order by c.embedding <#> %s::vector limit %s")
        exact = not self.hnsw or stats.chunks < self.exact_below
        rows: list[Any] = []
        with self._reader() as conn:
            if not exact:
                if self._iterative(conn):  # pgvector 0.8+: the HNSW walk goes on until k rows pass the filter
                    conn.execute("set hnsw.iterative_scan = relaxed_order")
                # the beam at least twice the depth asked for: hybrid search asks for 100 candidates
                conn.execute(f"set hnsw.ef_search = {min(1000, max(128, 2 * int(k)))}")
                rows = conn.execute(sql, (q, *where.chunks_params, q, k)).fetchall()
            # fewer than k: an exact scan, unless every row was found (no count: the exact scan
            # of a small allowed set is as cheap as counting it)
            if exact or (len(rows) < k and not (where.unrestricted and len(rows) >= stats.chunks)):
                conn.execute("set enable_indexscan = off")
                try:
                    rows = conn.execute(sql.replace("<#> %s::vector limit", "<#> %s::vector, c.id limit"),
                                        (q, *where.chunks_params, q, k)).fetchall()
                finally:
                    conn.execute("set enable_indexscan = on")
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


@dataclass(frozen=True)
class SqlFilter:
    """The access filter as SQL: a condition on chunks `c` for the dense leg, and one on postings
    `p` for the BM25 leg (the group is on the posting; a source or document restriction goes
    through the chunks it allows)."""

    chunks: str = "true"
    chunks_params: tuple[Any, ...] = ()
    postings: str = "true"
    postings_params: tuple[Any, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.chunks == "true"


def filter_sql(filters: Any) -> SqlFilter | None:
    """SearchFilters -> SqlFilter; None when it allows no row.

    filter_sql(SearchFilters(groups={"hr"})) -> SqlFilter("c.grp = any(%s)", (["hr"],), "p.grp = any(%s)", (["hr"],))
    """
    if filters is None or filters.is_unrestricted():
        return SqlFilter()
    chunks, chunk_params, postings, posting_params = [], [], [], []
    for column, values in (("grp", filters.groups), ("source", filters.sources), ("doc_id", filters.doc_ids)):
        if values is None:
            continue
        if not values:
            return None
        chunks.append(f"c.{column} = any(%s)")
        chunk_params.append(sorted(values))
        if column == "grp":
            postings.append("p.grp = any(%s)")
            posting_params.append(sorted(values))
    if len(chunks) > len(postings):  # a source or document restriction: the chunks it allows
        postings.append(f"p.chunk in (select c.id from chulcheo_chunks c where {' and '.join(chunks)})")
        posting_params += chunk_params
    return SqlFilter(" and ".join(chunks), tuple(chunk_params), " and ".join(postings), tuple(posting_params))


class PgRetriever:
    """`HybridRetriever`'s search over a `PgIndex`: both legs in SQL with the filter inside each
    query, fused by the same `FusionConfig`, all reads of one search in one snapshot.

    The tokenizer and BM25 parameters come from the index's build config, read again only when
    the config's key in the statistics row changes (a rebuild with other settings).
    """

    def __init__(self, index: PgIndex, embedder: Any, tokenizer: Any = None, *, fusion: Any = None) -> None:
        from .retriever import FusionConfig

        self.index = index
        self.embedder = embedder
        self.fusion = fusion or FusionConfig()
        self._given_tokenizer = tokenizer  # None: the one the config names
        self.tokenizer = tokenizer
        self.k1, self.b = 1.2, 0.75
        self._config_key: str | None = None
        self._lock = threading.Lock()

    def refresh(self) -> PgStats:
        """The index's statistics; the build config read again when it changed.

        Raises:
            IndexNotFoundError: nothing indexed yet.
            EmbeddingModelMismatch: the index was built with another embedding model.
        """
        from .errors import EmbeddingModelMismatch, IndexNotFoundError
        from .tokenize import tokenizer_from_config

        stats = self.index.stats()
        if stats.config_key is None:
            raise IndexNotFoundError(f"{self.index._where()}: no index yet; run `chulcheo ingest PATH` first")
        if stats.config_key != self._config_key:
            with self._lock:
                config = self.index.config()
                built_with = config["embedding"]["model_id"]
                if built_with != self.embedder.model_id:
                    raise EmbeddingModelMismatch(
                        f"the Postgres index was built with embedding model {built_with!r} but "
                        f"{self.embedder.model_id!r} is configured; configure the same model or re-ingest with --rebuild")
                self.tokenizer = self._given_tokenizer or tokenizer_from_config(config["tokenizer"])
                self.k1 = config.get("bm25", {}).get("k1", 1.2)
                self.b = config.get("bm25", {}).get("b", 0.75)
                self._config_key = stats.config_key
        return stats

    def search(self, query: str, k: int = 10, filters: Any = None, mode: str = "hybrid", fusion: Any = None) -> list:
        from .retriever import MODES
        from .types import Hit

        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; expected one of {MODES}")
        where = filter_sql(filters)
        if k <= 0 or not query.strip() or where is None:
            return []
        qvec = self.embedder.embed_query(query) if mode != "bm25" else None  # before the snapshot is taken
        with self.index.snapshot():
            stats = self.refresh()
            if mode == "bm25":
                ranked = self.index.bm25(self.tokenizer.tokenize(query), k, self.k1, self.b, stats, where)
            elif mode == "dense":
                ranked = self.index.dense(qvec, k, stats, where)
            else:
                fusion = fusion or self.fusion
                depth = max(fusion.candidates, k)
                bm25 = self.index.bm25(self.tokenizer.tokenize(query), depth, self.k1, self.b, stats, where)
                dense = self.index.dense(qvec, depth, stats, where)
                # the dense leg returns min(depth, rows allowed) rows: the pool, without a count
                ranked = fusion.fuse(bm25, dense, len(dense))[:k]
            chunks = self.index.chunks([row for row, _ in ranked])
        return [Hit(chunk=chunks[row], score=score, rank=rank) for rank, (row, score) in enumerate(ranked, 1)]
