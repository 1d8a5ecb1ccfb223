"""Table rows keep their column headers in every format that has cells: .docx, .hwpx, .html
(and .pptx/.xlsx in test_load_slides_sheets.py); merged header cells name every column they cover."""

from __future__ import annotations

import io

import docx

from ingest.tables import header_row, spread, table_lines
from tests.unit.ingest.conftest import build_hwpx, hwpx_paragraph, hwpx_section
from tests.unit.ingest.test_load import load_one

TRAINING = [["구분", "대상 인원", "이수 인원", "이수율"],
            ["법정 의무교육", "640", "628", "98.1"],
            ["직무 전문교육", "310", "287", "92.6"]]
WRITTEN = ["구분: 법정 의무교육 | 대상 인원: 640 | 이수 인원: 628 | 이수율: 98.1",
           "구분: 직무 전문교육 | 대상 인원: 310 | 이수 인원: 287 | 이수율: 92.6"]


def test_rows_of_a_table_with_a_header_row_carry_the_headers():
    assert list(table_lines(TRAINING)) == WRITTEN
    # a form of labels and values (two columns) says what each row is by itself: kept as it is
    form = [["계약명", "업무용 노트북 공급"], ["계약 금액", "487,000,000원"]]
    assert list(table_lines(form)) == ["계약명 | 업무용 노트북 공급", "계약 금액 | 487,000,000원"]
    # a first row of figures is data, not a header
    figures = [["2023", "100", "120"], ["2024", "110", "130"]]
    assert list(table_lines(figures)) == ["2023 | 100 | 120", "2024 | 110 | 130"]
    # a sheet always has its header row; an empty cell is left out, not written as "비고: "
    assert list(table_lines([["부서", "인원"], ["인사팀", "12"]], always=True)) == ["부서: 인사팀 | 인원: 12"]
    assert header_row(["구분", "예산", "비고"], ["2024년", "12.5", ""]) == "구분: 2024년 | 예산: 12.5"
    assert spread([("합계", 2), ("487", 1)], header=False) == ["합계", "", "487"]


def test_docx_table_rows_carry_headers_and_a_merged_header_names_both_columns(write_file):
    document = docx.Document()
    document.add_paragraph("교육 실적은 다음과 같다.")
    table = document.add_table(rows=3, cols=4)
    rows = [["구분", "인원", "", "이수율"], ["법정 의무교육", "640", "628", "98.1"], ["직무 전문교육", "310", "287", "92.6"]]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    table.cell(0, 1).merge(table.cell(0, 2))  # "인원" over the two count columns
    out = io.BytesIO()
    document.save(out)
    doc = load_one(write_file("교육.docx", out.getvalue()))
    assert doc.text.split("\n")[1:] == [
        "구분: 법정 의무교육 | 인원: 640 | 인원: 628 | 이수율: 98.1",
        "구분: 직무 전문교육 | 인원: 310 | 인원: 287 | 이수율: 92.6",
    ]


def _tc(text: str, col: int, span: int = 1) -> str:
    return (f'<hp:tc><hp:subList>{hwpx_paragraph(text)}</hp:subList><hp:cellAddr colAddr="{col}" rowAddr="0"/>'
            f'<hp:cellSpan colSpan="{span}" rowSpan="1"/></hp:tc>')


def test_hwpx_table_rows_follow_cell_addresses_and_spans(write_file):
    header = _tc("품목", 0) + _tc("수량", 1) + _tc("단가", 2) + _tc("금액", 3)
    row = _tc("업무용 노트북(14형)", 0) + _tc("300", 1) + _tc("1,450,000", 2) + _tc("435,000,000", 3)
    total = _tc("합계", 0, span=3) + _tc("487,000,000", 3)  # "합계" over three columns, the sum under 금액
    table = f'<hp:p styleIDRef="0"><hp:run><hp:tbl><hp:tr>{header}</hp:tr><hp:tr>{row}</hp:tr><hp:tr>{total}</hp:tr></hp:tbl></hp:run></hp:p>'
    doc = load_one(write_file("계약서.hwpx", build_hwpx([hwpx_section(hwpx_paragraph("계약 물품은 다음과 같다."), table)])))
    assert doc.text.split("\n")[-2:] == [
        "품목: 업무용 노트북(14형) | 수량: 300 | 단가: 1,450,000 | 금액: 435,000,000",
        "품목: 합계 | 금액: 487,000,000",
    ]


def test_html_table_rows_carry_headers_and_the_caption_leads(write_file):
    cells = "".join(f"<tr>{''.join(f'<td>{c}</td>' for c in row)}</tr>" for row in TRAINING[1:])
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in TRAINING[0]) + "</tr>"
    html = f"<html><body><h2>교육 실적</h2><table><caption>표 1. 교육 실적</caption>{head}{cells}</table><p>끝.</p></body></html>"
    doc = load_one(write_file("교육.html", html.encode()))
    assert [(b.heading, b.text) for b in doc.blocks] == [("교육 실적", "\n".join(["표 1. 교육 실적", *WRITTEN, "끝."]))]


def test_an_index_read_with_older_table_rules_is_rechunked_by_the_next_ingest(tmp_path, embedder, tokenizer, monkeypatch):
    import ingest.build
    from ingest.build import IndexBuilder
    from ingest.chunk import Chunker, SentenceSplitter
    from ingest.tables import TABLES_VERSION

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "교육.html").write_text(
        "<table>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in TRAINING) + "</table>",
        encoding="utf-8")

    def builder():
        chunker = Chunker(embedder.count_tokens_many, max_tokens=200, overlap_tokens=4,
                          splitter=SentenceSplitter(tokenizer.kiwi))
        return IndexBuilder(tmp_path / "index", embedder, tokenizer, chunker)

    monkeypatch.setattr(ingest.build, "TABLES_VERSION", None)  # an index built before table rows had headers
    builder().ingest([docs])
    monkeypatch.undo()
    report = builder().ingest([docs])
    assert report.rechunked == [f"chunking.tables: index None, settings '{TABLES_VERSION}'"]
    assert (report.updated, report.unchanged) == (1, 0)
    assert builder().ingest([docs]).rechunked == []
