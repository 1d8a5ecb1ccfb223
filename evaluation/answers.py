"""`chulcheo eval answers`: answer quality of the whole pipeline on a question set with gold answers.

run_answer_eval(settings, load_dataset("korquad", path), make_pipeline=Pipeline, limit=200)
  -> {"metrics": {"containment": 0.61, "f1": 0.32, "abstention": 0.12, ...}, "latency": {...}, ...}
"""

from __future__ import annotations

import logging
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingest.chunk import record_id_of

from .baselines import BaselineRunner, choose_baselines, summarize_baselines
from .longform import percentile, rate, reader_figures, reader_metrics, shown_sentences
from .retrieval import (
    EvalSet,
    Pipeline,
    Settings,
    eval_set_index_dir,
    index_eval_set,
    sample_questions,
)

log = logging.getLogger(__name__)

Row = dict[str, Any]
_MARKERS = re.compile(r"\s*\[\d+\]")
_PUNCT = set(string.punctuation) | set("‘’“”·…「」『』《》〈〉【】")


def plain(answer: str) -> str:
    """The answer without our [n] markers."""
    return _MARKERS.sub("", answer)


def normalize(text: str) -> str:
    """KorQuAD 1.0's normalization: lowercase, no punctuation, no whitespace."""
    return "".join(ch for ch in text.lower() if ch not in _PUNCT and not ch.isspace())


def char_f1(prediction: str, gold: str) -> float:
    """KorQuAD 1.0 F1 over characters (whitespace removed): char_f1("15일입니다", "15일") -> 0.67."""
    p, g = list(normalize(prediction)), list(normalize(gold))
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, golds: Sequence[str]) -> bool:
    """Some gold answer appears in the prediction (both normalized)."""
    text = normalize(prediction)
    return any(normalize(g) and normalize(g) in text for g in golds)


def score_answer(answer, question: Row, kiwi=None) -> Row:
    """Per-question figures of one Answer against its gold answers and gold documents.

    With `kiwi`, also what an employee reads (evaluation/longform.py): key recall against a
    long-form gold "answer", and the shown sentences that are fragments or non-answers.

    Gold ids name corpus lines ("leave"); hits and citations name indexed documents
    ("/idx/eval_corpus.jsonl#leave"), compared by the line id their chunk keeps.
    """
    golds = question.get("answers") or []
    gold_docs = set(question.get("gold_ids") or [])
    line_id = {h.chunk.doc_id: record_id_of(h.chunk) for h in answer.hits}  # citations quote hits
    final = plain(answer.answer)
    draft_sentences = [s for s in answer.sentences if not s.quoted]
    return {
        "qid": question["qid"],
        "mode": answer.mode,
        "abstained": answer.abstained,
        "contained": (not answer.abstained) and contains(final, golds),
        "draft_contained": contains(answer.draft, golds),
        "f1": 0.0 if answer.abstained else max((char_f1(final, g) for g in golds), default=0.0),
        "cited_gold": any(line_id.get(c.doc_id, c.doc_id) in gold_docs for c in answer.citations),
        "retrieved_gold": any(record_id_of(h.chunk) in gold_docs for h in answer.hits),
        "sentences": len(draft_sentences),
        "supported": sum(s.supported for s in draft_sentences),
        "loop_stopped": answer.loop_stopped,
        "timings": dict(answer.timings),
        "answer": answer.answer,
        "gold": golds,
        **(_reader_figures(answer, question, kiwi) if kiwi is not None else {}),
    }


def _reader_figures(answer, question: Row, kiwi) -> Row:
    text = "" if answer.abstained else plain(answer.answer)
    return reader_figures(kiwi, shown_sentences(answer), text, question)


def _p50(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def _reader_metrics(rows: Sequence[Row]) -> Row:
    """Over the rows scored with Kiwi: mean key recall (long-form gold only), the share of shown
    sentences that are fragments or non-answers, abstention where the gold was retrieved, and
    the median answer length in characters."""
    scored = [r for r in rows if "shown_sentences" in r]
    if not scored:
        return {}
    read = reader_metrics(scored)
    return {
        **{k: read[k] for k in ("key_recall", "fragment_rate", "non_answer_rate")},
        "abstention_gold_retrieved": rate(r["abstained"] for r in scored if r["retrieved_gold"]),
        "answer_chars_p50": read["answer_chars_p50"],
    }


def summarize_answers(rows: Sequence[Row]) -> Row:
    n = len(rows) or 1
    answered = [r for r in rows if not r["abstained"]]
    sentences = sum(r["sentences"] for r in rows)
    timing = lambda key: [r["timings"][key] for r in rows if key in r["timings"]]
    loops = sum(r.get("loop_stopped", False) for r in rows)
    baselines = summarize_baselines(rows)
    return {
        "metrics": {
            "containment": round(sum(r["contained"] for r in rows) / n, 4),
            "f1": round(sum(r["f1"] for r in rows) / n, 4),
            "abstention": round(sum(r["abstained"] for r in rows) / n, 4),
            "supported_sentences": round(sum(r["supported"] for r in rows) / sentences, 4) if sentences else None,
            "citation_accuracy": round(sum(r["cited_gold"] for r in answered) / len(answered), 4) if answered else None,
            "draft_containment": round(sum(r["draft_contained"] for r in rows) / n, 4),
            "answered_without_gold": round(sum(not r["contained"] for r in answered) / n, 4),
            "retrieval_recall": round(sum(r["retrieved_gold"] for r in rows) / n, 4),
            "modes": dict(Counter(r["mode"] for r in rows)),
            # Drafts cut because the model started repeating itself (rows of older runs: not cut).
            "loops_stopped": loops,
            "loop_rate": round(loops / n, 4),
            **_reader_metrics(rows),
            **({"baselines": baselines} if baselines else {}),
            # Quoted source sentences are long, so they contain the gold span more easily.
            "containment_by_mode": {
                mode: round(sum(r["contained"] for r in rows if r["mode"] == mode) / count, 4)
                for mode, count in Counter(r["mode"] for r in rows).items()
            },
        },
        "latency_s": {
            "first_token_p50": _p50(timing("first_token")),
            "first_sentence_p50": _p50(timing("first_sentence")),
            "total_p50": _p50(timing("total")),
            "first_token_p95": percentile(timing("first_token"), 95),
            "total_p95": percentile(timing("total"), 95),
        },
    }


def run_answer_eval(
    settings: Settings,
    eval_set: EvalSet,
    *,
    make_pipeline: Callable[[Settings], Pipeline],
    index: Path | None = None,
    limit: int | None = 200,
    seed: int = 13,
    examples: int = 5,
    progress=None,
    on_row=None,
    done: Sequence[Row] = (),
    baselines: str | Sequence[str] = "auto",
) -> Row:
    """Index the corpus (cached like `eval retrieval`), ask every sampled question, score the answers.

    `done`: rows of an earlier, stopped run with the same sample; their questions are not asked again.
    `baselines`: names from evaluation.baselines.NAMES, or "auto" (see `choose_baselines`); each is
    run on the hits of the pipeline's answer and scored alike.
    """
    questions = sample_questions(eval_set.questions, limit, seed)
    sampled = {q["qid"] for q in questions}
    kept = {r["qid"]: r for r in done if r.get("qid") in sampled}
    index_dir = index or eval_set_index_dir(settings, eval_set)
    pipeline = make_pipeline(settings.model_copy(update={"index_dir": index_dir}))
    index_eval_set(pipeline, eval_set, rebuild_on_mismatch=index is None, progress=progress)
    pipeline.warm_up_prompt()  # as `serve` does at start: the first question is not a cold one
    names = choose_baselines(baselines, questions)
    runner = BaselineRunner(names, pipeline.kiwi, pipeline.generator, pipeline.generation_params())
    rows = []
    started = time.perf_counter()
    for i, q in enumerate(questions, 1):
        if q["qid"] in kept:
            rows.append(kept[q["qid"]])
            continue
        answer = pipeline.ask(q["query"])
        rows.append(score_answer(answer, q, pipeline.kiwi))
        if names:
            rows[-1]["baselines"] = runner.run(answer, q)
            if runner.uses_llm:
                # The stuffed prompt pushed the answer prompt's fixed head out of llama.cpp's
                # cache: load it again, so the next question's latency is not the baseline's doing.
                pipeline.warm_up_prompt()
        if on_row is not None:  # e.g. append to a file, so a long run that is stopped keeps its rows
            on_row(rows[-1])
        if progress is not None:
            progress("answer", i, len(questions))
    g = settings.generation
    return {
        "dataset": eval_set.name,
        "questions": len(rows),
        "resumed": len(kept),
        "seed": seed,
        "generator": {"backend": g.backend, "model": g.model, "model_id": pipeline.generator.model_id},
        **summarize_answers(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {"k": settings.answer.k, "similarity": settings.answer.similarity,
                     "min_coverage": settings.answer.min_coverage, "max_tokens": g.max_tokens,
                     "baselines": list(names)},
        "examples": [{k: r[k] for k in ("qid", "answer", "gold", "mode")} for r in rows[:examples]],
        "per_question": rows,
    }
