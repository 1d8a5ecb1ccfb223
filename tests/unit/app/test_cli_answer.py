"""`chulcheo ask` and `chulcheo verify`: JSON contracts, streaming, batch, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import app.pipeline as pipeline_module
from app.cli import app
from generation.errors import GenerationError
from generation.scripted import ScriptedGenerator
from tests.fakes import HashEmbedder

runner = CliRunner()

ANSWER_KEYS = {"answer", "abstained", "mode", "question", "query", "sentences", "citations", "hits", "timings",
               "loop_stopped"}


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def index(tmp_path, monkeypatch, use_model):
    use_model(HashEmbedder)
    monkeypatch.setenv("CHULCHEO_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("CHULCHEO_ANSWER__SIMILARITY", "false")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "휴가.txt").write_text("연차휴가는 15일이다. 병가는 연간 60일 이내이다.", encoding="utf-8")
    (docs / "보안.md").write_text("# 보안\n\nUSB 메모리 사용은 금지한다.", encoding="utf-8")
    assert runner.invoke(app, ["ingest", str(docs)]).exit_code == 0
    return tmp_path


@pytest.fixture
def llm(monkeypatch):
    def install(replies):
        gen = ScriptedGenerator(replies)
        monkeypatch.setattr(pipeline_module, "make_generator_from_settings", lambda settings: gen)
        return gen

    return install


def test_ask_json_contract(index, llm):
    llm(["연차휴가는 15일입니다 [1]. 병가는 90일입니다."])
    result = runner.invoke(app, ["ask", "연차휴가와 병가는 며칠인가요?", "--json"])
    assert result.exit_code == 0, result.output
    (data,) = lines(result)
    assert set(data) == ANSWER_KEYS
    # the slipped 병가 sentence is dropped; the 병가 part is answered by quoting its whole unit
    assert data["answer"] == "연차휴가는 15일입니다 [1]. 병가는 연간 60일 이내이다 [2]." and not data["abstained"]
    checks = [(s["supported"], s["citations"]) for s in data["sentences"]]
    assert checks == [(True, [1]), (False, []), (True, [2])]
    assert set(data["sentences"][0]) >= {"text", "supported", "score", "citations"}
    cite, quoted = data["citations"]
    assert quoted["quote"] == "병가는 연간 60일 이내이다."
    assert set(cite) >= {"n", "doc_id", "source", "page", "chunk_id", "quote"}
    hit = next(h for h in data["hits"] if h["chunk_id"] == cite["chunk_id"])
    assert cite["quote"] in hit["text"] and hit["text"][cite["start"] : cite["end"]] == cite["quote"]
    assert data["timings"]["total"] >= data["timings"]["retrieve"] > 0


def test_ask_human_output_shows_citation_cards(index, llm):
    llm(["연차휴가는 15일입니다."])
    result = runner.invoke(app, ["ask", "연차휴가는 며칠인가요?"])
    assert result.exit_code == 0
    assert "연차휴가는 15일입니다 [1]." in result.stdout
    assert "[1] 휴가.txt: “연차휴가는 15일이다.”" in result.stdout


def test_ask_stream_json_events(index, llm):
    llm(["연차휴가는 15일입니다. 병가는 연간 60일 이내입니다."])
    result = runner.invoke(app, ["ask", "휴가 규정은?", "--stream", "--json"])
    assert result.exit_code == 0, result.output
    events = lines(result)
    assert [e["event"] for e in events] == ["sentence", "sentence", "answer"]
    assert events[0]["rendered"] == "연차휴가는 15일입니다 [1]." and events[0]["supported"]
    assert set(events[-1]) == ANSWER_KEYS | {"event"}


def test_ask_batch_one_line_per_question_with_qid(index, llm, tmp_path):
    gen = llm(["연차휴가는 15일입니다.", "USB 메모리 사용은 금지됩니다."])
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"qid": "a", "query": "연차휴가는 며칠?"}\nnot json\n{"qid": "b", "query": "USB 써도 되나요?"}\n{"query": "no qid"}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ask", "--questions", str(qfile), "--json"])
    assert result.exit_code == 1
    out = lines(result)
    assert [o.get("qid") for o in out] == ["a", None, "b", None]
    assert out[0]["answer"] == "연차휴가는 15일입니다 [1]." and out[2]["answer"] == "USB 메모리 사용은 금지됩니다 [1]."
    assert f"{qfile}:2" in out[1]["error"] and f"{qfile}:4" in out[3]["error"]
    assert len(gen.calls) == 2


def test_ask_group_filter(index, llm):
    gen = llm(["연차휴가는 15일입니다."])
    data = lines(runner.invoke(app, ["ask", "연차휴가는 며칠?", "--group", "임원", "--json"]))[0]
    assert data["abstained"] and data["hits"] == [] and gen.calls == []


def test_ask_llm_failure_is_a_clear_error(index, monkeypatch):
    def broken(settings):
        raise GenerationError("openai_compat: http://127.0.0.1:9/v1 is not reachable (connection refused)")

    monkeypatch.setattr(pipeline_module, "make_generator_from_settings", broken)
    result = runner.invoke(app, ["ask", "연차휴가는 며칠?"])
    assert result.exit_code == 2
    assert "http://127.0.0.1:9/v1 is not reachable" in result.stderr


def test_ask_needs_question_or_file(index):
    assert runner.invoke(app, ["ask"]).exit_code == 2


def write_passages(tmp_path, rows):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_verify_json_contract(tmp_path, monkeypatch, use_model):
    use_model(HashEmbedder)
    monkeypatch.setenv("CHULCHEO_ANSWER__SIMILARITY", "false")
    path = write_passages(tmp_path, [
        {"id": "p1", "text": "연차휴가는 15일이다. 병가는 연간 60일 이내이다.", "source": "휴가.txt", "page": 3},
        {"id": "p2", "text": "USB 메모리 사용은 금지한다."},
    ])
    result = runner.invoke(app, ["verify", "--answer", "USB 메모리 사용은 허용됩니다. 연차는 16일입니다.", "--passages", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (data,) = lines(result)
    assert set(data) >= {"sentences", "citations"}
    assert [s["supported"] for s in data["sentences"]] == [False, False]
    good = lines(runner.invoke(app, ["verify", "--answer", "USB 메모리 사용은 금지됩니다.", "--passages", str(path), "--json"]))[0]
    assert good["sentences"][0]["citations"] == [1]
    assert good["citations"][0] == {
        "n": 1, "doc_id": "p2", "source": "", "page": None, "chunk_id": "p2",
        "quote": "USB 메모리 사용은 금지한다.", "start": 0, "end": 17,
        "highlight_start": None, "highlight_end": None,  # the claim relies on the whole quote
        "boxes": [],  # no page image: not a PDF or scan
    }


def test_verify_bad_passage_line_names_file_and_line(tmp_path, use_model):
    use_model(HashEmbedder)
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "p1", "text": "연차휴가는 15일이다."}\n{"id": "p2"}\n', encoding="utf-8")
    result = runner.invoke(app, ["verify", "--answer", "연차는 15일", "--passages", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2" in result.stderr and "text" in result.stderr
