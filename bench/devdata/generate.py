"""Write the development sets into a folder: rendered documents, a manifest and QA JSONL.

generate_enterprise(Path("out"), seed=0) -> Path("out/enterprise"), holding docs/01_취업규칙.pdf …,
    manifest.jsonl and qa.jsonl ({"qid", "query", "answer", "gold_ids", "doc_file", "page", ...})
generate_korquad_pdf(Path("out"), KORQUAD, sample=200, seed=0) -> Path("out/korquad_pdf")

gold_ids are the document ids the loader gives these files (their resolved absolute paths),
so the sets are ingested from where they were written; `doc_file` is the same file relative
to the set's folder, and `doc_ids_for()` recomputes the ids if the folder was moved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.devdata.render import (
    Element,
    Line,
    element_text,
    missing_glyphs,
    parse_body,
    render_docx,
    render_hwpx,
    render_paragraphs,
    render_pdf,
)

log = logging.getLogger(__name__)


@dataclass
class QA:
    """A question, the long-form answer an employee should be told, and the text it rests on.

    `anchor` is a literal piece of the document body the answer comes from, or several when the
    answer draws on more than one paragraph (they locate the pages); `multi` marks a question
    with more than one part.
    """

    query: str
    answer: str
    anchor: str | tuple[str, ...]
    multi: bool = False

    @property
    def anchors(self) -> tuple[str, ...]:
        return (self.anchor,) if isinstance(self.anchor, str) else self.anchor


@dataclass
class DocSpec:
    """One development document: what it is, how it is written out, and its questions."""

    name: str  # file stem, e.g. "01_취업규칙"
    kind: str  # 규정 | 보고서 | 보도자료 | 회의록 | 계약서 | 안내문
    fmt: str  # pdf | hwpx | docx
    title: str
    header: str  # running header of the PDF, e.g. "대외비 · 인사팀"
    body: str  # markup read by render.parse_body
    qas: list[QA] = field(default_factory=list)


def all_docs() -> list[DocSpec]:
    """Every enterprise document spec in file order."""
    from bench.devdata import content_notices, content_reports, content_rules

    docs = [*content_rules.DOCS, *content_reports.DOCS, *content_notices.DOCS]
    return sorted(docs, key=lambda d: d.name)


def body_text(doc: DocSpec) -> str:
    """The document's text as one string (title, headings, paragraphs, table rows)."""
    return "\n".join([doc.title, *(element_text(e) for e in parse_body(doc.body))])


def _locate(elements: list[Element], lines: list[Line], anchor: str) -> tuple[list[int], bool, bool]:
    """From the PDF's lines: the pages the anchor was drawn on, whether it crosses a line break,
    and whether the whole paragraph (or table) holding it crosses a page break."""
    for index, element in enumerate(elements):
        start = element_text(element).find(anchor)
        if start < 0:
            continue
        end = start + len(anchor)
        hit = [ln for ln in lines if ln.element == index and ln.start < end and ln.end > start]
        unit_pages = {ln.page for ln in lines if ln.element == index}
        return sorted({ln.page for ln in hit}), len(hit) > 1, len(unit_pages) > 1
    raise ValueError(f"anchor not in the document: {anchor!r}")


def _write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def generate_enterprise(out: Path, seed: int = 0, only: list[str] | None = None, font: Path | None = None) -> Path:
    """Render the enterprise documents into out/enterprise and write manifest.jsonl and qa.jsonl.

    Args:
        only: document names to write (all when None), for quick tests.
        font: a Hangul TrueType font for the PDFs (found on the system when None).

    Raises:
        RuntimeError: PDFs are asked for and no Hangul font is installed.
    """
    from tests.pdfs import find_korean_ttf  # the same font finder the PDF tests use

    folder = Path(out) / "enterprise"
    (folder / "docs").mkdir(parents=True, exist_ok=True)
    docs = [d for d in all_docs() if only is None or d.name in only]
    if any(d.fmt == "pdf" for d in docs):
        font = font or find_korean_ttf()
        if font is None:
            raise RuntimeError("no Hangul TrueType font found (install fonts-nanum)")
    manifest: list[dict[str, Any]] = []
    qa_rows: list[dict[str, Any]] = []
    for number, doc in enumerate(docs):
        elements = parse_body(doc.body)
        rel = f"docs/{doc.name}.{doc.fmt}"
        lines: list[Line] = []
        if doc.fmt == "pdf":
            data, lines = render_pdf(elements, doc.title, f"{doc.header} · {doc.title}", font, seed * 1000 + number)
        elif doc.fmt == "docx":
            data = render_docx(elements, doc.title)
        else:
            data = render_hwpx(elements, doc.title)
        path = folder / rel
        path.write_bytes(data)
        doc_id = str(path.resolve())
        manifest.append({
            "doc_file": rel, "doc_id": doc_id, "title": doc.title, "kind": doc.kind, "format": doc.fmt,
            "pages": max((ln.page for ln in lines), default=None), "sha256": hashlib.sha256(data).hexdigest(),
        })
        for i, qa in enumerate(doc.qas, start=1):
            found = [_locate(elements, lines, anchor) for anchor in qa.anchors] if lines else []
            pages = sorted({page for hit in found for page in hit[0]})
            wrapped = any(hit[1] for hit in found)
            unit_split = any(hit[2] for hit in found)
            qa_rows.append({
                "qid": f"{doc.name}-q{i}", "query": qa.query, "answer": qa.answer, "gold_ids": [doc_id],
                "doc_file": rel, "page": pages[0] if pages else None, "pages": pages, "evidence": list(qa.anchors),
                "multi_part": qa.multi, "kind": doc.kind, "format": doc.fmt,
                "spans_page_break": len(pages) > 1, "unit_spans_page_break": unit_split,
                "spans_wrapped_line": wrapped,
            })
    _write_jsonl(manifest, folder / "manifest.jsonl")
    _write_jsonl(qa_rows, folder / "qa.jsonl")
    log.info("enterprise set: %d documents, %d questions in %s", len(manifest), len(qa_rows), folder)
    return folder


def doc_ids_for(folder: Path) -> dict[str, str]:
    """{doc_file: doc id the loader gives it now} for a set folder, e.g. after it was moved."""
    rows = [json.loads(line) for line in (Path(folder) / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    return {row["doc_file"]: str((Path(folder) / row["doc_file"]).resolve()) for row in rows}


def generate_korquad_pdf(
    out: Path, korquad: Path, sample: int = 200, seed: int = 0, per_file: int = 1, font: Path | None = None
) -> Path:
    """A seeded sample of KorQuAD dev paragraphs as PDFs with wrapped lines, and their questions.

    Each paragraph starts a new page; `per_file` paragraphs share one PDF. The dataset (CC BY-ND)
    is only read; the derived files go to `out` and are never committed.
    qa.jsonl rows: {"qid", "query", "answer", "answers", "gold_ids", "doc_file", "page", "clean_id"},
    where clean_id is the paragraph's id on the clean text path (ingest.korquad.load_korquad;
    clean_corpus.jsonl and clean_qa.jsonl hold the same paragraphs and questions on it), and
    "answer_drawn" is false when the answer holds a character the font has no glyph for (the PDF
    text lacks it, which says nothing about the loader; compare paths without those questions).
    """
    from ingest.korquad import load_korquad
    from tests.pdfs import find_korean_ttf

    font = font or find_korean_ttf()
    if font is None:
        raise RuntimeError("no Hangul TrueType font found (install fonts-nanum)")
    corpus, questions = load_korquad(korquad)
    chosen = sorted(random.Random(seed).sample(range(len(corpus)), min(sample, len(corpus))))
    folder = Path(out) / "korquad_pdf"
    (folder / "docs").mkdir(parents=True, exist_ok=True)
    lost: set[str] = set()  # characters the font cannot draw (Hanja, IPA): absent from the PDF text
    where: dict[str, tuple[str, str, int]] = {}  # clean id → (doc_file, doc id, page)
    manifest: list[dict[str, Any]] = []
    for start in range(0, len(chosen), per_file):
        group = [corpus[i] for i in chosen[start : start + per_file]]
        rel = f"docs/korquad_{start // per_file:04d}.pdf"
        path = folder / rel
        elements = [Element("para", p["text"]) for p in group]
        data, starts = render_paragraphs(elements, [p["metadata"]["title"] for p in group], font, seed + start)
        path.write_bytes(data)
        doc_id = str(path.resolve())
        for paragraph, page in zip(group, starts):
            where[paragraph["id"]] = (rel, doc_id, page)
            lost.update(missing_glyphs(font, paragraph["text"]))
        manifest.append({
            "doc_file": rel, "doc_id": doc_id, "clean_ids": [p["id"] for p in group],
            "missing_glyphs": missing_glyphs(font, "".join(p["text"] for p in group)),
        })
    qa_rows = [
        {
            "qid": q["qid"], "query": q["query"], "answer": q["answers"][0], "answers": q["answers"],
            "gold_ids": [where[q["gold_ids"][0]][1]], "doc_file": where[q["gold_ids"][0]][0],
            "page": where[q["gold_ids"][0]][2], "clean_id": q["gold_ids"][0],
            "answer_drawn": not any(ch in lost for ch in q["answers"][0]),
        }
        for q in questions
        if q["gold_ids"][0] in where
    ]
    _write_jsonl(manifest, folder / "manifest.jsonl")
    _write_jsonl(qa_rows, folder / "qa.jsonl")
    # the same paragraphs and questions on the clean text path, to measure what the PDF path loses
    _write_jsonl([corpus[i] for i in chosen], folder / "clean_corpus.jsonl")
    _write_jsonl([{**q, "gold_ids": [q["clean_id"]]} for q in qa_rows], folder / "clean_qa.jsonl")
    log.info("KorQuAD-as-PDF: %d paragraphs in %d files, %d questions in %s",
             len(chosen), len(manifest), len(qa_rows), folder)
    return folder

