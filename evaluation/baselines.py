"""Baselines of `eval answers`, scored like the pipeline's answer on the very hits it drew on.

- `top300`: the top hit's chunk text, first 300 characters — what a search results page shows.
- `langchain_stuff`: LangChain's plain RAG chain (evaluation/langchain_stuff.py): the hits'
  texts stuffed into LangChain's example prompt, answered by the same LLM, nothing checked.

runner = BaselineRunner(("top300",), kiwi)
runner.run(answer, {"qid": "q1", "query": "연차휴가는 며칠인가요?", "answer": "연차휴가는 15일이다."})
-> {"top300": {"answer": "제4조(연차휴가) ① 1년간 80퍼센트 이상 …", "shown_sentences": 3, "fragments": 1,
               "non_answers": 0, "answer_chars": 300, "key_recall": 1.0, "latency_s": 0.041}}
summarize_baselines(rows) -> {"top300": {"questions": 20, "key_recall": 0.73, ..., "latency_s": {...}}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from generation.errors import GenerationError
from grounding.split import split_draft
from ingest.chunk import SentenceSplitter

from .longform import percentile, reader_figures, reader_metrics

log = logging.getLogger(__name__)

Row = dict[str, Any]
NAMES = ("top300", "langchain_stuff")
SNIPPET_CHARS = 300


def parse_baselines(spec: str) -> str | tuple[str, ...]:
    """The `--baselines` value: "auto" -> "auto"; "none" -> (); "top300,langchain_stuff" -> both.

    Raises:
        ValueError: a name that is not a baseline.
    """
    spec = spec.strip()
    if spec in ("auto", "none", ""):
        return "auto" if spec == "auto" else ()
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown baseline {', '.join(unknown)}: choose from {', '.join(NAMES)}, auto or none")
    return names


def choose_baselines(spec: str | Sequence[str], questions: Sequence[Row]) -> tuple[str, ...]:
    """"auto": both baselines when some question has a long-form gold "answer" (what they are
    compared on), else top300 only (no LLM call, so free). A list is taken as given."""
    if spec != "auto":
        return tuple(spec)
    return NAMES if any(q.get("answer") for q in questions) else ("top300",)


def top300(hits) -> str:
    """The first 300 characters of the top hit's chunk text ("" without hits)."""
    return hits[0].chunk.text[:SNIPPET_CHARS] if hits else ""


class BaselineRunner:
    """Answers each question by the chosen baselines from the hits of the pipeline's Answer.

    Args:
        names: baselines to run, from NAMES.
        kiwi: the Kiwi that scores (and splits) the texts.
        generator, params: the pipeline's LLM and its sampling parameters (langchain_stuff only).
    """

    def __init__(self, names: Sequence[str], kiwi, generator=None, params=None) -> None:
        self.names = tuple(names)
        self.kiwi = kiwi
        self.splitter = SentenceSplitter(kiwi)
        self._chain = None
        if "langchain_stuff" in self.names:
            if generator is None:
                raise ValueError("the langchain_stuff baseline needs the pipeline's generator")
            from retrieval.langchain import hit_to_document

            from .langchain_stuff import stuff_chain

            self._chain = stuff_chain(generator, params)
            self._to_document = hit_to_document

    @property
    def uses_llm(self) -> bool:
        return self._chain is not None

    def run(self, answer, question: Row) -> Row:
        """{name: figures} of every baseline for one question, on `answer.hits`."""
        out = {}
        for name in self.names:
            started = time.perf_counter()
            error = None
            if name == "top300":
                text = top300(answer.hits)
                source = answer.hits[0].chunk.text if answer.hits else ""
                shown = [(text[s.start:s.end].strip(), source) for s in self.splitter.split(text)]
            else:
                try:
                    text = self._stuff(answer.hits, question["query"])
                except GenerationError as exc:  # e.g. the stuffed prompt does not fit the window
                    log.warning("langchain_stuff baseline failed on %s: %s", question.get("qid"), exc)
                    text, error = "", str(exc)
                shown = [(s, None) for s in split_draft(self.splitter, text)]
            # Retrieval is shared with the pipeline, so its time counts for the baselines too.
            elapsed = answer.timings.get("retrieve", 0.0) + time.perf_counter() - started
            shown = [(s, src) for s, src in shown if any(ch.isalnum() for ch in s)]
            out[name] = {"answer": text, **reader_figures(self.kiwi, shown, text, question),
                         "latency_s": round(elapsed, 3), **({"error": error} if error else {})}
        return out

    def _stuff(self, hits, query: str) -> str:
        return self._chain.invoke({"context": [self._to_document(h) for h in hits], "input": query}).strip()


def summarize_baselines(rows: Sequence[Row]) -> Row:
    """Per baseline, over the rows that ran it: the reader metrics of `reader_metrics`, the
    failed calls and the latency (retrieval plus the baseline's own time) p50/p95."""
    out = {}
    for name in NAMES:
        figures = [r["baselines"][name] for r in rows if name in r.get("baselines", {})]
        if not figures:
            continue
        latency = [f["latency_s"] for f in figures]
        out[name] = {
            "questions": len(figures),
            **reader_metrics(figures),
            "errors": sum("error" in f for f in figures),
            "latency_s": {"total_p50": percentile(latency, 50), "total_p95": percentile(latency, 95)},
        }
    return out
