"""The development-data generator (bench/devdata): sizes, loadability, wrapped PDF lines, gold support."""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from pypdf import PdfReader

from bench.devdata import (
    all_docs,
    doc_ids_for,
    generate_enterprise,
    generate_korquad_pdf,
)
from bench.devdata.generate import body_text
from ingest.load import load_file
from tests.pdfs import find_korean_ttf

FONT = find_korean_ttf()
KORQUAD = Path(__file__).resolve().parents[4] / "shared/data/korquad_v1/KorQuAD_v1.0_dev.json"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Conjunctions and clause endings that join the parts of a multi-part question.
PARTS = re.compile(r"(이며|이고|그리고|각각|[가-힣]+(?:와|과) [가-힣]+|,|[가-힣]고 |[가-힣]며 )")

needs_font = pytest.mark.skipif(FONT is None, reason="no Hangul TrueType font (fonts-nanum)")


def squeeze(text: str) -> str:
    """Text without whitespace, table bars or the column headers a loader writes into a row
    ("구분: 직무 전문교육 | 대상 인원: 310"): what survives any wrapping or cell layout."""
    rows = [" | ".join(re.sub(r"^[^:|]{1,40}: ", "", c.strip()) for c in line.split("|")) if "|" in line else line
            for line in text.split("\n")]
    return re.sub(r"[\s|]+", "", "\n".join(rows))


def without_running_lines(page_text: str) -> str:
    """A PDF page's text without its running header (first line, '… · 인사팀 · 제목') and '- n -' footer."""
    lines = page_text.splitlines()
    if lines and " · " in lines[0]:
        lines = lines[1:]
    if lines and re.fullmatch(r"- \d+ -", lines[-1].strip()):
        lines = lines[:-1]
    return "\n".join(lines)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if FONT is None:
        pytest.skip("no Hangul TrueType font (fonts-nanum)")
    return generate_enterprise(tmp_path_factory.mktemp("devdata"), seed=0)


@pytest.fixture(scope="module")
def loaded(enterprise: Path) -> dict[str, str]:
    """{doc_file: the loader's text of that file (title, headings and blocks)}."""
    texts = {}
    for row in read_jsonl(enterprise / "manifest.jsonl"):
        (doc,) = load_file(enterprise / row["doc_file"])
        assert doc.doc_id == row["doc_id"]
        parts = [doc.title]
        for block in doc.blocks:
            text = without_running_lines(block.text) if block.page else block.text
            parts += [block.heading or "", text]
        texts[row["doc_file"]] = "\n".join(parts)
    return texts


# ---------------------------------------------------------------- the specs (no rendering)


def test_the_set_has_15_documents_of_every_kind_in_three_formats() -> None:
    docs = all_docs()
    assert len(docs) >= 15
    assert {d.kind for d in docs} == {"규정", "보고서", "보도자료", "회의록", "계약서", "안내문"}
    assert Counter(d.fmt for d in docs) == {"pdf": 9, "hwpx": 3, "docx": 3}
    assert len({d.name for d in docs}) == len(docs)


def test_at_least_60_questions_a_third_multi_part_with_their_joining_words() -> None:
    qas = [qa for d in all_docs() for qa in d.qas]
    assert len(qas) >= 60
    multi = [qa for qa in qas if qa.multi]
    assert len(multi) * 3 >= len(qas)
    assert all(PARTS.search(qa.query) for qa in multi), [qa.query for qa in multi if not PARTS.search(qa.query)]


def test_gold_answers_are_long_form() -> None:
    for doc in all_docs():
        for qa in doc.qas:
            sentences = [s for s in re.split(r"(?<=[다요])\.\s*", qa.answer) if s.strip()]
            assert 2 <= len(sentences) <= 5, qa.answer
            assert qa.answer.endswith("."), qa.answer


def test_every_anchor_and_every_number_of_a_gold_answer_is_in_its_document() -> None:
    for doc in all_docs():
        text = body_text(doc)
        for qa in doc.qas:
            for anchor in qa.anchors:
                assert anchor in text, (doc.name, anchor)
            for number in NUMBER.findall(qa.answer):
                assert number in text, (doc.name, number, qa.answer)


def test_tables_have_captions_and_column_headers() -> None:
    tables = [line for d in all_docs() for line in d.body.splitlines() if line.startswith("표: ")]
    assert len(tables) >= 5
    assert all(re.match(r"표: <표 \d+> .+\(.*단위: .+\)", t) for t in tables)
    assert any(re.search(r"\| 구분 \| 2024년", d.body) for d in all_docs())


# ---------------------------------------------------------------- rendered and loaded


def test_every_file_loads_and_gold_ids_are_the_loaders_doc_ids(enterprise: Path, loaded: dict[str, str]) -> None:
    manifest = read_jsonl(enterprise / "manifest.jsonl")
    assert len(manifest) >= 15 and len(loaded) == len(manifest)
    ids = doc_ids_for(enterprise)
    for row in read_jsonl(enterprise / "qa.jsonl"):
        assert row["gold_ids"] == [ids[row["doc_file"]]]
        assert set(row) >= {"qid", "query", "answer", "gold_ids", "doc_file", "page"}


def test_gold_numbers_and_anchors_survive_loading(loaded: dict[str, str]) -> None:
    by_name = {d.name: d for d in all_docs()}
    for doc_file, text in loaded.items():
        doc = by_name[Path(doc_file).stem]
        flat = squeeze(text)  # the row "직무 전문교육 | 310 | …" is read with its headers
        for qa in doc.qas:
            for number in NUMBER.findall(qa.answer):
                # a number of a column header ("2024년 상반기") is in the text, not in each squeezed cell
                assert number in flat or number in re.sub(r"\s", "", text), (doc_file, number)
            for anchor in qa.anchors:
                assert squeeze(anchor) in flat, (doc_file, anchor)


@needs_font
def test_pdfs_are_multi_page_with_running_header_footer_and_breaks_inside_words(enterprise: Path) -> None:
    pdfs = [row for row in read_jsonl(enterprise / "manifest.jsonl") if row["format"] == "pdf"]
    assert len(pdfs) == 9
    assert sum(row["pages"] >= 2 for row in pdfs) >= 6
    bodies = {d.name: d.body for d in all_docs()}
    breaks = 0
    for row in pdfs:
        pages = [page.extract_text() for page in PdfReader(enterprise / row["doc_file"]).pages]
        assert all(f"- {n} -" in text for n, text in enumerate(pages, start=1))
        assert all(row["title"] in text.splitlines()[0] for text in pages)  # the running header
        lines = [line for text in pages for line in text.splitlines()]
        # A break inside a sentence: the line ends without . : and the text goes on in the body.
        body = bodies[Path(row["doc_file"]).stem]
        inside_word = [
            (a, b)
            for a, b in pairwise(lines)
            if a and b and re.match(r"[가-힣]", a[-1]) and re.match(r"[가-힣]", b[0]) and a[-6:] + b[:4] in body
        ]
        assert inside_word, row["doc_file"]
        breaks += len(inside_word)
    assert breaks >= 20


def test_questions_know_their_page_and_some_span_a_page_break(enterprise: Path) -> None:
    rows = read_jsonl(enterprise / "qa.jsonl")
    by_name = {d.name: d for d in all_docs()}
    texts: dict[str, list[str]] = {}
    for row in rows:
        if row["format"] != "pdf":
            assert row["page"] is None
            continue
        if row["doc_file"] not in texts:
            pages = PdfReader(enterprise / row["doc_file"]).pages
            texts[row["doc_file"]] = [squeeze(without_running_lines(p.extract_text())) for p in pages]
        pages = texts[row["doc_file"]]
        qa = by_name[Path(row["doc_file"]).stem].qas[int(row["qid"].rsplit("-q", 1)[1]) - 1]
        assert row["page"] == row["pages"][0]
        on_pages = "".join(pages[n - 1] for n in range(row["pages"][0], row["pages"][-1] + 1))
        assert all(squeeze(anchor) in on_pages for anchor in qa.anchors), row["qid"]
        assert squeeze(qa.anchors[0])[:1] in pages[row["page"] - 1], row["qid"]
    assert sum(row["spans_page_break"] for row in rows) >= 3
    assert sum(row["spans_wrapped_line"] for row in rows) >= 15


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    if FONT is None:
        pytest.skip("no Hangul TrueType font (fonts-nanum)")
    only = ["01_취업규칙", "03_정보보안_지침", "04_복리후생_규정"]
    a = read_jsonl(generate_enterprise(tmp_path / "a", seed=3, only=only) / "manifest.jsonl")
    b = read_jsonl(generate_enterprise(tmp_path / "b", seed=3, only=only) / "manifest.jsonl")
    assert [r["sha256"] for r in a] == [r["sha256"] for r in b]
    assert len(a) == 3


# ---------------------------------------------------------------- KorQuAD as PDF


@needs_font
@pytest.mark.skipif(not KORQUAD.exists(), reason="KorQuAD 1.0 dev set not present")
def test_korquad_paragraphs_become_wrapped_pdfs_with_their_questions(tmp_path: Path) -> None:
    folder = generate_korquad_pdf(tmp_path, KORQUAD, sample=4, seed=0, per_file=2)
    manifest = read_jsonl(folder / "manifest.jsonl")
    rows = read_jsonl(folder / "qa.jsonl")
    assert len(manifest) == 2 and sum(len(m["clean_ids"]) for m in manifest) == 4
    assert rows and {r["clean_id"] for r in rows} <= {c for m in manifest for c in m["clean_ids"]}
    for m in manifest:
        (doc,) = load_file(folder / m["doc_file"])
        assert doc.doc_id == m["doc_id"] and len(doc.blocks) == 2  # one page per paragraph
        assert max(len(line) for b in doc.blocks for line in b.text.splitlines()) < 60  # narrow lines
        pages = {b.page: squeeze(b.text) for b in doc.blocks}
        for row in (r for r in rows if r["doc_file"] == m["doc_file"]):
            assert row["gold_ids"] == [m["doc_id"]]
            if row["answer_drawn"]:
                assert squeeze(row["answer"]) in pages[row["page"]], row["qid"]
    # the clean path holds the same paragraphs and questions, gold by paragraph id
    clean = read_jsonl(folder / "clean_corpus.jsonl")
    clean_qa = read_jsonl(folder / "clean_qa.jsonl")
    assert sorted(c["id"] for c in clean) == sorted(c for m in manifest for c in m["clean_ids"])
    assert [q["qid"] for q in clean_qa] == [r["qid"] for r in rows]
    assert all(q["gold_ids"] == [q["clean_id"]] for q in clean_qa)
    texts = {c["id"]: c["text"] for c in clean}
    assert all(q["answer"] in texts[q["clean_id"]] for q in clean_qa)
