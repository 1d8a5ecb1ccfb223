"""Incremental index by segments: an ingest appends one segment, a delete only marks rows, a
merge changes no search result, and schema-1 indexes are still read and converted."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from retrieval.bm25 import BM25Index
from retrieval.retriever import HybridRetriever, SearchFilters
from retrieval.store import (
    CURRENT_FILE,
    MANIFEST_FILE,
    IndexGeneration,
    current_generation_path,
    merge_run,
    open_index,
)

TOPICS = ["연차휴가", "출장비", "재택근무", "법인카드", "보안교육", "경조금", "건강검진", "교육훈련", "복리후생", "야간근무",
          "주차", "식대"]
QUERIES = ["연차휴가는 며칠인가요", "출장비 정산", "보안교육 이수", "법인카드 한도", "식대 지원", "주차 등록"]


def write_doc(folder: Path, i: int, topic: str, *, extra: str = "") -> Path:
    path = folder / f"{i:02d}_{topic}.txt"
    path.write_text(
        f"{topic} 규정이다. {topic}은 팀장 승인을 받아야 한다. {topic} 한도는 월 {i + 1}0만원이다. {extra}", encoding="utf-8"
    )
    return path


def segments(index: Path) -> list[dict]:
    return json.loads((current_generation_path(index) / MANIFEST_FILE).read_text(encoding="utf-8"))["segments"]


def results(index: Path, embedder, tokenizer, groups=None) -> list:
    """Every query's hybrid, BM25 and dense results: (chunk id, score) in rank order."""
    retriever = HybridRetriever(open_index(index), embedder, tokenizer)
    filters = SearchFilters(groups=groups) if groups is not None else None
    return [[(h.chunk.chunk_id, h.score) for h in retriever.search(q, k=8, filters=filters, mode=mode)]
            for q in QUERIES for mode in ("hybrid", "bm25", "dense")]


def same(got: list, want: list) -> bool:
    """Equal scores at every rank and equal rows, except which of several rows exactly tied at
    the last place FAISS keeps (the fake embedder makes such ties; BM25 breaks them by row)."""
    for g, w in zip(got, want, strict=True):
        if [s for _, s in g] != [s for _, s in w]:
            return False
        last = w[-1][1] if w else None
        if [c for c, s in g if s != last] != [c for c, s in w if s != last]:
            return False
    return True


def test_each_ingest_adds_one_segment_and_leaves_the_others_untouched(builder, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    for i, topic in enumerate(TOPICS[:6]):
        write_doc(docs, i, topic)
    builder(index).ingest([docs])
    [first] = segments(index)
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (index / "segments" / first["name"]).iterdir()}
    write_doc(docs, 6, TOPICS[6])
    report = builder(index).ingest([docs])
    assert (report.added, report.unchanged) == (1, 6)
    entries = segments(index)
    assert [e["name"] for e in entries] == [first["name"], entries[1]["name"]] and entries[1]["deleted"] == []
    assert list(entries[1]["docs"]) == [str((docs / f"06_{TOPICS[6]}.txt").resolve())]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == files  # appended, never rewritten
    assert len(open_index(index).chunks) == report.chunks


def test_a_delete_marks_rows_and_writes_no_segment(builder, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    paths = [write_doc(docs, i, t) for i, t in enumerate(TOPICS[:4])]
    builder(index).ingest([docs])
    before = open_index(index)
    gone = str(paths[1].resolve())
    rows = [i for i, c in enumerate(before.chunks) if c.doc_id == gone]
    assert builder(index).delete([gone]) == [gone]
    [entry] = segments(index)
    assert entry["deleted"] == rows and gone not in entry["docs"]
    assert sorted(p.name for p in (index / "segments").iterdir()) == [entry["name"]]
    after = open_index(index)
    assert [c.chunk_id for c in after.chunks] == [c.chunk_id for c in before.chunks if c.doc_id != gone]
    assert len(after.dense) == len(after.bm25) == len(after.chunks)


def test_a_changed_file_replaces_its_rows_and_reuses_unchanged_vectors(builder, embedder, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    path = write_doc(docs, 0, "연차휴가")
    write_doc(docs, 1, "출장비")
    builder(index).ingest([docs])
    embedded = len(embedder.embedded)
    path.write_text(path.read_text(encoding="utf-8") + " 미사용 휴가는 수당으로 보상한다.", encoding="utf-8")
    report = builder(index).ingest([docs])
    assert report.updated == 1
    assert len(embedder.embedded) - embedded < report.chunks  # only the new text was embedded
    first, second = segments(index)
    assert len(first["deleted"]) > 0 and list(second["docs"]) == [str(path.resolve())]
    assert [c.doc_id for c in open_index(index).chunks].count(str(path.resolve())) == second["rows"]


def test_results_are_the_same_in_many_segments_merged_and_built_at_once(builder, embedder, tokenizer, tmp_path):
    docs, index, clean = tmp_path / "docs", tmp_path / "index", tmp_path / "clean"
    docs.mkdir()
    paths = []
    for i, topic in enumerate(TOPICS):  # one segment per ingest
        paths.append(write_doc(docs, i, topic, extra="연차휴가 출장비 식대" if i % 3 == 0 else ""))
        builder(index).ingest([paths[-1]], group="hr" if i % 2 else "public")
    builder(index).delete([str(paths[3].resolve()), str(paths[8].resolve())])
    many = segments(index)
    assert len(many) == len(TOPICS) - 2
    before = results(index, embedder, tokenizer)
    before_hr = results(index, embedder, tokenizer, groups={"hr"})
    merged = builder(index).merge(full=True)
    assert merged["merged"] == [e["name"] for e in many] and len(segments(index)) == 1
    assert segments(index)[0]["deleted"] == []
    assert same(results(index, embedder, tokenizer), before)  # scores, order and ties unchanged
    assert same(results(index, embedder, tokenizer, groups={"hr"}), before_hr)
    # and the same as one build of what is left (BM25 statistics are global, rows in the same order)
    for i, path in enumerate(paths):
        if i not in (3, 8):
            builder(clean).ingest([path], group="hr" if i % 2 else "public")
    builder(clean).merge(full=True)
    assert same(results(clean, embedder, tokenizer), before)


def test_bm25_over_segments_scores_as_one_index_over_the_live_rows(builder, tokenizer, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    paths = [write_doc(docs, i, t) for i, t in enumerate(TOPICS[:5])]
    for path in paths:
        builder(index).ingest([path])
    builder(index).delete([str(paths[2].resolve())])
    gen = open_index(index)
    live_tokens = gen.bm25.token_lists
    reference = BM25Index.build(live_tokens)  # checked against rank_bm25 in test_bm25.py
    for query in QUERIES:
        tokens = tokenizer.tokenize(query)
        np.testing.assert_allclose(gen.bm25.scores(tokens), reference.scores(tokens), rtol=1e-6)


def test_background_merge_takes_the_newest_small_segments(builder, embedder, tokenizer, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    for i, topic in enumerate(TOPICS[:4]):
        write_doc(docs, i, topic)
    b = builder(index)
    b.max_segments = 3
    b.ingest([docs])
    for i, topic in enumerate(TOPICS[4:8], 4):
        b.ingest([write_doc(docs, i, topic)])
    assert len(segments(index)) == 5 and b.merge_due()
    before = results(index, embedder, tokenizer)
    names = [e["name"] for e in segments(index)]
    done = b.merge()
    assert done["merged"] == names[1:]  # the first, big segment is not rewritten
    assert [e["name"] for e in segments(index)] == [names[0], done["into"]]
    assert same(results(index, embedder, tokenizer), before)
    assert not b.merge_due() and b.merge() is None


@pytest.mark.parametrize(("rows", "wanted"), [
    ([100_000, 40, 35, 50, 20, 10, 5, 5, 5], (1, 9)),
    ([10] * 9, (0, 9)),
    ([500, 600, 30, 20, 10, 5, 5, 5, 5], (2, 9)),
    ([100, 5, 5], None),
])
def test_merge_run(rows, wanted):
    assert merge_run(rows, 8) == wanted


def test_a_schema_1_index_is_read_and_written_as_segments_next_time(builder, embedder, tokenizer, tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    for i, topic in enumerate(TOPICS[:3]):
        write_doc(docs, i, topic)
    builder(index).ingest([docs])
    want = results(index, embedder, tokenizer)
    _as_schema_1(index)
    assert "segments" not in json.loads((current_generation_path(index) / MANIFEST_FILE).read_text(encoding="utf-8"))
    got = results(index, embedder, tokenizer)  # still read (FAISS's scores, not to the last bit)
    np.testing.assert_allclose([s for r in got for _, s in r], [s for r in want for _, s in r], rtol=1e-5)
    assert [r[:1] and r[0][0] for r in got] == [r[:1] and r[0][0] for r in want]
    embedded = len(embedder.embedded)
    write_doc(docs, 3, TOPICS[3])
    assert builder(index).ingest([docs]).added == 1
    assert len(segments(index)) == 2  # the old rows as one segment, the new document as another
    assert len(embedder.embedded) - embedded <= 3  # old vectors copied, not embedded again


def _as_schema_1(index: Path) -> None:
    """Rewrite the live generation the way schema 1 stored it: everything inside its directory."""
    gen = open_index(index)
    old = index / "gen-000099"
    old.mkdir()
    with open(old / "chunks.jsonl", "w", encoding="utf-8") as f:
        for c in gen.chunks:
            f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
    from retrieval.dense import DenseIndex

    dense = DenseIndex(gen.dense.dim)
    dense.add(gen.dense.vectors(range(len(gen.chunks))))
    dense.save(old / "dense.faiss")
    (old / "bm25").mkdir()
    (old / "bm25" / "params.json").write_text(json.dumps({**gen.manifest["bm25"], "rows": len(gen.chunks)}))
    with gzip.open(old / "bm25" / "tokens.jsonl.gz", "wt", encoding="utf-8") as f:
        for tokens in gen.bm25.token_lists:
            f.write(json.dumps(tokens, ensure_ascii=False) + "\n")
    manifest = {k: v for k, v in gen.manifest.items() if k != "segments"}
    (old / MANIFEST_FILE).write_text(json.dumps({**manifest, "schema_version": 1}, ensure_ascii=False), encoding="utf-8")
    (index / CURRENT_FILE).write_text("gen-000099\n", encoding="utf-8")
    assert IndexGeneration.load(old).parts == []
    os.sync()
