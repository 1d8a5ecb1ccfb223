"""PDF fixtures the loader and reliability tests share: generated at run time, never committed.

build_pdf(["연차휴가는 15일이다."], find_korean_ttf()) -> PDF bytes whose page 1 reads that sentence
encrypt_pdf(pdf, user_password="비밀") -> the same PDF, RC4-128 encrypted
"""

from __future__ import annotations

import glob
import io
import logging
import shutil
import subprocess
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

_FONT_GLOBS = (
    "/usr/share/fonts/**/NanumGothic.ttf",
    "/usr/share/fonts/**/Nanum*.ttf",
    "/usr/share/fonts/**/NotoSansKR*.ttf",
    "/usr/share/fonts/**/UnDotum.ttf",
)


def find_korean_ttf() -> Path | None:
    """A TrueType font with Hangul (fpdf2 cannot embed .ttc/.otf CFF reliably), or None."""
    for pattern in _FONT_GLOBS:
        hits = sorted(glob.glob(pattern, recursive=True))
        if hits:
            return Path(hits[0])
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", ":lang=ko", "file"], capture_output=True, text=True, check=False).stdout
        ttfs = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.split(":")[0].endswith(".ttf"))
        if ttfs:
            return Path(ttfs[0])
    return None


def build_pdf(pages: list[str], font: Path | None = None) -> bytes:
    """A PDF with one page per string; a blank string gives a page without text.

    With `font` (a Hangul TTF) the text may be Korean; without it fpdf2's core Helvetica
    is used, which only covers Latin-1.
    """
    pdf = FPDF()
    if font is not None:
        pdf.add_font("korean", fname=str(font))
        pdf.set_font("korean", size=14)
    else:
        pdf.set_font("Helvetica", size=14)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypt_pdf(pdf: bytes, user_password: str) -> bytes:
    """The PDF encrypted with RC4-128 (pypdf writes it without the optional `cryptography`);
    an empty user password makes an owner-password-only PDF that opens without one."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="관리자-owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# A table with a two-row header whose merged cells cover columns and rows, under a caption:
# (row, column, rows covered, columns covered, text), as a person would draw it in a PDF.
BUDGET_TABLE = [
    (0, 0, 2, 1, "구분"), (0, 1, 1, 2, "예산(억원)"), (0, 3, 2, 1, "비고"),
    (1, 1, 1, 1, "2024년"), (1, 2, 1, 1, "2025년"),
    (2, 0, 1, 1, "본사"), (2, 1, 1, 1, "12.5"), (2, 2, 1, 1, "13.0"), (2, 3, 1, 1, "증액"),
    (3, 0, 1, 1, "지역본부"), (3, 1, 1, 1, "8.0"), (3, 2, 1, 1, "7.5"), (3, 3, 1, 1, "감액"),
]


def build_table_pdf(font: Path, before: list[str], caption: str, cells=BUDGET_TABLE,
                    widths=(40, 35, 35, 30), after: list[str] = (), row_height: float = 9,
                    running_header: str = "", next_page: list[tuple] = ()) -> bytes:
    """A page of the `before` lines, the caption, a table with ruling lines drawn cell by cell
    (`cells` as BUDGET_TABLE; a merged cell is one box) and the `after` lines; with `next_page`
    (cells of more rows, numbered from 0) the table goes on at the top of a second page, without
    its header. `running_header` stands at the top of every page.

    build_table_pdf(font, ["예산은 다음과 같다."], "<표 1> 부서별 예산") -> PDF bytes
    """
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # warns of every table it cannot subset
    pdf = FPDF()
    pdf.add_font("korean", fname=str(font))
    pdf.set_font("korean", size=11)

    def page() -> None:
        pdf.add_page()
        if running_header:
            pdf.cell(0, 8, running_header, new_x="LMARGIN", new_y="NEXT")

    def table(rows: list[tuple]) -> None:
        left, top = pdf.l_margin, pdf.get_y() + 1
        for row, col, height, span, text in rows:
            pdf.set_xy(left + sum(widths[:col]), top + row * row_height)
            pdf.cell(sum(widths[col : col + span]), height * row_height, text, border=1, align="C")
        pdf.set_xy(left, top + max(r + n for r, _, n, _, _ in rows) * row_height + 4)

    page()
    for line in before:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, caption, new_x="LMARGIN", new_y="NEXT")
    table(cells)
    if next_page:
        page()
        table(next_page)
    for line in after:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
