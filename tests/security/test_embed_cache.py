"""The vector cache of source sentences (answer.embed_cache) is shared by every asker of a process.

Hostile users timing it: a cached sentence answers ~40 ms faster, so the cache must hold only
what the timing caller could read anyway. A question is never kept or looked up (no one can
time whether another asked it), and a caller's lookups touch only sentences of passages
retrieved within the caller's groups. /v1/verify passages (a caller's own text) never reach it.
"""

from __future__ import annotations

import pytest

from retrieval.embed import EmbedCache
from tests.fakes import CountingEmbedder
from tests.unit.app.conftest import scripted_replies

pytestmark = pytest.mark.security


@pytest.fixture
def pipeline(tmp_path, shared_kiwi, monkeypatch):
    import kiwipiepy

    from app.pipeline import Pipeline
    from app.settings import Settings
    from generation.scripted import ScriptedGenerator

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)
    p = Pipeline(Settings(index_dir=tmp_path / "index", state_dir=tmp_path / "state"),
                 embedder=CountingEmbedder(), generator=ScriptedGenerator(scripted_replies))
    for group, name, text in (
        ("public", "취업규칙.txt", "제15조(연차휴가) 1년간 80퍼센트 이상 출근한 직원에게는 15일의 유급휴가를 준다.\n"),
        ("hr", "보안.txt", "제3조(비밀코드) 금고의 비밀코드는 자두나무 73호이며 분기마다 바꾼다.\n"),
    ):
        folder = tmp_path / "docs" / group
        folder.mkdir(parents=True)
        (folder / name).write_text(text, encoding="utf-8")
        p.ingest([folder], group)
    return p


def test_another_callers_question_cannot_be_timed(pipeline) -> None:
    question = "연차휴가는 며칠인가요?"
    pipeline.ask(question, groups=["public"])  # the victim
    cache = pipeline.unit_embed
    assert isinstance(cache, EmbedCache) and cache._rows and question not in cache._rows
    embedder = pipeline.embedder
    embedder.embedded.clear()
    pipeline.ask(question, groups=["public"])  # a colleague in the same group asks the same words
    assert question in embedder.embedded  # embedded afresh: no faster than a question never asked


def test_lookups_touch_only_sentences_of_the_callers_groups(pipeline, monkeypatch) -> None:
    pipeline.ask("금고의 비밀코드는 무엇인가요?", groups=["hr"])
    cache = pipeline.unit_embed
    secret = [t for t in cache._rows if "자두나무" in t]
    assert secret  # the HR sentence is cached for HR's next question
    looked_up: list[str] = []
    original = EmbedCache.__call__

    def spy(self, texts, private=0):
        looked_up.extend(texts[private:])
        return original(self, texts, private)

    monkeypatch.setattr(EmbedCache, "__call__", spy)
    for q in ("금고의 비밀코드는 무엇인가요?", "자두나무 73호", "연차휴가는 며칠인가요?"):
        answer = pipeline.ask(q, groups=["public"])
        assert "자두나무" not in answer.answer
    assert looked_up and not any("자두나무" in t or "비밀코드" in t for t in looked_up)
    hits_before = cache.hits
    pipeline.ask("금고의 비밀코드는 무엇인가요?", groups=["hr"])
    assert cache.hits > hits_before  # HR's own repeat question does use it


def test_verify_passages_never_enter_the_cache(pipeline) -> None:
    from grounding import Passage

    mine = "우리 팀 회식비는 1인당 3만 원이다."
    pipeline.verify("회식비는 1인당 3만 원입니다.", [Passage("p1", mine, source="memo.txt")], "회식비는 얼마인가요?")
    cache = pipeline.unit_embed
    assert isinstance(cache, EmbedCache)
    assert not any("회식비" in t for t in cache._rows)
    # the checker (which /v1/verify drives, on any coverage) embeds with the model itself
    assert not isinstance(pipeline.checker.embed, EmbedCache)
