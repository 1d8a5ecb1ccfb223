"""Tables on PDF pages, found from their ruling lines (pdfplumber) and written as rows with headers.

    find_tables(path, data, {1: (page_text, rulings), 2: …})
        -> {2: [PdfTable(bbox=(56.7, 120.3, 538.6, 260.1), rows=[["구분", "예산(억원)", …], …], cells=[…])]}
    split_page(path, pypdf_page, page_text, tables[2], page_height)
        -> ([Part("…text above…"), Part(caption="<표 1> 부서별 예산",
                                        rows=("구분: 본사 | 예산(억원) 2024년: 12.5 | …", …)),
             Part("…text below…")], header the next page's table may go on under)
           or None: the page keeps its text as it is

A table's cells come from the words pdfplumber reads in the PDF's own order, each put in the
cell its middle lies in (a line overflowing its cell stays whole in the cell it is aligned in);
merged cells (a box over several grid columns or rows) follow `ingest.tables.layout`. The
page's running text stays pypdf's: its text pieces that start inside a table are taken out (the
cells are indexed once, as rows), and the rows take their place in the page's reading order,
under the caption found just above the table. A table at the top of a page that goes on from
the page before (same columns, no header row of its own) takes that table's headers and caption.

Cost is bounded: a page goes to pdfplumber only when pypdf, reading its text, saw it draw a
rectangle or line with height (`Rulings`), and not when it draws more than `MAX_PAGE_SEGMENTS`
of them, has more than `MAX_PAGE_EDGES` ruling edges or `MAX_PAGE_CHARS` characters, nor after
`MAX_DOCUMENT_PAGES` pages of one document (each logged). Any failure on a page leaves that
page's text as it was, without table rows.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.reflow import ends_sentence
from ingest.tables import MIN_COLUMNS, Cell, layout, reads_as_header, table_lines, table_title, two_row_header

log = logging.getLogger(__name__)

# Measured on 2 cores: pdfplumber reads ~20,000 characters a second, and finds tables at up to
# ~0.7 ms per ruling edge (short crossing lines, the worst drawing), so a page costs at most ~2 s
# and a document at most about as much again as pypdf's own reading of its text.
MAX_PAGE_SEGMENTS = 5_000  # rectangles and lines drawn on one page
MAX_PAGE_EDGES = 1_000  # pdfplumber ruling edges on one page (a 30 x 8 grid of boxed cells: ~960)
MAX_PAGE_CHARS = 20_000  # characters of the page's text (pdfplumber reads each one in Python)
MAX_DOCUMENT_PAGES = 1_000  # pages of one document handed to pdfplumber
_MIN_RULE = 5.0  # points: a path shorter than this in height rules no table (underlines, header rules)
_EDGE = 1.0  # points of slack around a table's box when telling whether text lies in it
_MIN_TAKEN = 0.8  # share of a table's cell text the pieces taken out must hold (and of theirs the cells)
_CAPTION = re.compile(r"^\s*(?:[<\[［〈(]\s*)?(?:표|도표|Table)\s*\d", re.IGNORECASE)
_UNIT_NOTE = re.compile(r"^\s*[(（]?\s*단위\s*[:：]")
_MAX_CAPTION = 80  # characters


@dataclass(frozen=True)
class PdfTable:
    """A table found on a page: its box (pdfplumber's x0, top, x1, bottom) and one text per grid column per row."""

    bbox: tuple[float, float, float, float]
    rows: list[list[str]]
    cells: list[str]  # each box's text once (a merged cell repeats in `rows`)


class Rulings:
    """What a page draws that could rule a table, counted from the operators pypdf reads anyway
    while it extracts the text (`extract_text(visitor_operand_before=rulings.visit)`).

    segments: rectangles and straight lines drawn; tall: those with a height of `_MIN_RULE` or
    more. A page with none tall holds no ruled table (only underlines and header rules, or no
    drawing at all) and is never handed to pdfplumber.
    """

    def __init__(self) -> None:
        self.segments = 0
        self.tall = 0
        self._at: tuple[float, float] | None = None

    def visit(self, operator: bytes, operands: Sequence, cm: Sequence[float], tm: Sequence[float]) -> None:
        if operator not in (b"re", b"m", b"l"):
            return
        try:
            numbers = [float(v) for v in operands]
            scale = abs(cm[3]) + abs(cm[1])
        except (TypeError, ValueError):  # a malformed operand draws nothing we could use
            return
        if operator == b"re" and len(numbers) == 4:
            self.segments += 1
            self.tall += abs(numbers[3]) * scale >= _MIN_RULE
        elif operator == b"m" and len(numbers) == 2:
            self._at = (numbers[0], numbers[1])
        elif operator == b"l" and len(numbers) == 2:
            self.segments += 1
            if self._at is not None:
                self.tall += abs(numbers[1] - self._at[1]) * scale >= _MIN_RULE
            self._at = (numbers[0], numbers[1])


def find_tables(path: Path, data: bytes, pages: dict[int, tuple[str, Rulings]]) -> dict[int, list[PdfTable]]:
    """The tables pdfplumber finds from ruling lines on each page; pages without tables (or
    where looking failed or was over a limit) are left out.

    pages: {page number: (its text as pypdf read it, what it draws)}; only pages that draw
    something tall are looked at, and none over the limits.
    """
    candidates = []
    for number, (text, rulings) in sorted(pages.items()):
        if not rulings.tall:
            continue
        if rulings.segments > MAX_PAGE_SEGMENTS or len(text) > MAX_PAGE_CHARS:
            log.warning("%s: page %d: %d drawn lines and %d characters (limits %d and %d); tables on it are not "
                        "looked for", path, number, rulings.segments, len(text), MAX_PAGE_SEGMENTS, MAX_PAGE_CHARS)
            continue
        candidates.append(number)
    if len(candidates) > MAX_DOCUMENT_PAGES:
        log.warning("%s: tables are looked for on the first %d of %d pages that draw rules, not after page %d",
                    path, MAX_DOCUMENT_PAGES, len(candidates), candidates[MAX_DOCUMENT_PAGES - 1])
        candidates = candidates[:MAX_DOCUMENT_PAGES]
    if not candidates:
        return {}
    import pdfplumber

    found: dict[int, list[PdfTable]] = {}
    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # pdfminer cannot open what pypdf could: no tables, the text stays
        log.warning("%s: pdfplumber cannot open the PDF; its tables are read as text (%s)", path, exc)
        return {}
    with pdf:
        for number in candidates:
            try:
                page = pdf.pages[number - 1]
            except Exception as exc:  # the page tree as pdfminer reads it differs
                log.warning("%s: page %d: pdfplumber cannot read the page (%s)", path, number, exc)
                continue
            try:
                if tables := _page_tables(path, number, page):
                    found[number] = tables
            except Exception as exc:  # a page pdfplumber chokes on keeps its text as it was
                log.warning("%s: page %d: tables not read (%s: %s)", path, number, type(exc).__name__, exc)
            finally:
                page.close()
    return found


def _page_tables(path: Path, number: int, page) -> list[PdfTable]:
    """The tables on one pdfplumber page, top to bottom; a box of one column is no table."""
    edges = len(page.edges)
    if edges > MAX_PAGE_EDGES:
        log.warning("%s: page %d: %d ruling edges (limit %d); tables on it are not looked for",
                    path, number, edges, MAX_PAGE_EDGES)
        return []
    tables = [t for t in page.find_tables() if t.cells]
    if not tables:
        return []
    words = page.extract_words(use_text_flow=True)
    out = []
    for table in sorted(tables, key=lambda t: (t.bbox[1], t.bbox[0])):
        x0, top, x1, bottom = table.bbox
        rows, cells = _grid(table.cells, [w for w in words if w["x1"] >= x0 and w["x0"] <= x1
                                          and top <= (w["top"] + w["bottom"]) / 2 <= bottom])
        if max(len(r) for r in rows) >= 2 and any(cells):
            out.append(PdfTable(tuple(table.bbox), rows, cells))
    return out


def _grid(boxes: Sequence[tuple[float, float, float, float]], words: Sequence[dict]) -> tuple[list[list[str]], list[str]]:
    """Cell boxes and the page's words -> (one text per grid column per row (`ingest.tables.layout`), each box's text).

    The grid's columns and rows are the distinct box edges; a box over several of them is a
    merged cell. Words keep the PDF's order, each in the box its middle lies in; a run of them on
    one line (`_runs`) that overflows its box into the next ones goes whole to the box it is
    aligned in: the one whose left edge it starts at, or whose right edge it ends at.
    """
    xs = sorted({round(v, 1) for x0, _, x1, _ in boxes for v in (x0, x1)})
    ys = sorted({round(v, 1) for _, top, _, bottom in boxes for v in (top, bottom)})

    def box_of(word: dict) -> int | None:
        mx, my = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
        return next((i for i, (x0, top, x1, bottom) in enumerate(boxes)
                     if x0 <= mx <= x1 and top <= my <= bottom), None)

    texts: dict[int, list[str]] = {i: [] for i in range(len(boxes))}
    for run in _runs(words):
        owners = [box_of(w) for w in run]
        inside = [(w, o) for w, o in zip(run, owners) if o is not None]
        if not inside:
            continue
        (first, start), (last, end) = inside[0], inside[-1]
        if start != end:  # overflowing: aligned left in the first box, or right in the last
            end = start if first["x0"] - boxes[start][0] <= boxes[end][2] - last["x1"] else end
            owners = [end] * len(run)
        for word, owner in zip(run, owners):
            if owner is not None:
                texts[owner].append(word["text"])
    cells = [" ".join(" ".join(texts[i]).split()) for i in range(len(boxes))]
    by_row: dict[int, list[Cell]] = {r: [] for r in range(len(ys) - 1)}
    for i, (x0, top, x1, bottom) in sorted(enumerate(boxes), key=lambda item: (item[1][1], item[1][0])):
        col, row = xs.index(round(x0, 1)), ys.index(round(top, 1))
        by_row[row].append(Cell(cells[i], xs.index(round(x1, 1)) - col, ys.index(round(bottom, 1)) - row, col=col))
    return layout(by_row[r] for r in sorted(by_row)), cells


def _runs(words: Sequence[dict]) -> list[list[dict]]:
    """Words in the PDF's order grouped into runs: the next word on the same line, after no
    more than half a line's height of space (a space between words, not the padding of two
    cells), belongs to the same run."""
    runs: list[list[dict]] = []
    for word in words:
        if runs:
            last = runs[-1][-1]
            height = max(last["bottom"] - last["top"], 1.0)
            if abs(word["top"] - last["top"]) < height / 2 and -1.0 <= word["x0"] - last["x1"] <= height / 2:
                runs[-1].append(word)
                continue
        runs.append([word])
    return runs


# ---------------------------------------------------------------- the page's text around its tables


@dataclass(frozen=True)
class Part:
    """A piece of a page in reading order: running text, or a table's rows under its caption."""

    text: str = ""
    caption: str | None = None
    rows: tuple[str, ...] = ()

    @property
    def is_table(self) -> bool:
        return bool(self.rows)


@dataclass
class Header:
    """The header rows and caption of the last table seen: a table that goes on over a page
    break has no header row of its own on the next page, and takes these."""

    rows: list[list[str]]
    caption: str | None
    width: int


def split_page(path: Path, page, text: str, tables: Sequence[PdfTable], height: float,
               carried: Header | None = None) -> tuple[list[Part], Header | None] | None:
    """The page as running text with its tables in place, and the header the next page's
    first table may go on under; None when pypdf's text pieces cannot be placed in the tables
    (the page then keeps its text whole).

    page: the pypdf page; text: its extract_text(); height: its media box's height, to turn PDF
    coordinates into pdfplumber's (x as is, `top` = height - y, whatever the box's corner).
    """
    pieces: list[tuple[str, float, float]] = []

    def visit(piece: str, cm: Sequence[float], tm: Sequence[float], *_: object) -> None:
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        pieces.append((piece, x, height - y))

    page.extract_text(visitor_text=visit)
    if "".join(p for p, _, _ in pieces) != text:
        log.info("%s: pypdf's text pieces differ from its page text; tables are read as text", path)
        return None
    owner = [_table_at(x, top, tables) for _, x, top in pieces]
    for t, table in enumerate(tables):
        if not _placed(_letters("".join(p for (p, _, _), o in zip(pieces, owner) if o == t)), table):
            log.info("%s: table %d: its cells are not where the text pieces are; tables are read as text", path, t + 1)
            return None
    parts: list[Part] = []
    current: list[str] = []
    placed: set[int] = set()
    for (piece, _, _), t in zip(pieces, owner):
        if t is None:
            current.append(piece)
        elif t not in placed:
            placed.add(t)
            before, caption = _caption("".join(current))
            # under at most a running header, a table may go on from the page before
            at_top = not parts and caption is None and "\n" not in before.strip()
            rows, caption = _with_header(tables[t].rows, caption, carried if at_top else None)
            carried = _header(rows, caption)
            parts += [Part(before), Part(caption=caption, rows=tuple(table_lines(rows)))]
            current = []
    parts.append(Part("".join(current)))
    return [p for p in parts if p.is_table or p.text.strip()], carried


def _with_header(rows: list[list[str]], caption: str | None, carried: Header | None,
                 ) -> tuple[list[list[str]], str | None]:
    """A table's rows and caption: a title row across the table is its caption when it has
    none; a table that goes on from the page before (same width, no header row, or the same
    one repeated) takes that table's header rows and caption."""
    if caption is None and len(rows) > 2 and (title := table_title(rows[0])):
        caption, rows = title, rows[1:]
    if carried is not None and carried.width == max(len(r) for r in rows):
        if rows[0] == carried.rows[0]:
            return rows, caption or carried.caption
        if not reads_as_header(rows[0]):
            return carried.rows + rows, caption or carried.caption
    return rows, caption


def _header(rows: list[list[str]], caption: str | None) -> Header | None:
    """The header rows a table leaves for a table that goes on from it, None when it has none."""
    width = max(len(r) for r in rows)
    if not (width >= MIN_COLUMNS and reads_as_header(rows[0])):
        return None
    return Header(rows[:2] if len(rows) > 2 and two_row_header(rows[0], rows[1]) else rows[:1], caption, width)


def _table_at(x: float, top: float, tables: Sequence[PdfTable]) -> int | None:
    for i, table in enumerate(tables):
        x0, t0, x1, b0 = table.bbox
        if x0 - _EDGE <= x <= x1 + _EDGE and t0 - _EDGE <= top <= b0 + _EDGE:
            return i
    return None


def _placed(taken: str, table: PdfTable) -> bool:
    """Whether the text pieces taken for a table are its cells: they hold most cells' text, and
    not much besides (else pypdf's and pdfplumber's coordinates disagree on this page)."""
    cells = [c for c in (_letters(c) for c in table.cells) if c]
    total = sum(len(c) for c in cells)
    found = sum(len(c) for c in cells if c in taken)
    return found >= _MIN_TAKEN * total and len(taken) <= total / _MIN_TAKEN + 10


def _letters(text: str) -> str:
    return "".join(text.split())


def _caption(before: str) -> tuple[str, str | None]:
    """Split a table's caption off the end of the text above it: a "<표 1> …" / "표 2. …" line,
    or a short line that ends no sentence and is not the page's first, with a "(단위: 억원)" line
    under it.

    _caption("예산은 다음과 같다.\\n부서별 예산\\n(단위: 억원)\\n") -> ("예산은 다음과 같다.", "부서별 예산 (단위: 억원)")
    """
    lines = before.rstrip().split("\n")
    taken: list[str] = []
    if len(lines) > 1 and _UNIT_NOTE.match(lines[-1]) and len(lines[-1]) <= _MAX_CAPTION:
        taken.insert(0, lines.pop().strip())
    last = lines[-1].strip()
    if last and len(last) <= _MAX_CAPTION and (_CAPTION.match(last) or (len(lines) > 1 and not ends_sentence(last))):
        taken.insert(0, lines.pop().strip())
    return "\n".join(lines), (" ".join(taken) or None)
