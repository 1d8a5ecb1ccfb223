"""PDF fixtures the loader and reliability tests share: generated at run time, never committed.

build_pdf(["연차휴가는 15일이다."], find_korean_ttf()) -> PDF bytes whose page 1 reads that sentence
encrypt_pdf(pdf, user_password="비밀") -> the same PDF, RC4-128 encrypted
"""

from __future__ import annotations

import glob
import io
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
