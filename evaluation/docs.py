"""Evaluation over a folder of real documents, ingested in place as a user's documents are.

    eval_set = load_docs_set(Path("devdata/enterprise/docs"), Path("devdata/enterprise/qa.jsonl"))
    run_retrieval_eval(Settings(), eval_set, make_pipeline=Pipeline)["modes"]["hybrid-weighted"]

Every file with a loader (PDF, DOCX, HWPX, HWP, TXT, MD, HTML, ...; JSONL files are corpora,
evaluated with --corpus) is indexed by the ordinary ingest, so its doc id is its resolved path.
A gold id names a document by that path, by a path relative to the folder or to the QA file's
folder ("docs/01_취업규칙.pdf" as bench/devdata writes `doc_file`), or a page of it
("docs/01_취업규칙.pdf#2"): a question with page gold is judged on the pages of that document.
Questions keep doc-level "gold_ids" (what `eval answers` compares citations with) and, for
page gold, "gold_pages": ["/abs/01_취업규칙.pdf#2"].
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from ingest.build import IngestReport, Progress, expand_paths
from ingest.load import SUPPORTED_EXTENSIONS

from .inputs import EvalInputError, EvalSet, Row, read_qa_jsonl
from .retrieval import Pipeline, Settings, chunk_settings, ingest_checked

_PAGE = re.compile(r"^(?P<path>.+)#(?P<page>\d+)$")


@dataclass(frozen=True)
class DocsFolder:
    """A folder's documents, indexed in place; `files` are resolved paths (= their doc ids)."""

    path: Path
    files: tuple[Path, ...]

    def index_dir(self, settings: Settings) -> Path:
        """user cache dir/eval/docs-<hash of paths, file contents and chunk settings>."""
        digest = hashlib.sha256(json.dumps(chunk_settings(settings), sort_keys=True).encode("utf-8"))
        for file in self.files:
            digest.update(str(file).encode("utf-8", "surrogateescape") + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return Path(platformdirs.user_cache_dir("chulcheo")) / "eval" / f"docs-{digest.hexdigest()[:16]}"

    def index(
        self, pipeline: Pipeline, *, rebuild_on_mismatch: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest the files into the pipeline's index (incrementally); a file that fails stays out
        (the report lists it, and questions whose gold it was count as missing gold).

        Raises:
            EvalInputError: the index holds documents that are not these files.
        """
        sources = {str(f) for f in self.files}
        return ingest_checked(
            pipeline, list(self.files), lambda doc: doc.source in sources,
            rebuild_on_mismatch=rebuild_on_mismatch, progress=progress,
        )


def document_files(folder: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Resolved paths of the files under `folder` that ingest has a loader for (not JSONL), sorted.

    Raises:
        EvalInputError: the folder does not exist, is not a folder, or holds no document.
    """
    folder = Path(folder)
    if not folder.exists():
        raise EvalInputError(f"{folder}: no such folder (--docs)")
    if not folder.is_dir():
        raise EvalInputError(f"{folder}: not a folder (--docs takes a folder of documents)")
    files, _ = expand_paths([folder])
    skipped = {p.resolve() for p in skip}
    docs = sorted({
        f.resolve() for f in files
        if f.suffix.lower() in SUPPORTED_EXTENSIONS and f.suffix.lower() != ".jsonl" and f.resolve() not in skipped
    })
    if not docs:
        raise EvalInputError(
            f"{folder}: no documents (supported: {', '.join(sorted(set(SUPPORTED_EXTENSIONS) - {'.jsonl'}))})"
        )
    return docs


def resolve_gold(gold: str, files: set[Path], bases: tuple[Path, ...]) -> tuple[Path, int | None] | None:
    """The document (and page) a gold id names, or None.

    resolve_gold("docs/a.pdf#2", {Path("/set/docs/a.pdf")}, (Path("/set/docs"), Path("/set")))
        -> (Path("/set/docs/a.pdf"), 2)
    A whole path wins over a page reading ("a#1.txt" stays a file name).
    """
    for text, page in ((gold, None), *(((m["path"], int(m["page"])),) if (m := _PAGE.match(gold)) else ())):
        candidate = Path(text).expanduser()
        for path in ([candidate] if candidate.is_absolute() else [base / candidate for base in bases]):
            resolved = path.resolve()
            if resolved in files:
                return resolved, page
    return None


def load_docs_set(folder: Path, qa: Path) -> EvalSet:
    """The folder's documents and the questions of `qa`, gold ids resolved to doc ids.

    Raises:
        EvalInputError: a missing or empty folder, a bad QA line, a page 0, or a gold id that
            matches no document ("qa.jsonl:3: gold id 'docs/x.pdf' matches no document in docs/").
    """
    folder, qa = Path(folder), Path(qa)
    files = document_files(folder, skip=(qa,))
    known = set(files)
    bases = tuple(dict.fromkeys((folder.resolve(), qa.resolve().parent)))
    questions: list[Row] = []
    for q in read_qa_jsonl(qa):
        docs: list[str] = []
        pages: list[str] = []
        for gold in q["gold_ids"]:
            found = resolve_gold(gold, known, bases)
            if found is None:
                raise EvalInputError(
                    f"{qa}: question {q['qid']!r}: gold id {gold!r} matches no document "
                    f"in {folder} (give a file path, one relative to the folder or to the QA file, or FILE#PAGE)"
                )
            path, page = found
            if page == 0:
                raise EvalInputError(f"{qa}: question {q['qid']!r}: gold id {gold!r}: pages count from 1")
            docs.append(str(path))
            if page is not None:
                pages.append(f"{path}#{page}")
        row = q | {"gold_ids": list(dict.fromkeys(docs))}
        if pages:
            row["gold_pages"] = list(dict.fromkeys(pages))
        questions.append(row)
    # "docs:enterprise/docs": the folder and its parent, as sets often keep their files in docs/
    name = f"docs:{folder.resolve().parent.name}/{folder.resolve().name}"
    return EvalSet(name, [], questions, docs=DocsFolder(folder.resolve(), tuple(files)))


__all__ = ["DocsFolder", "document_files", "load_docs_set", "resolve_gold"]
