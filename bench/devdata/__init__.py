"""Development data that looks like what employees have (issue 16, item 7): a generator, not data.

    .venv/bin/python -m bench.devdata OUT_DIR [--korquad-sample 200] [--seed 0] [--korquad-per-file 1]

writes, deterministically for a seed (nothing under OUT_DIR is committed):

- OUT_DIR/enterprise/: 15 Korean company documents — 규정·지침 with 조·항·호, 보도자료·보고서
  with 개조식 bullets (○ □ - ※) and captioned tables, 회의록, 계약서, 안내문 — as 9 PDFs
  (narrow wrapped lines, some broken inside a word, running header '대외비 · 인사팀 · 제목'
  and '- n -' footer, several pages), 3 HWPX and 3 DOCX; `manifest.jsonl` (doc_file, doc_id,
  title, kind, format, pages, sha256) and `qa.jsonl`, one line per question:
  {"qid", "query", "answer" (2–5 sentence long-form gold), "gold_ids", "doc_file", "page",
   "pages", "evidence" (the literal passages the answer rests on), "multi_part", "kind", "format",
   "spans_page_break", "unit_spans_page_break", "spans_wrapped_line"}.
- OUT_DIR/korquad_pdf/: a seeded sample of KorQuAD 1.0 dev paragraphs, each from a new page
  of a PDF with wrapped lines, and their questions ({"qid", "query", "answer", "answers",
  "gold_ids", "doc_file", "page", "clean_id"}); clean_id is the paragraph's id on the clean
  text path (ingest.korquad), so both paths can be scored on the same questions. The dataset
  is CC BY-ND: it is read at generation time, never modified, and nothing derived is committed.

gold_ids are the ids the loader gives the files: their resolved absolute paths, as written.
Ingest the folder where it was generated (`chulcheo ingest OUT_DIR/enterprise/docs`); if it
was moved, `doc_ids_for(folder)` maps each doc_file to its id now.

The content lives in content_rules.py, content_reports.py and content_notices.py; every
gold answer's numbers are in its document (tests/unit/devdata checks this).
"""

from bench.devdata.generate import (
    QA,
    DocSpec,
    all_docs,
    doc_ids_for,
    generate_enterprise,
    generate_korquad_pdf,
)

__all__ = ["QA", "DocSpec", "all_docs", "doc_ids_for", "generate_enterprise", "generate_korquad_pdf"]
