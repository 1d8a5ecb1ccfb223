"""What every `chulcheo` command shares: consoles, options, exit codes, error handling."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from generation.errors import GenerationError
from ingest.errors import IngestError
from retrieval.errors import RetrievalError

from ..models import ModelError
from ..settings import Settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # one error per line, never wrapped

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index directory (default: env CHULCHEO_INDEX_DIR or settings)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2

STAGES = {"read": "파일 읽기", "ocr": "OCR (쪽)", "chunk": "청크 분할", "embed": "임베딩", "write": "색인 저장"}


def _settings(index: Path | None) -> Settings:  # called inside _fatal_errors
    return Settings(index_dir=index) if index else Settings()


def _pipeline(index: Path | None):
    from ..pipeline import Pipeline  # heavy imports only for commands that need them

    return Pipeline(_settings(index))


_SURROGATE = re.compile("[\udc80-\udcff]")  # an undecodable file-name byte, as os.fsdecode leaves it


def _emit(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False)
    # A file name that is not UTF-8 reaches us with surrogate escapes; show its bytes as \xNN.
    text = _SURROGATE.sub(lambda m: "\\\\x%02x" % (ord(m.group()) - 0xDC00), text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def _fatal_errors() -> Iterator[None]:
    """Known errors become one clear line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except typer.Exit:  # click's Exit is a RuntimeError: let it pass untouched
        raise
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}", exc)
    except (IngestError, RetrievalError, ModelError, GenerationError, ValueError, OSError, ImportError, RuntimeError) as exc:
        _fail(str(exc), exc)


def _fail(message: str, exc: BaseException) -> None:
    err.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", highlight=False)
    raise typer.Exit(EXIT_FAILED) from exc


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress callback (stage, done, total) when on a terminal, else a no-op."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


# Inputs shared by `eval retrieval` and `eval answers`.
CorpusOpt = Annotated[
    Path | None,
    typer.Option("--corpus", help='Corpus JSONL, lines {"id", "text", "metadata"} (as ingest reads).'),
]
QaOpt = Annotated[
    Path | None,
    typer.Option("--qa", help='Questions JSONL, lines {"qid", "query", "gold_ids": [doc id, ...]} (+ "answers": [...] for eval answers).'),
]
DocsOpt = Annotated[
    Path | None,
    typer.Option("--docs", help="A folder of documents (PDF, DOCX, HWPX, TXT, ...) ingested as `ingest` does, instead of --corpus; --qa gold ids name its files (path, path relative to the folder or to the QA file, or FILE#PAGE)."),
]
DatasetOpt = Annotated[
    tuple[str, Path] | None,
    typer.Option("--dataset", metavar="NAME PATH", help="A built-in dataset instead of --corpus/--qa: korquad FILE.json."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Shuffle seed for --limit.")]


def require_eval_inputs(corpus: Path | None, qa: Path | None, dataset: Any, docs: Path | None = None) -> None:
    """Exactly one of (--corpus and --qa), (--docs and --qa) or --dataset; otherwise exit 2 saying so."""
    given = (corpus is not None, docs is not None, qa is not None, dataset is not None)
    if given not in ((True, False, True, False), (False, True, True, False), (False, False, False, True)):
        err.print(
            "error: give either --corpus FILE.jsonl and --qa FILE.jsonl, --docs FOLDER and --qa FILE.jsonl, "
            "or --dataset korquad PATH"
        )
        raise typer.Exit(EXIT_FAILED)


def load_eval_set(corpus: Path | None, qa: Path | None, dataset: Any, docs: Path | None = None) -> Any:
    """The EvalSet the (checked) inputs name; inside _fatal_errors (EvalInputError is a ValueError)."""
    from evaluation.retrieval import load_dataset, load_jsonl_set

    if dataset:
        return load_dataset(*dataset)
    if docs is not None:
        from evaluation.docs import load_docs_set

        return load_docs_set(docs, qa)
    return load_jsonl_set(corpus, qa)


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(line number, object, problem or None) for each non-blank line of a JSONL input.

    A line that is not a JSON object yields ({}, "not JSON (...)" / "not a JSON object"), so
    batch commands can report it by file and line and go on with the next.
    """
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                yield n, {}, f"not JSON ({exc})"
                continue
            yield (n, item, None) if isinstance(item, dict) else (n, {}, "not a JSON object")
