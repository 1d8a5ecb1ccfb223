"""`chulcheo ask` and `chulcheo verify`: answers with checked citations, and checking any text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    CorpusOpt,
    DatasetOpt,
    DocsOpt,
    IndexOpt,
    JsonOpt,
    QaOpt,
    SeedOpt,
    _emit,
    _fatal_errors,
    _pipeline,
    err,
    jsonl_objects,
    load_eval_set,
    out,
    require_eval_inputs,
)
from ..schemas import answer_to_dict, grounded_to_dict, sentence_to_dict

GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", help="Answer only from documents of these access groups (repeatable; default: all)."),
]


def ask(
    question: Annotated[str | None, typer.Argument(help="The question, in Korean.")] = None,
    questions: Annotated[Path | None, typer.Option("--questions", help='JSONL of {"qid","query"} lines (optional "history", "groups"); one JSON line out per question.')] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print each checked sentence as soon as it is ready.")] = False,
    group: GroupOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer from the indexed documents; every sentence is checked against its source and cited."""
    if (question is None) == (questions is None):
        err.print("error: give either a QUESTION or --questions FILE.jsonl")
        raise typer.Exit(EXIT_FAILED)
    with _fatal_errors():
        pipeline = _pipeline(index)
        if questions is not None:
            raise typer.Exit(_ask_batch(pipeline, questions, group))
        if stream:
            _ask_stream(pipeline, question, group, as_json)
            return
        answer = pipeline.ask(question, groups=group)
    if as_json:
        _emit(answer_to_dict(answer))
        return
    out.print(Text(answer.answer))
    _print_citations(answer.citations)


def _ask_stream(pipeline, question: str, groups, as_json: bool) -> None:
    """JSON: {"event": "sentence", ...} lines, then {"event": "answer", ...the ask --json shape}."""
    for event in pipeline.stream(question, groups=groups):
        if event.kind == "sentence":
            if as_json:
                _emit({"event": "sentence", "rendered": event.text, **sentence_to_dict(event.check)})
            elif event.check.supported:
                out.print(Text(event.text))
        elif as_json:
            _emit({"event": "answer", **answer_to_dict(event.answer)})
        else:
            if event.answer.mode != "generated":  # quotes or abstention replace the draft
                out.print(Text(event.answer.answer))
            _print_citations(event.answer.citations)


def _print_citations(citations) -> None:
    for c in citations:
        where = Path(c.source).name + (f" {c.page}쪽" if c.page else "")
        out.print(Text(f"[{c.n}] {where}: “{c.quote}”", style="dim"))


def _ask_batch(pipeline, path: Path, default_groups) -> int:
    """One JSON line per question line, models loaded once; a bad line gets an error line, exit 1."""
    status = EXIT_OK
    for n, item, problem in jsonl_objects(path):
        if problem is None and not (isinstance(item.get("query"), str) and "qid" in item):
            problem = 'needs "qid" and a string "query"'
        if problem is not None:
            _emit({"qid": item.get("qid") if isinstance(item, dict) else None, "line": n, "error": f"{path}:{n}: {problem}"})
            status = EXIT_PARTIAL
            continue
        try:
            answer = pipeline.ask(item["query"], history=item.get("history"), groups=item.get("groups", default_groups))
        except (ValueError, KeyError, TypeError) as exc:
            _emit({"qid": item["qid"], "line": n, "error": f"{path}:{n}: {exc}"})
            status = EXIT_PARTIAL
            continue
        _emit({"qid": item["qid"], **answer_to_dict(answer)})
    return status


def read_passages(path: Path) -> list[Any]:
    """Passages JSONL: {"id", "text"} plus optional "doc_id", "source", "page", "context"."""
    from grounding import Passage

    passages = []
    for n, item, problem in jsonl_objects(path):
        if problem is None and not (isinstance(item.get("text"), str) and item.get("id") is not None):
            problem = 'needs "id" and a string "text"'
        if problem is not None:
            raise ValueError(f"{path}:{n}: bad passage line ({problem})")
        page = item.get("page")
        passages.append(Passage(
            id=str(item["id"]), text=item["text"], doc_id=str(item.get("doc_id", "")),
            source=str(item.get("source", "")), page=page if isinstance(page, int) else None,
            context=str(item.get("context", "")),
        ))
    return passages


def verify(
    answer: Annotated[str, typer.Option("--answer", help="The text to check, e.g. an answer written elsewhere.")],
    passages: Annotated[Path, typer.Option("--passages", help='JSONL of {"id","text"} sources (optional "doc_id","source","page").')],
    question: Annotated[str | None, typer.Option("--question", help="The question answered (its words need no support; enables quoting the sources when nothing is supported).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check each sentence of a text against given passages (no index, no LLM)."""
    with _fatal_errors():
        from ..pipeline import Pipeline
        from ..settings import Settings

        sources = read_passages(passages)
        grounded = Pipeline(Settings()).verify(answer, sources, question or "")
    if as_json:
        _emit(grounded_to_dict(grounded))
        return
    for s in grounded.sentences:
        mark = "✓" if s.supported else "✗"
        why = "" if s.supported else f" ({', '.join(s.reasons)})"
        cites = "".join(f"[{n}]" for n in s.citations)
        out.print(Text(f"{mark} {s.text} {cites}{why}"))
    _print_citations(grounded.citations)


def eval_answers(
    dataset: DatasetOpt = None,
    corpus: CorpusOpt = None,
    docs: DocsOpt = None,
    qa: QaOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Questions to ask (seeded sample).")] = 200,
    seed: SeedOpt = 13,
    model: Annotated[str | None, typer.Option("--model", help="Generator model for this run (default: settings generation.model).")] = None,
    index: IndexOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the full JSON report (with every question) here.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep the rows of OUT.partial.jsonl from a stopped run and ask only the rest.")] = False,
    baselines: Annotated[str, typer.Option("--baselines", help="Also answer from the same hits by: top300 (the top hit's first 300 characters), langchain_stuff (LangChain's stuff chain, same LLM: about doubles the LLM time); comma-separated, none, or auto (both with long-form gold answers, else top300).")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Ask every sampled question; score gold-span containment, KorQuAD F1, abstention, support, citations, latency."""
    if resume and out_file is None:
        raise typer.BadParameter("--resume needs --out (it continues OUT.partial.jsonl)", param_hint="--resume")
    from evaluation.baselines import parse_baselines

    try:
        chosen = parse_baselines(baselines)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--baselines") from None
    require_eval_inputs(corpus, qa, dataset, docs)
    with _fatal_errors():
        from evaluation.answers import run_answer_eval

        from ..pipeline import Pipeline
        from ..settings import Settings

        settings = Settings()
        if model:
            settings = settings.model_copy(update={"generation": settings.generation.model_copy(update={"model": model})})
        eval_set = load_eval_set(corpus, qa, dataset, docs)
        # Rows go to FILE.partial.jsonl as they come, so a stopped long run keeps them.
        partial = out_file.with_name(out_file.name + ".partial.jsonl") if out_file else None
        # A run killed mid-write may leave a broken last line: such lines are asked again.
        done = [r for _, r, bad in jsonl_objects(partial) if bad is None and "qid" in r] if resume and partial.exists() else []
        on_row = _appender(partial, keep=done) if partial else None
        result = run_answer_eval(settings, eval_set, make_pipeline=Pipeline, index=index, limit=limit, seed=seed, on_row=on_row, done=done,
                                 baselines=chosen)
    if out_file is not None:
        out_file.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "per_question"}
    if as_json:
        _emit(summary)
        return
    m, lat = dict(result["metrics"]), result["latency_s"]
    baseline_metrics = m.pop("baselines", {})
    out.print(Text(f"{result['dataset']} · 질문 {result['questions']} · {result['generator']['model']}"))
    for key, value in {**m, **lat}.items():
        out.print(Text(f"  {key}: {value}"))
    for name, b in baseline_metrics.items():
        out.print(Text(f"  baseline {name}: " + ", ".join(f"{k} {v}" for k, v in b.items())))


def _appender(path: Path, keep: Sequence[dict[str, Any]] = ()):
    """A function that appends one JSON line per call to `path` (rewritten first with the rows in `keep`)."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")

    def append(row: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    return append
