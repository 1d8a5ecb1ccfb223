"""The `chulcheo` command line: a thin adapter over `Pipeline`.

Exit codes: 0 everything asked for was done; 1 the command ran but some inputs failed (listed
in the output, e.g. unreadable files); 2 nothing was done (bad arguments, no index, missing
model, index locked by another writer, settings that disagree with the index).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from retrieval.retriever import MODES

from . import answer as cli_answer, serve as cli_serve
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
    _progress,
    _settings,
    err,
    jsonl_objects,
    load_eval_set,
    out,
    require_eval_inputs,
)
from ..models import list_models, pull, resolve_model
from ..schemas import doc_to_dict, hit_to_dict, waiting_to_dict
from ..settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="chulcheo (출처): 근거를 밝히는 사내 문서 질의응답")
docs_app = typer.Typer(no_args_is_help=True, help="List and delete indexed documents.")
models_app = typer.Typer(no_args_is_help=True, help="Provision the offline models.")
app.add_typer(docs_app, name="docs")
app.add_typer(models_app, name="models")
index_app = typer.Typer(no_args_is_help=True, help="Look after the index: its segments and their merging.")
app.add_typer(index_app, name="index")
eval_app = typer.Typer(no_args_is_help=True, help="Measure retrieval and answer quality on a question set.")
app.add_typer(eval_app, name="eval")


# --------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    group: Annotated[str, typer.Option("--group", help="Access group of these documents.")] = "public",
    sync: Annotated[bool, typer.Option("--sync", help="Also remove documents whose files are gone from the given folders.")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start a fresh index (needed after changing model or chunk settings).")] = False,
    ray: Annotated[str | None, typer.Option("--ray", metavar="auto|ADDRESS", help="Read, OCR, chunk and embed on the Ray cluster at ADDRESS (HOST:PORT of its head; auto: the one started here); the index is written here (default: settings ingest.ray, unset: in this process).")] = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add, update (and with --sync remove) documents in the index."""
    with _fatal_errors(), _progress(not as_json and err.is_terminal) as progress:
        pipeline = _pipeline(index)
        report = pipeline.ingest(paths, group, sync=sync, rebuild=rebuild, progress=progress, ray=ray)
        pipeline.wait_for_merge()  # a merge it started finishes before the command ends
    if as_json:
        _emit(report.to_dict())
    else:
        for failure in report.failed:
            err.print(f"[yellow]failed:[/yellow] {escape(failure['error'])}", highlight=False)
        out.print(
            f"추가 {report.added} · 갱신 {report.updated} · 변경 없음 {report.unchanged} · "
            f"삭제 {report.deleted} · 실패 {len(report.failed)} · 청크 {report.chunks} "
            f"({report.seconds:.1f}s)"
        )
    raise typer.Exit(EXIT_PARTIAL if report.failed else EXIT_OK)


# --------------------------------------------------------------------------- ask, verify
app.command()(cli_answer.ask)
app.command()(cli_serve.serve)
app.command()(cli_serve.mcp)
app.add_typer(cli_serve.keys_app, name="keys")
app.add_typer(cli_serve.audit_app, name="audit")
app.add_typer(cli_serve.feedback_app, name="feedback")
app.command()(cli_answer.verify)
eval_app.command("answers")(cli_answer.eval_answers)


# --------------------------------------------------------------------------- search
@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The question or keywords.")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Number of hits (default: settings, 10).")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid | bm25 | dense (default: settings, hybrid).")] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help='JSONL file of {"qid","query"} lines; one JSON line out per query.')] = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the index (hybrid BM25 + dense by default)."""
    if mode not in (None, *MODES):
        err.print(f"error: --mode must be hybrid, bm25 or dense, not {mode!r}")
        raise typer.Exit(EXIT_FAILED)
    if (query is None) == (queries is None):
        err.print("error: give either a QUERY or --queries FILE.jsonl")
        raise typer.Exit(EXIT_FAILED)
    with _fatal_errors():
        pipeline = _pipeline(index)
        if queries is not None:
            raise typer.Exit(_search_batch(pipeline, queries, k, mode))
        hits = pipeline.search(query, k, mode=mode)
    if as_json:
        _emit({"query": query, "hits": [hit_to_dict(h) for h in hits]})
        return
    if not hits:
        out.print("검색 결과가 없습니다.")
        return
    table = Table("#", "점수", "출처", "내용", show_lines=True)
    for h in hits:
        where = Path(h.chunk.source).name + (f" p.{h.chunk.page}" if h.chunk.page else "")
        text = h.chunk.text if len(h.chunk.text) <= 200 else h.chunk.text[:200] + "…"
        table.add_row(str(h.rank), f"{h.score:.4f}", Text(where), Text(text))
    out.print(table)


def _search_batch(pipeline, path: Path, k: int | None, mode: str | None) -> int:
    """One JSON line per query line; a bad line gets an error line and exit code 1."""
    status = EXIT_OK
    for n, item, problem in jsonl_objects(path):
        if problem is None and not ("qid" in item and isinstance(item.get("query"), str)):
            problem = 'needs "qid" and a string "query"'
        if problem is not None:
            _emit({"qid": None, "line": n, "error": f"{path}:{n}: bad query line ({problem})"})
            status = EXIT_PARTIAL
            continue
        hits = pipeline.search(item["query"], k, mode=mode)
        _emit({"qid": item["qid"], "query": item["query"], "hits": [hit_to_dict(h) for h in hits]})
    return status


# --------------------------------------------------------------------------- docs
@docs_app.command("list")
def docs_list(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """List indexed documents."""
    with _fatal_errors():
        pipeline = _pipeline(index)
        docs, waiting = pipeline.documents(), pipeline.waiting()
    if as_json:
        _emit({"documents": [doc_to_dict(d) for d in docs], "needs_ocr": [waiting_to_dict(w) for w in waiting]})
        return
    table = Table("문서 ID", "제목", "그룹", "청크", "색인 시각", "OCR")
    table.columns[0].overflow = "fold"  # the full id is what `docs delete` takes
    for d in docs:
        low = d.low_confidence_pages()
        ocr = (f"{len(d.ocr_pages)}쪽" + (f", 신뢰도 낮음: p.{', '.join(map(str, low))}" if low else "")) if d.ocr_pages else ""
        table.add_row(Text(d.doc_id), Text(d.title), Text(d.group), str(len(d.chunk_ids)), d.ingested_at, Text(ocr))
    out.print(table)
    out.print(f"문서 {len(docs)}개")
    for w in waiting:  # stored, not indexed: its pages are images and OCR is missing here
        err.print(Text(f"OCR 필요 (색인 안 됨): {w.doc_id} [{w.group}] — {w.reason}"))


@docs_app.command("delete")
def docs_delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids (or file paths) to remove.")],
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents from the index."""
    with _fatal_errors():
        deleted, missing = _pipeline(index).delete(doc_ids)
    if as_json:
        _emit({"deleted": deleted, "missing": missing})
    else:
        for d in deleted:
            out.print(Text(f"삭제: {d}"))
        for d in missing:
            err.print(f"[yellow]not indexed:[/yellow] {escape(d)}", highlight=False)
    raise typer.Exit(EXIT_PARTIAL if missing else EXIT_OK)


# --------------------------------------------------------------------------- index
@index_app.command("status")
def index_status(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Show the live generation's segments (rows and deleted rows of each)."""
    with _fatal_errors():
        status = _pipeline(index).index_status()
    if as_json:
        _emit(status)
        return
    if not status:
        out.print("색인 없음")
        return
    table = Table("세그먼트", "행", "삭제된 행")
    for seg in status["segments"]:
        table.add_row(seg["name"], str(seg["rows"]), str(seg["deleted"]))
    out.print(table)
    out.print(f"{status['generation']} · 청크 {status['chunks']} · 세그먼트 {len(status['segments'])}개")


@index_app.command("compact")
def index_compact(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Merge every segment into one and drop deleted rows (search results stay the same).

    Uploads wait while it runs: at 100k chunks the HNSW graph alone takes minutes.
    """
    with _fatal_errors():
        result = _pipeline(index).merge(full=True)
    result = result or {"merged": [], "into": None, "rows": 0, "seconds": 0.0}
    if as_json:
        _emit(result)
    elif result["merged"]:
        out.print(f"세그먼트 {len(result['merged'])}개 → {result['into']} (행 {result['rows']}, {result['seconds']:.1f}s)")
    else:
        out.print("병합할 세그먼트 없음")


# --------------------------------------------------------------------------- models
@models_app.command("pull")
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Model names (default: all default models).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download, reassemble and verify the offline models (idempotent).

    With `embedding.backend = "onnx-int8"` (the default) the embedding model's int8 ONNX copy
    is made too (once: ~2 minutes, ~8 GB RAM at peak).
    """
    with _fatal_errors(), _progress(not as_json and err.is_terminal) as progress:
        settings = Settings()
        results = pull(names or None, settings.model_dir, progress=progress)
        onnx = None
        if settings.embedding.backend == "onnx-int8" and any(r.name == settings.embedding.model for r in results):
            from retrieval.embed_onnx import prepare_onnx

            if not as_json:
                err.print("making the embedding model's int8 ONNX copy (once)…")
            onnx = prepare_onnx(resolve_model(settings.embedding.model, settings.model_dir))
    if as_json:
        _emit({"models": [r.to_dict() for r in results]} | ({"onnx": str(onnx)} if onnx else {}))
    else:
        for r in results:
            out.print(Text(f"{r.name}: {r.status} → {r.path}"))
        if onnx:
            out.print(Text(f"{settings.embedding.model} (onnx-int8) → {onnx}"))


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Show the registered models and whether they are provisioned."""
    with _fatal_errors():
        settings = Settings()
        statuses = list_models(settings.model_dir)
    if as_json:
        _emit({"model_dir": str(settings.model_dir), "models": [s.to_dict() for s in statuses]})
        return
    table = Table("이름", "종류", "설치됨", "경로")
    for s in statuses:
        table.add_row(s.name, s.kind, "예" if s.present else "아니오", Text(str(s.path)))
    out.print(table)


# --------------------------------------------------------------------------- eval
@eval_app.command("retrieval")
def eval_retrieval(
    corpus: CorpusOpt = None,
    docs: DocsOpt = None,
    qa: QaOpt = None,
    dataset: DatasetOpt = None,
    distractors: Annotated[Path | None, typer.Option("--distractors", help="Extra corpus JSONL pooled into the corpus (ids must not collide).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Evaluate the first N questions after a seeded shuffle (default: all).")] = None,
    seed: SeedOpt = 13,
    k: Annotated[int, typer.Option("--k", min=1, help="Documents ranked per question.")] = 10,
    modes: Annotated[str | None, typer.Option("--modes", help="Comma list of bm25-whitespace, bm25, dense, hybrid-rrf, hybrid-weighted (default: all).")] = None,
    fusion_grid: Annotated[bool, typer.Option("--fusion-grid", help="Also score a grid of weighted and RRF fusions (one query embedding each).")] = False,
    index: Annotated[Path | None, typer.Option("--index", help="Where to index the eval corpus (default: a cache dir keyed by corpus and settings).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score hit@1, recall@5/10, MRR@10, nDCG@10 and latency of every search mode."""
    require_eval_inputs(corpus, qa, dataset, docs)
    if docs is not None and distractors is not None:
        err.print("error: --distractors adds corpus lines; with --docs, put the extra documents in the folder")
        raise typer.Exit(EXIT_FAILED)
    with _fatal_errors(), _progress(not as_json and err.is_terminal) as progress:
        from evaluation.retrieval import (  # heavy imports only when evaluating
            add_distractors,
            parse_modes,
            read_corpus_jsonl,
            run_retrieval_eval,
        )

        chosen = parse_modes(modes)  # before indexing, which may take minutes
        eval_set = load_eval_set(corpus, qa, dataset, docs)
        if distractors is not None:
            eval_set = add_distractors(eval_set, read_corpus_jsonl(distractors), str(distractors))
        from ..pipeline import Pipeline

        result = run_retrieval_eval(
            _settings(None), eval_set, make_pipeline=Pipeline, index=index, k=k, modes=chosen, limit=limit, seed=seed,
            grid=fusion_grid, progress=progress,
        )
    for warning in result["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if as_json:
        _emit(result)
        return
    out.print(Text(
        f"{result['dataset']} · 문서 {result['corpus_size']} · 청크 {result['chunks']} · "
        f"질문 {result['questions']} · k={result['k']} · 임베딩 {result['index']['embedded']}"
    ))
    table = Table("mode", "hit@1", "R@5", "R@10", "MRR@10", "nDCG@10", "p50 ms", "p95 ms")
    for mode, m in result["modes"].items():
        table.add_row(mode, *_metric_cells(m), f"{m['latency_ms_p50']:.1f}", f"{m['latency_ms_p95']:.1f}")
    out.print(table)
    if "grid" in result:
        grid = Table("fusion", "hit@1", "R@5", "R@10", "MRR@10", "nDCG@10")
        for row in result["grid"]:
            grid.add_row(row["name"], *_metric_cells(row))
        out.print(grid)


def _metric_cells(metrics: dict[str, Any]) -> list[str]:
    return [f"{metrics[name]:.3f}" for name in ("hit@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")]


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Model loading bars from transformers/huggingface_hub would mix into our own output.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    app()
