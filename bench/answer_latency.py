"""Time to first token and to a full verified answer, capped prompt vs whole passages, same run.

Asks the same sampled KorQuAD dev questions (seed 13, the order of `chulcheo eval answers`)
over the cached eval index with the default models, once per configuration, interleaved
question by question so that both see the same machine load. Configurations are values of
`answer.passage_tokens`: 0 is the baseline (the top passages whole, as before the cap);
others cap the passages and cut them to the sentences sharing the question's words.
The prompt's fixed head (system message + example) is warmed as `serve` does, and re-run
before every question so that no configuration profits from the previous one's cached prompt
(in use, consecutive questions share only that head).

    .venv/bin/python bench/answer_latency.py --questions 40 --caps 0,320,160 --out latency.json

Prints per configuration: p50/p95 of first token, first checked sentence and total, the
median prompt size, and the answer quality on the same questions (containment of the gold
span, abstention, supported sentences) so a faster prompt that answers worse shows up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit  # noqa: E402

from evaluation.answers import score_answer, summarize_answers  # noqa: E402
from evaluation.retrieval import eval_index_dir, index_corpus, load_dataset, sample_questions  # noqa: E402
from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from prompts import build_qa_messages  # noqa: E402



def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def prompt_tokens(pipeline: Pipeline, question: str) -> int:
    """Tokens of the user message (what is not in the cached head) for this question."""
    a = pipeline.settings.answer
    hits = pipeline.search(question, a.k)
    from answer import KiwiFocus

    focus = KiwiFocus(pipeline.kiwi, pipeline.checker.splitter) if a.focus else None
    g = pipeline.generator
    prompt = build_qa_messages(question, hits, g.count_tokens, g.context_size,
                               passage_tokens=a.passage_tokens or None, focus=focus)
    return g.count_tokens(prompt.messages[-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--caps", default="0,320,160", help="answer.passage_tokens values; 0 = baseline")
    parser.add_argument("--model", help="generation.model (default: the settings' default)")
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    caps = [int(c) for c in args.caps.split(",")]
    base = Settings()
    if args.model:
        base = base.model_copy(update={"generation": base.generation.model_copy(update={"model": args.model})})
    eval_set = load_dataset("korquad", args.data)
    questions = sample_questions(eval_set.questions, args.questions, args.seed)
    pipeline = Pipeline(base.model_copy(update={"index_dir": eval_index_dir(base, eval_set.corpus)}))
    index_corpus(pipeline, eval_set.corpus, rebuild_on_mismatch=True)
    pipeline.search(questions[0]["query"], 1)  # loads the index, the embedder and Kiwi
    pipeline.warm_up_prompt()
    settings = {cap: pipeline.settings.model_copy(update={
        "answer": pipeline.settings.answer.model_copy(update={"passage_tokens": cap})}) for cap in caps}

    rows: dict[int, list[dict]] = {cap: [] for cap in caps}
    sizes: dict[int, list[int]] = {cap: [] for cap in caps}
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        for cap in caps:
            pipeline.settings = settings[cap]
            sizes[cap].append(prompt_tokens(pipeline, q["query"]))
            # Back to the fixed head only: otherwise the KV cache would still hold the previous
            # configuration's prompt for this same question and serve part of it for free.
            pipeline.warm_up_prompt()
            row = score_answer(pipeline.ask(q["query"]), q)
            rows[cap].append(row)
            t = row["timings"]
            print(json.dumps({"q": i, "cap": cap, "first_token": round(t.get("first_token", 0), 2),
                              "total": round(t["total"], 2), "prompt": sizes[cap][-1],
                              "contained": row["contained"]}, ensure_ascii=False), flush=True)

    result: dict = {"questions": len(questions), "model": pipeline.generator.model_id,
                    "seconds": round(time.perf_counter() - started, 1), "configs": {}}
    for cap in caps:
        timing = lambda key: [r["timings"][key] for r in rows[cap] if key in r["timings"]]  # noqa: E731
        summary = summarize_answers(rows[cap])["metrics"]
        result["configs"][str(cap)] = {
            "passage_tokens": cap,
            "user_message_tokens_p50": statistics.median(sizes[cap]),
            "first_token_p50": pct(timing("first_token"), 50), "first_token_p95": pct(timing("first_token"), 95),
            "first_sentence_p50": pct(timing("first_sentence"), 50),
            "total_p50": pct(timing("total"), 50), "total_p95": pct(timing("total"), 95),
            "retrieve_p50": pct(timing("retrieve"), 50),
            **{k: summary[k] for k in ("containment", "draft_containment", "abstention", "supported_sentences",
                                       "citation_accuracy")},
        }
    if 0 in caps:
        baseline = result["configs"]["0"]
        for config in result["configs"].values():
            config["first_token_speedup"] = round(baseline["first_token_p50"] / config["first_token_p50"], 2)
            config["total_speedup"] = round(baseline["total_p50"] / config["total_p50"], 2)
    emit(result, args.out)


if __name__ == "__main__":
    main()
