"""Zip and OLE containers: the checks every zip-based format (.docx, .hwpx, .pptx, .xlsx) passes first.

    read_zip_safely(path, data, limits, ".docx") -> {"word/document.xml": b"<?xml …", …}
        after refusing zip bombs (entry count, total size, compression ratio, counted on the real
        inflated bytes) and XML parts that declare a DOCTYPE/ENTITY, before any XML parser sees them
    parse_xml(path, "Contents/section0.xml", raw) -> Element (defusedxml: no DTDs, no entities)
    refuse_encrypted_office(path, data, ".docx") -> raises EncryptedDocumentError for an OLE file
        under an Office name (how password-protected Office files are stored)
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from ingest.errors import EncryptedDocumentError, LoadError, UnsafeDocumentError

from .common import LoadLimits, human_size
from .registry import OLE_MAGIC

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


def local_name(tag: object) -> str:
    """'{http://www.hancom.co.kr/hwpml/2011/paragraph}t' → 't' (namespace-agnostic matching)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def parse_xml(path: Path, name: str, raw: bytes) -> Element:
    """Parse one XML part with defusedxml (DTDs, entities and external references forbidden)."""
    try:
        return SafeET.fromstring(raw, forbid_dtd=True)
    except SafeET.ParseError as exc:
        raise LoadError(path, f"malformed XML in '{name}': {exc}") from exc
    except Exception as exc:  # defusedxml's DTDForbidden/EntitiesForbidden are not ParseErrors
        raise UnsafeDocumentError(path, f"unsafe XML in '{name}': {type(exc).__name__}") from exc



def refuse_encrypted_office(path: Path, data: bytes, kind: str) -> None:
    """Password-protected Office files are OLE containers, not zips; say so instead of 'not a zip'."""
    if data.startswith(OLE_MAGIC):
        raise EncryptedDocumentError(
            path, f"encrypted {kind} (password-protected Office file), or a legacy 97-2003 binary file named {kind}"
        )

