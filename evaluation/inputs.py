"""Evaluation inputs: question sets with gold ids, and the corpora or folders they are asked over.

    load_jsonl_set(Path("corpus.jsonl"), Path("qa.jsonl")) -> EvalSet("jsonl:qa.jsonl", [...], [...])
    load_dataset("korquad", Path("KorQuAD_v1.0_dev.json")) -> EvalSet("korquad:…", 964 paragraphs, 5,774 questions)

A bad input raises EvalInputError naming the file (and line) and the reason; the CLI prints it
as one line and exits 2. Folders of real documents are read by evaluation/docs.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.korquad import load_korquad

if TYPE_CHECKING:
    from .docs import DocsFolder

DATASETS: tuple[str, ...] = ("korquad",)

Row = dict[str, Any]


class EvalInputError(ValueError):
    """An evaluation input is unusable; the message names the file (and line) and the reason."""


@dataclass
class EvalSet:
    """A corpus ({"id", "text", "metadata"} rows) and questions ({"qid", "query", "gold_ids"}).

    `docs`: a folder of documents indexed in place instead of `corpus` (then empty).
    """

    name: str
    corpus: list[Row]
    questions: list[Row]
    docs: DocsFolder | None = None

    @property
    def size(self) -> int:
        """Documents in the set: corpus lines, or files of the folder."""
        return len(self.docs.files) if self.docs is not None else len(self.corpus)


def _jsonl_objects(path: Path) -> Iterator[tuple[int, Row]]:
    """(line number, object) for each non-blank line; a bad line raises naming path:line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise EvalInputError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def read_corpus_jsonl(path: Path) -> list[Row]:
    """Corpus lines {"id", "text", "metadata"} (the format ingest reads), validated.

    Raises:
        EvalInputError: "corpus.jsonl:3: missing or non-string 'id'", duplicate ids, no lines.
    """
    rows: list[Row] = []
    first: dict[str, int] = {}
    for n, obj in _jsonl_objects(path):
        doc_id, text, metadata = obj.get("id"), obj.get("text"), obj.get("metadata") or {}
        if not _text(doc_id):
            raise EvalInputError(f"{path}:{n}: missing or non-string 'id'")
        if not _text(text):
            raise EvalInputError(f"{path}:{n}: missing, empty or non-string 'text'")
        if not isinstance(metadata, dict):
            raise EvalInputError(f"{path}:{n}: 'metadata' must be an object")
        if doc_id in first:
            raise EvalInputError(f"{path}:{n}: duplicate id {doc_id!r} (first on line {first[doc_id]})")
        first[doc_id] = n
        rows.append({"id": doc_id, "text": text, "metadata": metadata})
    if not rows:
        raise EvalInputError(f"{path}: no corpus lines")
    return rows


def read_qa_jsonl(path: Path) -> list[Row]:
    """Question lines {"qid", "query", "gold_ids": [doc id, ...]} (+ optional "answers": [str] spans and
    "answer": a long-form gold answer), validated.

    Raises:
        EvalInputError: "qa.jsonl:2: 'gold_ids' must be a non-empty list of document ids", ...
    """
    questions: list[Row] = []
    first: dict[str | int, int] = {}
    for n, obj in _jsonl_objects(path):
        qid, query, gold = obj.get("qid"), obj.get("query"), obj.get("gold_ids")
        if isinstance(qid, bool) or not isinstance(qid, (str, int)):
            raise EvalInputError(f"{path}:{n}: missing 'qid' (a string or an integer)")
        if not _text(query):
            raise EvalInputError(f"{path}:{n}: missing, empty or non-string 'query'")
        if not isinstance(gold, list) or not gold or not all(_text(g) for g in gold):
            raise EvalInputError(f"{path}:{n}: 'gold_ids' must be a non-empty list of document ids")
        if qid in first:
            raise EvalInputError(f"{path}:{n}: duplicate qid {qid!r} (first on line {first[qid]})")
        first[qid] = n
        row = {"qid": qid, "query": query, "gold_ids": list(gold)}
        answers = obj.get("answers")  # optional gold answer strings, for `eval answers`
        if isinstance(answers, list) and all(_text(a) for a in answers):
            row["answers"] = list(answers)
        if _text(obj.get("answer")):  # optional long-form gold answer (2-5 sentences): key recall
            row["answer"] = obj["answer"]
        questions.append(row)
    if not questions:
        raise EvalInputError(f"{path}: no question lines")
    return questions


def load_jsonl_set(corpus: Path, qa: Path) -> EvalSet:
    return EvalSet(f"jsonl:{Path(qa).name}", read_corpus_jsonl(corpus), read_qa_jsonl(qa))


def load_dataset(name: str, path: Path) -> EvalSet:
    """A built-in dataset: "korquad" reads a KorQuAD 1.0 (SQuAD-format) JSON file.

    Raises:
        EvalInputError: unknown name, or a file that is not in the dataset's format.
    """
    if name != "korquad":
        raise EvalInputError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    try:
        corpus, questions = load_korquad(path)
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalInputError(
            f"{path}: not a KorQuAD (SQuAD-format) JSON file ({type(exc).__name__}: {exc})"
        ) from exc
    if not corpus or not questions:
        raise EvalInputError(f"{path}: no paragraphs or no questions")
    return EvalSet(f"korquad:{Path(path).name}", corpus, questions)


def add_distractors(eval_set: EvalSet, distractors: list[Row], origin: str = "distractors") -> EvalSet:
    """The set with `distractors` pooled into its corpus.

    Raises:
        EvalInputError: a distractor id is already a corpus id (named in the message).
    """
    ids = {row["id"] for row in eval_set.corpus}
    for row in distractors:
        if row["id"] in ids:
            raise EvalInputError(
                f"{origin}: id {row['id']!r} is already in the corpus; distractor ids must not collide"
            )
    return replace(eval_set, corpus=eval_set.corpus + distractors)


def sample_questions(questions: Sequence[Row], limit: int | None, seed: int) -> list[Row]:
    """The first `limit` questions (all when None) after a shuffle seeded by `seed`."""
    chosen = list(questions)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


def count_missing_gold(questions: Sequence[Row], corpus: Sequence[Row] | set[str]) -> int:
    """Questions with at least one gold id that no corpus row has (or that is not in a set of ids)."""
    ids = corpus if isinstance(corpus, set) else {row["id"] for row in corpus}
    return sum(1 for q in questions if not set(q["gold_ids"]) <= ids)
