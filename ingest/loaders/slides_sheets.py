"""Slides and sheets: `.pptx` (python-pptx) and `.xlsx` (openpyxl), and the refusal of their legacy forms.

    load_pptx(path, data, limits) -> ("2025 사업계획", [Block("…", page=1, heading="추진 배경"), …])
        one slide = one page; its title is the heading, then its text frames and tables in
        reading order (top to bottom, left to right), then its speaker notes; hidden slides skipped
    load_xlsx(path, data, limits) -> (None, [Block("구분: 2024년 | 예산(억원): 12.5 | 비고: 증액", heading="예산"), …])
        one line per row with the sheet's header row ("header: value"), the sheet name as the
        section; formulas read as their cached values; hidden sheets skipped

A table row keeps its column headers (`ingest.tables`), so a search for a header word finds
the row and an answer quoting the row says which figure is which. Both formats are zip
containers and pass `read_zip_safely` first (`containers`), like .docx and .hwpx.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.errors import LoadError, UnsupportedFileType
from ingest.tables import Cell, layout, table_lines
from ingest.types import Block

from .common import LoadLimits, group_lines
from .containers import read_zip_safely, refuse_encrypted_office
from .registry import Format, Magic, register

LEGACY = {
    ".doc": ("Word 97-2003", ".docx"),
    ".ppt": ("PowerPoint 97-2003", ".pptx"),
    ".xls": ("Excel 97-2003", ".xlsx"),
}


def refuse_legacy(path: Path) -> None:
    """Raise for a legacy .doc/.ppt/.xls file: say which format it is and what to convert it to."""
    ext = path.suffix.lower()
    if ext in LEGACY:
        kind, new = LEGACY[ext]
        raise UnsupportedFileType(
            path, f"legacy {kind} format ({ext}) is not read: open it and save it as {new} "
            f"(File > Save As > {new}), then add the {new} file"
        )


def cell_text(value: object) -> str:
    """A cell value as a person reads it: 12.0 -> "12", 0.125 -> "0.125", a date -> "2025-03-14"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".10g")
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


# ---------------------------------------------------------------- .pptx


def _slide_hidden(slide: object) -> bool:
    return slide._element.get("show") in ("0", "false")  # type: ignore[attr-defined]


def _shapes_in_reading_order(shapes: Iterable) -> list:
    """Shapes top to bottom, then left to right; a group's shapes in place of the group."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    out = []
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            out.extend(_shapes_in_reading_order(shape.shapes))
        else:
            out.append(shape)
    return sorted(out, key=lambda s: (s.top or 0, s.left or 0))


def _pptx_table_rows(table: object) -> list[list[str]]:
    """A slide table's rows as cell texts, merged cells as `ingest.tables.layout` says (a header
    cell merged over columns names each of them; a cell merged over rows repeats in each)."""
    return layout(
        [Cell(" ".join(cell.text.split()), cell.span_width, cell.span_height, col=c)
         for c, cell in enumerate(row.cells) if not cell.is_spanned]
        for row in table.rows  # type: ignore[attr-defined]
    )


def _paragraph_lines(text_frame: object) -> Iterator[str]:
    # python-pptx writes a soft line break (<a:br/>) inside a paragraph as "\v"
    for paragraph in text_frame.paragraphs:  # type: ignore[attr-defined]
        text = paragraph.text.replace("\v", "\n").strip()
        if text:
            yield text


def load_pptx(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Slides as pages: the title as heading, text frames and tables in reading order, then the
    speaker notes. Hidden slides are skipped. Title: core properties, else the first slide title."""
    from pptx import Presentation

    refuse_encrypted_office(path, data, ".pptx")
    read_zip_safely(path, data, limits, ".pptx")
    try:
        presentation = Presentation(io.BytesIO(data))
    except Exception as exc:  # python-pptx raises KeyError, PackageNotFoundError, lxml errors...
        raise LoadError(path, f"not a valid .pptx file: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    first_title: str | None = None
    for number, slide in enumerate(presentation.slides, start=1):
        if _slide_hidden(slide):
            continue
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        first_title = first_title or title or None
        lines: list[tuple[str | None, str]] = []
        for shape in _shapes_in_reading_order(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                lines.extend((title or None, line) for line in table_lines(_pptx_table_rows(shape.table)))
            elif shape.has_text_frame:
                lines.extend((title or None, line) for line in _paragraph_lines(shape.text_frame))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.extend((title or None, line) for line in _paragraph_lines(slide.notes_slide.notes_text_frame))
        if not lines and title:
            lines.append((None, title))  # a title-only slide ("감사합니다", a section divider) is its text
        blocks.extend(group_lines(lines, page=number))
    title = (presentation.core_properties.title or "").strip() or first_title
    return title, blocks


# ---------------------------------------------------------------- .xlsx


def load_xlsx(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Visible sheets in order, each a section named by the sheet; one line per row written
    with the sheet's header row (its first non-empty row). Formulas read as the values Excel
    last calculated and saved (a file written by a program that never calculated them has none)."""
    from openpyxl import load_workbook

    refuse_encrypted_office(path, data, ".xlsx")
    read_zip_safely(path, data, limits, ".xlsx")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, ValueError...
        raise LoadError(path, f"not a valid .xlsx file: {type(exc).__name__}: {exc}") from exc
    try:
        lines: list[tuple[str | None, str]] = []
        for sheet in workbook.worksheets:
            if sheet.sheet_state != "visible":
                continue  # hidden and very hidden sheets: lookup tables, drafts, what was not to be shown
            rows = ([cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True))
            lines.extend((sheet.title, line) for line in table_lines(rows, always=True))
        title = (workbook.properties.title or "").strip() or None
    finally:
        workbook.close()
    return title, group_lines(lines)


register(Format("PowerPoint presentation", (".pptx",), load=load_pptx, accepts=("zip", "ole"),
                magic=(Magic("pptx", "a PowerPoint presentation", lambda p: "ppt/presentation.xml" in p.zip_names),)))
register(Format("Excel workbook", (".xlsx",), load=load_xlsx, accepts=("zip", "ole"),
                magic=(Magic("xlsx", "an Excel workbook", lambda p: "xl/workbook.xml" in p.zip_names),)))
