"""IndexBuilder: JSONL lines are told apart by their file.

The fixtures `embedder` (it records what it embeds) and `builder` come from conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
        old_ids.setattr("ingest.load.jsonl_doc_id", lambda source, record_id: record_id)
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
    chunks = [json.loads(x) for x in (gen / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    (gen / "chunks.jsonl").write_text(
        "".join(json.dumps({**c, "metadata": {}}, ensure_ascii=False) + "\n" for c in chunks), encoding="utf-8"
    )
    manifest = json.loads((gen / MANIFEST_FILE).read_text(encoding="utf-8"))
    for entry in manifest["docs"].values():
        del entry["record_id"]
    (gen / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
