"""PowerPoint and Excel files: slides as pages, rows with their headers, hidden parts skipped,
legacy binary formats refused with what to do."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from openpyxl import Workbook
from pptx import Presentation
from pptx.util import Cm

from ingest.chunk import Chunker
from ingest.errors import EncryptedDocumentError, UnsupportedFileType
from ingest.load import load_file
from ingest.loaders.slides_sheets import cell_text
from ingest.tables import header_row, table_lines
from tests.unit.ingest.test_load import load_one, raises_for


def pptx_bytes(hidden_second: bool = False) -> bytes:
    deck = Presentation()
    deck.core_properties.title = "2025 사업계획"
    layout = deck.slide_layouts[5]  # title only
    one = deck.slides.add_slide(layout)
    one.shapes.title.text = "추진 배경"
    # placed lower on the slide but added first: reading order is top to bottom
    low = one.shapes.add_textbox(Cm(2), Cm(12), Cm(20), Cm(3)).text_frame
    low.text = "둘째로 고객 응대 시간을 30% 줄인다."
    high = one.shapes.add_textbox(Cm(2), Cm(5), Cm(20), Cm(3)).text_frame
    high.text = "첫째로 현장 점검을 디지털로 바꾼다."
    one.notes_slide.notes_text_frame.text = "발표자 메모: 예산은 기획팀과 협의 중이다."
    two = deck.slides.add_slide(layout)
    two.shapes.title.text = "예산"
    table = two.shapes.add_table(3, 3, Cm(2), Cm(5), Cm(20), Cm(4)).table
    for r, row in enumerate([["구분", "예산(억원)", "비고"], ["2024년", "10", ""], ["2025년", "12.5", "증액"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    if hidden_second:
        two._element.set("show", "0")
    three = deck.slides.add_slide(layout)
    three.shapes.title.text = "감사합니다"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "예산"
    sheet.append(["구분", "예산(억원)", "비고"])
    sheet.append(["2024년", 10, None])
    sheet.append(["2025년", 12.5, "증액"])
    sheet.append([None, None, None])
    sheet.append(["합계", "=B2+B3", None])
    hidden = book.create_sheet("내부 단가")
    hidden.append(["품목", "단가"])
    hidden.append(["비밀 단가표", 777])
    hidden.sheet_state = "hidden"
    staff = book.create_sheet("인원")
    staff.append(["부서", "인원(명)"])
    staff.append(["인사팀", 12])
    book.properties.title = "예산 현황"
    out = io.BytesIO()
    book.save(out)
    return with_cached_value(out.getvalue(), "xl/worksheets/sheet1.xml", "B2+B3", "22.5")


def with_cached_value(data: bytes, part: str, formula: str, value: str) -> bytes:
    """The workbook with a formula's last calculated value saved, as Excel does (openpyxl writes none)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == part:
                text = raw.decode()
                assert f"<f>{formula}</f><v></v>" in text or f"<f>{formula}</f><v />" in text
                text = re.sub(rf"<f>{re.escape(formula)}</f><v\s*/?>(?:</v>)?", f"<f>{formula}</f><v>{value}</v>", text)
                raw = text.encode()
            dst.writestr(info, raw)
    return out.getvalue()


def test_slides_are_pages_in_reading_order_with_tables_notes_and_titles(write_file):
    doc = load_one(write_file("사업계획.pptx", pptx_bytes()))
    assert doc.title == "2025 사업계획" and doc.pages == [1, 2, 3]
    first = [b for b in doc.blocks if b.page == 1]
    assert {b.heading for b in first} == {"추진 배경"}
    text = "\n".join(b.text for b in first)
    assert text.index("첫째로") < text.index("둘째로") < text.index("발표자 메모")
    assert "추진 배경" not in text  # the title is the heading, not a line again
    budget = "\n".join(b.text for b in doc.blocks if b.page == 2).split("\n")
    assert budget == ["구분: 2024년 | 예산(억원): 10", "구분: 2025년 | 예산(억원): 12.5 | 비고: 증액"]
    assert [b.text for b in doc.blocks if b.page == 3] == ["감사합니다"]  # a title-only slide


def test_a_hidden_slide_is_skipped_and_the_slide_number_stays_the_page(write_file):
    doc = load_one(write_file("사업계획.pptx", pptx_bytes(hidden_second=True)))
    assert doc.pages == [1, 3] and "12.5" not in doc.text


def test_sheet_rows_carry_their_headers_and_formulas_their_saved_values(write_file):
    doc = load_one(write_file("예산.xlsx", xlsx_bytes()))
    assert doc.title == "예산 현황"
    assert [(b.heading, b.text) for b in doc.blocks] == [
        ("예산", "구분: 2024년 | 예산(억원): 10\n구분: 2025년 | 예산(억원): 12.5 | 비고: 증액\n구분: 합계 | 예산(억원): 22.5"),
        ("인원", "부서: 인사팀 | 인원(명): 12"),
    ]
    assert "비밀 단가표" not in doc.text  # a hidden sheet stays hidden


def test_a_row_is_never_split_across_chunks_and_keeps_its_sheet(write_file):
    book = Workbook()
    sheet = book.active
    sheet.title = "출장비"
    sheet.append(["직급", "일비(원)", "식비(원)", "숙박비(원)"])
    for i in range(60):
        sheet.append([f"{i + 1}급", 20_000 + i, 25_000 + i, 70_000 + i])
    out = io.BytesIO()
    book.save(out)
    (doc,) = load_file(write_file("출장비.xlsx", out.getvalue()))
    chunks = Chunker(lambda texts: [len(t) for t in texts], max_tokens=120, overlap_tokens=0).chunk(doc)
    assert len(chunks) > 5 and all(c.heading == "출장비" for c in chunks)
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            assert re.fullmatch(r"직급: \d+급 \| 일비\(원\): \d+ \| 식비\(원\): \d+ \| 숙박비\(원\): \d+", line), line


@pytest.mark.parametrize(("name", "kind", "new"), [("옛문서.doc", "Word 97-2003", ".docx"),
                                                  ("옛발표.ppt", "PowerPoint 97-2003", ".pptx"),
                                                  ("옛표.xls", "Excel 97-2003", ".xlsx")])
def test_legacy_office_files_are_refused_with_what_to_do(write_file, name, kind, new):
    reason = raises_for(write_file(name, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)), UnsupportedFileType)
    assert kind in reason and f"save it as {new}" in reason


@pytest.mark.parametrize("name", ["암호.pptx", "암호.xlsx"])
def test_a_password_protected_file_says_so(write_file, name):
    reason = raises_for(write_file(name, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)), EncryptedDocumentError)
    assert "password-protected" in reason


@pytest.mark.parametrize("name", ["깨진.pptx", "깨진.xlsx"])
def test_a_zip_that_is_no_office_file_is_refused_by_name(write_file, name):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.xml", "<a>안녕</a>")
    reason = raises_for(write_file(name, out.getvalue()))
    assert f"not a valid {name[-5:]} file" in reason


def test_cells_rows_and_tables_read_as_a_person_reads_them():
    import datetime as dt

    assert [cell_text(v) for v in (12.0, 0.125, dt.datetime(2025, 3, 14), None, "  두  칸 ")] == [
        "12", "0.125", "2025-03-14", "", "두 칸"]
    assert header_row(["구분", "", "비고"], ["2024년", "12.5", "구분"]) == "구분: 2024년 | 12.5 | 비고: 구분"
    assert list(table_lines([["", ""], ["항목", "값"]])) == ["항목 | 값"]  # a header with no rows is its cells


def test_a_merged_header_cell_of_a_slide_table_names_both_columns(write_file):
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
    table = slide.shapes.add_table(2, 3, Cm(2), Cm(2), Cm(20), Cm(3)).table
    for c, text in enumerate(["구분", "인원", ""]):
        table.cell(0, c).text = text
    for c, text in enumerate(["법정 의무교육", "640", "628"]):
        table.cell(1, c).text = text
    table.cell(0, 1).merge(table.cell(0, 2))
    out = io.BytesIO()
    deck.save(out)
    doc = load_one(write_file("교육.pptx", out.getvalue()))
    assert doc.text == "구분: 법정 의무교육 | 인원: 640 | 인원: 628"


def test_a_slide_table_with_two_header_rows_and_a_cell_merged_over_rows(write_file):
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
    table = slide.shapes.add_table(5, 4, Cm(2), Cm(2), Cm(20), Cm(6)).table
    rows = [["구분", "예산(억원)", "", "비고"], ["", "2024년", "2025년", ""],
            ["본사", "12.5", "13.0", "증액"], ["지역본부", "8.0", "7.5", "감액"], ["", "9.0", "8.5", "감액"]]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    table.cell(0, 1).merge(table.cell(0, 2))
    table.cell(0, 0).merge(table.cell(1, 0))
    table.cell(0, 3).merge(table.cell(1, 3))
    table.cell(3, 0).merge(table.cell(4, 0))  # "지역본부" over its two rows
    out = io.BytesIO()
    deck.save(out)
    assert load_one(write_file("예산.pptx", out.getvalue())).text.split("\n") == [
        "구분: 본사 | 예산(억원) 2024년: 12.5 | 예산(억원) 2025년: 13.0 | 비고: 증액",
        "구분: 지역본부 | 예산(억원) 2024년: 8.0 | 예산(억원) 2025년: 7.5 | 비고: 감액",
        "구분: 지역본부 | 예산(억원) 2024년: 9.0 | 예산(억원) 2025년: 8.5 | 비고: 감액",
    ]
