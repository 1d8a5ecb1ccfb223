"""answer.embed_cache: a second question over the same sources embeds none of their sentences
again, while the asker's own words are embedded afresh every time (never kept)."""

from __future__ import annotations

import pytest

from tests.fakes import CountingEmbedder
from tests.unit.app.conftest import scripted_replies


@pytest.mark.parametrize("cache_size", [4096, 0])
def test_source_sentences_are_embedded_once_when_cached(tmp_path, shared_kiwi, monkeypatch, cache_size) -> None:
    import kiwipiepy

    from app.pipeline import Pipeline
    from app.settings import Settings
    from generation.scripted import ScriptedGenerator

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    settings = Settings(index_dir=tmp_path / "index", state_dir=tmp_path / "state")
    settings = settings.model_copy(update={"answer": settings.answer.model_copy(update={"embed_cache": cache_size})})
    embedder = CountingEmbedder()
    pipeline = Pipeline(settings, embedder=embedder, generator=ScriptedGenerator(scripted_replies))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "취업규칙.txt").write_text(
        "제15조(연차휴가) 1년간 80퍼센트 이상 출근한 직원에게는 15일의 유급휴가를 준다.\n"
        "제16조(병가) 병가는 연간 60일 이내로 한다.\n제17조(재택근무) 재택근무는 주 2일까지 허용한다.\n",
        encoding="utf-8")
    pipeline.ingest([docs], "public")

    embedder.embedded.clear()
    first = pipeline.ask("연차휴가는 며칠인가요?")
    first_texts = list(embedder.embedded)
    embedder.embedded.clear()
    second = pipeline.ask("연차휴가는 며칠인가요?")

    assert "15일" in first.answer and second.answer == first.answer
    sources = [t for t in first_texts if "유급휴가를 준다" in t or "병가는" in t or "재택근무는" in t]
    assert any("15일의 유급휴가" in t for t in sources)  # the unit was compared by embedding
    assert "연차휴가는 며칠인가요?" in first_texts and "연차휴가는 며칠인가요?" in embedder.embedded
    if cache_size:
        assert not set(sources) & set(embedder.embedded)  # the sources' sentences came from the cache
        assert all(row is not None for row in pipeline.unit_embed._rows.values())
        assert "연차휴가는 며칠인가요?" not in pipeline.unit_embed._rows  # the question is never kept
    else:
        assert sorted(embedder.embedded) == sorted(first_texts)
