"""Fixtures of the app tests: a Service over fast fakes (use_model is in tests/unit/conftest.py)."""

from __future__ import annotations

import pytest


# Two groups, each with a sentence no other document has: a user of `public` must never see HR's.
CORPUS = {
    "public": {"취업규칙.txt": "연차휴가는 15일이다. 병가는 연간 60일 이내이다.\n\n재택근무는 주 2일까지 허용한다."},
    "hr": {"인사평가.txt": "2026년 인사평가 등급은 S, A, B, C 네 단계이다. 비밀코드는 자두나무 73호이다."},
}


def scripted_replies(messages) -> str:
    """The fake LLM's draft: a supported answer for known questions, else the abstention."""
    from prompts import ABSTAIN

    sources, _, question = messages[-1].content.rpartition("질문:")
    for key, (needs, reply) in {"연차휴가": ("15일", "연차휴가는 15일입니다."), "병가": ("60일", "병가는 90일입니다."),
                                "재택근무": ("주 2일", "재택근무는 주 2일까지 허용됩니다."),
                                "비밀코드": ("자두나무", "비밀코드는 자두나무 73호입니다.")}.items():
        # like a model that read its sources: it only knows what the prompt's passages say
        if key in question and needs in sources:
            return reply
    return ABSTAIN


@pytest.fixture
def make_service(tmp_path, shared_kiwi, monkeypatch):
    """make_service(open_mode=False, **server) -> a Service over CORPUS with fast fake models.

    The hash embedder and scripted LLM stand in for the real ones (the integration tests run
    those); the index, keys (SQLite), jobs and uploads are all real, under tmp_path.
    """
    import kiwipiepy

    from app.pipeline import Pipeline
    from app.service import Service
    from app.settings import ServerSettings, Settings
    from generation.scripted import ScriptedGenerator
    from tests.fakes import HashEmbedder

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)

    def make(open_mode: bool = False, **server):
        base = tmp_path / f"svc{len(list(tmp_path.glob('svc*')))}"
        settings = Settings(index_dir=base / "index", state_dir=base / "state",
                            server=ServerSettings(**server)).model_copy(
            update={"answer": Settings().answer.model_copy(update={"similarity": False})})
        pipeline = Pipeline(settings, embedder=HashEmbedder(), generator=ScriptedGenerator(scripted_replies))
        for group, files in CORPUS.items():
            folder = base / "docs" / group
            folder.mkdir(parents=True)
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8")
            pipeline.ingest([folder], group)
        return Service.from_settings(settings, open_mode=open_mode, pipeline=pipeline)

    return make
