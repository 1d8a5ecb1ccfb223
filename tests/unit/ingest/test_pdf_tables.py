"""PDF tables (pdfplumber): a ruled table's rows come out whole with their column headers (two
header rows, merged cells) under the table's caption, its cells leave the page's running text,
a search finds a row by its header words; a page pdfplumber cannot read, or one over the
limits, keeps the text it had before."""

from __future__ import annotations

import io
import logging

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from pypdf.generic import RectangleObject

import ingest.loaders.pdf_tables as pdf_tables
from ingest.chunk import Chunker, SentenceSplitter, index_text
from ingest.load import load_file
from retrieval.bm25 import BM25Index
from tests.pdfs import build_table_pdf

BEFORE = ["부서별 예산은 아래 표와 같이 편성하였다.", "예산은 이사회 의결을 거쳐 확정한다."]
CAPTION = "<표 1> 부서별 예산 현황 (단위: 억원)"
AFTER = ["표의 금액은 부가세를 포함하지 않는다."]
ROWS = ["구분: 본사 | 예산(억원) 2024년: 12.5 | 예산(억원) 2025년: 13.0 | 비고: 증액",
        "구분: 지역본부 | 예산(억원) 2024년: 8.0 | 예산(억원) 2025년: 7.5 | 비고: 감액"]


@pytest.fixture
def budget_pdf(write_file, korean_ttf):
    return write_file("예산.pdf", build_table_pdf(korean_ttf, BEFORE, CAPTION, after=AFTER))


def test_a_table_row_comes_out_whole_with_both_header_rows_under_its_caption(budget_pdf):
    (doc,) = load_file(budget_pdf)
    assert [(b.page, b.heading, b.layout, b.text.split("\n")) for b in doc.blocks] == [
        (1, None, True, BEFORE),
        (1, CAPTION, False, ROWS),
        (1, None, True, AFTER),
    ]


def test_a_search_finds_the_row_by_its_header_words(budget_pdf, tokenizer):
    (doc,) = load_file(budget_pdf)
    chunker = Chunker(lambda texts: [len(t.split()) for t in texts], max_tokens=16, overlap_tokens=0,
                      splitter=SentenceSplitter(tokenizer.kiwi))
    chunks = chunker.chunk(doc)
    assert {c.text for c in chunks} >= set(ROWS)  # one row a chunk here, never cut
    index = BM25Index.build(tokenizer.tokenize_many([index_text(c, True) for c in chunks]))
    (row, _), *_ = index.search(tokenizer.tokenize("지역본부의 2025년 예산(억원)은 얼마인가요?"), k=3)
    assert chunks[row].text == ROWS[1] and chunks[row].heading == CAPTION
    (row, _), *_ = index.search(tokenizer.tokenize("본사 비고"), k=3)
    assert chunks[row].text == ROWS[0]


def test_a_table_going_on_over_a_page_break_keeps_its_headers_and_caption(write_file, korean_ttf):
    more = [(0, 0, 1, 1, "연구소"), (0, 1, 1, 1, "5.5"), (0, 2, 1, 1, "6.0"), (0, 3, 1, 1, "신설")]
    data = build_table_pdf(korean_ttf, BEFORE, CAPTION, after=AFTER, running_header="대외비 · 재무팀", next_page=more)
    (doc,) = load_file(write_file("예산.pdf", data))
    tables = [(b.page, b.heading, b.text) for b in doc.blocks if not b.layout]
    assert tables == [
        (1, CAPTION, "\n".join(ROWS)),
        (2, CAPTION, "구분: 연구소 | 예산(억원) 2024년: 5.5 | 예산(억원) 2025년: 6.0 | 비고: 신설"),
    ]
    assert [b.text for b in doc.blocks if b.page == 2 and b.layout] == ["대외비 · 재무팀", AFTER[0]]


def test_a_page_pdfplumber_chokes_on_keeps_its_text(budget_pdf, monkeypatch, caplog):
    before = "\n".join(b.text for b in load_file(budget_pdf)[0].blocks)

    def choke(*args):
        raise ValueError("pdfminer: broken content stream")

    monkeypatch.setattr(pdf_tables, "_page_tables", choke)
    with caplog.at_level(logging.WARNING, logger="ingest.loaders.pdf_tables"):
        (doc,) = load_file(budget_pdf)
    assert [(b.heading, b.layout) for b in doc.blocks] == [(None, True)]  # the page as pypdf reads it
    assert "지역본부 8.0 7.5 감액" in doc.blocks[0].text and doc.blocks[0].text != before
    assert "page 1: tables not read (ValueError: pdfminer: broken content stream)" in caplog.text


@pytest.mark.parametrize("limit", ["MAX_PAGE_EDGES", "MAX_PAGE_SEGMENTS", "MAX_PAGE_CHARS"])
def test_a_page_over_a_limit_is_not_searched_for_tables(budget_pdf, monkeypatch, caplog, limit):
    monkeypatch.setattr(pdf_tables, limit, 10)
    with caplog.at_level(logging.WARNING, logger="ingest.loaders.pdf_tables"):
        (doc,) = load_file(budget_pdf)
    assert [(b.heading, b.layout) for b in doc.blocks] == [(None, True)]
    assert "tables on it are not looked for" in caplog.text


def test_a_page_of_thousands_of_rules_is_skipped_before_pdfplumber_reads_it(write_file, korean_ttf, monkeypatch):
    pdf = FPDF()
    pdf.add_font("korean", fname=str(korean_ttf))
    pdf.set_font("korean", size=11)
    pdf.add_page()
    pdf.cell(0, 8, "이 쪽에는 선이 아주 많다.", new_x="LMARGIN", new_y="NEXT")
    for i in range(pdf_tables.MAX_PAGE_SEGMENTS + 1):
        x = 20 + (i % 170)
        pdf.line(x, 40, x, 40 + (i % 200))
    seen = []
    monkeypatch.setattr(pdf_tables, "_page_tables", lambda path, number, page: seen.append(number) or [])
    (doc,) = load_file(write_file("선.pdf", bytes(pdf.output())))
    assert doc.text == "이 쪽에는 선이 아주 많다." and seen == []


def test_a_box_around_a_paragraph_is_no_table(write_file, korean_ttf):
    note = [(0, 0, 1, 4, "※ 예산은 이사회 의결로 확정된다.")]
    (doc,) = load_file(write_file("안내.pdf", build_table_pdf(korean_ttf, BEFORE, "유의사항", cells=note)))
    assert [b.layout for b in doc.blocks] == [True]
    assert doc.text.split("\n") == [*BEFORE, "유의사항", "※ 예산은 이사회 의결로 확정된다."]


def _reshaped(data: bytes, change) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(writer.pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_media_box_off_the_origin_still_places_the_table(write_file, korean_ttf):
    def shift(page):
        page.mediabox = RectangleObject([-30, -40, float(page.mediabox.right) - 30, float(page.mediabox.top) - 40])

    data = _reshaped(build_table_pdf(korean_ttf, BEFORE, CAPTION, after=AFTER), shift)
    (doc,) = load_file(write_file("예산.pdf", data))
    assert [(b.heading, b.text.split("\n")) for b in doc.blocks] == [(None, BEFORE), (CAPTION, ROWS), (None, AFTER)]


def test_a_rotated_page_or_misplaced_pieces_keep_the_text_whole(write_file, korean_ttf, budget_pdf):
    data = _reshaped(build_table_pdf(korean_ttf, BEFORE, CAPTION, after=AFTER), lambda page: page.rotate(90))
    (doc,) = load_file(write_file("돌린.pdf", data))
    assert [(b.heading, b.layout) for b in doc.blocks] == [(None, True)] and "지역본부" in doc.text
    # pypdf's pieces read 40 points off pdfplumber's boxes: the cells are not where the pieces are
    page = PdfReader(budget_pdf).pages[0]
    text, _ = _read(page)
    tables = pdf_tables.find_tables(budget_pdf, budget_pdf.read_bytes(), {1: _read(page)})
    assert pdf_tables.split_page(budget_pdf, page, text, tables[1], float(page.mediabox.height)) is not None
    assert pdf_tables.split_page(budget_pdf, page, text, tables[1], float(page.mediabox.height) + 40) is None


def _read(page) -> tuple[str, pdf_tables.Rulings]:
    rulings = pdf_tables.Rulings()
    return page.extract_text(visitor_operand_before=rulings.visit), rulings
