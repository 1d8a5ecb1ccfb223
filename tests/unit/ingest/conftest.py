"""Builders for the loader tests, and the index builder of the build tests.

Every fixture file is generated here, none is committed. Tests reach the builders through the
`build` fixture (build.hwp(...), build.docx(), ...) and the index builder through `builder`
rather than importing this conftest, which would break once test directories become packages.
The OLE writer exists because olefile can read but not write compound files; it is small and
only as general as the HWP fixtures need.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import docx
import pytest

from ingest.build import IndexBuilder
from ingest.chunk import Chunker, SentenceSplitter
from retrieval.tokenize import KiwiTokenizer
from tests.fakes import CountingEmbedder
from tests.pdfs import build_pdf, find_korean_ttf

# ---------------------------------------------------------------- OLE compound file writer

_SECTOR = 512
_ENDOFCHAIN, _FATSECT, _FREESECT, _NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF, 0xFFFFFFFF
_MINI_CUTOFF = 4096
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _dir_entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    return struct.pack(
        "<64sHBBIII16sIQQIQ", encoded.ljust(64, b"\0"), len(encoded), kind, 1,
        left, right, child, b"\0" * 16, 0, 0, 0, start, size,
    )  # fmt: skip


def build_ole(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file holding `streams` ({"FileHeader": .., "BodyText/Section0": ..}).

    Streams are zero-padded to 4096 bytes so they live in regular sectors (no mini stream);
    siblings are linked as a sorted right-leaning chain, which is a valid (if unbalanced) tree.
    """
    entries: list[dict] = [{"name": "Root Entry", "kind": 5, "children": [], "data": None}]
    index: dict[str, int] = {}
    for full_name, data in streams.items():
        parent = 0
        parts = full_name.split("/")
        for depth, part in enumerate(parts):
            key = "/".join(parts[: depth + 1])
            if key not in index:
                is_stream = depth == len(parts) - 1
                index[key] = len(entries)
                entries.append({
                    "name": part, "kind": 2 if is_stream else 1, "children": [],
                    "data": data.ljust(_MINI_CUTOFF, b"\0") if is_stream else None,
                })  # fmt: skip
                entries[parent]["children"].append(index[key])
            parent = index[key]

    sectors: list[bytes] = []
    fat: list[int] = []
    for entry in entries:
        data = entry["data"]
        if data is None:
            entry["start"], entry["size"] = _ENDOFCHAIN, 0
            continue
        count = math.ceil(len(data) / _SECTOR)
        entry["start"], entry["size"] = len(sectors), len(data)
        for i in range(count):
            sectors.append(data[i * _SECTOR : (i + 1) * _SECTOR].ljust(_SECTOR, b"\0"))
            fat.append(len(sectors) if i < count - 1 else _ENDOFCHAIN)

    left = {i: _NOSTREAM for i in range(len(entries))}
    right = dict(left)
    child = dict(left)
    for i, entry in enumerate(entries):
        kids = sorted(entry["children"], key=lambda k: (len(entries[k]["name"]), entries[k]["name"].upper()))
        if kids:
            child[i] = kids[0]
            for a, b in zip(kids, kids[1:]):
                right[a] = b
    directory = b"".join(
        _dir_entry(e["name"], e["kind"], left[i], right[i], child[i], e["start"], e["size"])
        for i, e in enumerate(entries)
    )
    empty = _dir_entry("", 0, _NOSTREAM, _NOSTREAM, _NOSTREAM, 0, 0)
    directory += empty * (-len(entries) % 4)
    first_dir = len(sectors)
    dir_count = len(directory) // _SECTOR
    for i in range(dir_count):
        sectors.append(directory[i * _SECTOR : (i + 1) * _SECTOR])
        fat.append(len(sectors) if i < dir_count - 1 else _ENDOFCHAIN)

    fat_count = 1
    while (len(sectors) + fat_count) > fat_count * (_SECTOR // 4):
        fat_count += 1
    assert fat_count <= 109, "fixture too large for a header-only DIFAT"
    fat_sectors = list(range(len(sectors), len(sectors) + fat_count))
    fat.extend([_FATSECT] * fat_count)
    fat.extend([_FREESECT] * (fat_count * (_SECTOR // 4) - len(fat)))
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)

    difat = fat_sectors + [_FREESECT] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6s9I", OLE_MAGIC, b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
        0, fat_count, first_dir, 0, _MINI_CUTOFF, _ENDOFCHAIN, 0, _ENDOFCHAIN, 0,
    ) + struct.pack("<109I", *difat)  # fmt: skip
    return header + b"".join(sectors) + fat_bytes


# ---------------------------------------------------------------- HWP 5.0

HWP_SIGNATURE = b"HWP Document File"
PARA_HEADER, PARA_TEXT = 0x42, 0x43


def hwp_record(tag: int, level: int, payload: bytes) -> bytes:
    """One record: header uint32 (tag | level << 10 | size << 20), size 0xFFF + uint32 when large."""
    if len(payload) >= 0xFFF:
        return struct.pack("<II", tag | level << 10 | 0xFFF << 20, len(payload)) + payload
    return struct.pack("<I", tag | level << 10 | len(payload) << 20) + payload


def hwp_control(code: int, payload: str) -> list[int]:
    """An 8-WCHAR control: code, 6 payload WCHARs, code (payload padded/cut to 6)."""
    units = [ord(ch) for ch in payload.ljust(6, "\0")[:6]]
    return [code, *units, code]


def hwp_para_text(*parts: str | list[int]) -> bytes:
    """PARA_TEXT payload from text pieces and control WCHAR lists, ending with 13 (para break)."""
    units: list[int] = []
    for part in parts:
        if isinstance(part, str):
            raw = part.encode("utf-16-le")
            units.extend(struct.unpack(f"<{len(raw) // 2}H", raw))
        else:
            units.extend(part)
    units.append(13)
    return struct.pack(f"<{len(units)}H", *units)


def build_hwp(sections: list[list[bytes]], flags: int = 1) -> bytes:
    """An HWP 5.0 file; each section is a list of PARA_TEXT payloads. flags bit0 = compressed."""
    streams = {"FileHeader": HWP_SIGNATURE.ljust(32, b"\0") + struct.pack("<II", 0x05000300, flags) + b"\0" * 216}
    for number, paragraphs in enumerate(sections):
        body = b"".join(hwp_record(PARA_HEADER, 0, b"\0" * 22) + hwp_record(PARA_TEXT, 1, p) for p in paragraphs)
        if flags & 1:
            deflate = zlib.compressobj(wbits=-15)
            body = deflate.compress(body) + deflate.flush()
        streams[f"BodyText/Section{number}"] = body
    return build_ole(streams)


# ---------------------------------------------------------------- HWPX (OWPML)

_HP = "http://www.hancom.co.kr/hwpml/2011/paragraph"
_HS = "http://www.hancom.co.kr/hwpml/2011/section"
_HH = "http://www.hancom.co.kr/hwpml/2011/head"
_OPF = "http://www.idpf.org/2007/opf/"


def hwpx_paragraph(*runs: str, style: str = "0") -> str:
    """<hp:p> with one <hp:run><hp:t> per string; '\\t' inside a run becomes <hp:tab/>."""
    ts = "".join(f"<hp:run><hp:t>{r.replace(chr(9), '<hp:tab/>')}</hp:t></hp:run>" for r in runs)
    return f'<hp:p id="0" paraPrIDRef="0" styleIDRef="{style}">{ts}</hp:p>'


def hwpx_table(rows: list[list[str]]) -> str:
    """A paragraph holding a table whose cells are nested paragraphs, as Hangul writes them."""
    trs = "".join(
        "<hp:tr>" + "".join(f"<hp:tc><hp:subList>{hwpx_paragraph(c)}</hp:subList></hp:tc>" for c in row) + "</hp:tr>"
        for row in rows
    )
    return f'<hp:p styleIDRef="0"><hp:run><hp:tbl>{trs}</hp:tbl></hp:run></hp:p>'


def hwpx_section(*paragraphs: str, prolog: str = "") -> bytes:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
        f'<hs:sec xmlns:hs="{_HS}" xmlns:hp="{_HP}">{"".join(paragraphs)}</hs:sec>'
    )
    return xml.encode("utf-8")


def build_hwpx(sections: list[bytes], title: str = "", manifest: bool = True, header: bool = True) -> bytes:
    """A minimal .hwpx zip: mimetype, Contents/content.hpf (optional), header.xml, section*.xml."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/hwp+zip")
        if manifest:
            items = "".join(
                f'<opf:item id="section{i}" href="Contents/section{i}.xml" media-type="application/xml"/>'
                for i in range(len(sections))
            )
            spine = "".join(f'<opf:itemref idref="section{i}"/>' for i in range(len(sections)))
            z.writestr(
                "Contents/content.hpf",
                f'<?xml version="1.0" encoding="UTF-8"?><opf:package xmlns:opf="{_OPF}">'
                f"<opf:metadata><opf:title>{title}</opf:title></opf:metadata>"
                f'<opf:manifest><opf:item id="header" href="Contents/header.xml" media-type="application/xml"/>'
                f"{items}</opf:manifest><opf:spine>{spine}</opf:spine></opf:package>",
            )
        if header:
            z.writestr(
                "Contents/header.xml",
                f'<?xml version="1.0" encoding="UTF-8"?><hh:head xmlns:hh="{_HH}"><hh:styles>'
                '<hh:style id="0" type="PARA" name="바탕글" engName="Normal"/>'
                '<hh:style id="2" type="PARA" name="개요 1" engName="Outline 1"/>'
                "</hh:styles></hh:head>",
            )
        for i, section in enumerate(sections):
            z.writestr(f"Contents/section{i}.xml", section)
    return buf.getvalue()


# ---------------------------------------------------------------- DOCX


def build_docx(core_title: str = "취업규칙 2024") -> bytes:
    """A .docx with a title, two headings, paragraphs and a 2×2 table between them."""
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_heading("휴가", level=1)
    document.add_paragraph("연차휴가는 15일이다.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([["구분", "금액"], ["예산", "3억 5천만원"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph("표 아래 문단이다.")
    document.add_heading("근무", level=2)
    document.add_paragraph("재택근무는 불가하다.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def rewrite_zip(
    data: bytes, replace: dict[str, bytes] | None = None, extra: Callable[[zipfile.ZipFile], None] | None = None
) -> bytes:
    """Copy a zip, replacing some entries' bytes and letting `extra` add entries."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
        if extra is not None:
            extra(dst)
    return out.getvalue()


def add_zero_entry(name: str, size: int) -> Callable[[zipfile.ZipFile], None]:
    """An `extra` for rewrite_zip: a deflated entry of `size` zero bytes, streamed in 1 MiB chunks."""

    def add(archive: zipfile.ZipFile) -> None:
        chunk = b"\0" * (1 << 20)
        with archive.open(name, "w", force_zip64=True) as f:
            for offset in range(0, size, len(chunk)):
                f.write(chunk[: min(len(chunk), size - offset)])

    return add


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """write_file("규정.txt", b"...") → the Path it wrote under tmp_path."""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def korean_ttf() -> Path:
    font = find_korean_ttf()
    if font is None:
        pytest.skip("no Korean TrueType font found (install fonts-nanum: apt-get install -y fonts-nanum)")
    return font


@pytest.fixture
def build() -> SimpleNamespace:
    """The byte builders above, e.g. build.hwp([[build.hwp_para_text("연차휴가는 15일이다.")]])."""
    return SimpleNamespace(
        pdf=build_pdf,
        ole=build_ole,
        hwp=build_hwp,
        hwp_record=hwp_record,
        hwp_control=hwp_control,
        hwp_para_text=hwp_para_text,
        hwpx=build_hwpx,
        hwpx_paragraph=hwpx_paragraph,
        hwpx_table=hwpx_table,
        hwpx_section=hwpx_section,
        docx=build_docx,
        rewrite_zip=rewrite_zip,
        zero_entry=add_zero_entry,
    )


# ---------------------------------------------------------------- index builds


@pytest.fixture(scope="module")
def tokenizer(shared_kiwi):
    return KiwiTokenizer(kiwi=shared_kiwi)


@pytest.fixture
def embedder():
    return CountingEmbedder()


@pytest.fixture
def builder(tmp_path, embedder, tokenizer):
    """builder(index_dir=tmp_path / "index", emb=None, max_tokens=10) → an IndexBuilder over fast fakes."""

    def make(index_dir: Path = tmp_path / "index", emb=None, max_tokens=10) -> IndexBuilder:
        emb = emb or embedder
        chunker = Chunker(
            emb.count_tokens_many, max_tokens=max_tokens, overlap_tokens=4,
            splitter=SentenceSplitter(tokenizer.kiwi),
        )
        return IndexBuilder(index_dir, emb, tokenizer, chunker)

    return make
