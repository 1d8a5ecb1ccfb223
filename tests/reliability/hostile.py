"""Hostile input files for the reliability tests, every one generated at run time (nothing binary is committed).

    cases = hostile_cases()                  # [Hostile("pdf/잘린.pdf", ..., reason=("corrupt PDF",)), ...]
    write_folder(tmp_path / "docs", cases)   # writes them all; returns {case: its path}

A bad case carries the words its error must contain; a good case carries a phrase that only it
holds, so a search for the phrase must rank it first. Builders stream large payloads (zeros for
zip bombs, sparse files for the size limit) so generating the folder costs little memory.

Run as `python -m tests.reliability.hostile ingest JOB.json` it is the child process of the
folder tests: it ingests the job's paths with the fast hash embedder and writes the report, its
peak RSS and the files it read to the job's `out` path. `... load FILE` loads one file and
prints the error and how much the peak RSS grew.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import resource
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docx
from fpdf import FPDF
from PIL import Image, ImageDraw

from tests.pdfs import build_pdf, encrypt_pdf, find_korean_ttf

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_FILE_LIMIT = 200 * MiB  # limits.max_file_mb's default
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A 2 MiB single line gets its own test (splitting one line was superlinear in Kiwi: 1 MB took
# 65 s before lines were cut); the folder carries a 256 KiB line.
LONG_LINE_BYTES = 2 * MiB
FOLDER_LINE_BYTES = 256 * 1024


# ---------------------------------------------------------------- what a case is


@dataclass(frozen=True)
class Hostile:
    """One generated file and what a correct ingest does with it.

    Hostile("pdf/스캔.pdf", make, reason=("no text layer",))    → one report.failed entry with those words
    Hostile("text/cp949.txt", make, phrase="똠방각하 햏자")       → indexed; the phrase finds it at rank 1
    `name` is relative to the folder; it may hold sub-folders, backslashes, newlines or bytes
    that are not UTF-8 (as surrogate escapes, the way Python shows such names).
    `bug` names the strict-xfail test that documents a known product bug for this file: the
    expectation stays the correct one, and the folder test leaves the case to that test.
    `hidden`: a name starting with "." that a folder ingest skips silently, by design.
    """

    name: str
    make: Callable[[Path], None]
    reason: tuple[str, ...] = ()
    phrase: str = ""
    bug: str = ""
    hidden: bool = False

    @property
    def bad(self) -> bool:
        return bool(self.reason)

    @property
    def good(self) -> bool:
        return not self.reason and not self.hidden


def write_folder(root: Path, cases: list[Hostile]) -> dict[Hostile, Path]:
    """Write every case under `root`: write_folder(tmp/"docs", cases) → {case: tmp/docs/<name>}."""
    paths: dict[Hostile, Path] = {}
    for case in cases:
        path = root / case.name
        path.parent.mkdir(parents=True, exist_ok=True)
        case.make(path)
        paths[case] = path
    return paths


def _bytes(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    """A `make` that writes fixed bytes (or the bytes a builder returns, built only when written)."""

    def make(path: Path) -> None:
        path.write_bytes(data() if callable(data) else data)

    return make


def _sparse(size: int) -> Callable[[Path], None]:
    """A `make` for a file of `size` bytes that occupies no disk blocks (a hole, read back as zeros)."""

    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return make


def _text(text: str, encoding: str) -> Callable[[Path], None]:
    return _bytes(text.encode(encoding))


def _noise(n: int, seed: int) -> bytes:
    """n bytes of seeded random data: the same 'binary file' on every run."""
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------- PDF


def pdf_pages(pages: list[str]) -> bytes:
    """A PDF with one page per string, Korean if a Hangul font is installed (else Latin-1 only).

    pdf_pages(["연차휴가는 15일이다."]) → b"%PDF-1.3 ..." whose page 1 extracts to that sentence.
    """
    return build_pdf(pages, find_korean_ttf())


def pdf_scanned() -> bytes:
    """A 'scan': one page holding only a picture of lines of text, no text layer at all."""
    picture = Image.new("L", (620, 877), 255)
    draw = ImageDraw.Draw(picture)
    for y in range(60, 800, 28):  # grey bars where a scanner would have captured lines of print
        draw.rectangle((50, y, 570 - (y * 7) % 120, y + 12), fill=60)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(picture, x=0, y=0, w=210)
    return bytes(pdf.output())


def pdf_raw(content: bytes, flate: bool = False) -> bytes:
    """A hand-written one-page PDF around a content stream, with a correct xref table.

    pdf_raw(b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET") → a PDF whose page 1 reads "Hello".
    With `flate` the content is given already deflated and marked /FlateDecode.
    """
    stream_dict = f"<< /Length {len(content)}{' /Filter /FlateDecode' if flate else ''} >>".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
         b" /Resources << /Font << /F1 5 0 R >> >> >>"),
        stream_dict + b"\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_flate_bomb(expanded: int = 300 * MiB) -> bytes:
    """A 300 KB PDF whose page content inflates to `expanded` bytes (a text operator, then spaces)."""
    deflate = zlib.compressobj(9)
    parts = [deflate.compress(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n")]
    spaces = b" " * MiB
    parts += [deflate.compress(spaces) for _ in range(expanded // MiB)]
    parts.append(deflate.flush())
    return pdf_raw(b"".join(parts), flate=True)


# ---------------------------------------------------------------- zip containers (.docx, .hwpx)


def docx_document(paragraphs: list[str], title: str = "") -> bytes:
    """A .docx (python-docx) with a 'Heading 1' and the paragraphs."""
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title or "규정", level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def png_pixel_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A few hundred bytes of PNG whose header claims width x height pixels (900 million here)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b"")


def pptx_document(lines: list[str], title: str = "발표") -> bytes:
    """A .pptx (python-pptx) of one title-and-text slide holding the lines."""
    from pptx import Presentation
    from pptx.util import Cm

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = title
    slide.shapes.add_textbox(Cm(2), Cm(5), Cm(20), Cm(5)).text_frame.text = "\n".join(lines)
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_document(rows: list[list[object]], sheet: str = "시트") -> bytes:
    """A .xlsx (openpyxl) of one sheet holding the rows (the first is the header)."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = sheet
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_with_prolog(prolog: str) -> bytes:
    """A .xlsx whose shared strings part declares `prolog` (a DOCTYPE) and uses its entity."""
    base = xlsx_document([["항목", "값"], ["&l10;", 1]])
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    head, _, body = xml.partition("?>")
    return zip_rewrite(base, replace={"xl/worksheets/sheet1.xml": (head + "?>" + prolog + body).encode()})


_HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"
_HS = "http://www.hancom.co.kr/hwpml/2011/section"


def hwpx_section_xml(body: str, prolog: str = "") -> bytes:
    """Contents/section0.xml around `body` (hp:p elements); `prolog` goes before the root element."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
            f'<hs:sec xmlns:hs="{_HS}" xmlns:hp="{_HP}">{body}</hs:sec>').encode()


def hwpx_paragraph(text: str) -> str:
    return f'<hp:p styleIDRef="0"><hp:run><hp:t>{text}</hp:t></hp:run></hp:p>'


def zip_entries(entries: dict[str, bytes]) -> bytes:
    """A deflated zip of {name: bytes}; zip_entries({"mimetype": b"application/hwp+zip"}) → b"PK..."."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def hwpx_document(*sections: bytes) -> bytes:
    """A minimal .hwpx: mimetype plus Contents/section0.xml, section1.xml, ... (found without a manifest)."""
    entries = {"mimetype": b"application/hwp+zip"}
    entries.update({f"Contents/section{i}.xml": s for i, s in enumerate(sections)})
    return zip_entries(entries)


def _stream(f: io.BufferedIOBase, size: int, byte: bytes) -> None:
    """Write `size` copies of `byte` 1 MiB at a time, so a huge entry never sits in memory."""
    block = byte * MiB
    f.writelines(block[: min(MiB, size - offset)] for offset in range(0, size, MiB))


def zip_rewrite(data: bytes, replace: dict[str, bytes] | None = None, zeros: dict[str, int] | None = None,
                pad: dict[str, int] | None = None) -> bytes:
    """Copy a zip, replacing entries, padding entries with N trailing spaces, appending entries of N zeros.

    Large payloads are deflated 1 MiB at a time, so a 300 MiB bomb costs ~1 MiB of memory to write:
    zip_rewrite(docx, zeros={"word/media/zeros.bin": 300 * MiB}) → ~300 KB of zip.
    """
    replace, zeros, pad = replace or {}, zeros or {}, pad or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            with dst.open(info.filename, "w") as f:
                f.write(replace.get(info.filename, src.read(info)))
                _stream(f, pad.get(info.filename, 0), b" ")  # XML allows trailing whitespace
        for name, size in zeros.items():
            with dst.open(name, "w", force_zip64=size > GiB) as f:
                _stream(f, size, b"\0")
    return out.getvalue()


def zip_many_entries(base: bytes, count: int) -> bytes:
    """The zip plus `count` one-byte entries: a bomb by entry count rather than by size."""
    out = io.BytesIO(base)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"BinData/e{i:05d}.bin", b"x")
    return out.getvalue()


def zip_lying_size(data: bytes, name: str, declared: int) -> bytes:
    """The zip with entry `name`'s uncompressed size rewritten to `declared` in both headers.

    A zip bomb that lies: checks on the declared size (and so on the ratio) see a small entry;
    only the inflated stream shows its real size. Assumes no zip64 extra field on that entry.
    """
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
        central = archive.start_dir
    struct.pack_into("<I", out, info.header_offset + 22, declared)  # local file header
    pos = central
    while out[pos : pos + 4] == b"PK\x01\x02":  # walk the central directory to this entry's record
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, pos + 28)
        if out[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace") == name:
            struct.pack_into("<I", out, pos + 24, declared)
            break
        pos += 46 + name_len + extra_len + comment_len
    return bytes(out)


def docx_lying_size(actual: int = 300 * MiB, declared: int = 20_000) -> bytes:
    """A ~300 KB .docx whose word/document.xml declares `declared` bytes but inflates to ~`actual`."""
    padded = zip_rewrite(docx_document(["거짓 크기"]), pad={"word/document.xml": actual})
    return zip_lying_size(padded, "word/document.xml", declared)


def billion_laughs(root: str, levels: int = 10) -> str:
    """A DOCTYPE whose entity &l{levels}; expands to 10**levels copies of "하하" (~2·10^10 bytes at 10)."""
    entities = ['<!ENTITY l0 "하하">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, levels + 1)
    ]
    return f"<!DOCTYPE {root} [{''.join(entities)}]>"


def docx_with_prolog(prolog: str, entity_ref: str, encoding: str = "utf-8") -> bytes:
    """A .docx whose word/document.xml carries `prolog` (a DOCTYPE) and uses `entity_ref` as text."""
    base = docx_document(["연차휴가는 15일이다."])
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        xml = archive.read("word/document.xml").decode("utf-8")
    head, _, body = xml.partition("?>")
    body = body.replace("연차휴가는 15일이다.", entity_ref)
    if encoding != "utf-8":
        head = head.replace("UTF-8", "UTF-16")
    evil = (head + "?>" + prolog + body).encode(encoding)
    return zip_rewrite(base, replace={"word/document.xml": evil})


# ---------------------------------------------------------------- text and HTML


def mixed_encoding(lines: list[tuple[str, str]]) -> bytes:
    """Lines each in its own encoding, e.g. [("인천 공장", "utf-8"), ("대전 연구소", "cp949")]."""
    return b"\n".join(text.encode(enc) for text, enc in lines) + b"\n"


def long_line(phrase: str, size: int = LONG_LINE_BYTES) -> bytes:
    """About `size` bytes of Korean prose in ONE line (no newline), `phrase` in the middle.

    The filler repeats a few ordinary sentences, so the file is hard on sentence splitting and
    chunking but easy to check: the phrase occurs once.
    """
    filler = ("본 규정은 회사의 모든 임직원에게 적용되며 세부 사항은 부서별 지침을 따른다. "
              "근무 시간은 오전 9시부터 오후 6시까지로 하고 점심시간은 1시간이다. "
              "출장비는 실비로 정산하며 영수증을 첨부하여 제출하여야 한다. ")
    unit = filler.encode("utf-8")
    half = (size // 2) // len(unit)
    body = unit * half + (phrase + " ").encode("utf-8") + unit * half
    return body.rstrip(b" ")


def deep_html(phrase: str, depth: int = 20_000) -> bytes:
    """`phrase` at the bottom of `depth` nested <div>s: a parser that recurses would overflow."""
    return ("<html><head><title>깊은 문서</title></head><body>" + "<div>" * depth
            + f"<p>{phrase}</p>" + "</div>" * depth + "</body></html>").encode("utf-8")


def deep_hwpx(phrase: str, depth: int = 20_000) -> bytes:
    """An .hwpx whose paragraph text sits under `depth` nested elements inside the run."""
    nested = "<hp:ctrl>" * depth + f"<hp:t>{phrase}</hp:t>" + "</hp:ctrl>" * depth
    return hwpx_document(hwpx_section_xml(f'<hp:p styleIDRef="0"><hp:run>{nested}</hp:run></hp:p>'))


# ---------------------------------------------------------------- the folder


# A CP949-encoded name, as Windows zip tools leave them: Python shows the bytes as surrogate
# escapes. Kept out of the folder because today it aborts the whole ingest (see its test).
NON_UTF8_NAME = os.fsdecode("규정_윈도우".encode("cp949") + b".txt")

# Over 300 characters as a path, while each part stays under NAME_MAX (255 bytes; a Hangul
# syllable is 3 bytes in UTF-8, so 85 syllables is the most one name can hold).
LONG_DIR = "/".join(["아주긴폴더이름입니다" * 4] * 6)
LONG_NAME = "가나다라마바사아자차카타파하" * 5 + "끝.txt"

LONG_LINE_PHRASE = "김해 공항 화물터미널의 보세구역 반입 절차는 세관 신고 후 진행한다."
SAME_CONTENT = "여수 지점의 야간 경비 교대는 밤 10시에 정문 초소에서 한다."
ZERO_BYTE_NAMES = ("empty/빈.txt", "empty/빈.md", "empty/빈.pdf", "empty/빈.docx", "empty/빈.hwpx", "empty/빈.html")


def hostile_cases() -> list[Hostile]:
    """Every case of the hostile folder: 30+ bad files, each with its expected reason, and the good ones.

    hostile_cases()[0] → Hostile(name="pdf/잘린.pdf", reason=("corrupt PDF",), ...)
    """
    def suwon_pdf() -> bytes:
        return pdf_pages(["수원 캠퍼스 셔틀버스는 오전 7시 30분에 정문에서 출발한다."])

    bad = [
        # PDF
        Hostile("pdf/잘린.pdf", _bytes(lambda: pdf_pages(["잘린 문서 첫 페이지.", "둘째 페이지."])[:900]),
                reason=("corrupt PDF",)),
        Hostile("pdf/garbage.pdf", _bytes(b"%PDF-1.7\n" + _noise(20_000, 1)), reason=("corrupt PDF",)),
        Hostile("pdf/text-named.pdf", _text("이 파일은 PDF가 아니라 그냥 텍스트이다.", "utf-8"),
                reason=("corrupt PDF",)),
        Hostile("pdf/암호.pdf", _bytes(lambda: encrypt_pdf(suwon_pdf(), user_password="비밀")), reason=("encrypted",)),
        Hostile("pdf/스캔.pdf", _bytes(pdf_scanned), reason=("no text layer",)),
        Hostile("pdf/flate-bomb.pdf", _bytes(pdf_flate_bomb), reason=("decompress",),
                bug="test_pdf_decompression_bomb_is_not_called_a_scan"),
        # empty and blank
        *(Hostile(name, _bytes(b""), reason=("empty file", "0 bytes")) for name in ZERO_BYTE_NAMES),
        Hostile("text/공백만.txt", _text(" \n\t\n　\n", "utf-8"), reason=("no text",)),
        # over the size limit: never to be read (one byte over, and far over)
        Hostile("big/한도초과.txt", _sparse(DEFAULT_FILE_LIMIT + 1), reason=("file too large", "200 MB")),
        Hostile("big/거대.pdf", _sparse(4 * GiB), reason=("file too large", "4 GB")),
        # binary data under text and office names
        Hostile("binary/noise.txt", _bytes(_noise(50_000, 2)), reason=("binary data",)),
        Hostile("binary/noise.md", _bytes(_noise(50_000, 3)), reason=("binary data",)),
        Hostile("binary/elf.txt", _bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + _noise(8_000, 4)), reason=("binary data",)),
        Hostile("binary/noise.docx", _bytes(_noise(30_000, 5)), reason=("not a valid .docx",)),
        Hostile("binary/noise.hwpx", _bytes(_noise(30_000, 6)), reason=("not a valid .hwpx",)),
        Hostile("binary/noise.hwp", _bytes(_noise(30_000, 7)), reason=("not a valid .hwp",)),
        Hostile("binary/utf16-no-bom.txt", _text("연차 규정: 휴가 15일, 병가 60일", "utf-16-le"), reason=("binary data",)),
        Hostile("binary/noise.html", _bytes(_noise(30_000, 10)), reason=("binary data",),
                bug="test_binary_data_under_html_is_refused"),
        Hostile("binary/암호.docx", _bytes(OLE_MAGIC + _noise(4_000, 8)), reason=("encrypted .docx",)),
        Hostile("binary/hwp3.hwp", _bytes(b"HWP Document File V3.00 \x1a\x01\x02\x03\x04\x05" + bytes(100)),
                reason=("HWP 3.x",)),
        # zip bombs (by total size, by ratio, by entry count)
        Hostile("bomb/total.docx", _bytes(lambda: zip_rewrite(docx_document(["폭탄"]),
                                                              zeros={"word/media/zeros.bin": 300 * MiB})),
                reason=("zip bomb", "uncompressed size", "exceeds limit 200 MB")),
        Hostile("bomb/ratio.docx", _bytes(lambda: zip_rewrite(docx_document(["폭탄"]),
                                                              zeros={"word/media/zeros.bin": 50 * MiB})),
                reason=("zip bomb", "compression ratio")),
        Hostile("bomb/total.hwpx", _bytes(lambda: zip_rewrite(hwpx_document(hwpx_section_xml(hwpx_paragraph("폭탄"))),
                                                              zeros={"BinData/zeros.bin": 300 * MiB})),
                reason=("zip bomb", "uncompressed size")),
        Hostile("bomb/ratio.hwpx", _bytes(lambda: zip_rewrite(hwpx_document(hwpx_section_xml(hwpx_paragraph("폭탄"))),
                                                              zeros={"BinData/zeros.bin": 50 * MiB})),
                reason=("zip bomb", "compression ratio")),
        Hostile("bomb/total.pptx", _bytes(lambda: zip_rewrite(pptx_document(["폭탄"]),
                                                              zeros={"ppt/media/zeros.bin": 300 * MiB})),
                reason=("zip bomb", "uncompressed size")),
        Hostile("bomb/ratio.xlsx", _bytes(lambda: zip_rewrite(xlsx_document([["폭탄"]]),
                                                              zeros={"xl/media/zeros.bin": 50 * MiB})),
                reason=("zip bomb", "compression ratio")),
        Hostile("bomb/entries.hwpx", _bytes(lambda: zip_many_entries(
            hwpx_document(hwpx_section_xml(hwpx_paragraph("폭탄"))), 10_001)), reason=("zip bomb", "entries")),
        # XML entity expansion and external entities
        Hostile("xml/laughs.docx", _bytes(lambda: docx_with_prolog(billion_laughs("w:document"), "&l10;")),
                reason=("DOCTYPE/ENTITY", "word/document.xml")),
        Hostile("xml/laughs-utf16.docx",
                _bytes(lambda: docx_with_prolog(billion_laughs("w:document"), "&l10;", encoding="utf-16")),
                reason=("DOCTYPE/ENTITY",)),
        # UTF-16 without a byte-order mark slips past the DOCTYPE scan; libxml2's amplification
        # guard is what stops it (see the report), so the reason comes from lxml.
        Hostile("xml/laughs-utf16-nobom.docx",
                _bytes(lambda: docx_with_prolog(billion_laughs("w:document"), "&l10;", encoding="utf-16-le")),
                reason=("entity",)),
        Hostile("xml/xxe.docx", _bytes(lambda: docx_with_prolog(
            '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")),
                reason=("DOCTYPE/ENTITY",)),
        Hostile("xml/laughs.hwpx", _bytes(lambda: hwpx_document(
            hwpx_section_xml(hwpx_paragraph("&l10;"), prolog=billion_laughs("hs:sec")))),
                reason=("DOCTYPE/ENTITY", "Contents/section0.xml")),
        Hostile("xml/laughs.xlsx", _bytes(lambda: xlsx_with_prolog(billion_laughs("worksheet"))),
                reason=("DOCTYPE/ENTITY", "xl/worksheets/sheet1.xml")),
        Hostile("xml/malformed.hwpx", _bytes(lambda: hwpx_document("<hs:sec><hp:p>닫히지 않은 문단".encode())),
                reason=("malformed XML",)),
        Hostile("xml/no-sections.hwpx", _bytes(lambda: zip_entries({"mimetype": b"application/hwp+zip"})),
                reason=("no Contents/section",)),
        Hostile("xml/not-a-docx.docx", _bytes(lambda: zip_entries({"hello.xml": "<a>안녕</a>".encode()})),
                reason=("not a valid .docx",)),
        # types we do not read, and broken records
        Hostile("image/큰사진.png", _bytes(png_pixel_bomb), reason=("image too large",)),
        Hostile("legacy/옛발표.ppt", _bytes(OLE_MAGIC + bytes(4_000)), reason=("PowerPoint 97-2003", "save it as .pptx")),
        Hostile("legacy/옛표.xls", _bytes(OLE_MAGIC + bytes(4_000)), reason=("Excel 97-2003", "save it as .xlsx")),
        Hostile("other/실행파일.exe", _bytes(b"MZ" + _noise(4_000, 9)), reason=("unsupported file type '.exe'",)),
        Hostile("other/확장자없음", _text("확장자가 없는 파일이다.", "utf-8"), reason=("unsupported file type (none)",)),
        Hostile("other/깨진.jsonl", _text('{"id": "a", "text": "정상 줄"}\n{"id": "b", "text": 깨짐\n', "utf-8"),
                reason=("line 2", "invalid JSON")),
    ]
    good = [
        Hostile("text/utf8.txt", _text("해바라기 농장의 관개 설비는 매주 화요일에 점검한다.\n", "utf-8"),
                phrase="해바라기 농장의 관개 설비"),
        Hostile("text/cp949.txt", _text("똠방각하 햏자 예산은 2억원이고 뷁 항목은 없다.\r\n", "cp949"),
                phrase="똠방각하 햏자 예산"),
        Hostile("text/euc-kr.txt", _text("강릉 지사의 난방비 정산은 분기마다 한다.\n", "euc-kr"),
                phrase="강릉 지사의 난방비 정산"),
        Hostile("text/utf16le-bom.txt",
                _bytes(b"\xff\xfe" + "제주 물류센터의 냉동 창고 온도는 영하 18도이다.".encode("utf-16-le")),
                phrase="제주 물류센터의 냉동 창고"),
        Hostile("text/utf16be-bom.txt", _bytes(b"\xfe\xff" + "부산 항만 크레인 정비 주기는 6개월이다.".encode("utf-16-be")),
                phrase="부산 항만 크레인 정비"),
        Hostile("text/utf8-bom.md", _text("# 보안 규정\n\n## 출입\n\n서버실 출입 카드는 보안팀이 발급한다.\n", "utf-8-sig"),
                phrase="서버실 출입 카드는 보안팀"),
        Hostile("text/mixed.txt", _bytes(mixed_encoding([("인천 공장의 용접 로봇은 야간에 가동한다.", "utf-8"),
                                                         ("대전 연구소의 시약 보관함은 잠금장치가 있다.", "cp949")])),
                phrase="대전 연구소의 시약 보관함", bug="test_mixed_utf8_and_cp949_lines_are_read"),
        Hostile("text/한 줄.txt", _bytes(lambda: long_line(LONG_LINE_PHRASE, FOLDER_LINE_BYTES)),
                phrase="김해 공항 화물터미널의 보세구역 반입 절차",
                bug="test_a_phrase_held_by_one_chunk_only_ranks_first_in_hybrid_search"),
        Hostile("office/문서.docx",
                _bytes(lambda: docx_document(["광주 사무소의 복사기 토너 교체는 총무팀 담당이다."], "총무")),
                phrase="광주 사무소의 복사기 토너 교체"),
        Hostile("office/한글.hwpx", _bytes(lambda: hwpx_document(hwpx_section_xml(
            hwpx_paragraph("울산 조선소의 도장 작업은 습도 60% 이하에서 한다.")))), phrase="울산 조선소의 도장 작업"),
        Hostile("office/깊은.hwpx", _bytes(lambda: deep_hwpx("창원 공단의 폐수 처리 기준은 매년 강화된다.")),
                phrase="창원 공단의 폐수 처리 기준"),
        Hostile("office/발표.pptx", _bytes(lambda: pptx_document(["여수 지점의 선박 연료 단가는 매월 공시한다."])),
                phrase="여수 지점의 선박 연료 단가"),
        Hostile("office/표.xlsx", _bytes(lambda: xlsx_document([["지점", "정비 항목"], ["목포 지점", "냉각탑 세척 주기 점검"]])),
                phrase="냉각탑 세척 주기"),
        Hostile("pdf/정상.pdf", _bytes(suwon_pdf), phrase="수원 캠퍼스 셔틀버스"),
        Hostile("pdf/소유자암호만.pdf", _bytes(lambda: encrypt_pdf(
            pdf_pages(["청주 공장 출입증 재발급 수수료는 5천원이다."]), user_password="")),
                phrase="청주 공장 출입증 재발급 수수료"),
        Hostile("html/euc-kr.html", _bytes(
            '<html><head><meta charset="euc-kr"><title>포항</title></head>'
            "<body><p>포항 제철소의 고로 점검은 연 2회 실시한다.</p></body></html>".encode("euc-kr")),
                phrase="포항 제철소의 고로 점검"),
        Hostile("html/깊은.html", _bytes(lambda: deep_html("세종 청사의 민원실은 토요일에 휴무한다.")),
                phrase="세종 청사의 민원실"),
        # the same bytes under two names
        Hostile("same/사본_가.txt", _text(SAME_CONTENT, "utf-8"), phrase="여수 지점의 야간 경비 교대"),
        Hostile("same/사본_나.txt", _text(SAME_CONTENT, "utf-8"), phrase="여수 지점의 야간 경비 교대"),
        # hostile names with ordinary content
        Hostile("names/규정..\\..\\evil.txt", _text("목포 출장소 선박 검사 일정은 매달 첫째 주이다.", "utf-8"),
                phrase="목포 출장소 선박 검사 일정"),
        # Starts with "." like a dotfile: skipped without a word, as expand_paths documents.
        Hostile("names/..\\..\\evil.txt", _text("점으로 시작하는 이름은 숨김 파일이다.", "utf-8"), hidden=True),
        Hostile(f"names/{LONG_DIR}/{LONG_NAME}", _text("안동 지사의 문서 보존 기한은 10년이다.", "utf-8"),
                phrase="안동 지사의 문서 보존 기한"),
        Hostile("names/줄\n바꿈\t탭.txt", _text("춘천 센터 전기차 충전기는 지하 2층에 있다.", "utf-8"),
                phrase="춘천 센터 전기차 충전기"),
        Hostile("names/🔥 화재 대피 (최종) v2.txt", _text("강원 연수원 화재 대피 집결지는 정문 앞 광장이다.", "utf-8"),
                phrase="강원 연수원 화재 대피 집결지"),
    ]
    return bad + good


# ---------------------------------------------------------------- child processes: measured runs


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB: VmHWM from /proc/self/status, else ru_maxrss.

    ru_maxrss alone misleads in a child: Linux carries the parent's high-water mark across
    fork/vfork + exec, so a child of a 1 GB pytest process starts at "1 GB". VmHWM belongs
    to the child's own address space. peak_rss_kib() → 681234
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def folder_settings(index_dir: Path):
    """Default settings around `index_dir`, the same in the child and in the test that reads its index.

    Chunking, retrieval and limits are passed explicitly so a CHULCHEO_* variable or a
    chulcheo.toml in either process's cwd cannot make the two disagree (the expected
    reasons assume the default 200 MB limits).
    """
    from app.settings import ChunkSettings, LimitSettings, RetrievalSettings, Settings

    return Settings(index_dir=index_dir, state_dir=index_dir.parent / "state", chunk=ChunkSettings(),
                    retrieval=RetrievalSettings(), limits=LimitSettings())


def ingest_job(job: dict) -> dict:
    """Ingest job["paths"] into job["index_dir"] with the hash embedder; what happened, as JSON-able data.

    ingest_job({"index_dir": "/t/index", "paths": ["/t/docs"]})
    → {"report": {"added": 20, "failed": [...], ...}, "read": ["/t/docs/a.txt", ...], "peak_kib": 680000, ...}
    """
    import pathlib

    from app.pipeline import Pipeline
    from tests.fakes import HashEmbedder

    read: list[str] = []
    read_bytes = pathlib.Path.read_bytes

    def recording_read_bytes(self: pathlib.Path) -> bytes:
        read.append(str(self))  # the parent checks that no oversized file is ever read
        return read_bytes(self)

    pathlib.Path.read_bytes = recording_read_bytes  # type: ignore[method-assign]
    pipeline = Pipeline(folder_settings(Path(job["index_dir"])), embedder=HashEmbedder())
    before = peak_rss_kib()
    report = pipeline.ingest([Path(p) for p in job["paths"]])
    return {
        "report": report.to_dict(),
        "read": read,
        "peak_before_ingest_kib": before,
        "peak_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # for comparison only
    }


def load_one(path: Path) -> dict:
    """load_file(path) and how much the peak RSS grew while it ran: {"error": reason or None, "grew_kib": 612000}."""
    from ingest.errors import LoadError
    from ingest.load import load_file

    before = peak_rss_kib()
    try:
        load_file(path)
        error = None
    except LoadError as exc:
        error = exc.reason
    return {"error": error, "grew_kib": peak_rss_kib() - before}


def main(argv: list[str]) -> int:
    """`python -m tests.reliability.hostile ingest JOB.json` or `... load FILE`; the result goes to
    job["out"] (ingest) or stdout (load) as JSON."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    mode, arg = argv[1], Path(argv[2])
    if mode == "load":
        sys.stdout.write(json.dumps(load_one(arg)) + "\n")
        return 0
    job = json.loads(arg.read_text(encoding="utf-8"))
    # Names may hold surrogate escapes (non-UTF-8 bytes): ASCII escapes carry them through JSON.
    Path(job["out"]).write_text(json.dumps(ingest_job(job), ensure_ascii=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
