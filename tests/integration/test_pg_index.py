"""The index in a real PostgreSQL with pgvector and its HNSW index (pgserver starts one in a
temp dir):
same results as the embedded index, the access filter inside SQL, one transaction per write,
the schema created and upgraded on start."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ingest.build import IndexBuilder
from ingest.chunk import Chunker, SentenceSplitter
from retrieval.pg import SCHEMA_VERSION, PgIndex, PgIndexError, PgRetriever
from retrieval.retriever import HybridRetriever, SearchFilters
from retrieval.store import open_index
from retrieval.tokenize import KiwiTokenizer
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.integration

psycopg = pytest.importorskip("psycopg")
pgserver = pytest.importorskip("pgserver")  # pgserver 0.1.4: PostgreSQL 16, pgvector 0.6.2

DOCS = {
    "public": {
        "취업규칙.txt": "연차휴가는 1년간 80퍼센트 이상 출근한 직원에게 15일을 준다. 병가는 연간 60일 이내이다.",
        "출장.txt": "국내 출장 일비는 하루 2만 원이다. 숙박비는 1박 10만 원을 넘을 수 없다. 출장비는 7일 안에 정산한다.",
        "보안.txt": "USB 메모리 사용은 금지한다. 보안 교육은 매년 1회 이수해야 한다.",
    },
    "hr": {
        "인사평가.txt": "인사평가 등급은 S, A, B, C 네 단계이다. 연차휴가 사용률도 평가에 반영한다.",
        "급여.txt": "급여는 매월 25일에 지급한다. 연차휴가 수당은 12월 급여에 포함한다.",
    },
}
QUERIES = ["연차휴가는 며칠인가요", "출장 숙박비 한도", "보안 교육", "급여 지급일", "인사평가 등급", "우주선 발사"]
_counter = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield srv
    srv.cleanup()


@pytest.fixture
def url(server):
    """A fresh database per test."""
    name = f"chulcheo{next(_counter)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"create database {name}")
    return server.get_uri(name)


@pytest.fixture(scope="module")
def tokenizer(shared_kiwi):
    return KiwiTokenizer(kiwi=shared_kiwi)


def docs_dir(root: Path) -> Path:
    for group, files in DOCS.items():
        (root / group).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / group / name).write_text(text, encoding="utf-8")
    return root


def builder(index_dir: Path, embedder, tokenizer, pg: PgIndex | None = None) -> IndexBuilder:
    chunker = Chunker(embedder.count_tokens_many, max_tokens=24, overlap_tokens=0, splitter=SentenceSplitter(tokenizer.kiwi))
    return IndexBuilder(index_dir, embedder, tokenizer, chunker, pg=pg)


def ingest_all(b: IndexBuilder, root: Path) -> None:
    for group in DOCS:
        b.ingest([root / group], group)


def indexed(url: str, tmp_path: Path, tokenizer):
    """(embedder, docs folder, PgIndex, its IndexBuilder) with every document of DOCS ingested."""
    embedder = HashEmbedder()
    root = docs_dir(tmp_path / "docs")
    pg = PgIndex(url, dim=embedder.dim)
    pg.migrate()
    b = builder(tmp_path / "state", embedder, tokenizer, pg)
    ingest_all(b, root)
    return embedder, root, pg, b


def test_same_results_as_the_embedded_index_and_no_group_leak(url, tmp_path, tokenizer):
    embedder = HashEmbedder()
    root = docs_dir(tmp_path / "docs")
    pg = PgIndex(url, dim=embedder.dim)
    assert pg.migrate() == 0
    ingest_all(builder(tmp_path / "pg-state", embedder, tokenizer, pg), root)
    ingest_all(builder(tmp_path / "files", embedder, tokenizer), root)
    files = HybridRetriever(open_index(tmp_path / "files"), embedder, tokenizer)
    sql = PgRetriever(pg, embedder, tokenizer)
    assert pg.count() == len(files.generation.chunks)
    for query, mode, groups in itertools.product(QUERIES, ("hybrid", "bm25", "dense"), (None, {"public"}, {"hr"}, set())):
        filters = SearchFilters(groups=groups) if groups is not None else None
        want = files.search(query, k=4, filters=filters, mode=mode)
        got = sql.search(query, k=4, filters=filters, mode=mode)
        assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want], (query, mode, groups)
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-5, atol=1e-6)
        if groups is not None:  # the filter is inside each leg's SQL: never another group, still k when there are k
            assert all(h.chunk.group in groups for h in got)
            allowed = sum(1 for c in files.generation.chunks if c.group in groups)
            if mode == "dense":
                assert len(got) == min(4, allowed)


def test_changes_replace_whole_documents_and_reuse_vectors(url, tmp_path, tokenizer):
    embedder, root, pg, b = indexed(url, tmp_path, tokenizer)
    before = pg.count()
    edited = root / "public" / "출장.txt"
    edited.write_text(edited.read_text(encoding="utf-8") + " 해외 출장 일비는 하루 50달러이다.", encoding="utf-8")
    calls = []
    original = embedder.embed_documents
    embedder.embed_documents = lambda texts: (calls.append(list(texts)), original(texts))[1]
    report = b.ingest([root / "public"], "public")
    assert (report.updated, report.unchanged) == (1, 2)
    assert sum(len(c) for c in calls) < 3  # the unchanged sentences' vectors came from Postgres
    chunks = pg.chunks_by_chunk_id(pg.manifest()["docs"][str(edited.resolve())]["chunk_ids"])
    assert any("50달러" in c.text for c in chunks.values())
    assert pg.count() > before
    with psycopg.connect(url) as conn:  # no row of the old version is left
        dupes = conn.execute("select chunk_id from chulcheo_chunks group by chunk_id having count(*) > 1").fetchall()
    assert dupes == []
    gone = str((root / "hr" / "급여.txt").resolve())
    assert b.delete([gone]) == [gone]
    assert gone not in pg.manifest()["docs"]
    hits = PgRetriever(pg, embedder, tokenizer).search("급여 지급일", k=10)
    assert all(h.chunk.doc_id != gone for h in hits)


def test_a_failed_write_changes_nothing(url, tmp_path, tokenizer, monkeypatch):
    embedder, root, pg, b = indexed(url, tmp_path, tokenizer)
    manifest, count = pg.manifest(), pg.count()
    edited = root / "public" / "보안.txt"
    edited.write_text("USB 메모리 사용은 허용한다.", encoding="utf-8")
    (root / "public" / "신규.txt").write_text("사내 주차는 사전 등록한 차량만 가능하다.", encoding="utf-8")
    real_apply = PgIndex.apply

    def dies_midway(self, config, drop, docs, chunks, vectors, tokens, keys):
        # the old rows are deleted and the first new ones inserted before the failure
        return real_apply(self, config, drop, docs, chunks, vectors, [*tokens[:-1], ["\x00"]], keys)

    monkeypatch.setattr(PgIndex, "apply", dies_midway)
    with pytest.raises(psycopg.Error):
        b.ingest([root / "public"], "public")
    assert pg.manifest() == manifest and pg.count() == count  # the whole write rolled back
    hits = PgRetriever(pg, embedder, tokenizer).search("USB 메모리", k=3, mode="bm25")
    assert "금지" in hits[0].chunk.text


def test_schema_is_versioned_and_upgraded_on_start(url):
    pg = PgIndex(url, dim=8)
    assert pg.migrate() == 0
    assert pg.migrate() == SCHEMA_VERSION  # already there: nothing to do
    with psycopg.connect(url) as conn:
        assert conn.execute("select version from chulcheo_schema").fetchall() == [(SCHEMA_VERSION,)]
        conn.execute("update chulcheo_schema set version = 99")
    with pytest.raises(PgIndexError, match="newer"):
        pg.migrate()
    with psycopg.connect(url) as conn:
        conn.execute("update chulcheo_schema set version = %s", (SCHEMA_VERSION,))
    with pytest.raises(PgIndexError, match="8-dim"):
        PgIndex(url, dim=16).migrate()


def recount(url: str) -> dict:
    """The statistics as a full count would find them, beside what the writes kept."""
    with psycopg.connect(url) as conn:
        kept = conn.execute("select chunks, total_dl, config_key from chulcheo_stats").fetchall()
        counted = conn.execute("select count(*), coalesce(sum(dl), 0), (select md5(value::text) from chulcheo_config "
                               "where key = 'config') from chulcheo_chunks").fetchone()
        df_kept = dict(conn.execute("select term, df from chulcheo_terms").fetchall())
        df_counted = dict(conn.execute("select term, count(*) from chulcheo_postings group by term").fetchall())
        stray = conn.execute("select count(*) from chulcheo_postings p join chulcheo_chunks c on c.id = p.chunk "
                             "where p.dl <> c.dl or p.grp <> c.grp").fetchone()[0]
    return {"kept": kept, "counted": [counted], "df_kept": df_kept, "df_counted": df_counted, "stray": stray}


def assert_stats_recount(url: str) -> None:
    found = recount(url)
    assert found["kept"] == found["counted"]
    assert found["df_kept"] == found["df_counted"] and found["df_kept"]
    assert found["stray"] == 0  # each posting's length and group are its chunk's


def test_writes_keep_the_statistics_a_recount_finds(url, tmp_path, tokenizer):
    embedder, root, pg, b = indexed(url, tmp_path, tokenizer)
    assert_stats_recount(url)
    assert pg.stats().chunks == pg.count() > 0
    edited = root / "public" / "출장.txt"  # a write that replaces a document: new terms, fewer old ones
    edited.write_text("해외 출장 일비는 하루 50달러이다. 항공권은 일반석으로 산다.", encoding="utf-8")
    b.ingest([root / "public"], "public")
    assert_stats_recount(url)
    gone = str((root / "hr" / "급여.txt").resolve())  # a delete: the terms only it held are gone
    assert b.delete([gone]) == [gone]
    assert_stats_recount(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from chulcheo_terms where df <= 0").fetchone()[0] == 0
    assert pg.stats().chunks == pg.count()


def test_upgrade_from_version_1_computes_the_statistics(url, tmp_path, tokenizer):
    embedder, root, pg, b = indexed(url, tmp_path, tokenizer)
    sql = PgRetriever(pg, embedder, tokenizer)
    want = {(q, m): [(h.chunk.chunk_id, h.score) for h in sql.search(q, k=4, mode=m)]
            for q in QUERIES for m in ("hybrid", "bm25")}
    with psycopg.connect(url) as conn:  # the database as schema 1 left it
        conn.execute("drop table chulcheo_stats")
        conn.execute("drop table chulcheo_terms")
        conn.execute("drop index chulcheo_postings_term")
        conn.execute("alter table chulcheo_postings drop column dl, drop column grp")
        conn.execute("create index chulcheo_postings_term on chulcheo_postings (term)")
        conn.execute("update chulcheo_schema set version = 1")
    pg.__init__(url, dim=embedder.dim)  # a replica started after the upgrade
    assert pg.migrate() == 1
    assert_stats_recount(url)
    sql = PgRetriever(pg, embedder, tokenizer)
    got = {(q, m): [(h.chunk.chunk_id, h.score) for h in sql.search(q, k=4, mode=m)]
           for q in QUERIES for m in ("hybrid", "bm25")}
    assert got == want
    b.delete([str((root / "hr" / "급여.txt").resolve())])  # and the writes after it keep them
    assert_stats_recount(url)


def test_the_pipeline_searches_and_lists_documents_in_postgres(url, tmp_path, shared_kiwi, monkeypatch):
    import kiwipiepy

    from app.pipeline import Pipeline
    from app.settings import Settings

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    root = docs_dir(tmp_path / "docs")
    settings = Settings(index_dir=tmp_path / "state")
    settings.index.url = url
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    for group in DOCS:
        pipeline.ingest([root / group], group)
    pipeline.wait_for_merge()
    assert not (tmp_path / "state" / "CURRENT").exists()  # nothing indexed in files
    assert {d.group for d in pipeline.documents()} == {"public", "hr"} and len(pipeline.documents()) == 5
    hits = pipeline.search("연차휴가는 며칠인가요", k=3, filters=SearchFilters(groups={"public"}))
    assert hits and all(h.chunk.group == "public" for h in hits) and "15일" in hits[0].chunk.text
    assert pipeline.index_status() == {"backend": "postgres", "chunks": pipeline.pg_index().count()}
    other = Pipeline(settings, embedder=HashEmbedder())  # a second replica sees the same index at once
    assert [h.chunk.chunk_id for h in other.search("연차휴가는 며칠인가요", k=3, filters=SearchFilters(groups={"public"}))] == \
        [h.chunk.chunk_id for h in hits]
