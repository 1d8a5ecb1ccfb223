"""plan_changes: what an incremental ingest adds, updates, keeps and deletes."""

from pathlib import Path

from ingest.manifest import DocEntry, Manifest, plan_changes
from ingest.types import Block, SourceDoc
from retrieval.store import SCHEMA_VERSION


def entry(doc_id, sha="a" * 64, group="public", source=None):
    return DocEntry(doc_id=doc_id, source=source or doc_id, title="", sha256=sha,
                    group=group, chunk_ids=[f"{doc_id}#0000-x"])


def loaded(doc_id, sha="a" * 64, group="public", source=None):
    return SourceDoc(doc_id=doc_id, source=source or doc_id, title="", sha256=sha,
                     group=group, blocks=[Block("안녕하세요")])


def test_new_changed_unchanged():
    indexed = {"/d/a.txt": entry("/d/a.txt"), "/d/b.txt": entry("/d/b.txt")}
    plan = plan_changes(
        indexed,
        [loaded("/d/a.txt"), loaded("/d/b.txt", sha="b" * 64), loaded("/d/c.txt")],
        read_sources={"/d/a.txt", "/d/b.txt", "/d/c.txt"},
    )
    assert [d.doc_id for d in plan.add] == ["/d/c.txt"]
    assert [d.doc_id for d in plan.update] == ["/d/b.txt"]
    assert plan.unchanged == ["/d/a.txt"]
    assert plan.delete == []


def test_group_change_is_an_update():
    plan = plan_changes({"/d/a.txt": entry("/d/a.txt")}, [loaded("/d/a.txt", group="hr")], {"/d/a.txt"})
    assert [d.doc_id for d in plan.update] == ["/d/a.txt"]


def test_nothing_changed_means_no_new_generation():
    plan = plan_changes({"/d/a.txt": entry("/d/a.txt")}, [loaded("/d/a.txt")], {"/d/a.txt"})
    assert not plan.changes_index


def test_line_removed_from_jsonl_is_deleted():
    src = "/d/corpus.jsonl"
    indexed = {"q1": entry("q1", source=src), "q2": entry("q2", source=src)}
    plan = plan_changes(indexed, [loaded("q1", source=src)], read_sources={src})
    assert plan.delete == ["q2"]


def test_without_sync_missing_files_are_kept(tmp_path):
    gone = str(tmp_path / "gone.txt")
    plan = plan_changes({gone: entry(gone)}, [], read_sources=set())
    assert plan.delete == []


def test_sync_deletes_only_missing_files_under_given_roots(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "failed_to_load.txt").write_text("손상", encoding="utf-8")
    gone, failed, elsewhere = (
        str(root / "gone.txt"), str(root / "failed_to_load.txt"), str(tmp_path / "other" / "x.txt")
    )
    indexed = {p: entry(p) for p in (gone, failed, elsewhere)}
    plan = plan_changes(indexed, [], read_sources=set(), sync_roots=[Path(root)])
    # A file that exists but failed to load keeps its old chunks; outside the roots is untouched.
    assert plan.delete == [gone]


def test_manifest_round_trip():
    m = Manifest(embedding={"model_id": "m", "dim": 8}, tokenizer={"name": "kiwi"},
                 bm25={"k1": 1.2, "b": 0.75}, chunking={"max_tokens": 64, "overlap_tokens": 8},
                 docs={"a": entry("a")})
    again = Manifest.from_dict(m.to_dict())
    assert again == m
    assert again.to_dict()["schema_version"] == SCHEMA_VERSION == 2


def test_keys_added_later_do_not_invalidate_old_indexes():
    from ingest.manifest import config_differences

    old = Manifest(embedding={"model_id": "m", "dim": 8}, tokenizer={"name": "kiwi"},
                   bm25={"k1": 1.2, "b": 0.75}, chunking={"max_tokens": 64, "overlap_tokens": 8})
    now = {"embedding": {"model_id": "m", "dim": 8, "max_seq_length": None},
           "tokenizer": {"name": "kiwi"}, "bm25": {"k1": 1.2, "b": 0.75},
           "chunking": {"max_tokens": 64, "overlap_tokens": 8, "context_prefix": False}}
    assert config_differences(old.build_config(), now) == []
    now["chunking"]["context_prefix"] = True
    assert config_differences(old.build_config(), now) == [
        "chunking.context_prefix: index False, settings True"
    ]


def test_record_id_round_trips_and_older_manifests_still_load():
    line = DocEntry(doc_id="/d/faq.jsonl#faq-1", source="/d/faq.jsonl", title="faq-1", sha256="a" * 64,
                    group="인사", chunk_ids=["/d/faq.jsonl#faq-1#0000-x"], record_id="faq-1")
    m = Manifest(embedding={"model_id": "m", "dim": 8}, tokenizer={"name": "kiwi"},
                 bm25={"k1": 1.2, "b": 0.75}, chunking={"max_tokens": 64, "overlap_tokens": 8},
                 docs={line.doc_id: line})
    assert Manifest.from_dict(m.to_dict()).docs[line.doc_id].record_id == "faq-1"
    written_before = m.to_dict()
    del written_before["docs"][line.doc_id]["record_id"]  # manifests from before record_id existed
    assert Manifest.from_dict(written_before).docs[line.doc_id].record_id is None
