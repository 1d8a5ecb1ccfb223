"""End to end with the real models: sample documents -> EmbeddingGemma + FAISS + Kiwi BM25 ->
qwen2.5-coder-0.5b (llama.cpp) -> grounding check -> cited Answer, through Pipeline and the CLI.

The small model's wording varies, so the assertions are about what must hold whatever it
writes: every shown sentence is supported and cited, quotes are exact spans of retrieved
chunks, the known fact is in the answer (drafted or quoted), and a reversed fact never is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.models import ModelNotProvisionedError, resolve_model
from app.pipeline import Pipeline
from grounding import Passage

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SMALL_MODEL = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def settings(real_settings, tmp_path_factory):
    try:
        resolve_model(SMALL_MODEL, real_settings.model_dir)
    except ModelNotProvisionedError as exc:
        pytest.skip(str(exc))
    return real_settings.model_copy(update={
        "index_dir": tmp_path_factory.mktemp("ask-index"),  # never the index other tests share
        "generation": real_settings.generation.model_copy(update={"model": SMALL_MODEL, "max_tokens": 96, "context_size": 2048}),
    })


@pytest.fixture(scope="module")
def pipeline(settings):
    p = Pipeline(settings)
    report = p.ingest([REPO / "sample_corpus"])
    assert report.chunks > 0 and not report.failed
    return p


def assert_well_formed(answer):
    hits = {h.chunk.chunk_id: h.chunk for h in answer.hits}
    for c in answer.citations:
        assert hits[c.chunk_id].text[c.start : c.end] == c.quote
    shown = [s for s in answer.sentences if s.supported]
    if answer.abstained:
        assert answer.citations == [] and not shown
    else:
        assert shown and all(s.citations for s in shown)
        assert {n for s in shown for n in s.citations} == {c.n for c in answer.citations}


def test_ask_answers_a_known_fact_with_its_source(pipeline):
    answer = pipeline.ask("연차휴가는 며칠인가요?")
    assert_well_formed(answer)
    assert not answer.abstained, answer.draft
    assert "15일" in answer.answer
    assert any(c.source.endswith("취업규칙.md") for c in answer.citations)
    assert answer.timings["total"] > answer.timings["retrieve"] > 0


def test_stream_shows_only_checked_sentences(pipeline):
    events = list(pipeline.stream("USB 메모리를 써도 되나요?"))
    assert events[-1].kind == "answer"
    final = events[-1].answer
    assert_well_formed(final)
    for e in events[:-1]:
        assert e.kind == "sentence" and e.check is not None
    # the closing answer shows exactly the streamed supported sentences (a continuation quote
    # listed after the sentence it continues, sources renumbered in that order)
    bare = sorted(re.sub(r" \[\d+\]", "", e.text) for e in events[:-1] if e.check.supported)
    assert bare == sorted(re.sub(r" \[\d+\]", "", s.text.strip()) for s in final.sentences if s.supported)


def test_real_checker_rejects_the_known_slips(pipeline):
    hits = pipeline.search("재택근무 규정", 3)
    passages = [Passage.from_hit(h) for h in hits]
    checked = pipeline.verify("연차휴가는 16일입니다. 수습 직원도 재택근무를 할 수 있습니다.", passages)
    assert [s.supported for s in checked.sentences] == [False, False]
    good = pipeline.verify("재택근무는 주 2일까지 허용됩니다.", passages)
    assert good.sentences[0].supported and good.citations[0].quote in hits[0].chunk.text + "".join(h.chunk.text for h in hits)


def test_cli_ask_json_for_real(pipeline, settings):
    env = {"CHULCHEO_INDEX_DIR": str(settings.index_dir), "CHULCHEO_GENERATION__MODEL": SMALL_MODEL,
           "CHULCHEO_GENERATION__MAX_TOKENS": "96", "CHULCHEO_MODEL_DIR": str(settings.model_dir)}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "app", "ask", "재택근무는 일주일에 며칠까지 가능한가요?", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(data) >= {"answer", "abstained", "sentences", "citations", "hits", "timings"}
    assert data["hits"] and not data["abstained"]
    assert "2일" in data["answer"]


def test_setup_sample_question_with_the_default_model_tells_the_truth(pipeline, real_settings):
    """setup.sh asks "연차휴가는 며칠인가요?" with the default model: the answer is the 15 days the
    rule grants (not the 25-day cap on total leave), and README's sample output is what it prints."""
    import os
    import re

    env = {"CHULCHEO_INDEX_DIR": str(pipeline.settings.index_dir), "CHULCHEO_MODEL_DIR": str(real_settings.model_dir)}
    assert real_settings.generation.model != SMALL_MODEL  # the default one, as setup.sh runs it
    result = subprocess.run(
        [sys.executable, "-m", "app", "ask", "연차휴가는 며칠인가요?"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=REPO, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    printed = [line.rstrip() for line in result.stdout.strip().splitlines() if line.strip()]
    first = printed[0].split("]. ")[0]  # the answer's first sentence: the days granted, not the cap
    assert "15일" in first and "25일" not in first, printed
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- sample-output -->\n```text\n(.*?)\n```", readme, re.S)
    assert block, "README.md lost its sample output block"
    assert printed == block.group(1).splitlines(), "README's sample output differs from what `ask` prints"
