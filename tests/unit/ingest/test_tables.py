"""Table rows keep their column headers in every format that has cells: .docx, .hwpx, .html
(.pptx/.xlsx in test_load_slides_sheets.py, .pdf in test_pdf_tables.py); merged header cells name every
column they cover, two header rows name a column by both, a cell merged over rows repeats in each."""

from __future__ import annotations

import io

import docx

from ingest.tables import Cell, header_row, layout, spread, table_lines, two_row_header
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


# ---------------------------------------------------------------- two header rows, merged rows, titles

BUDGET_HEADER = [["구분", "예산(억원)", "예산(억원)", "비고"], ["구분", "2024년", "2025년", "비고"]]
BUDGET_ROWS = ["구분: 본사 | 예산(억원) 2024년: 12.5 | 예산(억원) 2025년: 13.0 | 비고: 증액",
               "구분: 지역본부 | 예산(억원) 2024년: 8.0 | 예산(억원) 2025년: 7.5 | 비고: 감액"]
BUDGET_DATA = [["본사", "12.5", "13.0", "증액"], ["지역본부", "8.0", "7.5", "감액"]]


def test_two_header_rows_name_each_column_by_both():
    assert list(table_lines(BUDGET_HEADER + BUDGET_DATA)) == BUDGET_ROWS
    # cells merged down from the top row may also be left empty (HWPX without repeating), and
    # sub-headers may be bare years when the cells merged down say it is a header
    assert two_row_header(["구분", "예산", "예산"], ["", "2024년", "2025년"]) == ["구분", "예산 2024년", "예산 2025년"]
    assert two_row_header(["구분", "예산", "예산"], ["구분", "2024", "2025"]) == ["구분", "예산 2024", "예산 2025"]
    # a data row under a merged header has a label of its own, or figures under the merged cell
    assert two_row_header(["구분", "인원", "인원", "이수율"], ["법정 의무교육", "640", "628", "98.1"]) is None
    assert two_row_header(["구분", "인원", "인원"], ["", "640", "628"]) is None
    assert two_row_header(["구분", "예산", "비고"], ["구분", "2024년", "비고"]) is None  # nothing merged above


def test_cells_merged_over_rows_repeat_in_every_row_they_cover():
    rows = layout([[Cell("부서"), Cell("항목"), Cell("금액")],
                   [Cell("인사팀", rowspan=2), Cell("교육"), Cell("10")],
                   [Cell("출장"), Cell("5")],
                   [Cell("합계", colspan=2), Cell("15")]])
    assert list(table_lines(rows)) == ["부서: 인사팀 | 항목: 교육 | 금액: 10", "부서: 인사팀 | 항목: 출장 | 금액: 5",
                                       "부서: 합계 | 금액: 15"]
    assert layout([[Cell("a", rowspan=10**9), Cell("b")], [Cell("c")]]) == [["a", "b"], ["a", "c"]]  # bounded


def test_a_row_that_is_one_cell_across_the_table_is_its_title():
    rows = [["2025년 교육 실적"] * 4, *TRAINING]
    assert list(table_lines(rows)) == ["2025년 교육 실적", *WRITTEN]


def test_html_rowspan_and_a_two_row_header(write_file):
    html = ("<table><caption>표 2. 부서별 예산</caption>"
            "<tr><th rowspan=2>구분</th><th colspan=2>예산(억원)</th><th rowspan=2>비고</th></tr>"
            "<tr><th>2024년</th><th>2025년</th></tr>"
            "<tr><td>본사</td><td>12.5</td><td>13.0</td><td>증액</td></tr>"
            "<tr><td>지역본부</td><td>8.0</td><td>7.5</td><td>감액</td></tr></table>"
            "<table><tr><th>부서</th><th>항목</th><th>금액</th></tr>"
            "<tr><td rowspan=2>인사팀</td><td>교육</td><td>10</td></tr><tr><td>출장</td><td>5</td></tr></table>")
    doc = load_one(write_file("예산.html", html.encode()))
    assert doc.text.split("\n") == ["표 2. 부서별 예산", *BUDGET_ROWS,
                                    "부서: 인사팀 | 항목: 교육 | 금액: 10", "부서: 인사팀 | 항목: 출장 | 금액: 5"]


def test_hwpx_row_spans_and_a_two_row_header(write_file):
    def tc(text, col, row, cols=1, rows=1):
        return (f'<hp:tc><hp:subList>{hwpx_paragraph(text)}</hp:subList><hp:cellAddr colAddr="{col}" rowAddr="{row}"/>'
                f'<hp:cellSpan colSpan="{cols}" rowSpan="{rows}"/></hp:tc>')

    trs = [tc("구분", 0, 0, rows=2) + tc("예산(억원)", 1, 0, cols=2) + tc("비고", 3, 0, rows=2),
           tc("2024년", 1, 1) + tc("2025년", 2, 1),
           *("".join(tc(c, i, r) for i, c in enumerate(cells)) for r, cells in enumerate(BUDGET_DATA, 2))]
    table = "<hp:p><hp:run><hp:tbl>" + "".join(f"<hp:tr>{tr}</hp:tr>" for tr in trs) + "</hp:tbl></hp:run></hp:p>"
    doc = load_one(write_file("예산.hwpx", build_hwpx([hwpx_section(hwpx_paragraph("예산은 다음과 같다."), table)])))
    assert doc.text.split("\n")[1:] == BUDGET_ROWS


def test_docx_vertically_merged_header_cells_make_two_header_rows(write_file):
    document = docx.Document()
    table = document.add_table(rows=4, cols=4)
    for r, row in enumerate([["구분", "예산(억원)", "", "비고"], ["", "2024년", "2025년", ""], *BUDGET_DATA]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    table.cell(0, 1).merge(table.cell(0, 2))
    table.cell(0, 0).merge(table.cell(1, 0))
    table.cell(0, 3).merge(table.cell(1, 3))
    out = io.BytesIO()
    document.save(out)
    assert load_one(write_file("예산.docx", out.getvalue())).text.split("\n") == BUDGET_ROWS
