"""Render a development document (headings, paragraphs, tables) as PDF, DOCX or HWPX.

parse_body("# 제1장 총칙\n제1조(목적) 이 규칙은 …") -> [Element("heading", "제1장 총칙"), Element("para", "제1조(목적) …")]
render_pdf(elements, title, header, font, seed) -> (PDF bytes, [Line(element index, start, end, page), ...])

The PDF writer wraps text itself, at a narrow width and sometimes inside a word, so the text
layer has the hard line breaks that extracted PDF text has; the returned lines say which page
each piece of each element landed on.
"""

from __future__ import annotations

import datetime
import functools
import io
import logging
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from fpdf import FPDF

# fontTools warns about every hinting table it cannot subset; the glyphs are fine.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
# fpdf2 warns once per PDF about characters the font lacks; generate.py records them per file.
logging.getLogger("fpdf.output").setLevel(logging.ERROR)

_TEXT_WIDTH_MM = 88.0  # narrow column: about 20 Hangul syllables a line at 11 pt
_BODY_PT, _LINE_MM = 11, 6.8
# Same seed, same bytes: the dates written into PDFs, DOCX properties and zip entries are fixed.
_FIXED_DATE = datetime.datetime(2025, 1, 2, 9, 0, tzinfo=datetime.UTC)
_WORD_WRAP_CHANCE = 0.55  # otherwise the line breaks where the width runs out, even mid-word


@dataclass
class Element:
    """One heading, paragraph or table of a document body."""

    kind: str  # "heading" | "para" | "table"
    text: str = ""  # heading/para text; a table's caption
    rows: list[list[str]] = field(default_factory=list)  # table rows, the first is the header


@dataclass
class Line:
    """Where characters start:end of element `element` were drawn (page is 1-based)."""

    element: int
    start: int
    end: int
    page: int


def parse_body(body: str) -> list[Element]:
    """Markup → elements: '# ' heading, '표: ' table caption followed by '|'-rows, other lines paragraphs."""
    elements: list[Element] = []
    for raw in body.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            elements.append(Element("heading", line[2:].strip()))
        elif line.startswith("표: "):
            elements.append(Element("table", line[3:].strip()))
        elif line.startswith("|"):
            if not elements or elements[-1].kind != "table":
                raise ValueError(f"table row without a '표:' caption: {line}")
            elements[-1].rows.append([cell.strip() for cell in line.strip("|").split("|")])
        else:
            elements.append(Element("para", line))
    return elements


def element_text(element: Element) -> str:
    """The element's text as a reader sees it: a table's caption and rows joined by ' | '."""
    if element.kind != "table":
        return element.text
    return "\n".join([element.text, *(" | ".join(row) for row in element.rows)])


# ---------------------------------------------------------------- PDF


class _Pdf(FPDF):
    """A4 pages with a running header ('대외비 · 인사팀 · 취업규칙') and a '- n -' footer."""

    def __init__(self, font: Path, header_text: str) -> None:
        super().__init__(format="A4")
        self.header_text = header_text
        self.add_font("korean", fname=str(font))
        self.set_margins(30, 22, 30)
        self.set_auto_page_break(True, margin=22)

    def header(self) -> None:
        self.set_font("korean", size=8)
        self.set_y(10)
        self.cell(0, 5, self.header_text, align="R")
        self.set_y(22)

    def footer(self) -> None:
        self.set_font("korean", size=8)
        self.set_y(-14)
        self.cell(0, 5, f"- {self.page_no()} -", align="C")


def missing_glyphs(font: Path, text: str) -> str:
    """Characters of `text` the font has no glyph for (drawn as nothing in the PDF), in order of first use."""
    cmap = _cmap(str(font))
    return "".join(dict.fromkeys(ch for ch in text if not ch.isspace() and ord(ch) not in cmap))


@functools.lru_cache(maxsize=4)
def _cmap(font: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(font).getBestCmap())


def wrap(pdf: FPDF, text: str, width: float, rng: random.Random) -> list[tuple[int, int]]:
    """(start, end) character ranges of the lines `text` takes at `width` mm in the current font.

    A line that runs out of room breaks at its last space when that space is near the end and
    a seeded coin says so, otherwise right there — inside a word, as Korean typesetting does.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    i = 0
    while i < len(text):
        if pdf.get_string_width(text[start : i + 1]) <= width:
            i += 1
            continue
        cut = max(i, start + 1)  # a glyph wider than the column still takes a line of its own
        space = text.rfind(" ", start, i)
        if space > start and i - space <= 8 and rng.random() < _WORD_WRAP_CHANCE:
            cut = space + 1
        spans.append((start, cut))
        start = i = cut
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def render_pdf(
    elements: list[Element], title: str, header: str, font: Path, seed: int
) -> tuple[bytes, list[Line]]:
    """The document as PDF bytes and where each element's lines were drawn."""
    rng = random.Random(seed)
    pdf = _Pdf(font, header)
    pdf.set_title(title)
    pdf.set_creation_date(_FIXED_DATE)
    pdf.add_page()
    pdf.set_font("korean", size=15)
    pdf.multi_cell(0, 9, title, align="C")
    pdf.ln(4)
    lines: list[Line] = []
    for index, element in enumerate(elements):
        if element.kind == "heading":
            pdf.set_font("korean", size=12)
            pdf.ln(2)
            pdf.cell(0, 7, element.text, new_x="LMARGIN", new_y="NEXT")
            lines.append(Line(index, 0, len(element.text), pdf.page_no()))
            continue
        pdf.set_font("korean", size=_BODY_PT)
        if element.kind == "para":
            for start, end in wrap(pdf, element.text, _TEXT_WIDTH_MM, rng):
                pdf.cell(_TEXT_WIDTH_MM, _LINE_MM, element.text[start:end].strip(), new_x="LMARGIN", new_y="NEXT")
                lines.append(Line(index, start, end, pdf.page_no()))
            pdf.ln(1.5)
            continue
        lines.extend(_pdf_table(pdf, element, index))
    return bytes(pdf.output()), lines


def render_paragraphs(
    elements: list[Element], titles: list[str], font: Path, seed: int
) -> tuple[bytes, list[int]]:
    """One PDF, each paragraph from a new page under its title line; the page each one starts on."""
    rng = random.Random(seed)
    pdf = _Pdf(font, "KorQuAD 1.0 dev · 위키백과 문단")
    pdf.set_creation_date(_FIXED_DATE)
    starts = []
    for element, title in zip(elements, titles):
        pdf.add_page()
        starts.append(pdf.page_no())
        pdf.set_font("korean", size=12)
        pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("korean", size=_BODY_PT)
        for start, end in wrap(pdf, element.text, _TEXT_WIDTH_MM, rng):
            pdf.cell(_TEXT_WIDTH_MM, _LINE_MM, element.text[start:end].strip(), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output()), starts


def _pdf_table(pdf: FPDF, element: Element, index: int) -> list[Line]:
    """Caption, then one bordered row of cells a line; offsets follow element_text()."""
    lines = []
    pdf.cell(0, 6, element.text, new_x="LMARGIN", new_y="NEXT")
    lines.append(Line(index, 0, len(element.text), pdf.page_no()))
    offset = len(element.text) + 1
    columns = max(len(row) for row in element.rows)
    first = min(40.0, pdf.epw * 0.34)
    rest = (pdf.epw - first) / max(columns - 1, 1)
    pdf.set_font("korean", size=9.5)
    for row in element.rows:
        for i, cell in enumerate(row):
            pdf.cell(first if i == 0 else rest, 6.5, cell, border=1, align="L" if i == 0 else "R")
        pdf.ln(6.5)
        row_text = " | ".join(row)
        lines.append(Line(index, offset, offset + len(row_text), pdf.page_no()))
        offset += len(row_text) + 1
    pdf.ln(2)
    return lines


# ---------------------------------------------------------------- DOCX


def render_docx(elements: list[Element], title: str) -> bytes:
    """A .docx with a Title paragraph, 'Heading 1' headings, body paragraphs and grid tables."""
    import docx  # python-docx: only needed when a .docx is written

    document = docx.Document()
    document.core_properties.title = title
    document.core_properties.created = document.core_properties.modified = _FIXED_DATE.replace(tzinfo=None)
    document.core_properties.revision = 1
    document.add_heading(title, 0)
    for element in elements:
        if element.kind == "heading":
            document.add_heading(element.text, 1)
        elif element.kind == "para":
            document.add_paragraph(element.text)
        else:
            document.add_paragraph(element.text)
            table = document.add_table(rows=0, cols=max(len(row) for row in element.rows))
            table.style = "Table Grid"
            for row in element.rows:
                cells = table.add_row().cells
                for cell, text in zip(cells, row):
                    cell.text = text
    out = io.BytesIO()
    document.save(out)
    return _restamp_zip(out.getvalue())


def _restamp_zip(data: bytes) -> bytes:
    """The same zip with every entry dated _FIXED_DATE (python-docx stamps entries with the current time)."""
    out = io.BytesIO()
    stamp = _FIXED_DATE.timetuple()[:6]
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(zipfile.ZipInfo(info.filename, stamp), source.read(info), compress_type=info.compress_type)
    return out.getvalue()


# ---------------------------------------------------------------- HWPX

_HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"
_HS = "http://www.hancom.co.kr/hwpml/2011/section"
_HH = "http://www.hancom.co.kr/hwpml/2011/head"
_OPF = "http://www.idpf.org/2007/opf/"

_HEADER_XML = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<hh:head xmlns:hh="{_HH}" version="1.4"><hh:refList><hh:styles itemCnt="2">
<hh:style id="0" type="PARA" name="바탕글" engName="Normal"/>
<hh:style id="2" type="PARA" name="개요 1" engName="Outline 1"/>
</hh:styles></hh:refList></hh:head>"""


def _hwpx_p(text: str, style: str = "0") -> str:
    return f'<hp:p styleIDRef="{style}"><hp:run><hp:t>{escape(text)}</hp:t></hp:run></hp:p>'


def render_hwpx(elements: list[Element], title: str) -> bytes:
    """A minimal OWPML package: mimetype, content.hpf (title, spine), header.xml (styles), section0.xml."""
    body: list[str] = [_hwpx_p(title)]
    for element in elements:
        if element.kind == "heading":
            body.append(_hwpx_p(element.text, "2"))
        elif element.kind == "para":
            body.append(_hwpx_p(element.text))
        else:
            body.append(_hwpx_p(element.text))
            rows = "".join(
                "<hp:tr>"
                + "".join(f"<hp:tc><hp:subList>{_hwpx_p(cell)}</hp:subList></hp:tc>" for cell in row)
                + "</hp:tr>"
                for row in element.rows
            )
            body.append(f'<hp:p styleIDRef="0"><hp:run><hp:tbl>{rows}</hp:tbl></hp:run></hp:p>')
    section = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<hs:sec xmlns:hs="{_HS}" xmlns:hp="{_HP}">{"".join(body)}</hs:sec>'
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<opf:package xmlns:opf="{_OPF}" version="" unique-identifier="" id="">'
        f"<opf:metadata><opf:title>{escape(title)}</opf:title><opf:language>ko</opf:language></opf:metadata>"
        '<opf:manifest><opf:item id="header" href="Contents/header.xml" media-type="application/xml"/>'
        '<opf:item id="section0" href="Contents/section0.xml" media-type="application/xml"/></opf:manifest>'
        '<opf:spine><opf:itemref idref="section0" linear="yes"/></opf:spine></opf:package>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        # The mimetype entry comes first and uncompressed, as in files Hangul writes.
        stamp = _FIXED_DATE.timetuple()[:6]
        archive.writestr(zipfile.ZipInfo("mimetype", stamp), "application/hwp+zip", compress_type=zipfile.ZIP_STORED)
        for name, text in (
            ("Contents/content.hpf", content),
            ("Contents/header.xml", _HEADER_XML),
            ("Contents/section0.xml", section),
        ):
            archive.writestr(zipfile.ZipInfo(name, stamp), text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
