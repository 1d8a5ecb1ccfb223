"""Retrieval evaluation: questions with gold document ids, searched in every mode over their corpus.

    eval_set = load_jsonl_set(Path("corpus.jsonl"), Path("qa.jsonl"))
    run_retrieval_eval(Settings(), eval_set, make_pipeline=Pipeline, k=10)["modes"]["bm25"]
    -> {"hit@1": 0.9, "recall@5": 0.97, ..., "latency_ms_p50": 3.1, "latency_ms_p95": 5.0, "n": 300}

Retrieval is over chunks; a question's ranking is the order in which documents first appear
among its chunk hits, and gold ids name corpus lines (a line's "id"). The index calls a line
"<corpus path>#<id>"; each hit is compared by the line id its chunk keeps (`record_id_of`).
The corpus is indexed through the ordinary incremental ingest into a directory keyed by its
content and the index settings, so running the same evaluation again embeds nothing. A folder
of real documents (evaluation/docs.py) is ingested in place, and its gold ids are doc ids
(file paths), or pages of them ("gold_pages": a hit counts as "<doc id>#<page>" there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from ingest.build import IngestReport, Progress
from ingest.chunk import index_text, record_id_of
from ingest.korquad import write_jsonl
from ingest.load import jsonl_doc_id
from retrieval.bm25 import BM25Index
from retrieval.errors import EmbeddingModelMismatch
from retrieval.metrics import dedupe, summarize
from retrieval.retriever import FusionConfig, HybridRetriever
from retrieval.tokenize import WhitespaceTokenizer
from retrieval.types import Chunk

from .inputs import (  # re-exported: callers load sets from here
    DATASETS,
    EvalInputError,
    EvalSet,
    Row,
    add_distractors,
    count_missing_gold,
    load_dataset,
    load_jsonl_set,
    read_corpus_jsonl,
    read_qa_jsonl,
    sample_questions,
)

# The pipeline and its settings come from the caller (app/ builds them): evaluation imports none of app/.
Pipeline = Any  # app.pipeline.Pipeline, or anything with its search/ingest/documents/settings
Settings = Any  # app.settings.Settings

log = logging.getLogger(__name__)

EVAL_MODES: tuple[str, ...] = ("bm25-whitespace", "bm25", "dense", "hybrid-rrf", "hybrid-weighted")
CORPUS_FILE = "eval_corpus.jsonl"
EMBEDDING_MODES = ("dense", "hybrid-rrf", "hybrid-weighted")
WARM_UP = "연차휴가는 며칠인가요?"
DEPTH_FACTOR = 3  # chunks retrieved per wanted document, so multi-chunk docs don't starve the top k

GRID_BM25_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
GRID_NORMS = ("minmax", "zscore", "zscore-pool")
GRID_RRF_KS = (10, 30, 60)

Run = tuple[list[str], set[str]]  # (ranked corpus line ids, gold ids)


def gold_of(question: Row) -> set[str]:
    """What a question's hits are judged against: its gold pages ("<doc id>#<page>"), and the
    gold documents none of whose pages is named."""
    pages = set(question.get("gold_pages") or ())
    paged = {page.rpartition("#")[0] for page in pages}
    return pages | {g for g in question["gold_ids"] if g not in paged}


def judged_ids(chunks: Sequence[Chunk], question: Row) -> list[str]:
    """The id each chunk is judged by: "<doc id>#<page>" in a document the question has gold
    pages in, else its corpus line id (`record_id_of`; a file's doc id)."""
    paged = {page.rpartition("#")[0] for page in question.get("gold_pages") or ()}
    if not paged:
        return [record_id_of(c) for c in chunks]
    return [f"{c.doc_id}#{c.page}" if c.doc_id in paged else record_id_of(c) for c in chunks]


# --------------------------------------------------------------------------- index
def chunk_settings(settings: Settings) -> Row:
    """The settings that decide which chunks and vectors the index holds (the cache key).

    BM25 k1/b are not among them: a change only rescores the same index (nothing is re-embedded).
    """
    chunking = {f"chunk_{name}": value for name, value in settings.chunk.model_dump().items()}
    backend = settings.embedding.backend
    return {
        "embedding_model": settings.embedding.model,
        # other vectors; absent for torch so that indexes cached before backends existed stay valid
        **({"embedding_backend": backend} if backend != "torch" else {}),
        "max_seq_length": settings.embedding.max_seq_length,
        **chunking,  # every chunk setting changes what is indexed
    }


def eval_index_dir(settings: Settings, corpus: Sequence[Row]) -> Path:
    """user cache dir/eval/<hash of the corpus rows and chunk settings>, e.g. ~/.cache/chulcheo/eval/3f9a…"""
    digest = hashlib.sha256(json.dumps(chunk_settings(settings), sort_keys=True).encode("utf-8"))
    for row in corpus:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return Path(platformdirs.user_cache_dir("chulcheo")) / "eval" / digest.hexdigest()[:16]


def index_corpus(
    pipeline: Pipeline,
    corpus: Sequence[Row],
    *,
    rebuild_on_mismatch: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Write `corpus` as one JSONL file in the pipeline's index dir and ingest it (incrementally).

    rebuild_on_mismatch: start over when the directory was built with other model or chunk
    settings (for our own cache directories; a user's directory gets the usual error).

    Raises:
        EvalInputError: a line failed to ingest, or the index holds documents not in `corpus`.
    """
    pipeline.index_dir.mkdir(parents=True, exist_ok=True)
    path = write_jsonl(list(corpus), pipeline.index_dir / CORPUS_FILE)
    expected = {jsonl_doc_id(str(path.resolve()), row["id"]) for row in corpus}
    report = ingest_checked(
        pipeline, [path], lambda doc: doc.doc_id in expected, rebuild_on_mismatch=rebuild_on_mismatch, progress=progress
    )
    if report.failed:
        raise EvalInputError(report.failed[0]["error"])
    return report


def ingest_checked(
    pipeline: Pipeline,
    paths: Sequence[Path],
    expected: Callable[[Any], bool],
    *,
    rebuild_on_mismatch: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest `paths` (rebuilding a cache dir built with other settings), then check that every
    indexed document is `expected` (a DocEntry predicate).

    Raises:
        EvalInputError: the index holds documents that are not expected.
    """
    pipeline.index_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = pipeline.ingest(list(paths), progress=progress)
    except EmbeddingModelMismatch:
        if not rebuild_on_mismatch:
            raise
        log.info("%s was built with other settings; rebuilding it", pipeline.index_dir)
        report = pipeline.ingest(list(paths), rebuild=True, progress=progress)
    extra = sorted((d for d in pipeline.documents() if not expected(d)), key=lambda d: d.doc_id)
    if extra:
        first = extra[0]
        shown = f"{first.record_id!r} in {first.source}" if first.record_id else repr(first.doc_id)
        raise EvalInputError(
            f"{pipeline.index_dir} also holds {len(extra)} documents that are not in the evaluation "
            f"corpus (e.g. {shown}); give an empty or dedicated --index directory"
        )
    return report


def eval_set_index_dir(settings: Settings, eval_set: EvalSet) -> Path:
    """The cache dir of a set: keyed by its corpus lines, or its folder's files, and the chunk settings."""
    return eval_set.docs.index_dir(settings) if eval_set.docs is not None else eval_index_dir(settings, eval_set.corpus)


def index_eval_set(
    pipeline: Pipeline, eval_set: EvalSet, *, rebuild_on_mismatch: bool = False, progress: Progress | None = None
) -> IngestReport:
    """`index_corpus` for a corpus set, `DocsFolder.index` for a folder of documents."""
    if eval_set.docs is not None:
        return eval_set.docs.index(pipeline, rebuild_on_mismatch=rebuild_on_mismatch, progress=progress)
    return index_corpus(pipeline, eval_set.corpus, rebuild_on_mismatch=rebuild_on_mismatch, progress=progress)


# --------------------------------------------------------------------------- evaluation
def _scores(runs: Sequence[Run]) -> Row:
    return {name: round(value, 4) for name, value in summarize(runs).items()} | {"n": len(runs)}


def _latency(seconds: Sequence[float]) -> Row:
    p50, p95 = np.percentile(np.asarray(seconds) * 1000.0, [50, 95]) if seconds else (0.0, 0.0)
    return {"latency_ms_p50": round(float(p50), 2), "latency_ms_p95": round(float(p95), 2)}


def _mode_search(pipeline: Pipeline, retriever: HybridRetriever, mode: str, depth: int) -> Callable[[str], list[Chunk]]:
    """query -> the top `depth` chunks (best first) for one evaluation mode."""
    chunks = retriever.generation.chunks
    if mode == "bm25-whitespace":
        index = retriever.generation.bm25
        # The same text the index's own BM25 leg tokenized (title/heading prefix included if set).
        with_context = bool(retriever.generation.manifest["chunking"].get("context_prefix", False))
        tokenizer = WhitespaceTokenizer()
        texts = [index_text(c, with_context) for c in chunks]
        baseline = BM25Index.build(tokenizer.tokenize_many(texts), k1=index.k1, b=index.b)
        return lambda q: [chunks[row] for row, _ in baseline.search(tokenizer.tokenize(q), depth)]
    if mode in ("bm25", "dense"):
        return lambda q: [h.chunk for h in retriever.search(q, depth, mode=mode)]
    fusion = replace(pipeline.fusion_config(), method=mode.removeprefix("hybrid-"))
    return lambda q: [h.chunk for h in retriever.search(q, depth, mode="hybrid", fusion=fusion)]


def evaluate_modes(
    pipeline: Pipeline,
    questions: Sequence[Row],
    *,
    k: int = 10,
    modes: Sequence[str] = EVAL_MODES,
    progress: Progress | None = None,
) -> dict[str, Row]:
    """{mode: metrics + latency} for each mode; each query is searched (and embedded) per mode.

    Raises:
        ValueError: an unknown mode.
    """
    _check_modes(modes)
    retriever = pipeline.retriever()
    progress = progress or (lambda stage, done, total: None)
    # Kiwi and the embedding model load on first use: keep that out of the first timed query.
    retriever.tokenizer.tokenize(WARM_UP)
    if any(m in EMBEDDING_MODES for m in modes):
        retriever.embedder.embed_query(WARM_UP)
    results: dict[str, Row] = {}
    for mode in modes:
        search = _mode_search(pipeline, retriever, mode, DEPTH_FACTOR * k)
        runs: list[Run] = []
        seconds: list[float] = []
        for i, q in enumerate(questions, 1):
            started = time.perf_counter()
            found = search(q["query"])
            seconds.append(time.perf_counter() - started)
            runs.append((dedupe(judged_ids(found, q))[:k], gold_of(q)))
            progress(f"평가 {mode}", i, len(questions))
        results[mode] = _scores(runs) | _latency(seconds)
        log.info("%s: %s", mode, results[mode])
    return results


def parse_modes(text: str | None) -> list[str]:
    """"bm25, dense" -> ["bm25", "dense"]; None -> every mode.

    Raises:
        ValueError: an unknown mode, or none named.
    """
    if text is None:
        return list(EVAL_MODES)
    modes = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    _check_modes(modes)
    return modes


def _check_modes(modes: Sequence[str]) -> None:
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown or not modes:
        shown = repr(unknown[0]) if unknown else "none"
        raise ValueError(f"unknown evaluation mode {shown}; expected some of {', '.join(EVAL_MODES)}")


def grid_configs(candidates: int) -> list[FusionConfig]:
    """Weighted fusion over bm25 weights × norms (dense = 1 - bm25), RRF over k (equal weights), adaptive."""
    weighted = [
        FusionConfig(method="weighted", weights=(w, round(1.0 - w, 2)), norm=norm, candidates=candidates)
        for norm in GRID_NORMS
        for w in GRID_BM25_WEIGHTS
    ]
    rrf = [FusionConfig(method="rrf", rrf_k=rrf_k, candidates=candidates) for rrf_k in GRID_RRF_KS]
    adaptive = [FusionConfig(method="adaptive", weights=(0.5, 0.5), candidates=candidates)]
    return weighted + rrf + adaptive


def grid_point(config: FusionConfig) -> Row:
    """The describing keys of one grid row, e.g. {"name": "weighted 0.3/0.7 zscore", ...}."""
    bm25, dense = config.weights
    if config.method == "rrf":
        name, norm, rrf_k = f"rrf k={config.rrf_k}", None, config.rrf_k
    elif config.method == "adaptive":
        name, norm, rrf_k = f"adaptive {bm25:g}/{dense:g}", "zscore-pool", None
    else:
        name, norm, rrf_k = f"weighted {bm25:g}/{dense:g} {config.norm}", config.norm, None
    return {"name": name, "method": config.method, "weights": [bm25, dense], "norm": norm, "rrf_k": rrf_k}


def fusion_grid(
    pipeline: Pipeline,
    questions: Sequence[Row],
    *,
    k: int = 10,
    progress: Progress | None = None,
) -> list[Row]:
    """One row (grid_point + metrics) per `grid_configs` fusion; each query is embedded once.

    The BM25 and dense legs (depth max(candidates, 3k)) are computed once per query and every
    configuration fuses those same two lists in-process.
    """
    retriever = pipeline.retriever()
    generation = retriever.generation
    configs = grid_configs(pipeline.settings.retrieval.candidates)
    depth = DEPTH_FACTOR * k
    leg_depth = max(pipeline.settings.retrieval.candidates, depth)
    progress = progress or (lambda stage, done, total: None)
    runs: list[list[Run]] = [[] for _ in configs]
    for i, q in enumerate(questions, 1):
        vector = retriever.embedder.embed_query(q["query"])
        bm25 = generation.bm25.search(retriever.tokenizer.tokenize(q["query"]), leg_depth)
        dense = generation.dense.search(vector, leg_depth)
        gold = gold_of(q)
        for config, config_runs in zip(configs, runs, strict=True):
            ids = judged_ids([generation.chunks[row] for row, _ in config.fuse(bm25, dense)[:depth]], q)
            config_runs.append((dedupe(ids)[:k], gold))
        progress("융합 그리드", i, len(questions))
    return [grid_point(c) | _scores(r) for c, r in zip(configs, runs, strict=True)]


def settings_summary(pipeline: Pipeline) -> Row:
    """The retrieval and chunk settings the numbers were measured with."""
    r = pipeline.settings.retrieval
    return chunk_settings(pipeline.settings) | {
        "bm25_k1": r.bm25_k1,
        "bm25_b": r.bm25_b,
        "embedding_model_id": pipeline.embedder.model_id,
        "candidates": r.candidates,
        "rrf_k": r.rrf_k,
        "weights": [r.bm25_weight, r.dense_weight],
        "norm": r.norm,
    }


def run_retrieval_eval(
    settings: Settings,
    eval_set: EvalSet,
    *,
    make_pipeline: Callable[[Settings], Pipeline],
    index: Path | None = None,
    k: int = 10,
    modes: Sequence[str] = EVAL_MODES,
    limit: int | None = None,
    seed: int = 13,
    grid: bool = False,
    progress: Progress | None = None,
) -> Row:
    """Index the set's corpus (into `index` or a cache dir keyed by its content) and evaluate.

    Returns the `chulcheo eval retrieval --json` object (see README, "Evaluating retrieval").
    """
    questions = sample_questions(eval_set.questions, limit, seed)
    index_dir = index or eval_set_index_dir(settings, eval_set)
    pipeline = make_pipeline(settings.model_copy(update={"index_dir": index_dir}))
    report = index_eval_set(pipeline, eval_set, rebuild_on_mismatch=index is None, progress=progress)
    result: Row = {
        "dataset": eval_set.name,
        "corpus_size": eval_set.size,
        "chunks": report.chunks,
        "questions": len(questions),
        "k": k,
        "seed": seed,
        "modes": evaluate_modes(pipeline, questions, k=k, modes=modes, progress=progress),
    }
    if grid:
        result["grid"] = fusion_grid(pipeline, questions, k=k, progress=progress)
    indexed = {d.doc_id for d in pipeline.documents()} if eval_set.docs is not None else None
    missing = count_missing_gold(questions, indexed if indexed is not None else eval_set.corpus)
    result["questions_with_missing_gold"] = missing
    result["warnings"] = [f"{missing} questions have gold ids missing from the corpus"] if missing else []
    if eval_set.docs is not None:  # a document that failed to load is left out, like `ingest` does
        result["documents_failed"] = report.failed
        result["warnings"] += [f"not indexed: {f['error']}" for f in report.failed]
    result["index"] = {"dir": str(index_dir), "embedded": report.embedded, "seconds": round(report.seconds, 3)}
    result["settings"] = settings_summary(pipeline)
    return result


__all__ = [
    "DATASETS",
    "EVAL_MODES",
    "EvalInputError",
    "EvalSet",
    "add_distractors",
    "eval_set_index_dir",
    "gold_of",
    "index_eval_set",
    "judged_ids",
    "evaluate_modes",
    "fusion_grid",
    "load_dataset",
    "load_jsonl_set",
    "parse_modes",
    "read_corpus_jsonl",
    "read_qa_jsonl",
    "run_retrieval_eval",
]
