"""Office formats: `.docx` (python-docx), `.hwpx` (OWPML zip), `.hwp` (HWP 5.0 OLE binary).

    load_docx(path, data, limits) -> ("취업규칙 2024", [Block("연차휴가는 15일이다.", heading="휴가"), …])
    load_hwpx(path, data, limits) -> (title from content.hpf, blocks with outline styles as headings)
    load_hwp(path, data, limits)  -> (None, one Block per paragraph of BodyText/Section0..N)

Zip-based formats pass `read_zip_safely` first (`containers`). Table rows keep their column
headers (`ingest.tables`).
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import docx
import olefile
from docx.table import Table

from ingest.errors import EncryptedDocumentError, LoadError, UnsafeDocumentError
from ingest.tables import Cell, layout, spread, table_lines
from ingest.types import Block

from .common import LoadLimits, group_lines, human_size
from .containers import local_name, parse_xml, read_zip_safely, refuse_encrypted_office
from .registry import OLE_MAGIC, Format, Magic, register

log = logging.getLogger(__name__)

_HEADING_STYLE = re.compile(r"^(heading|제목|개요|outline)\s*\d+$", re.IGNORECASE)
_TITLE_STYLE = re.compile(r"^(title|제목)$", re.IGNORECASE)


# ---------------------------------------------------------------- .docx


def _row_cells(row: object, header: bool) -> list[str]:
    """One text per grid column of a table row; a merged cell is spread as `ingest.tables.spread` says."""
    cells: list[tuple[str, int]] = []
    seen: list[object] = []
    for cell in row.cells:  # type: ignore[attr-defined]
        if seen and seen[-1] is cell._tc:
            text, span = cells[-1]
            cells[-1] = (text, span + 1)
            continue
        seen.append(cell._tc)
        cells.append((" ".join(cell.text.split()), 1))
    return spread(cells, header)


def load_docx(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Paragraphs and tables in document order; 'Heading N' / '제목 N' styles become Block.heading.

    Title: core properties title, else the first 'Title' paragraph, else the first heading.
    """
    refuse_encrypted_office(path, data, ".docx")
    read_zip_safely(path, data, limits, ".docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, PackageNotFoundError, lxml errors...
        raise LoadError(path, f"not a valid .docx file: {type(exc).__name__}: {exc}") from exc

    lines: list[tuple[str | None, str]] = []
    heading: str | None = None
    first_heading: str | None = None
    title_paragraph: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [_row_cells(row, header=i == 0) for i, row in enumerate(item.rows)]
            lines.extend((heading, line) for line in table_lines(rows))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = item.style.name if item.style is not None else ""
        if _TITLE_STYLE.match(style or ""):
            title_paragraph = title_paragraph or text
        elif _HEADING_STYLE.match(style or ""):
            heading = text
            first_heading = first_heading or text
            continue
        lines.append((heading, text))
    title = (document.core_properties.title or "").strip() or title_paragraph or first_heading
    return title, group_lines(lines)


# ---------------------------------------------------------------- .hwpx


def _hwpx_manifest(path: Path, parts: dict[str, bytes]) -> tuple[str | None, list[str]]:
    """Title and section part names in reading order from Contents/content.hpf.

    Falls back to Contents/section0.xml, section1.xml, ... sorted by number when the
    manifest is missing or lists no sections.
    """
    title: str | None = None
    sections: list[str] = []
    if "Contents/content.hpf" in parts:
        root = parse_xml(path, "Contents/content.hpf", parts["Contents/content.hpf"])
        hrefs: dict[str, str] = {}
        spine: list[str] = []
        for el in root.iter():
            name = local_name(el.tag)
            if name == "title" and (el.text or "").strip():
                title = title or el.text.strip()
            elif name == "item" and el.get("id") and el.get("href"):
                hrefs[el.get("id")] = el.get("href")
            elif name == "itemref" and el.get("idref"):
                spine.append(el.get("idref"))
        for idref in spine:
            href = hrefs.get(idref, "")
            for candidate in (href, f"Contents/{href}"):
                if re.search(r"section\d+\.xml$", candidate, re.IGNORECASE) and candidate in parts:
                    sections.append(candidate)
                    break
    if not sections:
        numbered = [(int(m.group(1)), n) for n in parts if (m := re.fullmatch(r"Contents/section(\d+)\.xml", n))]
        sections = [n for _, n in sorted(numbered)]
    return title, sections


def _hwpx_heading_styles(path: Path, parts: dict[str, bytes]) -> set[str]:
    """Style ids in Contents/header.xml named like headings ('개요 1', 'Outline 2', '제목 1')."""
    if "Contents/header.xml" not in parts:
        return set()
    root = parse_xml(path, "Contents/header.xml", parts["Contents/header.xml"])
    return {
        el.get("id", "")
        for el in root.iter()
        if local_name(el.tag) == "style"
        and any(_HEADING_STYLE.match((el.get(attr) or "").strip()) for attr in ("name", "engName"))
    }


def _t_text(t: Element) -> str:
    """Text of one hp:t, with hp:tab → tab and hp:lineBreak → newline."""
    parts = [t.text or ""]
    for child in t:
        parts.append({"tab": "\t", "lineBreak": "\n"}.get(local_name(child.tag), ""))
        parts.append(child.tail or "")
    return "".join(parts)


def _cell_text(tc: Element) -> str:
    """Text of one table cell (hp:tc): its paragraphs joined by spaces."""
    paragraphs = (
        "".join(_t_text(t) for t in p.iter() if local_name(t.tag) == "t") for p in tc.iter() if local_name(p.tag) == "p"
    )
    return " ".join(" ".join(paragraphs).split())


def _int_attr(el: Element, child: str, attr: str, default: int) -> int:
    for c in el:
        if local_name(c.tag) == child:
            try:
                return int(c.get(attr, default))
            except ValueError:
                return default
    return default


def _hwpx_grid(tbl: Element) -> list[list[str]]:
    """One text per column for each row of an hp:tbl: a cell goes to its hp:cellAddr column and
    covers its hp:cellSpan columns and rows as `ingest.tables.layout` says."""
    rows = [
        [Cell(_cell_text(tc), _int_attr(tc, "cellSpan", "colSpan", 1), _int_attr(tc, "cellSpan", "rowSpan", 1),
              col if (col := _int_attr(tc, "cellAddr", "colAddr", -1)) >= 0 else None)
         for tc in tr if local_name(tc.tag) == "tc"]
        for tr in tbl if local_name(tr.tag) == "tr"
    ]
    return layout(rows)


def hwpx_paragraphs(root: Element) -> list[tuple[str | None, str]]:
    """(styleIDRef, text) for every hp:p in document order.

    A table (hp:tbl) becomes one pseudo-paragraph (style None) per row, written with the
    table's header row ("구분: 직무 전문교육 | 이수율: 92.6", `ingest.tables`).
    Walks with an explicit stack so deep nesting cannot exhaust Python's recursion limit.
    <hp:p styleIDRef="0"><hp:run><hp:t>연차휴가는 15일이다.</hp:t></hp:run></hp:p> → [("0", "연차휴가는 15일이다.")]
    """
    paragraphs: list[tuple[str | None, list[str]]] = []
    stack: list[tuple[Element, int | None]] = [(root, None)]
    while stack:
        el, owner = stack.pop()
        name = local_name(el.tag)
        if name == "p":
            paragraphs.append((el.get("styleIDRef"), []))
            owner = len(paragraphs) - 1
        elif name == "t":
            if owner is not None:
                paragraphs[owner][1].append(_t_text(el))
            continue
        elif name == "tbl":
            paragraphs.extend((None, [line]) for line in table_lines(_hwpx_grid(el)))
            continue
        stack.extend((child, owner) for child in reversed(el))
    return [(style, "".join(parts)) for style, parts in paragraphs]


def load_hwpx(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Text of hp:t runs per hp:p paragraph from each section; outline/heading styles become headings."""
    parts = read_zip_safely(path, data, limits, ".hwpx")
    title, sections = _hwpx_manifest(path, parts)
    if not sections:
        raise LoadError(path, "not a valid .hwpx file: no Contents/section*.xml parts")
    heading_styles = _hwpx_heading_styles(path, parts)
    lines: list[tuple[str | None, str]] = []
    heading: str | None = None
    for name in sections:
        for style, text in hwpx_paragraphs(parse_xml(path, name, parts[name])):
            if not text.strip():
                continue
            if style in heading_styles:
                heading = text.strip()
                continue
            lines.append((heading, text))
    return title, group_lines(lines)


# ---------------------------------------------------------------- .hwp (HWP 5.0)

HWP_SIGNATURE = b"HWP Document File"
HWPTAG_PARA_TEXT = 0x10 + 51  # 0x43
_FLAG_COMPRESSED, _FLAG_PASSWORD, _FLAG_DISTRIBUTION = 0x1, 0x2, 0x4
# Controls that occupy a single WCHAR; every other code < 32 is an 8-WCHAR extended/inline
# control (code, 6 WCHARs of payload, code again) whose payload is not text.
_CHAR_CONTROLS = {0, 10, 13, *range(24, 32)}
_CONTROL_TEXT = {10: "\n", 24: "-", 30: " ", 31: " ", 9: "\t"}  # 9 (tab) is an 8-WCHAR inline control


def decode_para_text(payload: bytes) -> str:
    """Decode an HWPTAG_PARA_TEXT payload (UTF-16LE) and skip control payloads.

    "연차" + [tab control: 9, 6 payload WCHARs, 9] + "휴가" + [13] → "연차\\t휴가"
    """
    count = len(payload) // 2
    units = struct.unpack(f"<{count}H", payload[: count * 2])
    kept: list[int] = []
    i = 0
    while i < count:
        code = units[i]
        if code >= 32:
            kept.append(code)
            i += 1
            continue
        kept.extend(ord(ch) for ch in _CONTROL_TEXT.get(code, ""))
        i += 1 if code in _CHAR_CONTROLS else 8
    return struct.pack(f"<{len(kept)}H", *kept).decode("utf-16-le", errors="replace")


def iter_hwp_records(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (tag, level, payload) for each record of a decompressed BodyText section.

    Header: uint32 with tag = bits 0-9, level = bits 10-19, size = bits 20-31; size 0xFFF
    means the real size follows as another uint32. A record running past the end stops the walk.
    """
    pos, end = 0, len(body)
    while pos + 4 <= end:
        (header,) = struct.unpack_from("<I", body, pos)
        pos += 4
        tag, level, size = header & 0x3FF, (header >> 10) & 0x3FF, header >> 20
        if size == 0xFFF:
            if pos + 4 > end:
                break
            (size,) = struct.unpack_from("<I", body, pos)
            pos += 4
        if pos + size > end:
            log.warning("HWP record tag 0x%x at offset %d runs past the section end; stopping", tag, pos)
            break
        yield tag, level, body[pos : pos + size]
        pos += size


def _inflate(path: Path, raw: bytes, budget: int) -> bytes:
    """Raw-deflate decompress a section, refusing to produce more than `budget` bytes."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(raw, budget + 1)
    except zlib.error as exc:
        raise LoadError(path, f"corrupt HWP: cannot decompress section ({exc})") from exc
    if len(out) > budget or inflater.unconsumed_tail:
        raise UnsafeDocumentError(path, f"zip bomb: decompressed HWP sections exceed limit {human_size(budget)}")
    return out


def _section_number(entry: list[str]) -> int:
    return int(entry[1][len("Section") :])


def load_hwp(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """One Block per non-empty paragraph of BodyText/Section0..N (HWP has no pages: page=None)."""
    if data.startswith(HWP_SIGNATURE):
        raise LoadError(path, "HWP 3.x format is not supported (save as HWP 5 or HWPX)")
    if not data.startswith(OLE_MAGIC):
        raise LoadError(path, "not a valid .hwp (OLE compound) file")
    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises OSError, struct.error, IndexError on damaged files
        raise LoadError(path, f"corrupt HWP (OLE container): {exc}") from exc
    with ole:
        if not ole.exists("FileHeader"):
            raise LoadError(path, "not an HWP 5 file (no FileHeader stream)")
        header = ole.openstream("FileHeader").read(256)
        if not header.startswith(HWP_SIGNATURE) or len(header) < 40:
            raise LoadError(path, "not an HWP 5 file (bad FileHeader signature)")
        (flags,) = struct.unpack_from("<I", header, 36)
        if flags & _FLAG_PASSWORD:
            raise EncryptedDocumentError(path, "encrypted HWP (password-protected)")
        if flags & _FLAG_DISTRIBUTION:
            raise EncryptedDocumentError(path, "distribution-protected HWP (배포용 문서) cannot be read")
        sections = sorted(
            (e for e in ole.listdir() if len(e) == 2 and e[0] == "BodyText" and re.fullmatch(r"Section\d+", e[1])),
            key=_section_number,
        )
        if not sections:
            raise LoadError(path, "not a valid HWP file: no BodyText/Section streams")
        budget = limits.max_uncompressed_bytes
        blocks: list[Block] = []
        for entry in sections:
            raw = ole.openstream(entry).read()
            body = _inflate(path, raw, budget) if flags & _FLAG_COMPRESSED else raw
            budget -= len(body)
            for tag, _level, payload in iter_hwp_records(body):
                if tag == HWPTAG_PARA_TEXT and (text := decode_para_text(payload).strip()):
                    # A line break (control 10) inside a paragraph: reflowed like group_lines's.
                    blocks.append(Block(text, layout="\n" in text))
    return None, blocks


# ---------------------------------------------------------------- registration


def _hwpx_parts(names: frozenset[str]) -> bool:
    return "Contents/content.hpf" in names or any(n.startswith("Contents/section") for n in names)


register(Format("Word document", (".docx",), load=load_docx, accepts=("zip", "ole"),
                magic=(Magic("docx", "a Word document", lambda p: "word/document.xml" in p.zip_names),)))
register(Format("HWPX document", (".hwpx",), load=load_hwpx, accepts=("zip",),
                magic=(Magic("hwpx", "an HWPX document", lambda p: _hwpx_parts(p.zip_names)),)))
register(Format("HWP document", (".hwp",), load=load_hwp, accepts=("ole",),
                magic=(Magic("hwp3", "an HWP 3 document", lambda p: p.head.startswith(HWP_SIGNATURE)),)))
