"""Table rows as lines that keep their column headers: "구분: 2025년 | 예산(억원): 12.5 | 비고: 증액".

A table row cut from its header is a row of bare figures ("2025년 | 12.5 | 증액"): a search for
"예산" cannot find it and an answer quoting it cannot say which figure is which. Every loader
that sees a table's cells (.docx, .hwpx, .html, .pptx, .xlsx) writes its rows through
`table_lines`:

    list(table_lines([["구분", "대상 인원", "이수율"], ["직무 전문교육", "310", "92.6"]]))
    -> ["구분: 직무 전문교육 | 대상 인원: 310 | 이수율: 92.6"]

The first non-empty row is the header when it reads as one (no figures) and the table has at
least `MIN_COLUMNS` columns; a two-column table is most often a form of labels and values
("계약명 | 업무용 노트북 공급"), whose rows say what they are by themselves, and stays as it
is ("a | b" lines, its first row included). A sheet (`always=True`) always has a header row.

Two header rows — a top row whose merged cells stand over a second row of sub-headers — name
each column by both ("예산(억원) 2024년: 12.5"). A first row that is one cell across the whole
table is the table's title, written as a line of its own before the rows. Merged cells come in
through `layout`: a header cell merged over columns names each of them, a data cell merged over
columns is written once, and a cell merged over rows repeats in every row it covers, so each
row reads whole by itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .reflow import figures

# Version of the rules below; stored in the index's build config (`chunking.tables`), so an
# index read with older rules re-chunks its documents on the next ingest.
# 2: two header rows, a title row across the table, cells merged over rows repeated (HTML,
# HWPX, PPTX), PDF tables (pdfplumber).
TABLES_VERSION = "2"
MIN_COLUMNS = 3


def header_row(header: Sequence[str], cells: Sequence[str]) -> str:
    """One table row with its column headers; empty cells left out, a cell without header alone.

    header_row(["구분", "예산(억원)", "비고"], ["2024년", "12.5", ""]) -> "구분: 2024년 | 예산(억원): 12.5"
    """
    out = []
    for i, cell in enumerate(cells):
        if not cell:
            continue
        name = header[i] if i < len(header) else ""
        out.append(f"{name}: {cell}" if name and name != cell else cell)
    return " | ".join(out)


def reads_as_header(cells: Sequence[str]) -> bool:
    """Labels, not data: at least two non-empty cells and no cell a bare figure ("2,450", "92.6%")."""
    filled = [c for c in cells if c]
    return len(filled) >= 2 and not any(figures(c) == len(c.split()) for c in filled)


def table_lines(rows: Iterable[Sequence[str]], always: bool = False) -> Iterator[str]:
    """A table's rows (lists of cell texts) as lines, each written with the header row when the
    table has one (see the module docstring); empty rows are left out. `always`: the first
    non-empty row is the header whatever it holds (a spreadsheet)."""
    kept = [list(cells) for cells in rows if any(cells)]
    if not kept:
        return
    if len(kept) > 2 and (title := table_title(kept[0])):
        yield title
        kept = kept[1:]
    header = kept[0]
    width = max(len(cells) for cells in kept)
    if len(kept) == 1 or not (always or (width >= MIN_COLUMNS and reads_as_header(header))):
        for cells in kept:
            yield " | ".join(cells) if not always else " | ".join(c for c in cells if c)
        return
    body = kept[1:]
    if len(kept) > 2 and (both := two_row_header(header, kept[1])):
        header, body = both, kept[2:]
    for cells in body:
        if line := header_row(header, cells):
            yield line


def table_title(cells: Sequence[str]) -> str | None:
    """The text of a row that is one cell merged across a table of 2+ columns (its title), else None."""
    return cells[0] if len(cells) >= 2 and cells[0] and all(c == cells[0] for c in cells) else None


def two_row_header(top: Sequence[str], second: Sequence[str]) -> list[str] | None:
    """Column names from two header rows, or None when `second` is a data row.

    A header cell merged over columns (spread: the same text side by side) stands over the
    sub-headers of the second row; the second row's other cells are empty or repeat the cell
    merged down from above ("구분"):
    two_row_header(["구분", "예산(억원)", "예산(억원)", "비고"], ["구분", "2024년", "2025년", "비고"])
    -> ["구분", "예산(억원) 2024년", "예산(억원) 2025년", "비고"]
    A data row under a merged header ("인원" over 640 | 628) has a value of its own in another
    column (its label), or figures under the merged cell: it is no header.
    """
    width = max(len(top), len(second))
    top = [*top, *[""] * (width - len(top))]
    second = [*second, *[""] * (width - len(second))]
    merged = {i for i in range(width) if top[i] and
              ((i > 0 and top[i - 1] == top[i]) or (i + 1 < width and top[i + 1] == top[i]))}
    if not merged:
        return None
    under = [second[i] for i in sorted(merged)]
    if not all(under) or all(second[i] == top[i] for i in merged):
        return None
    others = [i for i in range(width) if i not in merged]
    if any(second[i] and second[i] != top[i] for i in others):
        return None
    repeated = any(second[i] and second[i] == top[i] for i in others)
    if not repeated and not reads_as_header(under):
        return None
    return [t if not s or s == t else f"{t} {s}" if t else s for t, s in zip(top, second)]


def spread(cells: Iterable[tuple[str, int]], header: bool) -> list[str]:
    """Cells with their column spans -> one text per column: a header cell merged over several
    columns names each of them; a data cell is written once, the columns it covers left empty
    (so the cells after it stay under their own headers).

    spread([("구분", 1), ("예산", 2)], header=True)  -> ["구분", "예산", "예산"]
    spread([("합계", 2), ("487", 1)], header=False)  -> ["합계", "", "487"]
    """
    out: list[str] = []
    for text, span in cells:
        span = max(1, min(span, MAX_SPAN))
        out.extend([text] * span if header else [text] + [""] * (span - 1))
    return out


MAX_SPAN = 1000  # columns or rows one cell may cover; more is a hostile file's, not a table's


@dataclass(frozen=True)
class Cell:
    """A table cell as a document stores it: its text, the columns and rows it covers, and its
    grid column when the format says (HWPX cellAddr, a PDF's ruling lines), else the next free one."""

    text: str
    colspan: int = 1
    rowspan: int = 1
    col: int | None = None


def layout(rows: Iterable[Sequence[Cell]]) -> list[list[str]]:
    """Rows of cells with their spans -> one text per grid column in every row.

    Columns as `spread` says (the first row is the header row). Rows: a cell merged over rows
    repeats its text in each row it covers, and the cells of those rows move past it.
    layout([[Cell("인사팀", rowspan=2), Cell("교육"), Cell("10")], [Cell("출장"), Cell("5")]])
    -> [["인사팀", "교육", "10"], ["인사팀", "출장", "5"]]
    """
    out: list[list[str]] = []
    above: dict[int, tuple[str, int]] = {}  # column -> (text, rows below it still covers)
    for r, cells in enumerate(rows):
        row: list[str] = []
        covered = {c: text for c, (text, _) in above.items()}
        above = {c: (text, left - 1) for c, (text, left) in above.items() if left > 1}
        for cell in cells:
            while len(row) in covered:
                row.append(covered.pop(len(row)))
            if cell.col is not None:
                target = min(cell.col, len(row) + MAX_SPAN)  # never backwards, never a huge jump
                while len(row) < target:
                    row.append(covered.pop(len(row), ""))
            start = len(row)
            row.extend(spread([(cell.text, cell.colspan)], header=r == 0))
            for c in range(start, len(row)):
                covered.pop(c, None)
                if cell.rowspan > 1:
                    above[c] = (row[c], min(cell.rowspan, MAX_SPAN) - 1)
        for c in sorted(covered):
            row.extend([""] * (c - len(row)))
            row.append(covered[c])
        out.append(row)
    return out


_NAMED_CELL = re.compile(r"^[^:|]{1,40}: \S")


def carries_headers(line: str) -> bool:
    """A row written by `table_lines` with its headers: most cells "header: value".

    carries_headers("구분: 2024년 | 예산: 12.5") -> True; carries_headers("2024년 | 12.5") -> False
    """
    cells = [c.strip() for c in line.split("|")]
    return len(cells) >= 2 and sum(bool(_NAMED_CELL.match(c)) for c in cells) * 2 > len(cells)
