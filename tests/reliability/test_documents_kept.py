"""Nothing already stored is lost by the server's document operations, even with a kill -9 midway.

A failed re-upload keeps the previous version (file and index); deleting one line-document of a
JSONL file removes only it, also after a re-index; the same line id in two groups' files are two
documents; two long upload names never become one file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.auth import OPEN_PRINCIPAL
from tests.reliability.service_worker import service_at

WORKER = Path(__file__).with_name("service_worker.py")
ROOT = Path(__file__).resolve().parents[2]
V1 = "휴가 규정 1판: 연차휴가는 15일이다."
V2 = "휴가 규정 2판: 연차휴가는 20일이다."
FAQ = [{"id": "q1", "text": "식대는 하루 1만 원이다."}, {"id": "q2", "text": "출장비는 실비로 정산한다."},
       {"id": "q3", "text": "야근 택시비는 22시 이후에만 지원한다."}]


@pytest.fixture
def base(tmp_path, shared_kiwi, monkeypatch):
    import kiwipiepy

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    return tmp_path


def texts_of(service, group: str) -> list[str]:
    """Every indexed chunk text of a group, via search (the way users see documents)."""
    from app.auth import Principal

    who = Principal("t", "user", frozenset({group}))
    return sorted({h.chunk.text for h in service.search(who, "연차휴가 식대 출장비 택시비", 50, "bm25")})


def upload_and_wait(service, name: str, data: bytes, group: str):
    job = service.upload(OPEN_PRINCIPAL, name, data, group)
    return service.jobs.wait(job.id, timeout=60)


def stored_files(service) -> list[Path]:
    return sorted(p for p in service.upload_dir.rglob("*") if p.is_file()) if service.upload_dir.exists() else []


def test_a_reupload_that_fails_to_index_keeps_the_previous_version(base, monkeypatch):
    service = service_at(base)
    assert upload_and_wait(service, "규정.txt", V1.encode(), "a").status == "done"
    (v1_file,) = stored_files(service)

    def broken(*args, **kwargs):
        raise RuntimeError("embedding model crashed")

    monkeypatch.setattr(service.pipeline, "ingest", broken)
    assert upload_and_wait(service, "규정.txt", V2.encode(), "a").status == "failed"
    monkeypatch.undo()
    assert stored_files(service) == [v1_file] and v1_file.read_text(encoding="utf-8") == V1
    assert any("15일" in t for t in texts_of(service, "a"))
    service.jobs.wait(service.reindex(OPEN_PRINCIPAL).id, timeout=60)
    assert any("15일" in t for t in texts_of(service, "a")) and stored_files(service) == [v1_file]
    # a good re-upload replaces it: one version indexed, one file kept
    assert upload_and_wait(service, "규정.txt", V2.encode(), "a").status == "done"
    (v2_file,) = stored_files(service)
    assert v2_file != v1_file and [t for t in texts_of(service, "a") if "연차" in t] == [V2]


def test_deleting_one_line_of_a_jsonl_keeps_its_siblings_also_after_a_reindex(base):
    service = service_at(base)
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in FAQ).encode()
    assert upload_and_wait(service, "faq.jsonl", data, "a").status == "done"
    assert len(service.pipeline.documents()) == 3
    q2 = next(d for d in service.pipeline.documents() if d.doc_id.endswith("q2"))
    service.delete(OPEN_PRINCIPAL, [q2.doc_id])
    left = texts_of(service, "a")
    assert not any("출장비" in t for t in left) and any("식대" in t for t in left) and any("택시비" in t for t in left)
    assert len(stored_files(service)) == 1  # the file still holds q1 and q3
    service.jobs.wait(service.reindex(OPEN_PRINCIPAL).id, timeout=60)
    assert texts_of(service, "a") == left  # q2 did not come back, q1 and q3 stayed
    for d in list(service.pipeline.documents()):
        service.delete(OPEN_PRINCIPAL, [d.doc_id])
    assert stored_files(service) == []  # the last document of the file took the file with it


def test_the_same_line_id_in_two_groups_files_is_two_documents(base):
    service = service_at(base)
    for group, text in (("a", "A팀 식대는 하루 1만 원이다."), ("b", "B팀 식대는 하루 2만 원이다.")):
        line = json.dumps({"id": "faq-1", "text": text}, ensure_ascii=False).encode()
        assert upload_and_wait(service, "faq.jsonl", line, group).status == "done"
    assert texts_of(service, "a") == ["A팀 식대는 하루 1만 원이다."]
    assert texts_of(service, "b") == ["B팀 식대는 하루 2만 원이다."]


def test_two_long_names_that_differ_past_the_cut_stay_two_files(base):
    service = service_at(base)
    stem = "인사" * 60
    for tail, text in (("_가.txt", "첫째 문서: 연차휴가는 15일이다."), ("_나.txt", "둘째 문서: 연차휴가는 20일이다.")):
        assert upload_and_wait(service, stem + tail, text.encode(), "a").status == "done"
    assert len(stored_files(service)) == 2 and len(texts_of(service, "a")) == 2
    assert all(len(p.name.encode()) <= 200 for p in stored_files(service))


# ---------------------------------------------------------------- kill -9 in the middle
KILL_AFTER = (0.0, 0.3, 0.7, 1.2, 2.0, 3.0)  # seconds after the worker says `start`


def run_killed(base: Path, op: str, arg: str, delay: float) -> str:
    """Run one worker op, SIGKILL it `delay` s after `start` (or let it finish); its last line."""
    env = {"SERVICE_WORKER_EMBED_SLEEP": "0.5", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(base), op, arg], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start", proc.stderr.read()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    return out.strip()


@pytest.mark.parametrize("delay", KILL_AFTER)
def test_kill_during_a_reupload_leaves_exactly_one_version(base, delay):
    service = service_at(base)
    assert upload_and_wait(service, "규정.txt", V1.encode(), "a").status == "done"
    new = base / "v2.txt"
    new.write_text(V2, encoding="utf-8")
    run_killed(base, "reupload", str(new), delay)
    after = service_at(base)  # a restarted server: sweeps what the killed one left
    versions = [t for t in texts_of(after, "a") if "연차" in t]
    assert versions in ([V1], [V2]), versions
    (stored,) = stored_files(after)
    assert stored.read_text(encoding="utf-8") == versions[0]  # the indexed version's file is the one kept
    after.jobs.wait(after.reindex(OPEN_PRINCIPAL).id, timeout=60)
    assert [t for t in texts_of(after, "a") if "연차" in t] == versions


@pytest.mark.parametrize("delay", KILL_AFTER)
def test_kill_during_a_line_delete_never_loses_the_siblings(base, delay):
    service = service_at(base)
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in FAQ).encode()
    assert upload_and_wait(service, "faq.jsonl", data, "a").status == "done"
    q2 = next(d for d in service.pipeline.documents() if d.doc_id.endswith("q2"))
    run_killed(base, "delete", q2.doc_id, delay)
    after = service_at(base)
    texts = texts_of(after, "a")
    assert any("식대" in t for t in texts) and any("택시비" in t for t in texts), texts
    after.jobs.wait(after.reindex(OPEN_PRINCIPAL).id, timeout=60)
    texts = texts_of(after, "a")
    assert any("식대" in t for t in texts) and any("택시비" in t for t in texts), texts
    # once the delete was remembered, a re-index completes it whatever the kill hit; a kill before
    # that is a delete that never happened (nobody was told it did)
    if q2.doc_id in after.tombstones.doc_ids():
        assert not any("출장비" in t for t in texts), texts
    assert len(stored_files(after)) == 1


def test_a_reindex_after_a_chunking_change_drops_vanished_files_and_rechunks_the_rest(base):
    from app.pipeline import Pipeline
    from app.service import Service
    from app.settings import Settings
    from tests.fakes import HashEmbedder

    folder = base / "docs"
    folder.mkdir()
    kept, gone = folder / "휴가.txt", folder / "식대.txt"
    kept.write_text(V1, encoding="utf-8")
    gone.write_text(FAQ[0]["text"], encoding="utf-8")
    service = service_at(base)
    service.pipeline.ingest([kept, gone], "a")
    assert len(service.pipeline.documents()) == 2
    gone.unlink()
    settings = Settings(index_dir=base / "index", state_dir=base / "state", chunk={"context_prefix": False})
    service = Service.from_settings(settings, pipeline=Pipeline(settings, embedder=HashEmbedder()))
    done = service.jobs.wait(service.reindex(OPEN_PRINCIPAL).id, timeout=60)
    assert done.status == "done", done.error
    assert [d.source for d in service.pipeline.documents()] == [str(kept)]
    assert texts_of(service, "a") == [V1]
    # the index now says it was chunked the new way: the next ingest has nothing to re-chunk
    assert service.pipeline.ingest([kept], "a").rechunked == []
