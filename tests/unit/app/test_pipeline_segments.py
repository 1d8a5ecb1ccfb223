"""The pipeline over a segmented index: a reload after an ingest reads only the new segment, and
segments past `retrieval.max_segments` are merged in the background without changing results."""

from __future__ import annotations

import pytest


@pytest.fixture
def pipeline(tmp_path, shared_kiwi, monkeypatch):
    import kiwipiepy

    from app.pipeline import Pipeline
    from app.settings import Settings
    from tests.fakes import HashEmbedder

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    settings = Settings(index_dir=tmp_path / "index")
    settings.retrieval.max_segments = 2
    return Pipeline(settings, embedder=HashEmbedder())


def add(pipeline, tmp_path, i: int, *, merge: bool = True) -> None:
    path = tmp_path / f"공지{i}.txt"
    path.write_text(f"{i}번 공지: 주차 등록은 총무팀에 신청한다. 신청 기한은 {i + 1}일이다.", encoding="utf-8")
    if merge:
        pipeline.ingest([path])
        pipeline.wait_for_merge()
    else:  # the builder alone starts no merge
        pipeline.builder().ingest([path])


def test_reload_reuses_loaded_segments_and_background_merge_keeps_results(pipeline, tmp_path):
    add(pipeline, tmp_path, 0)
    first = pipeline.retriever().generation
    add(pipeline, tmp_path, 1)
    second = pipeline.retriever().generation
    assert second is not first and len(second.parts) == 2
    assert second.parts[0].segment is first.parts[0].segment  # taken as it was, not read again
    add(pipeline, tmp_path, 2, merge=False)  # a third segment: more than max_segments
    assert len(pipeline.index_status()["segments"]) == 3
    hits = [(h.chunk.chunk_id, h.score) for h in pipeline.search("주차 등록 기한", k=5)]
    pipeline._merge_later()  # what every ingest and delete of the pipeline does
    pipeline.wait_for_merge()
    status = pipeline.index_status()
    assert len(status["segments"]) == 1 and status["chunks"] == 3
    assert pipeline.retriever().generation.chunks[:2] == second.chunks  # same rows, same order
    assert [(h.chunk.chunk_id, h.score) for h in pipeline.search("주차 등록 기한", k=5)] == hits
