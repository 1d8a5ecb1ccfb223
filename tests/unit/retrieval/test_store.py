"""Index generations on disk: write/load, CURRENT swaps, crash debris, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.bm25 import BM25Index
from retrieval.dense import DenseIndex
from retrieval.errors import IndexCorruptError, IndexNotFoundError
from retrieval.segments import Segment, TermCounts
from retrieval.store import (
    SCHEMA_VERSION,
    IndexGeneration,
    cleanup_generations,
    current_generation_path,
    new_generation_path,
    open_index,
    publish,
)
from retrieval.tokenize import WhitespaceTokenizer
from retrieval.types import Chunk
from tests.fakes import HashEmbedder, write_test_generation

CHUNKS = [
    Chunk(chunk_id="규정.txt#0", doc_id="규정.txt", text="연차휴가는 15일이다.", source="/docs/규정.txt", page=1),
    Chunk(
        chunk_id="규정.txt#1",
        doc_id="규정.txt",
        text="출장비는 실비로 정산한다.",
        source="/docs/규정.txt",
        page=2,
        group="hr",
        heading="제3장 출장",
        position=1,
        metadata={"sha256": "ab12", "인코딩": "cp949"},
    ),
]


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


def _publish_new(index_dir: Path, embedder: HashEmbedder, chunks=CHUNKS) -> Path:
    gen = new_generation_path(index_dir)
    write_test_generation(gen, chunks, embedder, WhitespaceTokenizer())
    publish(index_dir, gen)
    return gen


def test_write_then_load_round_trips(tmp_path: Path, embedder: HashEmbedder) -> None:
    written = write_test_generation(tmp_path / "gen-000001", CHUNKS, embedder, WhitespaceTokenizer())
    loaded = IndexGeneration.load(tmp_path / "gen-000001")
    assert loaded.chunks == CHUNKS
    assert loaded.manifest == written.manifest
    assert loaded.manifest["schema_version"] == SCHEMA_VERSION
    assert len(loaded.dense) == len(loaded.bm25) == 2
    assert loaded.bm25.token_lists == written.bm25.token_lists
    assert {p.name for p in (tmp_path / "gen-000001").iterdir()} == {"manifest.json", "segments.json"}
    [entry] = loaded.manifest["segments"]  # the rows live in a segment beside the generation
    assert entry == {"name": "seg-000001", "rows": 2, "deleted": [], "docs": {"규정.txt": [0, 2]}}
    segment = tmp_path / "segments" / "seg-000001"
    assert {p.name for p in segment.iterdir()} == {
        "segment.json", "chunks.jsonl", "vectors.npy", "terms.json", "counts.npz", "keys.txt"}
    # Korean stays readable in the files.
    assert "연차휴가" in (segment / "chunks.jsonl").read_text(encoding="utf-8")


def test_empty_generation_round_trips(tmp_path: Path, embedder: HashEmbedder) -> None:
    write_test_generation(tmp_path / "gen-000001", [], embedder, WhitespaceTokenizer())
    loaded = IndexGeneration.load(tmp_path / "gen-000001")
    assert loaded.chunks == [] and len(loaded.dense) == 0 and len(loaded.bm25) == 0


def test_write_rejects_disagreeing_rows_and_overwrites(tmp_path: Path, embedder: HashEmbedder) -> None:
    dense = DenseIndex(embedder.dim)
    dense.add(embedder.embed_documents(["하나"]))
    with pytest.raises(ValueError):
        IndexGeneration.write(tmp_path / "g", {}, CHUNKS, dense, BM25Index.build([["하나"]]))
    assert not (tmp_path / "g" / "manifest.json").exists()
    write_test_generation(tmp_path / "g", CHUNKS, embedder, WhitespaceTokenizer())
    with pytest.raises(FileExistsError):
        write_test_generation(tmp_path / "g", CHUNKS, embedder, WhitespaceTokenizer())
    with pytest.raises(ValueError):
        write_test_generation(tmp_path / "h", CHUNKS, embedder, WhitespaceTokenizer(), {"schema_version": 99})


def test_load_without_manifest_is_corrupt(tmp_path: Path, embedder: HashEmbedder) -> None:
    write_test_generation(tmp_path / "g", CHUNKS, embedder, WhitespaceTokenizer())
    (tmp_path / "g" / "manifest.json").unlink()
    with pytest.raises(IndexCorruptError, match="manifest"):
        IndexGeneration.load(tmp_path / "g")


def test_load_with_other_schema_version_is_corrupt(tmp_path: Path, embedder: HashEmbedder) -> None:
    write_test_generation(tmp_path / "g", CHUNKS, embedder, WhitespaceTokenizer())
    manifest_path = tmp_path / "g" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "schema_version": 99}), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="schema_version"):
        IndexGeneration.load(tmp_path / "g")


def test_load_with_disagreeing_row_counts_is_corrupt(tmp_path: Path, embedder: HashEmbedder) -> None:
    write_test_generation(tmp_path / "g", CHUNKS, embedder, WhitespaceTokenizer())
    chunks_path = tmp_path / "segments" / "seg-000001" / "chunks.jsonl"
    first_line = chunks_path.read_text(encoding="utf-8").splitlines()[0]
    chunks_path.write_text(first_line + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="row counts"):
        IndexGeneration.load(tmp_path / "g")


def test_no_index_yet(tmp_path: Path) -> None:
    assert current_generation_path(tmp_path) is None
    assert current_generation_path(tmp_path / "missing") is None
    with pytest.raises(IndexNotFoundError) as exc:
        open_index(tmp_path / "index")
    assert str(tmp_path / "index") in str(exc.value)
    assert "chulcheo ingest" in str(exc.value)


def test_publish_and_open(tmp_path: Path, embedder: HashEmbedder) -> None:
    first = _publish_new(tmp_path, embedder)
    assert first.name == "gen-000001"
    assert current_generation_path(tmp_path) == first
    assert open_index(tmp_path).chunks == CHUNKS
    second = _publish_new(tmp_path, embedder, CHUNKS[:1])
    assert (tmp_path / "CURRENT").read_text(encoding="utf-8").strip() == "gen-000002"
    assert open_index(tmp_path).path == second
    assert open_index(tmp_path).chunks == CHUNKS[:1]
    assert not (tmp_path / "CURRENT.tmp").exists()


def test_publish_refuses_incomplete_or_foreign_generations(tmp_path: Path, embedder: HashEmbedder) -> None:
    gen = new_generation_path(tmp_path)
    with pytest.raises(IndexCorruptError):
        publish(tmp_path, gen)
    other = tmp_path / "elsewhere" / "gen-000009"
    write_test_generation(other, CHUNKS, embedder, WhitespaceTokenizer())
    with pytest.raises(ValueError):
        publish(tmp_path, other)
    assert current_generation_path(tmp_path) is None


def test_current_pointing_to_missing_generation_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("gen-000007\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="gen-000007"):
        current_generation_path(tmp_path)
    with pytest.raises(IndexCorruptError):
        open_index(tmp_path)


def test_current_pointing_to_incomplete_generation_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "gen-000001").mkdir()
    (tmp_path / "CURRENT").write_text("gen-000001", encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        open_index(tmp_path)


@pytest.mark.parametrize("content", ["../etc", "", "gen-1", "/tmp/gen-000001"])
def test_current_with_a_bad_name_is_corrupt(tmp_path: Path, content: str) -> None:
    (tmp_path / "CURRENT").write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        current_generation_path(tmp_path)


def test_new_generation_numbers_skip_leftovers(tmp_path: Path, embedder: HashEmbedder) -> None:
    _publish_new(tmp_path, embedder)
    (tmp_path / "gen-000005").mkdir()  # a crashed build's leftover, never completed
    (tmp_path / "notes").mkdir()  # unrelated dirs are ignored
    gen = new_generation_path(tmp_path)
    assert gen.name == "gen-000006"
    assert gen.is_dir()
    assert new_generation_path(tmp_path).name == "gen-000007"


def test_new_generation_in_a_fresh_dir(tmp_path: Path) -> None:
    assert new_generation_path(tmp_path / "index").name == "gen-000001"


def test_incomplete_generation_is_ignored_then_cleaned(tmp_path: Path, embedder: HashEmbedder) -> None:
    live = _publish_new(tmp_path, embedder)
    crashed = new_generation_path(tmp_path)
    (crashed / "chunks.jsonl").write_text("{}\n", encoding="utf-8")  # half-written, no manifest
    (tmp_path / "CURRENT.tmp").write_text("gen-000002", encoding="utf-8")
    assert open_index(tmp_path).path == live
    removed = cleanup_generations(tmp_path)
    assert set(removed) == {crashed, tmp_path / "CURRENT.tmp"}
    assert not crashed.exists()
    assert open_index(tmp_path).path == live


def test_cleanup_keeps_current_and_previous(tmp_path: Path, embedder: HashEmbedder) -> None:
    gens = [_publish_new(tmp_path, embedder) for _ in range(4)]
    unpublished = new_generation_path(tmp_path)
    write_test_generation(unpublished, CHUNKS, embedder, WhitespaceTokenizer())
    (tmp_path / ".lock").touch()
    removed = cleanup_generations(tmp_path, keep=2)
    segs = tmp_path / "segments"
    # each generation here wrote its own segment: those of the removed ones go with them
    assert set(removed) == {gens[0], gens[1], unpublished, segs / "seg-000001", segs / "seg-000002", segs / "seg-000005"}
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == [".lock", "CURRENT", gens[2].name, gens[3].name, "segments"]
    assert sorted(p.name for p in segs.iterdir()) == ["seg-000003", "seg-000004"]
    assert cleanup_generations(tmp_path, keep=2) == []
    assert cleanup_generations(tmp_path, keep=1) == [gens[2], segs / "seg-000003"]
    assert open_index(tmp_path).path == gens[3]


def test_cleanup_after_rollback_keeps_the_older_live_generation(tmp_path: Path, embedder: HashEmbedder) -> None:
    gens = [_publish_new(tmp_path, embedder) for _ in range(3)]
    publish(tmp_path, gens[0])  # an operator rolled back
    removed = cleanup_generations(tmp_path)
    segs = tmp_path / "segments"
    assert set(removed) == {gens[1], gens[2], segs / "seg-000002", segs / "seg-000003"}
    assert open_index(tmp_path).path == gens[0]


def test_cleanup_without_current_removes_every_generation(tmp_path: Path, embedder: HashEmbedder) -> None:
    """Nothing was ever published: a complete generation is a crashed first build's debris too."""
    complete = new_generation_path(tmp_path)
    write_test_generation(complete, CHUNKS, embedder, WhitespaceTokenizer())
    incomplete = new_generation_path(tmp_path)
    assert cleanup_generations(tmp_path) == [complete, incomplete, tmp_path / "segments" / "seg-000001"]
    assert not complete.exists()
    assert cleanup_generations(tmp_path / "missing") == []


def test_cleanup_refuses_when_current_is_broken(tmp_path: Path) -> None:
    (tmp_path / "gen-000001").mkdir()
    (tmp_path / "CURRENT").write_text("gen-000003", encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        cleanup_generations(tmp_path)
    assert (tmp_path / "gen-000001").exists()
    with pytest.raises(ValueError):
        cleanup_generations(tmp_path, keep=0)


def test_crash_mid_write_leaves_no_manifest_and_the_live_index_serving(
    tmp_path: Path, embedder: HashEmbedder, monkeypatch
) -> None:
    live = _publish_new(tmp_path, embedder)

    def crash(self, directory):
        raise OSError("disk full")

    monkeypatch.setattr(TermCounts, "save", crash)
    gen = new_generation_path(tmp_path)
    with pytest.raises(OSError):
        write_test_generation(gen, CHUNKS, embedder, WhitespaceTokenizer())
    half = tmp_path / "segments" / "seg-000002"
    assert (half / "chunks.jsonl").exists() and not (half / "segment.json").exists()
    assert not (gen / "manifest.json").exists()
    with pytest.raises(IndexCorruptError):
        IndexGeneration.load(gen)
    with pytest.raises(IndexCorruptError, match="incomplete segment"):
        Segment.load(half)
    assert open_index(tmp_path).path == live
    assert cleanup_generations(tmp_path) == [gen, half]
