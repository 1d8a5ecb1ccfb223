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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from .reflow import figures

# Version of the rules below; stored in the index's build config (`chunking.tables`), so an
# index read with older rules re-chunks its documents on the next ingest.
TABLES_VERSION = "1"
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
    header = kept[0]
    width = max(len(cells) for cells in kept)
    if len(kept) == 1 or not (always or (width >= MIN_COLUMNS and reads_as_header(header))):
        for cells in kept:
            yield " | ".join(cells) if not always else " | ".join(c for c in cells if c)
        return
    for cells in kept[1:]:
        if line := header_row(header, cells):
            yield line


def spread(cells: Iterable[tuple[str, int]], header: bool) -> list[str]:
    """Cells with their column spans -> one text per column: a header cell merged over several
    columns names each of them; a data cell is written once, the columns it covers left empty
    (so the cells after it stay under their own headers).

    spread([("구분", 1), ("예산", 2)], header=True)  -> ["구분", "예산", "예산"]
    spread([("합계", 2), ("487", 1)], header=False)  -> ["합계", "", "487"]
    """
    out: list[str] = []
    for text, span in cells:
        span = max(1, min(span, 1000))
        out.extend([text] * span if header else [text] + [""] * (span - 1))
    return out


_NAMED_CELL = re.compile(r"^[^:|]{1,40}: \S")


def carries_headers(line: str) -> bool:
    """A row written by `table_lines` with its headers: most cells "header: value".

    carries_headers("구분: 2024년 | 예산: 12.5") -> True; carries_headers("2024년 | 12.5") -> False
    """
    cells = [c.strip() for c in line.split("|")]
    return len(cells) >= 2 and sum(bool(_NAMED_CELL.match(c)) for c in cells) * 2 > len(cells)
