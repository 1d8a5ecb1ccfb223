"""Which loader reads a file: each format registers its extensions, its magic bytes and its loader.

    register(Format("PDF document", (".pdf",), load=load_pdf, ocr=True,
                    magic=(Magic("pdf", "a PDF document", lambda p: p.text_start.startswith(b"%PDF-")),)))
    find(".pdf")                         -> that Format
    sniff(b"PK\\x03\\x04…word/document.xml…") -> Kind(magic=<docx>, owner=<the Word Format>)
    check_content(path, fmt, data)       -> None, or raises FileTypeMismatch

Every module of this package (`ingest/loaders/*.py`) is imported on the first lookup and
registers its formats as it is imported: adding a format is adding one file.

The sniff rule — the name decides, the content may only refuse:
  1. The extension picks the format; an extension no format claims is `UnsupportedFileType`.
  2. The first bytes are sniffed against every format's magic (PDF, PNG/JPEG/TIFF, an HTML
     page, ZIP members that make a Word/PowerPoint/Excel/HWPX document, HWP 3) and against the
     containers and programs no format reads (ZIP, OLE compound file, GIF/WebP, Windows EXE,
     ELF, gzip, 7-Zip, RAR).
  3. No signature (plain text, or bytes nothing recognises): the named format's loader runs and
     says itself what is wrong ("corrupt PDF: …", "binary data, not text").
  4. The format's own signature, or one it declares in `accepts` (.docx takes any ZIP and an
     OLE file, to say "not a valid .docx" or "encrypted .docx" itself; text formats take an
     HTML page): the loader runs.
  5. Anything else is refused before a parser sees it, with `FileTypeMismatch` naming what the
     name says, what the content is, and the extension to rename it to when a format reads it:
       "보고.pdf: the name says .pdf (PDF document) but the content is a ZIP archive"
       "메모.txt: binary data, not text: the name says .txt but the content is a PDF document;
        rename it to .pdf to read it"
The content never silently overrides the name: the index, the page viewer and the citations
all go by the file's name, so a PDF named .txt is refused rather than read as a PDF.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
import struct
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ingest.errors import FileTypeMismatch

# Sniffers look at this many first bytes (HTML after a long comment or whitespace is missed:
# rule 3 then lets the named loader decide, as before sniffing existed).
HEAD_BYTES = 1024
# A ZIP's member names are read only when its directory lists at most this many entries; a
# bigger one stays "a ZIP archive" and its loader's own limits refuse it.
MAX_SNIFFED_ZIP_ENTRIES = 10_000


class Probe:
    """What sniffers look at: the first bytes, the text start, and a ZIP's member names (read once)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.head = data[:HEAD_BYTES]

    @cached_property
    def text_start(self) -> bytes:
        """The head without a UTF-8 byte-order mark and leading whitespace, lower-cased."""
        return self.head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()

    @cached_property
    def zip_names(self) -> frozenset[str]:
        """Member names of a ZIP archive; empty when it is none, damaged, or too big to list."""
        if not self.head.startswith((b"PK\x03\x04", b"PK\x05\x06")) or _zip_entries(self.data) is None:
            return frozenset()
        try:
            with zipfile.ZipFile(io.BytesIO(self.data)) as archive:
                return frozenset(archive.namelist())
        except Exception:  # any damage: not listed, so only "a ZIP archive"
            return frozenset()


def _zip_entries(data: bytes) -> int | None:
    """The entry count in a ZIP's end record when it is small enough to list, else None."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if end < 0 or end + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, end + 10)
    return count if count < min(0xFFFF, MAX_SNIFFED_ZIP_ENTRIES + 1) else None


@dataclass(frozen=True)
class Magic:
    """A content kind told by its bytes: kind id, what it is in words, and its test."""

    kind: str  # "pdf"
    says: str  # "a PDF document"
    test: Callable[[Probe], bool]


@dataclass(frozen=True)
class Format:
    """A file format: its name, the extensions it claims, how its bytes are told and read.

    load(path, data, limits) -> (title or None, blocks); with `ocr`, load(path, data, limits, ocr).
    load_records(path, data, group) -> SourceDocs, for a file that holds many documents (JSONL).
    magic: the signatures of this format's content; accepts: other kinds its loader reads or
    refuses clearly by itself; text: the format is text, so content it refuses is "binary data".
    """

    name: str
    extensions: tuple[str, ...]
    load: Callable[..., Any] | None = None
    load_records: Callable[..., Any] | None = None
    magic: tuple[Magic, ...] = ()
    accepts: tuple[str, ...] = ()
    ocr: bool = False
    text: bool = False

    def __post_init__(self) -> None:
        if (self.load is None) == (self.load_records is None):
            raise ValueError(f"{self.name}: give exactly one of load and load_records")
        if not self.extensions or any(e != e.lower() or not e.startswith(".") for e in self.extensions):
            raise ValueError(f"{self.name}: extensions must be lower-case and start with '.': {self.extensions}")

    def reads(self, kind: str) -> bool:
        return kind in self.accepts or any(m.kind == kind for m in self.magic)


@dataclass(frozen=True)
class Kind:
    """What sniffing found: the matching magic, and the format it belongs to (None: no format)."""

    magic: Magic
    owner: Format | None


def _is_exe(probe: Probe) -> bool:
    # "MZ" alone starts Korean text too ("MZ세대 …"): the PE header it points to must be there.
    head = probe.data[:4096]
    if not head.startswith(b"MZ") or len(head) < 64:
        return False
    (offset,) = struct.unpack_from("<I", head, 0x3C)
    return head[offset : offset + 4] == b"PE\0\0"


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Kinds no format owns: told apart so a refusal can say what the file is. Formats name the
# ones they read in `accepts` ("zip", "ole", "gif", ...).
CONTAINERS: tuple[Magic, ...] = (
    Magic("zip", "a ZIP archive", lambda p: p.head.startswith((b"PK\x03\x04", b"PK\x05\x06"))),
    Magic("ole", "an OLE compound file (an HWP 5 document, or a legacy or password-protected Office file)",
          lambda p: p.head.startswith(OLE_MAGIC)),
    Magic("gif", "a GIF image", lambda p: p.head.startswith((b"GIF87a", b"GIF89a"))),
    Magic("webp", "a WebP image", lambda p: p.head[:4] == b"RIFF" and p.head[8:12] == b"WEBP"),
    Magic("exe", "a Windows program (.exe/.dll)", _is_exe),
    Magic("elf", "a Linux program (ELF)", lambda p: p.head.startswith(b"\x7fELF")),
    Magic("gzip", "a gzip archive", lambda p: p.head.startswith(b"\x1f\x8b\x08")),
    Magic("7z", "a 7-Zip archive", lambda p: p.head.startswith(b"7z\xbc\xaf\x27\x1c")),
    Magic("rar", "a RAR archive", lambda p: p.head.startswith(b"Rar!\x1a\x07")),
)

_formats: dict[str, Format] = {}
_discovered = False


def register(fmt: Format) -> Format:
    """Add a format (a module calls this as it is imported); returns it.

    Registering a format of the same name again replaces it (a reloaded module).

    Raises:
        ValueError: another format already claims one of its extensions.
    """
    for other in _formats.values():
        taken = set(other.extensions) & set(fmt.extensions)
        if other.name != fmt.name and taken:
            raise ValueError(f"{fmt.name}: {', '.join(sorted(taken))} already read by {other.name}")
    _formats[fmt.name] = fmt
    return fmt


def discover(packages: Iterable[str] = (__package__,)) -> None:
    """Import every module of the loader packages, so each registers its formats."""
    global _discovered
    for package in packages:
        module = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
            importlib.import_module(f"{package}.{info.name}")
    _discovered = True


def formats() -> list[Format]:
    """Every registered format, in registration order."""
    if not _discovered:
        discover()
    return list(_formats.values())


def find(extension: str) -> Format | None:
    """The format that claims an extension (".PDF" is ".pdf"), or None."""
    extension = extension.lower()
    return next((f for f in formats() if extension in f.extensions), None)


def extensions() -> tuple[str, ...]:
    """Every extension some format claims."""
    return tuple(e for f in formats() for e in f.extensions)


def sniff(data: bytes) -> Kind | None:
    """What the bytes are by their signature: formats' own magic first, then CONTAINERS; None when nothing matches.

    sniff(b"%PDF-1.7\\n…") -> Kind(Magic("pdf", "a PDF document", …), owner=<PDF document>)
    sniff("연차휴가는 15일이다.".encode()) -> None
    """
    probe = Probe(data)
    for fmt in formats():
        for magic in fmt.magic:
            if magic.test(probe):
                return Kind(magic, fmt)
    for magic in CONTAINERS:
        if magic.test(probe):
            return Kind(magic, None)
    return None


def check_content(path: Path, fmt: Format, data: bytes) -> None:
    """Refuse a file whose content is another type than its name says (rule 5 of the module docstring).

    Raises:
        FileTypeMismatch: the content's signature is neither the format's own nor one it accepts.
    """
    kind = sniff(data)
    if kind is None or fmt.reads(kind.magic.kind):
        return
    named = path.suffix.lower()
    rename_to = kind.owner.extensions[0] if kind.owner is not None else None
    reason = f"the name says {named} ({fmt.name}) but the content is {kind.magic.says}"
    if fmt.text:
        reason = f"binary data, not text: {reason}"
    if rename_to:
        reason += f"; rename it to {rename_to} to read it"
    raise FileTypeMismatch(path, reason, named=named, content=kind.magic.says, rename_to=rename_to)
