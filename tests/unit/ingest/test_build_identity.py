"""IndexBuilder: JSONL lines are told apart by their file, `exclude` tombstones, atomic `replace`.

The fixtures `embedder` (it records what it embeds) and `builder` come from conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ingest.build as build_module
from ingest.build import IndexBuilder
from ingest.chunk import Chunker, SentenceSplitter
from retrieval.store import MANIFEST_FILE, current_generation_path, open_index


def write_lines(path: Path, *rows: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def live_ids(index: Path) -> set[str]:
    return set(open_index(index).manifest["docs"])


def live_texts(index: Path) -> set[str]:
    return {c.text for c in open_index(index).chunks}


def line(path: Path, record_id: str) -> str:
    return f"{path.resolve()}#{record_id}"


RULES = (
    {"id": "휴가", "text": "연차휴가는 15일이다."},
    {"id": "보안", "text": "USB 사용은 금지한다."},
    {"id": "복지", "text": "식대는 월 20만원이다."},
)


# ---------------------------------------------------------------- identity


def test_same_line_id_in_two_groups_files_never_replaces_the_other(builder, tmp_path):
    hr = write_lines(tmp_path / "uploads" / "인사" / "faq.jsonl", {"id": "faq-1", "text": "연차휴가는 15일이다."})
    sec = write_lines(tmp_path / "uploads" / "보안" / "faq.jsonl", {"id": "faq-1", "text": "USB 사용은 금지한다."})
    index = tmp_path / "index"
    builder(index).ingest([hr], "인사")
    report = builder(index).ingest([sec], "보안")
    assert (report.added, report.updated, report.failed) == (1, 0, [])
    chunks = open_index(index).chunks
    assert {(c.group, c.text) for c in chunks} == {("인사", "연차휴가는 15일이다."), ("보안", "USB 사용은 금지한다.")}
    assert live_ids(index) == {line(hr, "faq-1"), line(sec, "faq-1")}
    # Read in one ingest, neither is skipped as a duplicate either.
    both = builder(tmp_path / "index2").ingest([tmp_path / "uploads"])
    assert (both.added, both.failed) == (2, [])


def test_an_id_indexed_from_another_file_is_not_taken_over(builder, tmp_path):
    # Contrived names: a file "a.jsonl#k.txt" beside a.jsonl, whose line "k.txt" has that doc id.
    corpus = write_lines(tmp_path / "d" / "a.jsonl", {"id": "k.txt", "text": "연차휴가는 15일이다."})
    index = tmp_path / "index"
    builder(index).ingest([corpus])
    clash = write_text(tmp_path / "d" / "a.jsonl#k.txt", "USB 사용은 금지한다.")
    report = builder(index).ingest([clash])
    assert report.added == report.updated == 0
    assert [f["path"] for f in report.failed] == [str(clash.resolve())]
    assert "already indexed from" in report.failed[0]["error"]
    assert live_texts(index) == {"연차휴가는 15일이다."}


@pytest.mark.parametrize("context_prefix", [False, True])
def test_an_index_with_line_ids_as_doc_ids_converges_without_embedding(
    tmp_path, embedder, tokenizer, monkeypatch, context_prefix
):
    corpus = write_lines(tmp_path / "docs" / "규정.jsonl", RULES[0], {**RULES[1], "metadata": {"title": "보안 규정"}})
    chunker = Chunker(embedder.count_tokens_many, max_tokens=50, overlap_tokens=0,
                      splitter=SentenceSplitter(tokenizer.kiwi))
    index = tmp_path / "index"
    builder = IndexBuilder(index, embedder, tokenizer, chunker, context_prefix=context_prefix)
    with monkeypatch.context() as old_ids:
        old_ids.setattr("ingest.loaders.jsonl.jsonl_doc_id", lambda source, record_id: record_id)
        builder.ingest([corpus])
    _as_written_before_record_ids(current_generation_path(index))
    assert live_ids(index) == {"휴가", "보안"}

    embedded = len(embedder.embedded)
    report = builder.ingest([corpus])
    assert (report.added, report.deleted, report.failed) == (2, 2, [])
    assert len(embedder.embedded) == embedded  # same index texts: every vector is copied
    assert live_ids(index) == {line(corpus, "휴가"), line(corpus, "보안")}
    assert builder.ingest([corpus]).unchanged == 2
    clean = IndexBuilder(tmp_path / "clean", embedder, tokenizer, chunker, context_prefix=context_prefix)
    clean.ingest([corpus])
    got, want = open_index(index), open_index(tmp_path / "clean")
    assert sorted(c.to_dict().items() for c in got.chunks) == sorted(c.to_dict().items() for c in want.chunks)
    assert got.bm25.token_lists == want.bm25.token_lists


def _as_written_before_record_ids(gen: Path) -> None:
    """Strip record ids from a generation, as an index built before they existed holds none."""
    manifest = json.loads((gen / MANIFEST_FILE).read_text(encoding="utf-8"))
    for segment in manifest["segments"]:
        path = gen.parent / "segments" / segment["name"] / "chunks.jsonl"
        chunks = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
        path.write_text(
            "".join(json.dumps({**c, "metadata": {}}, ensure_ascii=False) + "\n" for c in chunks), encoding="utf-8"
        )
    for entry in manifest["docs"].values():
        del entry["record_id"]
    (gen / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------- exclude


def test_an_excluded_line_is_deleted_and_stays_out_while_its_siblings_stay(builder, tmp_path):
    corpus = write_lines(tmp_path / "docs" / "규정.jsonl", *RULES)
    index = tmp_path / "index"
    builder(index).ingest([corpus])
    tombstone = line(corpus, "보안")
    report = builder(index).ingest([corpus], exclude=[tombstone])
    assert (report.added, report.unchanged, report.deleted) == (0, 2, 1)
    assert live_texts(index) == {"연차휴가는 15일이다.", "식대는 월 20만원이다."}
    again = builder(index).ingest([tmp_path / "docs"], exclude={tombstone})  # every later re-index
    assert (again.added, again.unchanged, again.deleted) == (0, 2, 0)
    assert tombstone not in live_ids(index)
    assert builder(index).ingest([corpus]).added == 1  # without the tombstone the line is back


def test_an_excluded_document_is_never_added_or_embedded(builder, embedder, tmp_path):
    corpus = write_lines(tmp_path / "docs" / "규정.jsonl", *RULES)
    plain = write_text(tmp_path / "docs" / "출장.txt", "출장비는 실비로 정산한다.")
    report = builder().ingest([tmp_path / "docs"], exclude=[line(corpus, "보안"), str(plain.resolve())])
    assert (report.added, report.failed) == (2, [])
    assert not any("USB" in t or "출장비" in t for t in embedder.embedded)
    assert live_texts(tmp_path / "index") == {"연차휴가는 15일이다.", "식대는 월 20만원이다."}


def test_an_excluded_file_document_is_deleted_as_if_its_file_were_gone(builder, tmp_path):
    plain = write_text(tmp_path / "docs" / "출장.txt", "출장비는 실비로 정산한다.")
    index = tmp_path / "index"
    builder(index).ingest([plain])
    report = builder(index).ingest([plain], exclude=[str(plain.resolve())])
    assert report.deleted == 1 and live_ids(index) == set()


def test_a_file_that_fails_to_read_keeps_its_excluded_line(builder, tmp_path):
    corpus = write_lines(tmp_path / "docs" / "규정.jsonl", *RULES)
    index = tmp_path / "index"
    builder(index).ingest([corpus])
    corpus.write_text('{"id": "휴가", "text": 연차}\n', encoding="utf-8")  # now broken
    report = builder(index).ingest([corpus], exclude=[line(corpus, "보안")])
    assert len(report.failed) == 1 and report.deleted == 0
    assert len(live_ids(index)) == 3  # nothing already stored is lost to a bad read


# ---------------------------------------------------------------- replace


@pytest.fixture
def versions(tmp_path) -> tuple[Path, Path]:
    """Version 1 and 2 of one upload, stored at different paths."""
    v1 = write_text(tmp_path / "uploads" / "인사" / "1" / "규정.txt", "연차휴가는 15일이다.")
    v2 = write_text(tmp_path / "uploads" / "인사" / "2" / "규정.txt", "연차휴가는 20일이다.")
    return v1, v2


def test_replace_swaps_old_for_new_in_one_published_generation(builder, versions, tmp_path, monkeypatch):
    v1, v2 = versions
    index = tmp_path / "index"
    builder(index).ingest([v1], "인사")
    published: list[set[str]] = []
    real_publish = build_module.publish

    def spy(index_dir, gen_path):
        published.append(set(json.loads((Path(gen_path) / MANIFEST_FILE).read_text(encoding="utf-8"))["docs"]))
        real_publish(index_dir, gen_path)

    monkeypatch.setattr(build_module, "publish", spy)
    report = builder(index).ingest([v2], "인사", replace=[str(v1.resolve())])
    assert published == [{str(v2.resolve())}]  # one swap: never both live, never neither
    assert report.replaced == [str(v1.resolve())] and report.to_dict()["replaced"] == 1
    assert (report.added, report.deleted, report.failed) == (1, 0, [])
    assert live_texts(index) == {"연차휴가는 20일이다."}


def test_replace_drops_nothing_when_any_path_fails(builder, versions, tmp_path):
    v1, v2 = versions
    index = tmp_path / "index"
    builder(index).ingest([v1], "인사")
    v2.write_bytes(b"\x00\x01\x02 binary")  # the new version cannot be read
    other = write_text(tmp_path / "uploads" / "인사" / "3" / "복지.txt", "식대는 월 20만원이다.")
    report = builder(index).ingest([v2, other], "인사", replace=[str(v1.resolve())])
    assert len(report.failed) == 1 and report.replaced == [] and report.to_dict()["replaced"] == 0
    assert live_ids(index) == {str(v1.resolve()), str(other.resolve())}  # the old version stays
    report = builder(index).ingest([tmp_path / "없는파일.txt"], "인사", replace=[str(v1.resolve())])
    assert report.failed and report.replaced == [] and str(v1.resolve()) in live_ids(index)


def test_replace_never_drops_a_document_this_ingest_read(builder, versions, tmp_path):
    v1, _ = versions
    index = tmp_path / "index"
    builder(index).ingest([v1], "인사")
    report = builder(index).ingest([v1], "인사", replace=[str(v1.resolve()), "/없는/문서.txt"])
    assert report.replaced == [] and live_ids(index) == {str(v1.resolve())}


def test_replace_of_jsonl_lines_by_a_new_file(builder, tmp_path):
    old = write_lines(tmp_path / "uploads" / "1" / "faq.jsonl", *RULES)
    new = write_lines(tmp_path / "uploads" / "2" / "faq.jsonl", RULES[0], {"id": "보안", "text": "USB는 승인 후 쓴다."})
    index = tmp_path / "index"
    builder(index).ingest([old])
    report = builder(index).ingest([new], replace=[line(old, r["id"]) for r in RULES])
    assert report.replaced == sorted(line(old, r["id"]) for r in RULES)
    assert live_ids(index) == {line(new, "휴가"), line(new, "보안")}


def test_replace_writes_a_generation_even_when_the_new_version_is_already_indexed(builder, versions, tmp_path):
    # e.g. the new file was indexed by an ingest without `replace` (the old one stayed beside it)
    v1, v2 = versions
    index = tmp_path / "index"
    builder(index).ingest([v1, v2], "인사")
    report = builder(index).ingest([v2], "인사", replace=[str(v1.resolve())])
    assert report.unchanged == 1 and report.replaced == [str(v1.resolve())]
    assert live_ids(index) == {str(v2.resolve())}
