"""Read files into `SourceDoc`s: `load_file` finds the file's format in the registry (`ingest.loaders`).

    load_file(Path("취업규칙.pdf"))  → [SourceDoc(doc_id="/abs/취업규칙.pdf", title="취업규칙", blocks=[Block(.., page=1), ..])]
    load_file(Path("faq.jsonl"))     → one SourceDoc per line, doc_id = "/abs/faq.jsonl#<the line's id>",
                                       record_id = the line's "id"

Every failure is a `LoadError` (or subclass) whose message names the file and says why in
plain English; parser exceptions never escape. The loaders live in `ingest/loaders/`, one
module per format family; a file whose content is another type than its name says is refused
by the registry's sniff rule (`ingest.loaders.registry`). This module is the public front:
the names other packages import from here stay here.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from ingest.errors import (
    EmptyDocumentError,
    LoadError,
    NeedsOcrError,
    UnsafeDocumentError,
    UnsupportedFileType,
)
from ingest.loaders import registry
from ingest.loaders.common import LoadLimits, human_size
from ingest.loaders.images import IMAGE_EXTENSIONS, load_image
from ingest.loaders.jsonl import jsonl_doc_id, load_jsonl
from ingest.loaders.pdf import load_pdf
from ingest.loaders.slides_sheets import refuse_legacy
from ingest.loaders.text import decode_text
from ingest.ocr import Ocr
from ingest.types import Block, SourceDoc

__all__ = [
    "IMAGE_EXTENSIONS", "LOADERS", "OCR_LOADERS", "SUPPORTED_EXTENSIONS", "LoadLimits", "NeedsOcrError",
    "decode_text", "jsonl_doc_id", "load_file", "load_image", "load_jsonl", "load_pdf", "refuse_legacy",
]

log = logging.getLogger(__name__)

Loader = Callable[[Path, bytes, LoadLimits], tuple[str | None, list[Block]]]

# Snapshots of the registry when this module was imported (every module of ingest/loaders is
# registered by then); `load_file` itself asks the registry, so formats registered later count.
LOADERS: dict[str, Loader] = {e: f.load for f in registry.formats() if f.load and not f.ocr for e in f.extensions}
# Loaders that also take the Ocr (None when OCR is not installed).
OCR_LOADERS: dict[str, Callable[[Path, bytes, LoadLimits, Ocr | None], tuple[str | None, list[Block]]]] = {
    e: f.load for f in registry.formats() if f.load and f.ocr for e in f.extensions
}
SUPPORTED_EXTENSIONS = registry.extensions()

def _over_limit(size: int, limit: int) -> str:
    """'2.7 KB > limit 1 KB', or exact bytes when rounding would show equal sizes.

    _over_limit(209_715_201, 209_715_200) → '209,715,201 bytes > limit 209,715,200 bytes = 200 MB'
    """
    shown, shown_limit = human_size(size), human_size(limit)
    if shown != shown_limit:
        return f"{shown} > limit {shown_limit}"
    return f"{size:,} bytes > limit {limit:,} bytes = {shown_limit}"


def _read_checked(path: Path, limits: LoadLimits) -> bytes:
    """Read a file after checking by stat that it exists, is not empty and is within the size limit."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise LoadError(path, "not a regular file")
        if size == 0:
            raise EmptyDocumentError(path, "empty file (0 bytes)")
        if size > limits.max_file_bytes:
            raise UnsafeDocumentError(path, f"file too large ({_over_limit(size, limits.max_file_bytes)})")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise LoadError(path, "file not found") from exc
    except PermissionError as exc:
        raise LoadError(path, "permission denied") from exc
    except OSError as exc:
        raise LoadError(path, f"cannot read file: {exc.strerror or exc}") from exc


def load_file(path: Path, group: str = "public", *, limits: LoadLimits | None = None,
              ocr: Ocr | None = None) -> list[SourceDoc]:
    """Read one file into SourceDocs: one for ordinary files, one per line for `.jsonl`.

    ocr: reads scanned PDF pages and image files (`ingest.ocr.Ocr.find()`); without it a file
        that is only images raises NeedsOcrError.

    Raises:
        UnsupportedFileType: no format reads the extension (FileTypeMismatch: the content is
            another type than the name says, see `ingest.loaders.registry`).
        LoadError: any other failure; the message names the file and the reason.
    """
    path = Path(path)
    limits = limits or LoadLimits()
    ext = path.suffix.lower()
    refuse_legacy(path)  # .doc/.ppt/.xls: say to save it in the new format
    fmt = registry.find(ext)
    if fmt is None:
        shown = f"'{ext}'" if ext else "(none)"
        supported = ", ".join(sorted(registry.extensions()))
        raise UnsupportedFileType(path, f"unsupported file type {shown} (supported: {supported})")
    data = _read_checked(path, limits)
    registry.check_content(path, fmt, data)
    try:
        if fmt.load_records is not None:
            return fmt.load_records(path, data, group)
        title, blocks = fmt.load(path, data, limits, ocr) if fmt.ocr else fmt.load(path, data, limits)
    except LoadError:
        raise
    except RecursionError as exc:
        raise LoadError(path, f"{ext} structure nested too deeply to parse") from exc
    except MemoryError as exc:
        raise UnsafeDocumentError(path, "ran out of memory while parsing") from exc
    except Exception as exc:  # a parser bug or an unforeseen malformation: wrap, never leak
        log.debug("%s: unexpected parser error", path, exc_info=True)
        raise LoadError(path, f"could not parse {ext} file: {type(exc).__name__}: {exc}") from exc
    if not any(block.text.strip() for block in blocks):
        raise EmptyDocumentError(path, "no text")
    resolved = str(path.resolve())
    return [
        SourceDoc(
            doc_id=resolved,
            source=resolved,
            title=(title or "").strip() or path.stem,
            blocks=blocks,
            sha256=hashlib.sha256(data).hexdigest(),
            group=group,
        )
    ]
