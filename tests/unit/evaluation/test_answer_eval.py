"""`eval answers` scoring on hand-computed examples, and a whole run with fast fake models."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import app.pipeline as pipeline_module
from app.cli import app
from evaluation.answers import char_f1, contains, normalize, plain
from evaluation.langchain_stuff import QA_SYSTEM_PROMPT
from generation.scripted import ScriptedGenerator
from prompts import ABSTAIN
from tests.fakes import HashEmbedder


def test_normalize_and_plain():
    assert plain("연차휴가는 15일입니다 [1][2].") == "연차휴가는 15일입니다."
    assert normalize("“1,000억 원”입니다.") == "1000억원입니다"


def test_char_f1_hand_computed():
    # prediction chars 1,5,일,입,니,다 (6); gold 1,5,일 (3); common 3 -> P 0.5, R 1 -> F1 2/3
    assert char_f1("15일입니다", "15일") == pytest.approx(2 / 3, abs=1e-4)
    assert char_f1("15일", "15 일") == 1.0
    assert char_f1("병가", "15일") == 0.0


def test_contains_ignores_spacing_and_punctuation():
    assert contains("연차휴가는 15 일입니다 [1].", ["15일"])
    assert not contains("연차휴가는 16일입니다.", ["15일"])


def test_score_answer_compares_hits_and_citations_by_corpus_line_id():
    from types import SimpleNamespace

    from evaluation.answers import score_answer
    from retrieval.types import Chunk, Hit

    def answer(*chunks: Chunk) -> SimpleNamespace:
        return SimpleNamespace(
            answer="연차휴가는 15일입니다 [1].", draft="연차휴가는 15일입니다.", mode="generated", abstained=False,
            sentences=[], timings={}, loop_stopped=False, hits=[Hit(c, 1.0, i) for i, c in enumerate(chunks, 1)],
            citations=[SimpleNamespace(doc_id=chunks[0].doc_id)],
        )

    question = {"qid": "q1", "gold_ids": ["leave"], "answers": ["15일"]}
    now = Chunk("/i/eval_corpus.jsonl#leave#0000-ab", "/i/eval_corpus.jsonl#leave", "연차휴가는 15일이다.",
                "/i/eval_corpus.jsonl", metadata={"record_id": "leave"})
    before = Chunk("leave#0000-ab", "leave", "연차휴가는 15일이다.", "/i/eval_corpus.jsonl")  # older index
    other = Chunk("/i/eval_corpus.jsonl#usb#0000-cd", "/i/eval_corpus.jsonl#usb", "USB 사용은 금지한다.",
                  "/i/eval_corpus.jsonl", metadata={"record_id": "usb"})
    for chunk in (now, before):
        row = score_answer(answer(chunk), question)
        assert row["cited_gold"] and row["retrieved_gold"] and row["contained"]
    row = score_answer(answer(other), question)
    assert not row["cited_gold"] and not row["retrieved_gold"]


def test_eval_answers_end_to_end_with_fakes(tmp_path, monkeypatch, use_model):
    use_model(HashEmbedder)
    monkeypatch.setenv("CHULCHEO_ANSWER__SIMILARITY", "false")
    corpus = tmp_path / "corpus.jsonl"
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"id": "leave", "text": "연차휴가는 15일이다. 병가는 연간 60일 이내이다."},
        {"id": "usb", "text": "USB 메모리 사용은 금지한다."},
    ]
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    qs = [
        {"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["leave"], "answers": ["15일"],
         "answer": "연차휴가는 15일이다. 병가는 60일이다."},
        {"qid": "q2", "query": "병가는 연간 며칠 이내인가요?", "gold_ids": ["leave"], "answers": ["60일"]},
        {"qid": "q3", "query": "주차장은 몇 층인가요?", "gold_ids": ["usb"], "answers": ["지하 2층"]},
    ]
    qa.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in qs) + "\n", encoding="utf-8")
    replies = {"연차휴가는 며칠인가요?": "연차휴가는 15일입니다.", "병가는 연간 며칠 이내인가요?": "병가는 90일입니다.",
               "주차장은 몇 층인가요?": ABSTAIN}
    stuffed = {"연차휴가는 며칠인가요?": "연차휴가는 15일이고, 병가는 연간 60일 이내입니다."}

    def reply(messages):  # "": the warm-up prompt
        table = stuffed if messages[0].content.startswith(QA_SYSTEM_PROMPT[:40]) else replies
        return next((v for k, v in table.items() if k in messages[-1].content), "모르겠습니다.")

    gen = ScriptedGenerator(reply)
    monkeypatch.setattr(pipeline_module, "make_generator_from_settings", lambda settings: gen)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "answers", "--corpus", str(corpus), "--qa", str(qa),
                                      "--index", str(tmp_path / "index"), "--out", str(report), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    m = data["metrics"]
    assert data["questions"] == 3 and "per_question" not in data
    # q1 answered right; q2's "90일" is caught and the source quoted (contains 60일); q3 abstains
    per = {r["qid"]: r for r in json.loads(report.read_text(encoding="utf-8"))["per_question"]}
    assert per["q1"]["mode"] == "generated" and per["q1"]["contained"] and per["q1"]["cited_gold"]
    assert per["q2"]["draft_contained"] is False and per["q2"]["mode"] == "extractive" and per["q2"]["contained"]
    assert per["q3"]["abstained"] and per["q3"]["f1"] == 0.0
    assert m["abstention"] == pytest.approx(1 / 3, abs=1e-4) and m["containment"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["draft_containment"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["supported_sentences"] == pytest.approx(1 / 2)  # q1's sentence yes, q2's no (q3 drafted none)
    # what an employee reads: q1 holds 4 of its long-form gold's 6 content morphemes (연차 휴가 15 일, not 병가 60)
    assert per["q1"]["key_recall"] == pytest.approx(4 / 6, abs=1e-4) and "key_recall" not in per["q2"]
    assert m["key_recall"] == per["q1"]["key_recall"] and m["fragment_rate"] == 0.0 and m["non_answer_rate"] == 0.0
    # q3 abstains with its (answerless) gold document among the hits
    assert m["abstention_gold_retrieved"] == pytest.approx(1 / 3, abs=1e-4) and m["answer_chars_p50"] > 0
    assert m["citation_accuracy"] == 1.0 and m["answered_without_gold"] == 0.0
    assert data["latency_s"]["total_p50"] > 0
    assert data["latency_s"]["total_p95"] >= data["latency_s"]["total_p50"]
    assert m["loops_stopped"] == 0 and m["loop_rate"] == 0.0 and not any(r["loop_stopped"] for r in per.values())
    # baselines on the same hits ("auto" with a long-form gold: both): the top hit's first 300
    # characters (here the whole short line) and the stuff chain's unchecked answer
    assert data["settings"]["baselines"] == ["top300", "langchain_stuff"]
    b = m["baselines"]
    assert set(b) == {"top300", "langchain_stuff"} and b["top300"]["questions"] == 3
    q1 = per["q1"]["baselines"]
    assert q1["top300"]["answer"] == rows[0]["text"] and q1["top300"]["key_recall"] == 1.0
    assert q1["langchain_stuff"]["answer"] == stuffed["연차휴가는 며칠인가요?"] and q1["langchain_stuff"]["key_recall"] == 1.0
    assert per["q3"]["baselines"]["langchain_stuff"]["answer"] == "모르겠습니다."
    assert b["langchain_stuff"]["key_recall"] == 1.0 and b["langchain_stuff"]["errors"] == 0
    assert b["top300"]["latency_s"]["total_p95"] >= b["top300"]["latency_s"]["total_p50"] > 0

    # --resume: the rows of a stopped run are kept and only the other questions are asked again
    partial = tmp_path / "report.json.partial.jsonl"
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 3
    kept = partial.read_text(encoding="utf-8").splitlines()[:2]
    partial.write_text("\n".join(kept) + '\n{"qid": "q3", "mo', encoding="utf-8")  # killed mid-write
    asked_before = len(gen.calls)
    result = CliRunner().invoke(app, ["eval", "answers", "--corpus", str(corpus), "--qa", str(qa),
                                      "--index", str(tmp_path / "index"), "--out", str(report), "--resume", "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout.strip().splitlines()[-1])
    assert again["resumed"] == 2 and again["questions"] == 3
    assert without_latency(again["metrics"]) == without_latency(m)
    kept_queries = [next(q["query"] for q in qs if q["qid"] == json.loads(line)["qid"]) for line in kept]
    asked_again = [c[-1].content for c in gen.calls[asked_before:]
                   if any(q["query"] in c[-1].content for q in qs)]  # not the warm-up prompt
    assert len(asked_again) <= 2 and not any(k in a for k in kept_queries for a in asked_again)  # q3 and its stuff chain
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 3

    # --baselines none: the pipeline only, and no "baselines" key; the text report names each baseline
    asked_before = len(gen.calls)
    result = CliRunner().invoke(app, ["eval", "answers", "--corpus", str(corpus), "--qa", str(qa),
                                      "--index", str(tmp_path / "index"), "--baselines", "none", "--json"])
    assert result.exit_code == 0, result.output
    plain_run = json.loads(result.stdout.strip().splitlines()[-1])
    assert "baselines" not in plain_run["metrics"] and plain_run["settings"]["baselines"] == []
    assert not any(c[0].content.startswith(QA_SYSTEM_PROMPT[:40]) for c in gen.calls[asked_before:])
    result = CliRunner().invoke(app, ["eval", "answers", "--corpus", str(corpus), "--qa", str(qa),
                                      "--index", str(tmp_path / "index"), "--baselines", "top300", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "baseline top300: questions 1, key_recall" in result.stdout and "langchain_stuff" not in result.stdout


def without_latency(metrics):
    """The metrics with each baseline's latency left out (timed, so never equal between runs)."""
    return {**metrics, "baselines": {name: {k: v for k, v in b.items() if k != "latency_s"}
                                     for name, b in metrics.get("baselines", {}).items()}}


def test_eval_answers_rejects_an_unknown_baseline(tmp_path):
    result = CliRunner().invoke(app, ["eval", "answers", "--dataset", "korquad", str(tmp_path / "x.json"),
                                      "--baselines", "top300,bm25"])
    assert result.exit_code != 0 and "unknown baseline bm25" in result.output


def test_eval_answers_resume_needs_out(tmp_path):
    result = CliRunner().invoke(app, ["eval", "answers", "--dataset", "korquad", str(tmp_path / "x.json"), "--resume"])
    assert result.exit_code != 0 and "--out" in result.output
