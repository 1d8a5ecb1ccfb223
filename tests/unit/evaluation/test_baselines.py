"""The baselines of `eval answers` (the top hit's first 300 characters, LangChain's stuff chain)
and the loops counted, on Korean hits with a scripted generator."""

from __future__ import annotations

import pytest

from evaluation.answers import score_answer, summarize_answers
from evaluation.baselines import (
    BaselineRunner,
    choose_baselines,
    parse_baselines,
    summarize_baselines,
    top300,
)
from evaluation.langchain_stuff import QA_SYSTEM_PROMPT, stuff_chain
from generation.scripted import ScriptedGenerator
from generation.types import GenerationParams
from grounding.types import Answer
from retrieval.types import Chunk, Hit

# 제4조 is longer than 300 characters; the 300th character falls inside a word.
RULE = ("제4조(연차휴가) ① 회사는 1년간 80퍼센트 이상 출근한 근로자에게 15일의 유급휴가를 주어야 한다. "
        "② 회사는 계속하여 근로한 기간이 1년 미만인 근로자 또는 1년간 80퍼센트 미만 출근한 근로자에게 "
        "1개월 개근 시 1일의 유급휴가를 주어야 한다. ③ 회사는 3년 이상 계속하여 근로한 근로자에게는 "
        "최초 1년을 초과하는 계속 근로 연수 매 2년에 대하여 1일을 가산한 유급휴가를 주어야 한다. "
        "이 경우 가산휴가를 포함한 총 휴가 일수는 25일을 한도로 한다. ④ 휴가는 근로자가 청구한 시기에 "
        "주어야 하고, 그 기간에 대하여는 취업규칙 등에서 정하는 통상임금 또는 평균임금을 지급하여야 한다.")
TRAVEL = "제9조(출장비) 출장비는 실비로 정산하며 숙박비는 1박 10만 원 이내로 한다."
QUESTION = {"qid": "q1", "query": "연차휴가는 며칠인가요?", "gold_ids": ["rule"], "answers": ["15일"],
            "answer": "1년간 80퍼센트 이상 출근한 근로자에게 15일의 유급휴가를 준다."}


def hit(text: str, rank: int, name: str) -> Hit:
    return Hit(Chunk(f"/d/{name}.txt#0", f"/d/{name}.txt", text, f"/d/{name}.txt", title=name), 0.5 / rank, rank)


def answer(hits: list[Hit], *, loop_stopped: bool = False) -> Answer:
    return Answer("연차휴가는 15일입니다 [1].", False, "generated", [], [], hits, QUESTION["query"], QUESTION["query"],
                  timings={"retrieve": 0.25, "total": 1.0}, loop_stopped=loop_stopped)


def test_top300_is_the_first_300_characters_of_the_top_hit():
    hits = [hit(RULE, 1, "취업규칙"), hit(TRAVEL, 2, "출장")]
    assert len(RULE) > 300
    assert top300(hits) == RULE[:300] and top300([hit(TRAVEL, 1, "출장")]) == TRAVEL and top300([]) == ""


def test_top300_row_scores_the_cut_snippet(shared_kiwi):
    assert RULE[299].isalnum() and RULE[300].isalnum()  # the cut falls inside a word
    row = BaselineRunner(["top300"], shared_kiwi).run(answer([hit(RULE, 1, "취업규칙"), hit(TRAVEL, 2, "출장")]), QUESTION)
    got = row["top300"]
    assert set(row) == {"top300"}
    assert got["answer"] == RULE[:300] and got["answer_chars"] == 300
    assert got["shown_sentences"] >= 3 and got["fragments"] == 1  # only the last, cut sentence
    assert got["non_answers"] == 0 and got["key_recall"] == 1.0  # the gold's words are all in 제4조 ①
    assert got["latency_s"] >= 0.25  # retrieval, shared with the pipeline, counts


def test_stuff_chain_sends_every_hit_and_the_question_to_the_generator():
    gen = ScriptedGenerator(["연차휴가는 15일입니다."])
    params = GenerationParams(max_tokens=64, temperature=0.0)
    from retrieval.langchain import hit_to_document

    hits = [hit(RULE, 1, "취업규칙"), hit(TRAVEL, 2, "출장")]
    text = stuff_chain(gen, params).invoke({"context": [hit_to_document(h) for h in hits], "input": "연차휴가는 며칠인가요?"})
    assert text == "연차휴가는 15일입니다."
    (messages,) = gen.calls
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == QA_SYSTEM_PROMPT.replace("{context}", RULE + "\n\n" + TRAVEL)
    assert messages[1].content == "연차휴가는 며칠인가요?"


def test_langchain_stuff_row_uses_the_answers_hits_and_the_pipelines_params(shared_kiwi):
    seen = []

    class Recording(ScriptedGenerator):
        def generate(self, messages, params=None):
            seen.append(params)
            return super().generate(messages, params)

    gen = Recording(["연차휴가는 1년간 80퍼센트 이상 출근하면 15일입니다. 그리고", "모르겠습니다."])
    params = GenerationParams(max_tokens=128, temperature=0.0, seed=7)
    runner = BaselineRunner(["top300", "langchain_stuff"], shared_kiwi, gen, params)
    assert runner.uses_llm
    hits = [hit(TRAVEL, 1, "출장"), hit(RULE, 2, "취업규칙")]
    row = runner.run(answer(hits), QUESTION)
    stuff = row["langchain_stuff"]
    assert TRAVEL in gen.calls[0][0].content and RULE in gen.calls[0][0].content and seen == [params]
    assert stuff["answer"] == "연차휴가는 1년간 80퍼센트 이상 출근하면 15일입니다. 그리고"
    assert stuff["shown_sentences"] == 2 and stuff["fragments"] == 1  # "그리고" ends nothing
    assert stuff["key_recall"] > row["top300"]["key_recall"]  # the top hit here is the travel rule
    again = runner.run(answer(hits), QUESTION)["langchain_stuff"]
    assert again["answer"] == "모르겠습니다." and again["non_answers"] == 0 and again["key_recall"] == 0.0


def test_a_failed_stuff_call_is_an_empty_answer_with_its_error(shared_kiwi):
    gen = ScriptedGenerator(["답"], context_size=50)  # the stuffed prompt does not fit
    row = BaselineRunner(["langchain_stuff"], shared_kiwi, gen).run(answer([hit(RULE, 1, "취업규칙")]), QUESTION)
    got = row["langchain_stuff"]
    assert got["answer"] == "" and "exceeds context_size" in got["error"]
    assert got["shown_sentences"] == 0 and got["key_recall"] == 0.0
    assert summarize_baselines([{"baselines": row}])["langchain_stuff"]["errors"] == 1


def test_langchain_stuff_needs_the_generator(shared_kiwi):
    with pytest.raises(ValueError, match="generator"):
        BaselineRunner(["langchain_stuff"], shared_kiwi)


def test_summarize_baselines_over_the_rows_that_ran_them():
    def fig(recall, chars, fragments, latency):
        return {"answer": "…", "shown_sentences": 2, "fragments": fragments, "non_answers": 0,
                "answer_chars": chars, "key_recall": recall, "latency_s": latency}

    rows = [{"baselines": {"top300": fig(1.0, 300, 1, 0.1), "langchain_stuff": fig(0.5, 40, 0, 2.0)}},
            {"baselines": {"top300": fig(0.5, 120, 0, 0.3)}},
            {}]  # a row of an older run, before baselines
    got = summarize_baselines(rows)
    assert got["top300"] == {"questions": 2, "key_recall": 0.75, "fragment_rate": 0.25, "non_answer_rate": 0.0,
                             "answer_chars_p50": 210.0, "errors": 0,
                             "latency_s": {"total_p50": 0.2, "total_p95": 0.29}}
    assert got["langchain_stuff"]["questions"] == 1 and got["langchain_stuff"]["key_recall"] == 0.5
    assert summarize_baselines([{}]) == {}


def test_loops_stopped_are_counted_per_question_and_overall(shared_kiwi):
    hits = [hit(RULE, 1, "취업규칙")]
    rows = [score_answer(answer(hits, loop_stopped=stopped), QUESTION, shared_kiwi) for stopped in (True, False, False, True)]
    assert [r["loop_stopped"] for r in rows] == [True, False, False, True]
    m = summarize_answers(rows + [{k: v for k, v in rows[1].items() if k != "loop_stopped"}])["metrics"]  # + an older row
    assert m["loops_stopped"] == 2 and m["loop_rate"] == 0.4
    assert "baselines" not in m  # no baseline ran


@pytest.mark.parametrize("spec, want", [
    ("auto", "auto"), ("none", ()), ("top300", ("top300",)),
    ("top300,langchain_stuff", ("top300", "langchain_stuff")), (" langchain_stuff , top300,top300", ("langchain_stuff", "top300")),
])
def test_parse_baselines(spec, want):
    assert parse_baselines(spec) == want


def test_parse_baselines_names_the_unknown_one():
    with pytest.raises(ValueError, match="unknown baseline langchain.*top300, langchain_stuff"):
        parse_baselines("top300,langchain")


def test_auto_runs_the_llm_baseline_only_with_long_form_gold():
    assert choose_baselines("auto", [{"qid": "a", "answers": ["15일"]}]) == ("top300",)
    assert choose_baselines("auto", [{"qid": "a"}, QUESTION]) == ("top300", "langchain_stuff")
    assert choose_baselines((), [QUESTION]) == ()
