"""IndexBuilder: incremental ingest, deletion, sync, bad files, crash safety, single writer."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ingest.build import IndexBuilder
from ingest.chunk import Chunker, SentenceSplitter
from ingest.errors import IndexLockedError
from retrieval.errors import EmbeddingModelMismatch
from retrieval.store import current_generation_path, open_index
from tests.fakes import HashEmbedder

# The fixtures `tokenizer`, `embedder` (a CountingEmbedder) and `builder` come from conftest.py.


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "휴가.txt").write_text(
        "연차휴가는 15일이다. 3년 이상 근무하면 2년마다 1일을 더한다. 총 휴가는 25일이 한도이다.",
        encoding="utf-8",
    )
    (folder / "보안.md").write_text(
        "# 보안\n\nUSB 사용은 금지한다. 비밀번호는 90일마다 바꾼다.", encoding="utf-8"
    )
    (folder / "복지.txt").write_text("식대는 월 20만원이다. 건강검진은 50만원까지 지원한다.", encoding="cp949")
    return folder


def chunk_ids(index_dir: Path) -> list[str]:
    return [c.chunk_id for c in open_index(index_dir).chunks]


def test_first_ingest_indexes_every_file(builder, docs, tmp_path):
    report = builder().ingest([docs], group="hr")
    assert (report.added, report.updated, report.unchanged, report.deleted) == (3, 0, 0, 0)
    assert report.failed == []
    generation = open_index(tmp_path / "index")
    assert report.chunks == len(generation.chunks) > 3
    assert {c.group for c in generation.chunks} == {"hr"}
    assert len(generation.dense) == len(generation.bm25) == len(generation.chunks)
    manifest = generation.manifest
    assert manifest["schema_version"] == 2
    assert manifest["embedding"]["model_id"] == "test-hash-bigram-256"
    assert set(manifest["docs"]) == {str(p.resolve()) for p in docs.iterdir()}


def test_reingest_unchanged_embeds_nothing_and_keeps_generation(builder, docs, embedder, tmp_path):
    builder().ingest([docs])
    before = current_generation_path(tmp_path / "index")
    embedder.embedded.clear()
    report = builder().ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 3)
    assert embedder.embedded == []
    assert current_generation_path(tmp_path / "index") == before


def test_changed_file_replaces_its_chunks_and_embeds_only_new_text(builder, docs, embedder, tmp_path):
    index = tmp_path / "index"
    builder().ingest([docs])
    old_ids = set(chunk_ids(index))
    embedder.embedded.clear()
    (docs / "보안.md").write_text("# 보안\n\nUSB 사용은 허용한다. 비밀번호는 90일마다 바꾼다.", encoding="utf-8")
    report = builder().ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    texts = [c.text for c in open_index(index).chunks]
    assert any("허용한다" in t for t in texts) and not any("금지한다" in t for t in texts)
    assert embedder.embedded and all("허용" in t or "비밀번호" in t for t in embedder.embedded)
    new_ids = set(chunk_ids(index))
    kept = {i for i in old_ids if "보안.md" not in i}
    assert kept <= new_ids  # other documents' chunk ids are untouched


def test_vectors_of_kept_chunks_survive_rebuilds(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder().ingest([docs])
    first = open_index(index)
    (docs / "새문서.txt").write_text("출장비는 실비로 정산한다.", encoding="utf-8")
    builder().ingest([docs])
    second = open_index(index)
    rows1 = {c.chunk_id: i for i, c in enumerate(first.chunks)}
    for i, c in enumerate(second.chunks):
        if c.chunk_id in rows1:
            assert (second.dense.vectors([i]) == first.dense.vectors([rows1[c.chunk_id]])).all()


def test_delete_removes_document(builder, docs, tmp_path):
    index = tmp_path / "index"
    b = builder()
    b.ingest([docs])
    target = str((docs / "휴가.txt").resolve())
    assert b.delete([target, "/no/such/doc"]) == [target]
    generation = open_index(index)
    assert all(c.doc_id != target for c in generation.chunks)
    assert target not in generation.manifest["docs"]
    assert b.delete([target]) == []


def test_sync_removes_documents_whose_files_are_gone(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder().ingest([docs])
    (docs / "복지.txt").unlink()
    report = builder().ingest([docs])
    assert report.deleted == 0  # without --sync nothing is removed
    report = builder().ingest([docs], sync=True)
    assert report.deleted == 1
    assert not any("복지.txt" in d for d in open_index(index).manifest["docs"])


def test_bad_files_are_reported_and_the_rest_indexed(builder, docs, tmp_path):
    (docs / "빈파일.txt").write_bytes(b"")
    (docs / "이상한.xyz").write_text("무엇", encoding="utf-8")
    (docs / "바이너리.txt").write_bytes(bytes(range(256)) * 20)
    report = builder().ingest([docs, tmp_path / "없는경로"])
    assert report.added == 3
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert set(failed) == {"빈파일.txt", "이상한.xyz", "바이너리.txt", "없는경로"}
    for name, error in failed.items():
        assert name in error  # every message names its file


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_indexed(builder, docs, tmp_path):
    # A CP949 name from a Windows zip: Python holds its bytes as surrogate escapes.
    odd = docs / os.fsdecode("규정_윈도우".encode("cp949") + b".txt")
    odd.write_text("원주 센터의 방문객 주차는 2시간 무료이다.", encoding="utf-8")
    report = builder().ingest([docs])
    assert report.added == 3
    assert [f["path"] for f in report.failed] == [str(odd)]
    error = report.failed[0]["error"]
    error.encode("utf-8")  # printable: the bytes are shown as escapes, not surrogates
    assert error.startswith(f"{docs}/\\xb1\\xd4\\xc1\\xa4_") and "not valid UTF-8" in error
    assert all("원주" not in c.text for c in open_index(tmp_path / "index").chunks)


def test_a_file_that_turns_bad_keeps_its_old_chunks(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder().ingest([docs])
    (docs / "휴가.txt").write_bytes(b"")
    report = builder().ingest([docs], sync=True)
    assert len(report.failed) == 1 and report.deleted == 0
    assert any("15일" in c.text for c in open_index(index).chunks)


def test_jsonl_corpus_lines_are_documents(builder, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        {"id": "규정-1", "text": "연차휴가는 15일이다.", "metadata": {"page": 3}},
        {"id": "규정-2", "text": "재택근무는 주 2일까지 허용한다.", "metadata": {}},
    ]
    corpus.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    index = tmp_path / "index"
    builder().ingest([corpus])
    generation = open_index(index)
    source = str(corpus.resolve())
    assert {c.doc_id: c.page for c in generation.chunks} == {f"{source}#규정-1": 3, f"{source}#규정-2": None}
    assert {e["record_id"] for e in generation.manifest["docs"].values()} == {"규정-1", "규정-2"}
    corpus.write_text(json.dumps(lines[0], ensure_ascii=False), encoding="utf-8")
    report = builder().ingest([corpus])
    assert (report.unchanged, report.deleted) == (1, 1)


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("fail_at", ["segment files", "segment.json", "manifest.json", "publish"])
def test_crash_mid_write_leaves_previous_generation_and_next_ingest_completes(
    builder, docs, tmp_path, monkeypatch, fail_at
):
    index = tmp_path / "index"
    builder().ingest([docs])
    live = current_generation_path(index)
    before = chunk_ids(index)
    (docs / "추가.txt").write_text("출장비는 실비로 정산한다.", encoding="utf-8")

    import ingest.build as build_module

    real_segment, real_commit, real_publish = build_module.write_segment, build_module.commit_generation, build_module.publish

    def failing_segment(index_dir, *args, **options):
        # Write for real, then break it the way a crash at `fail_at` would.
        entry = real_segment(index_dir, *args, **options)
        if fail_at == "segment files":  # killed before segment.json, its last file
            (index_dir / "segments" / entry["name"] / "segment.json").unlink()
        if fail_at in ("segment files", "segment.json"):
            raise Boom(f"crash at {fail_at}")
        return entry

    def failing_commit(path, manifest):
        real_commit(path, manifest)
        if fail_at == "manifest.json":
            (path / "manifest.json").write_text(json.dumps(manifest)[:40], encoding="utf-8")  # half written
            raise Boom("crash while writing manifest.json")

    def failing_publish(index_dir, gen_path):
        raise Boom("crash before the CURRENT swap")

    monkeypatch.setattr(build_module, "write_segment", failing_segment)
    monkeypatch.setattr(build_module, "commit_generation", failing_commit)
    monkeypatch.setattr(build_module, "publish", failing_publish)
    with pytest.raises(Boom):
        builder().ingest([docs])
    # The previous generation is still live and whole.
    assert current_generation_path(index) == live
    assert chunk_ids(index) == before

    monkeypatch.setattr(build_module, "write_segment", real_segment)
    monkeypatch.setattr(build_module, "commit_generation", real_commit)
    monkeypatch.setattr(build_module, "publish", real_publish)
    report = builder().ingest([docs])
    assert report.added == 1
    after = open_index(index)
    assert any("출장비" in c.text for c in after.chunks)
    assert len({c.chunk_id for c in after.chunks}) == len(after.chunks)  # no duplicates
    gens = sorted(p.name for p in index.iterdir() if p.name.startswith("gen-"))
    assert all((index / g / "manifest.json").exists() for g in gens)  # debris cleaned
    named = {e["name"] for g in gens for e in json.loads((index / g / "manifest.json").read_text())["segments"]}
    assert {p.name for p in (index / "segments").iterdir()} == named  # no stray or half segment


def test_final_index_equals_clean_rebuild_after_a_crash(builder, docs, tmp_path, monkeypatch):
    index, clean = tmp_path / "index", tmp_path / "clean"
    builder(index).ingest([docs])
    (docs / "추가.txt").write_text("출장비는 실비로 정산한다.", encoding="utf-8")
    # killed after the new segment is written, before the generation naming it is
    monkeypatch.setattr("ingest.build.commit_generation", lambda *a, **k: (_ for _ in ()).throw(Boom()))
    with pytest.raises(Boom):
        builder(index).ingest([docs])
    monkeypatch.undo()
    builder(index).ingest([docs])
    builder(clean).ingest([docs])
    assert sorted(chunk_ids(index)) == sorted(chunk_ids(clean))


def test_second_writer_is_refused_while_lock_is_held(builder, docs, tmp_path):
    from filelock import FileLock

    index = tmp_path / "index"
    index.mkdir()
    with FileLock(index / ".lock"):
        with pytest.raises(IndexLockedError, match="lock"):
            builder(index).ingest([docs])


def test_readers_do_not_need_the_lock(builder, docs, tmp_path):
    from filelock import FileLock

    index = tmp_path / "index"
    builder(index).ingest([docs])
    with FileLock(index / ".lock"):
        assert len(open_index(index).chunks) > 0


def test_changing_the_embedding_model_requires_rebuild(builder, docs, embedder, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    other = type(embedder)()
    other.model_id = "another-model"
    with pytest.raises(EmbeddingModelMismatch, match="--rebuild"):
        builder(index, emb=other).ingest([docs])
    report = builder(index, emb=other).ingest([docs], rebuild=True)
    assert report.added == 3
    assert open_index(index).manifest["embedding"]["model_id"] == "another-model"


@pytest.fixture
def more(tmp_path):
    """A second folder: a JSONL corpus of three lines and a text file."""
    folder = tmp_path / "more"
    folder.mkdir()
    lines = [
        {"id": "a", "text": "출장비는 실비로 정산한다. 숙박비는 1박 10만원까지 지원한다."},
        {"id": "b", "text": "경조휴가는 5일이다. 배우자 출산 시 10일을 준다."},
        {"id": "c", "text": "삭제된 줄이다. 다시 나타나면 안 된다."},
    ]
    (folder / "faq.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    (folder / "교육.txt").write_text("신입사원 교육은 3일이다. 교육비는 회사가 부담한다.", encoding="utf-8")
    return folder


def test_changed_chunking_settings_rechunk_every_document_on_the_next_ingest(builder, docs, more, embedder, tmp_path):
    index = tmp_path / "index"
    gone = f"{(more / 'faq.jsonl').resolve()}#c"  # a line an admin deleted: it must stay deleted
    builder(index).ingest([docs], group="hr")
    builder(index).ingest([more], exclude=[gone])
    before = {c.text for c in open_index(index).chunks}
    embedder.embedded.clear()

    report = builder(index, max_tokens=20).ingest([docs], group="hr")  # `more` is not named
    assert report.rechunked == ["chunking.max_tokens: index 10, settings 20"]
    assert (report.added, report.updated, report.unchanged, report.deleted) == (0, 6, 0, 0)
    assert report.to_dict()["rechunked"] == report.rechunked and report.failed == []
    # Only new chunk texts are embedded; a text both settings cut alike keeps its vector.
    assert embedder.embedded and set(embedder.embedded).isdisjoint(before)
    # The same index a fresh build with the new settings gives: every document, its own group.
    fresh = tmp_path / "fresh"
    builder(fresh, max_tokens=20).ingest([docs], group="hr")
    builder(fresh, max_tokens=20).ingest([more], exclude=[gone])

    def rows(path):
        return sorted((c.chunk_id, c.text, c.group) for c in open_index(path).chunks)
    assert rows(index) == rows(fresh)
    assert open_index(index).manifest["chunking"]["max_tokens"] == 20
    assert gone not in open_index(index).manifest["docs"]
    assert builder(index, max_tokens=20).ingest([docs], group="hr").rechunked == []


def test_a_chunking_change_refuses_while_an_indexed_file_cannot_be_read(builder, docs, more, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs, more])
    live = current_generation_path(index)
    (more / "교육.txt").unlink()
    with pytest.raises(EmbeddingModelMismatch, match=r"chunking\.max_tokens.*교육\.txt.*--rebuild"):
        builder(index, max_tokens=20).ingest([docs])
    assert current_generation_path(index) == live  # nothing published, nothing mixed
    report = builder(index, max_tokens=20).ingest([docs, more], sync=True)  # the file is gone for good
    assert report.deleted == 1 and report.rechunked
    assert open_index(index).manifest["chunking"]["max_tokens"] == 20


def test_a_delete_under_new_chunking_settings_keeps_the_old_ones_recorded(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    target = str((docs / "휴가.txt").resolve())
    assert builder(index, max_tokens=20).delete([target]) == [target]
    assert open_index(index).manifest["chunking"]["max_tokens"] == 10  # the kept chunks' settings
    assert builder(index, max_tokens=20).ingest([docs]).rechunked == ["chunking.max_tokens: index 10, settings 20"]


def test_an_embedding_change_with_a_chunking_change_still_requires_rebuild(builder, docs, embedder, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    other = type(embedder)()
    other.model_id = "another-model"
    with pytest.raises(EmbeddingModelMismatch, match=r"chunking\.max_tokens.*embedding\.model_id.*--rebuild"):
        builder(index, emb=other, max_tokens=20).ingest([docs])


def test_a_file_named_twice_is_read_once(builder, docs):
    report = builder().ingest([docs, docs / "휴가.txt"])
    assert report.added == 3 and report.failed == []


def test_moved_jsonl_line_is_a_new_document_and_sync_drops_the_old(builder, embedder, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    line = '{"id": "x", "text": "연차휴가는 15일이다."}\n'
    (a / "x.jsonl").write_text(line, encoding="utf-8")
    index = tmp_path / "index"
    builder(index).ingest([a])
    (b / "z.jsonl").write_text(line, encoding="utf-8")
    (a / "x.jsonl").unlink()
    embedded = len(embedder.embedded)
    assert builder(index).ingest([b]).added == 1
    assert len(embedder.embedded) == embedded  # the same text: its vector is copied
    assert builder(index).ingest([a], sync=True).deleted == 1
    assert [c.source for c in open_index(index).chunks] == [str((b / "z.jsonl").resolve())]


def test_rebuild_reports_what_it_dropped(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    report = builder(index).ingest([docs / "휴가.txt"], rebuild=True)
    assert (report.added, report.deleted) == (1, 2)


def test_noop_ingest_still_cleans_crash_debris(builder, docs, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    debris = index / "gen-000099"
    debris.mkdir()
    (debris / "chunks.jsonl").write_text("", encoding="utf-8")
    assert builder(index).ingest([docs]).unchanged == 3
    assert not debris.exists()


def test_unchanged_files_are_not_parsed_again(builder, docs, tmp_path, monkeypatch):
    import ingest.build as build_module

    index = tmp_path / "index"
    builder(index).ingest([docs])
    parsed = []
    real = build_module.load_file
    monkeypatch.setattr(build_module, "load_file", lambda p, *a, **k: parsed.append(p.name) or real(p, *a, **k))
    (docs / "보안.md").write_text("# 보안\n\nUSB 사용은 허용한다.", encoding="utf-8")
    report = builder(index).ingest([docs])
    assert (report.updated, report.unchanged) == (1, 2)
    assert parsed == ["보안.md"]


def test_context_prefix_indexes_title_but_keeps_quotes_exact(tmp_path, embedder, tokenizer):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "출장규정.md").write_text("# 출장비\n\n실비로 정산한다.", encoding="utf-8")
    chunker = Chunker(embedder.count_tokens_many, max_tokens=50, overlap_tokens=0,
                      splitter=SentenceSplitter(tokenizer.kiwi))
    b = IndexBuilder(tmp_path / "index", embedder, tokenizer, chunker, context_prefix=True)
    b.ingest([folder])
    generation = open_index(tmp_path / "index")
    assert generation.chunks[0].text == "실비로 정산한다."
    assert "출장비" in generation.bm25.token_lists[0]  # the heading is searchable
    assert embedder.embedded == ["출장비\n실비로 정산한다."]  # title == heading: said once
    assert generation.manifest["chunking"]["context_prefix"] is True


def test_new_bm25_parameters_rescore_without_reembedding(builder, docs, embedder, tmp_path):
    index = tmp_path / "index"
    builder(index).ingest([docs])
    embedder.embedded.clear()
    b = builder(index)
    b.bm25_params = {"k1": 0.9, "b": 0.5}
    report = b.ingest([docs])
    assert report.unchanged == 3 and embedder.embedded == []
    generation = open_index(index)
    assert (generation.bm25.k1, generation.bm25.b) == (0.9, 0.5)
    assert generation.manifest["bm25"] == {"k1": 0.9, "b": 0.5}


def test_embedding_starts_while_later_files_are_still_being_read(builder, docs, embedder, tmp_path, monkeypatch):
    import threading

    import ingest.build as build_module

    monkeypatch.setattr(build_module, "EMBED_GROUP", 1)  # embed as soon as one text is waiting
    embedded = threading.Event()
    original_embed, original_load = embedder.embed_documents, build_module.load_file
    embedder.embed_documents = lambda texts: (embedded.set(), original_embed(texts))[1]
    last = sorted(docs.iterdir())[-1]
    overlapped: list[bool] = []

    def load_file(path, *args, **kwargs):
        if path == last:  # the last file is read only once the model has embedded something
            overlapped.append(embedded.wait(timeout=10))
        return original_load(path, *args, **kwargs)

    monkeypatch.setattr(build_module, "load_file", load_file)
    builder().ingest([docs])
    assert overlapped == [True]  # without a reader thread, nothing is embedded before every file is read
    assert len(embedder.embedded) == len(set(embedder.embedded)) == len(chunk_ids(tmp_path / "index"))


def test_an_embedding_error_stops_reading_and_keeps_the_live_index(builder, docs, tmp_path, monkeypatch):
    import ingest.build as build_module

    builder().ingest([docs])
    before = chunk_ids(tmp_path / "index")
    for i in range(20):
        (docs / f"추가{i}.txt").write_text(f"추가 규정 {i}번은 새로 생겼다.", encoding="utf-8")

    class Broken(HashEmbedder):  # same model id as the fixture's embedder
        def embed_documents(self, texts):
            raise RuntimeError("out of memory")

    monkeypatch.setattr(build_module, "EMBED_GROUP", 1)
    slow_load = build_module.load_file
    monkeypatch.setattr(build_module, "load_file", lambda *a, **k: (time.sleep(0.05), slow_load(*a, **k))[1])
    read: list[int] = []
    with pytest.raises(RuntimeError, match="out of memory"):
        builder(emb=Broken()).ingest([docs], progress=lambda stage, done, total: read.append(done) if stage == "read" else None)
    assert max(read) < 23  # reading stopped early instead of parsing every file for nothing
    assert chunk_ids(tmp_path / "index") == before


def test_each_embedding_call_gets_texts_longest_first(builder, tmp_path, embedder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, n in enumerate([1, 6, 3, 9, 2]):
        (folder / f"{i}.txt").write_text("연차휴가 규정이다. " * n, encoding="utf-8")
    calls: list[list[str]] = []
    original = embedder.embed_documents
    embedder.embed_documents = lambda texts: (calls.append(list(texts)), original(texts))[1]
    builder(max_tokens=200).ingest([folder])
    assert len(calls) == 1  # one call for the whole (small) corpus: the embedder batches it by length
    assert [len(t) for t in calls[0]] == sorted((len(t) for t in calls[0]), reverse=True)


def test_moved_text_is_copied_not_embedded_again(builder, docs, embedder, tmp_path):
    builder().ingest([docs])
    text = (docs / "휴가.txt").read_text(encoding="utf-8")
    (docs / "휴가.txt").rename(docs / "휴가규정.txt")
    embedder.embedded.clear()
    report = builder().ingest([docs], sync=True)
    assert (report.added, report.deleted) == (1, 1)
    assert embedder.embedded == [] and text.split(".")[0] in " ".join(c.text for c in open_index(tmp_path / "index").chunks)
