"""Office formats: `.docx` (python-docx), `.hwpx` (OWPML zip), `.hwp` (HWP 5.0 OLE binary).

Each loader takes the file's path (for messages), its bytes and the `LoadLimits`, and returns
`(title or None, blocks)`. Zip-based formats pass `read_zip_safely` first, which rejects zip
bombs and XML parts that declare a DOCTYPE/ENTITY before any XML parser sees them.
Also holds the two helpers every loader shares: `human_size` and `group_lines`.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

import docx
import olefile
from defusedxml import ElementTree as SafeET
from docx.table import Table

from ingest.errors import EncryptedDocumentError, LoadError, UnsafeDocumentError
from ingest.tables import spread, table_lines
from ingest.types import Block

if TYPE_CHECKING:  # load.py imports this module, so the import only serves the type checker
    from ingest.load import LoadLimits

log = logging.getLogger(__name__)

OLE_MAGIC = olefile.MAGIC  # b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_XML_SUFFIXES = (".xml", ".rels", ".hpf")
_DTD_PATTERN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff)?<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ASCII_PROBE = bytes(range(0x20, 0x7F))  # printable ASCII: an encoding that decodes it as itself is ASCII-compatible
# Entries are inflated this much at a time, so a lying or huge entry never sits in memory whole.
_READ_CHUNK = 1 << 20
# Word and Hancom write only these; bzip2/lzma inflate a whole compressed chunk with no output cap.
_SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Entries this small cannot hurt even at a huge ratio; tiny XML parts often compress 100:1.
_RATIO_GRACE_BYTES = 1 << 20
# What zipfile raises on damaged archives (bad CRC, bad offsets, unknown methods, encryption).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError,
               EOFError, OSError, zlib.error)  # fmt: skip
_HEADING_STYLE = re.compile(r"^(heading|제목|개요|outline)\s*\d+$", re.IGNORECASE)
_TITLE_STYLE = re.compile(r"^(title|제목)$", re.IGNORECASE)


# ---------------------------------------------------------------- shared helpers


def human_size(n: int) -> str:
    """Format a byte count for messages: 2_254_857_830 → '2.1 GB', 209_715_200 → '200 MB', 12 → '12 bytes'."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def group_lines(lines: Iterable[tuple[str | None, str]], page: int | None = None) -> list[Block]:
    """Join consecutive (heading, line) pairs that share a heading into one Block.

    [("휴가", "연차휴가는 15일이다."), ("휴가", "병가는 60일이다."), ("근무", "재택근무는 불가하다.")]
    → [Block("연차휴가는 15일이다.\\n병가는 60일이다.", None, "휴가"), Block("재택근무는 불가하다.", None, "근무")]

    A line holding soft line breaks (a paragraph with DOCX <w:br/>, HWPX <hp:lineBreak/>, HTML
    <br>) becomes a Block of its own marked `layout`, so the chunker reflows it: a sentence the
    break cut is joined again, list lines stay lines, and the paragraph breaks around it stay.
    """
    blocks: list[Block] = []
    current: list[str] = []
    current_heading: str | None = None
    for heading, line in lines:
        line = line.strip()
        if not line:
            continue
        if current and (heading != current_heading or "\n" in line):
            blocks.append(Block("\n".join(current), page, current_heading))
            current = []
        current_heading = heading
        if "\n" in line:
            blocks.append(Block(line, page, heading, layout=True))
        else:
            current.append(line)
    if current:
        blocks.append(Block("\n".join(current), page, current_heading))
    return blocks


def _declares_dtd(raw: bytes) -> bool:
    """True if an XML part declares a DOCTYPE or ENTITY, in UTF-8, UTF-16 or UTF-32, with or without a BOM.

    b'<\\0!\\0D\\0O\\0C\\0T\\0Y\\0P\\0E\\0' (BOM-less UTF-16LE "<!DOCTYPE") → True
    """
    # lxml (python-docx) detects BOM-less UTF-16/32 from the first bytes, as the XML spec allows,
    # so the scan must not depend on a BOM. Markup is ASCII: in UTF-16/32 each markup character
    # is its ASCII byte plus NUL bytes, and well-formed XML never holds a NUL, so dropping NULs
    # turns "<\0!\0D\0..." back into "<!D..." whatever the byte order.
    ascii_view = raw.replace(b"\x00", b"") if b"\x00" in raw else raw
    if _DTD_PATTERN.search(ascii_view) is not None:
        return True
    # An encoding named in the declaration that does not write ASCII as ASCII (UTF-7's
    # "+ADw-!DOCTYPE", EBCDIC) hides the markup from the byte scan, yet libxml2 decodes it via
    # iconv: decode it the same way and look again.
    declared = _XML_ENCODING.match(ascii_view)
    if declared is None:
        return False
    codec = declared.group(1).decode("ascii")
    try:
        if _ASCII_PROBE.decode(codec, errors="replace") == _ASCII_PROBE.decode("ascii"):
            return False  # ASCII-compatible (UTF-8, CP949, Latin-1, ...): the byte scan was enough
        text = raw.decode(codec, errors="replace")
    except LookupError:
        return False  # unknown to Python (or not a text encoding); the parsers' own DTD ban still applies
    return _DTD_PATTERN.search(text.encode("utf-8")) is not None


def read_zip_safely(path: Path, data: bytes, limits: LoadLimits, kind: str) -> dict[str, bytes]:
    """Check a zip container against zip bombs and XML-entity attacks; return its XML parts.

    Returns {entry name: bytes} for every .xml/.rels/.hpf entry, each already scanned for
    DOCTYPE/ENTITY declarations, so callers parse these bytes instead of re-reading the zip.
    The declared sizes are checked first; then every entry is inflated 1 MiB at a time and its
    real bytes are checked against the same limits, since a header can lie.

    Raises:
        LoadError: not a zip ("not a valid .docx (zip) file") or an unreadable entry.
        UnsafeDocumentError: too many entries, total uncompressed size or an entry's
            compression ratio over the limits, or an XML part with a DOCTYPE/ENTITY.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise LoadError(path, f"not a valid {kind} (zip) file") from exc
    infos = archive.infolist()
    if len(infos) > limits.max_zip_entries:
        raise UnsafeDocumentError(path, f"zip bomb: {len(infos)} entries exceeds limit {limits.max_zip_entries}")
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        limit = human_size(limits.max_uncompressed_bytes)
        raise UnsafeDocumentError(path, f"zip bomb: uncompressed size {human_size(total)} exceeds limit {limit}")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_GRACE_BYTES and ratio > limits.max_compression_ratio:
            raise UnsafeDocumentError(
                path,
                f"zip bomb: entry '{info.filename}' compression ratio {ratio:.0f}:1 "
                f"exceeds limit {limits.max_compression_ratio}:1",
            )
    parts: dict[str, bytes] = {}
    inflated = 0
    for info in infos:
        size, raw = _read_entry(path, archive, info, limits, kind, limits.max_uncompressed_bytes - inflated)
        inflated += size
        if raw is None:
            continue
        if _declares_dtd(raw):
            raise UnsafeDocumentError(
                path, f"XML part '{info.filename}' declares a DOCTYPE/ENTITY (possible entity-expansion attack)"
            )
        parts[info.filename] = raw
    return parts


def _read_entry(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: LoadLimits, kind: str, budget: int
) -> tuple[int, bytes | None]:
    """Inflate one entry 1 MiB at a time, counting real bytes → (real size, bytes if an XML part else None).

    Every entry is read, not only XML parts, because python-docx re-reads them all with
    archive.read(): a lying entry must be caught here first. zipfile stops at the declared size
    and then checks the CRC, so a lying entry fails as corrupt instead of inflating in full; the
    byte counts are checked too so the limits never rest on a header's word.

    Raises:
        UnsafeDocumentError: the real bytes pass `budget` (what is left of the uncompressed
            limit) or the compression-ratio limit.
        LoadError: an unreadable or corrupt entry, or a compression method other than stored/deflate.
    """
    if info.compress_type not in _SAFE_METHODS:
        raise LoadError(
            path, f"corrupt {kind} file: entry '{info.filename}' uses compression method {info.compress_type} "
            "(only stored and deflate are supported)"
        )
    keep = info.filename.lower().endswith(_XML_SUFFIXES)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_READ_CHUNK):
                size += len(chunk)
                if size > budget:
                    limit = human_size(limits.max_uncompressed_bytes)
                    raise UnsafeDocumentError(
                        path, f"zip bomb: entry '{info.filename}' inflates past the uncompressed limit {limit}"
                    )
                ratio = size / max(info.compress_size, 1)
                if size > _RATIO_GRACE_BYTES and ratio > limits.max_compression_ratio:
                    raise UnsafeDocumentError(
                        path,
                        f"zip bomb: entry '{info.filename}' compression ratio over {ratio:.0f}:1 "
                        f"exceeds limit {limits.max_compression_ratio}:1",
                    )
                if keep:
                    chunks.append(chunk)
    except _ZIP_ERRORS as exc:
        raise LoadError(path, f"corrupt {kind} file: cannot read entry '{info.filename}' ({exc})") from exc
    return size, (b"".join(chunks) if keep else None)


def _local(tag: object) -> str:
    """'{http://www.hancom.co.kr/hwpml/2011/paragraph}t' → 't' (namespace-agnostic matching)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(path: Path, name: str, raw: bytes) -> Element:
    """Parse one XML part with defusedxml (DTDs, entities and external references forbidden)."""
    try:
        return SafeET.fromstring(raw, forbid_dtd=True)
    except SafeET.ParseError as exc:
        raise LoadError(path, f"malformed XML in '{name}': {exc}") from exc
    except Exception as exc:  # defusedxml's DTDForbidden/EntitiesForbidden are not ParseErrors
        raise UnsafeDocumentError(path, f"unsafe XML in '{name}': {type(exc).__name__}") from exc


# ---------------------------------------------------------------- .docx


def refuse_encrypted_office(path: Path, data: bytes, kind: str) -> None:
    """Password-protected Office files are OLE containers, not zips; say so instead of 'not a zip'."""
    if data.startswith(OLE_MAGIC):
        raise EncryptedDocumentError(
            path, f"encrypted {kind} (password-protected Office file), or a legacy 97-2003 binary file named {kind}"
        )


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
        root = _parse_xml(path, "Contents/content.hpf", parts["Contents/content.hpf"])
        hrefs: dict[str, str] = {}
        spine: list[str] = []
        for el in root.iter():
            name = _local(el.tag)
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
    root = _parse_xml(path, "Contents/header.xml", parts["Contents/header.xml"])
    return {
        el.get("id", "")
        for el in root.iter()
        if _local(el.tag) == "style"
        and any(_HEADING_STYLE.match((el.get(attr) or "").strip()) for attr in ("name", "engName"))
    }


def _t_text(t: Element) -> str:
    """Text of one hp:t, with hp:tab → tab and hp:lineBreak → newline."""
    parts = [t.text or ""]
    for child in t:
        parts.append({"tab": "\t", "lineBreak": "\n"}.get(_local(child.tag), ""))
        parts.append(child.tail or "")
    return "".join(parts)


def _cell_text(tc: Element) -> str:
    """Text of one table cell (hp:tc): its paragraphs joined by spaces."""
    paragraphs = (
        "".join(_t_text(t) for t in p.iter() if _local(t.tag) == "t") for p in tc.iter() if _local(p.tag) == "p"
    )
    return " ".join(" ".join(paragraphs).split())


def _int_attr(el: Element, child: str, attr: str, default: int) -> int:
    for c in el:
        if _local(c.tag) == child:
            try:
                return int(c.get(attr, default))
            except ValueError:
                return default
    return default


def _hwpx_grid(tbl: Element) -> list[list[str]]:
    """One text per column for each row of an hp:tbl: a cell goes to its hp:cellAddr column
    (the columns a cell merged from above covers stay empty) and spreads over its colSpan as
    `ingest.tables.spread` says."""
    grid: list[list[str]] = []
    for r, tr in enumerate(c for c in tbl if _local(c.tag) == "tr"):
        row: list[str] = []
        for tc in (c for c in tr if _local(c.tag) == "tc"):
            col = _int_attr(tc, "cellAddr", "colAddr", len(row))
            col = min(max(col, len(row)), len(row) + 1000)  # never backwards, never a huge jump
            row.extend([""] * (col - len(row)))
            row.extend(spread([(_cell_text(tc), _int_attr(tc, "cellSpan", "colSpan", 1))], header=r == 0))
        grid.append(row)
    return grid


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
        name = _local(el.tag)
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
        for style, text in hwpx_paragraphs(_parse_xml(path, name, parts[name])):
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
