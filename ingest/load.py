"""Read files into `SourceDoc`s: one loader function per file type, `load_file` dispatches by extension.

    load_file(Path("취업규칙.pdf"))  → [SourceDoc(doc_id="/abs/취업규칙.pdf", title="취업규칙", blocks=[Block(.., page=1), ..])]
    load_file(Path("faq.jsonl"))     → one SourceDoc per line, doc_id = "/abs/faq.jsonl#<the line's id>",
                                       record_id = the line's "id"

Every failure is a `LoadError` (or subclass) whose message names the file and says why in
plain English; parser exceptions never escape. Office formats live in `load_office.py`,
slides and sheets (.pptx, .xlsx) in `load_slides_sheets.py`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from charset_normalizer import from_bytes
from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from ingest.errors import (
    EmptyDocumentError,
    EncryptedDocumentError,
    LoadError,
    NeedsOcrError,
    UnsafeDocumentError,
    UnsupportedFileType,
)
from ingest.load_office import group_lines, human_size, load_docx, load_hwp, load_hwpx
from ingest.load_slides_sheets import load_pptx, load_xlsx, refuse_legacy
from ingest.ocr import INSTALL_HINT, Ocr, OcrBudgetSpent, OcrError, render_scan
from ingest.reflow import looks_hard_wrapped
from ingest.tables import spread, table_lines
from ingest.types import Block, SourceDoc

log = logging.getLogger(__name__)

MiB = 1 << 20


@dataclass(frozen=True)
class LoadLimits:
    """Safety limits applied before and while parsing a file."""

    max_file_bytes: int = 200 * MiB
    max_uncompressed_bytes: int = 200 * MiB  # zip containers (.docx/.hwpx) and HWP sections
    max_compression_ratio: int = 100  # per zip entry larger than 1 MiB
    max_zip_entries: int = 10_000
    max_pages: int = 5_000  # PDF, multi-page TIFF
    max_image_pixels: int = 60_000_000  # an image file's frame, or a scanned page as rendered for OCR


Loader = Callable[[Path, bytes, LoadLimits], tuple[str | None, list[Block]]]

# ---------------------------------------------------------------- text (.txt, .md)

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),  # the "utf-16" codec reads the BOM and strips it
    (b"\xfe\xff", "utf-16"),
)
# C0/C1 controls except \t \n \v \f \r, and U+FFFD: what bytes that are no text in any encoding decode to.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_MAX_CONTROL_SHARE = 0.05
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _looks_binary(text: str) -> bool:
    """True when more than 5% of the characters are control characters other than whitespace, or U+FFFD."""
    if not text:
        return False
    controls = len(text) - len(_CONTROL_CHARS.sub("", text))
    return controls / len(text) > _MAX_CONTROL_SHARE


def _decode_lines(data: bytes) -> str | None:
    """Decode each line as UTF-8, else CP949; None as soon as a line is neither.

    Concatenated logs and files edited by two tools mix both:
    "인천\\n".encode("utf-8") + "대전".encode("cp949") → "인천\\n대전"
    """
    lines: list[str] = []
    for line in data.splitlines(keepends=True):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                lines.append(line.decode("cp949"))
            except UnicodeDecodeError:
                return None
    return "".join(lines)


def decode_text(path: Path, data: bytes) -> str:
    """Decode text bytes of unknown encoding and normalise newlines to '\\n'.

    Order: BOM (UTF-8/UTF-16) → strict UTF-8 → CP949 (a superset of EUC-KR) → each line as
    UTF-8, else CP949 → charset-normalizer.
    "연차휴가는 15일이다.".encode("cp949") → "연차휴가는 15일이다."

    Raises:
        LoadError: "binary data, not text" (NUL bytes without a UTF-16 BOM, many control chars,
            or no encoding fits).
    """
    text: str | None = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LoadError(path, f"invalid {codec} text after byte-order mark ({exc.reason})") from exc
            break
    if text is None:
        if b"\x00" in data:
            raise LoadError(path, "binary data, not text")
        for codec in ("utf-8", "cp949"):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        text = _decode_lines(data)
    if text is None:
        best = from_bytes(data).best()
        if best is None:
            raise LoadError(path, "binary data, not text")
        log.info("%s: decoded as %s (detected)", path, best.encoding)
        text = str(best)
    if _looks_binary(text):
        raise LoadError(path, "binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def markdown_lines(text: str) -> tuple[str | None, list[tuple[str | None, str]]]:
    """Split Markdown into (heading, line) pairs; '#' lines outside code fences set the heading.

    "# 취업규칙\\n## 휴가\\n연차휴가는 15일이다." → ("취업규칙", [("휴가", "연차휴가는 15일이다.")])
    """
    title: str | None = None
    heading: str | None = None
    in_fence = False
    lines: list[tuple[str | None, str]] = []
    for line in text.split("\n"):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := _MD_HEADING.match(line)):
            heading = match.group(2).strip()
            if title is None and len(match.group(1)) == 1:
                title = heading
            continue
        lines.append((heading, line))
    return title, lines


def load_text(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Plain text → one Block; Markdown → one Block per heading section (title = first '# ').

    A plain text hard-wrapped at a width (`looks_hard_wrapped`) is marked for reflow.
    """
    text = decode_text(path, data)
    if path.suffix.lower() == ".md":
        title, lines = markdown_lines(text)
        return title, group_lines(lines)
    text = text.strip()
    return None, [Block(text, layout=looks_hard_wrapped(text))] if text else []


# ---------------------------------------------------------------- HTML

_HTML_SKIP = {"script", "style", "nav", "noscript", "template", "head", "svg", "iframe"}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BREAKS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "table", "section", "article",
    "main", "header", "footer", "aside", "blockquote", "pre", "hr", "form", "figure", "figcaption",
}  # fmt: skip


def _after(tag: Tag) -> object:
    """The first node after `tag`'s whole subtree (iterative, safe for deep nesting)."""
    last: object = tag
    while isinstance(last, Tag) and last.contents:
        last = last.contents[-1]
    return last.next_element  # type: ignore[attr-defined]


def _span(cell: Tag) -> int:
    try:
        return int(str(cell.get("colspan", "1")).strip() or 1)
    except ValueError:
        return 1


def _html_table_lines(table: Tag) -> list[str]:
    """A <table>'s caption, then its rows written with their header row (`ingest.tables`);
    a table nested in a cell is read as that cell's text."""
    out = []
    caption = table.find("caption")
    if caption is not None and caption.find_parent("table") is table and (text := caption.get_text(" ", strip=True)):
        out.append(text)
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    cells = [
        spread([(c.get_text(" ", strip=True), _span(c)) for c in tr.find_all(["td", "th"], recursive=False)],
               header=i == 0)
        for i, tr in enumerate(rows)
    ]
    out.extend(table_lines(cells))
    return out


def html_lines(soup: BeautifulSoup) -> list[tuple[str | None, str]]:
    """(heading, line) pairs in document order; table rows become lines of cells written with
    their header row ("구분: 2025년 | 예산: 12.5", `ingest.tables`).

    A <br> is a soft line break: it stays a "\n" inside its paragraph's line, which
    `group_lines` marks for reflow (a sentence cut by it is joined again, list lines are not).
    Follows the `next_element` chain instead of recursing, so 10,000 nested <div>s are fine.
    "<h2>휴가</h2><p>연차휴가는 15일이다.</p>" → [("휴가", "연차휴가는 15일이다.")]
    "<p>연차휴가는 입사 1년 후<br>15일이다.</p>" → [(None, "연차휴가는 입사 1년 후\n15일이다.")]
    """
    lines: list[tuple[str | None, str]] = []
    heading: str | None = None
    buffer: list[str] = []  # strings since the last break
    broken: list[str] = []  # the paragraph's earlier lines, each ended by a <br>

    def soft_break() -> None:
        broken.append(" ".join(" ".join(buffer).split()))
        buffer.clear()

    def flush() -> None:
        soft_break()
        line = "\n".join(broken).strip("\n")
        if line:
            lines.append((heading, line))
        broken.clear()

    node = soup.contents[0] if soup.contents else None
    while node is not None:
        if isinstance(node, Tag):
            name = node.name.lower()
            if name in _HTML_SKIP:
                node = _after(node)
                continue
            if name in _HTML_HEADINGS or name in ("tr", "table"):
                flush()
                if name == "table":
                    lines.extend((heading, line) for line in _html_table_lines(node))
                elif name == "tr":  # a row outside any table
                    cells = [c.get_text(" ", strip=True) for c in node.find_all(["td", "th"], recursive=False)]
                    lines.append((heading, " | ".join(cells)))
                else:
                    heading = node.get_text(" ", strip=True) or heading
                node = _after(node)
                continue
            if name == "br":
                soft_break()
            elif name in _HTML_BREAKS:
                flush()
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            buffer.append(str(node))
        node = node.next_element
    flush()
    return lines


def load_html(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Visible text of an HTML page, one Block per heading section; title = <title> or first heading."""
    try:
        soup = BeautifulSoup(data, "lxml")
        title_tag = soup.find("title")
        title = title_tag.get_text(" ", strip=True) if title_tag else None
        lines = html_lines(soup)
    except RecursionError as exc:
        raise LoadError(path, "HTML nested too deeply to parse") from exc
    # The HTML parser accepts any bytes, so random data would be indexed as text of U+FFFD and
    # control characters; apply the same test as plain text to what would be indexed.
    if _looks_binary("\n".join(line for _, line in lines)):
        raise LoadError(path, "binary data, not HTML")
    blocks = group_lines(lines)
    return title or next((b.heading for b in blocks if b.heading), None), blocks


# ---------------------------------------------------------------- PDF


def _open_pdf(path: Path, data: bytes) -> PdfReader:
    """Open a PDF, decrypting with the empty password when that is all it needs."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError(path, "encrypted PDF (password required)")
        return reader
    except LoadError:
        raise
    except DependencyError as exc:
        raise EncryptedDocumentError(path, "encrypted PDF (AES; install 'cryptography' to open it)") from exc
    except FileNotDecryptedError as exc:
        raise EncryptedDocumentError(path, "encrypted PDF (password required)") from exc
    except Exception as exc:  # pypdf raises PdfReadError, LimitReachedError, ValueError, KeyError... on damage
        raise LoadError(path, f"corrupt PDF: {exc or type(exc).__name__}") from exc


# A page with fewer letters than this in its text layer, and an image on it, is a scanned page.
_SCANNED_CHARS = 10


def load_pdf(path: Path, data: bytes, limits: LoadLimits, ocr: Ocr | None = None) -> tuple[str | None, list[Block]]:
    """One Block per page with text, page = 1-based page number. A scanned page (no or a
    negligible text layer, and an image on it) is read by `ocr` when there is one.

    Raises:
        EncryptedDocumentError: "encrypted PDF" when the empty password does not open it.
        NeedsOcrError: "no text layer (scanned PDF?): … needs OCR" when no page yields text,
            a page is an image and OCR is not installed.
        EmptyDocumentError: "no text layer (scanned PDF?)" when no page yields text (with OCR:
            "…, and OCR found no text in its N scanned pages").
        UnsafeDocumentError: "PDF content too large to decompress safely: page N: ..." when no page
            yields text and pypdf stopped at its decompression limit.
        LoadError: "corrupt PDF: ..." for damaged or truncated files, or when every page fails.
    """
    reader = _open_pdf(path, data)
    try:
        pages = reader.pages
        page_count = len(pages)
    except Exception as exc:  # pypdf raises many kinds on a broken page tree
        raise LoadError(path, f"corrupt PDF: {exc or type(exc).__name__}") from exc
    if page_count == 0:
        raise LoadError(path, "corrupt PDF: no pages")
    if page_count > limits.max_pages:
        raise UnsafeDocumentError(path, f"too many pages ({page_count} > limit {limits.max_pages})")
    blocks: list[Block] = []
    failures: list[tuple[int, Exception]] = []
    thin: list[int] = []  # pages with (almost) no text layer
    for number in range(1, page_count + 1):
        try:
            text = pages[number - 1].extract_text() or ""
        except Exception as exc:  # one broken page should not lose the rest of the document
            log.warning("%s: page %d: text extraction failed (%s: %s)", path, number, type(exc).__name__, exc)
            failures.append((number, exc))
            continue
        text = text.replace("\x00", "").replace("\r\n", "\n").strip()
        if len(re.sub(r"\s", "", text)) < _SCANNED_CHARS:
            thin.append(number)
        if text:
            blocks.append(Block(text, page=number, layout=True))  # lines as typeset: reflowed when chunked
    scanned = _scanned_pages(path, data, thin) if thin else []
    if scanned and ocr is not None:
        read = _ocr_pdf_pages(path, data, scanned, ocr, limits)
        blocks = sorted([b for b in blocks if b.page not in read] + list(read.values()), key=lambda b: b.page or 0)
    if not blocks:
        _raise_page_failures(path, failures, page_count)
        if scanned and ocr is None:
            raise NeedsOcrError(path, f"no text layer (scanned PDF?): its {len(scanned)} page image(s) need OCR, "
                                      f"which is not installed here ({INSTALL_HINT})")
        if scanned:
            raise EmptyDocumentError(path, f"no text layer (scanned PDF?), and OCR found no text in its "
                                           f"{len(scanned)} scanned page(s)")
        raise EmptyDocumentError(path, "no text layer (scanned PDF?)")
    if scanned and ocr is None:
        log.warning("%s: pages %s are scanned images and were not read (%s)", path, scanned, INSTALL_HINT)
    return None, blocks


def _scanned_pages(path: Path, data: bytes, numbers: list[int]) -> list[int]:
    """Of the pages with no text layer, those that hold an image (pdfium's page objects)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        log.warning("%s: pdfium cannot open the PDF to look for scanned pages (%s)", path, exc)
        return []
    try:
        out = []
        for number in numbers:
            try:
                page = document[number - 1]
                if any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2)):
                    out.append(number)
            except Exception as exc:  # pdfium on a damaged page: that page is not looked at
                log.warning("%s: page %d: pdfium cannot read its objects (%s)", path, number, exc)
        return out
    finally:
        document.close()


def _ocr_pdf_pages(path: Path, data: bytes, numbers: list[int], ocr: Ocr, limits: LoadLimits) -> dict[int, Block]:
    """Render the scanned pages (pdfium, ~300 dpi, at most `limits.max_image_pixels`) and read them."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    read: dict[int, Block] = {}
    try:
        for number in numbers:
            try:
                image = render_scan(document[number - 1], limits.max_image_pixels)
            except Exception as exc:  # pdfium cannot render this page: the others are still read
                log.warning("%s: page %d: cannot render for OCR (%s)", path, number, exc)
                continue
            try:
                result = ocr.read(image)
            except OcrBudgetSpent:
                break
            except OcrError as exc:
                log.warning("%s: page %d: %s", path, number, exc)
                continue
            if result.text:
                read[number] = Block(result.text, page=number, layout=True, ocr_confidence=result.confidence)
    finally:
        document.close()
    return read


# ---------------------------------------------------------------- images (OCR)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def load_image(path: Path, data: bytes, limits: LoadLimits, ocr: Ocr | None = None) -> tuple[str | None, list[Block]]:
    """A photo or scan of a page, read by OCR; each frame of a multi-page TIFF is a page.

    Raises:
        NeedsOcrError: OCR is not installed.
        UnsafeDocumentError: more pixels than `limits.max_image_pixels`, or more frames than pages allowed.
        EmptyDocumentError: OCR found no text.
    """
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))  # reads the header only: sizes are checked before any pixel
    except Image.DecompressionBombError as exc:
        raise UnsafeDocumentError(path, f"image too large ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LoadError(path, f"not a readable {path.suffix.lower()} image: {exc}") from exc
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise UnsafeDocumentError(path, f"image too large ({width}x{height} pixels > limit {limits.max_image_pixels:,})")
    if ocr is None:
        raise NeedsOcrError(path, f"an image is read by OCR, which is not installed here ({INSTALL_HINT})")
    blocks: list[Block] = []
    with image:
        for number, frame in enumerate(ImageSequence.Iterator(image), 1):
            if number > limits.max_pages:
                raise UnsafeDocumentError(path, f"too many pages (frames over the limit {limits.max_pages})")
            width, height = frame.size
            if width * height > limits.max_image_pixels:
                raise UnsafeDocumentError(path, f"image too large ({width}x{height} pixels > limit "
                                                f"{limits.max_image_pixels:,}) on page {number}")
            try:
                result = ocr.read(frame.convert("L"))
            except OcrBudgetSpent:
                break
            except OcrError as exc:
                raise LoadError(path, f"page {number}: {exc}") from exc
            if result.text:
                blocks.append(Block(result.text, page=number, layout=True, ocr_confidence=result.confidence))
    if not blocks and ocr.budget is None:
        raise EmptyDocumentError(path, "OCR found no text in the image")
    return None, blocks


def _raise_page_failures(path: Path, failures: list[tuple[int, Exception]], page_count: int) -> None:
    """When no page gave text, say why if pages failed, instead of blaming a missing text layer.

    A decompression bomb stops pypdf at its output limit on the page that holds it: that page's
    text is unknown, so "scanned PDF?" would be wrong even if the other pages are image-only.
    """
    for number, exc in failures:
        if isinstance(exc, LimitReachedError):
            raise UnsafeDocumentError(
                path, f"PDF content too large to decompress safely: page {number}: {exc}"
            ) from exc
    if failures and len(failures) == page_count:
        number, exc = failures[0]
        raise LoadError(path, f"corrupt PDF: page {number}: {exc or type(exc).__name__}") from exc


# ---------------------------------------------------------------- JSONL


def _jsonl_record(path: Path, number: int, line: str) -> tuple[str, str, dict]:
    """Validate one JSONL line → (id, text, metadata); errors name the line number."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LoadError(path, f"line {number}: invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise LoadError(path, f"line {number}: expected a JSON object, got {type(record).__name__}")
    doc_id, text, metadata = record.get("id"), record.get("text"), record.get("metadata", {})
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise LoadError(path, f"line {number}: missing or non-string 'id'")
    if not isinstance(text, str) or not text.strip():
        raise LoadError(path, f"line {number}: missing, empty or non-string 'text'")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise LoadError(path, f"line {number}: 'metadata' must be an object")
    return doc_id, text, metadata


def _jsonl_page(path: Path, number: int, metadata: dict) -> int | None:
    page = metadata.get("page")
    if page is None:
        return None
    if isinstance(page, bool) or not isinstance(page, (int, str)) or not str(page).strip().isdigit():
        raise LoadError(path, f"line {number}: metadata.page must be an integer, got {page!r}")
    return int(page)


def jsonl_doc_id(source: str, record_id: str) -> str:
    """The doc id of one JSONL line: its file's resolved path, '#', the line's id.

    jsonl_doc_id("/uploads/hr/faq.jsonl", "faq-1") → "/uploads/hr/faq.jsonl#faq-1"
    The file is part of the identity because line ids are only unique within one file: two
    groups' uploads may both hold a line "faq-1". '%' and '#' in the line id are escaped
    ("a#1" → "a%231"), so the last '#' always separates path and id and no two (file, id)
    pairs share a doc id; chunk ids append "#NNNN-hash" (`chunk_id`).
    """
    return f"{source}#{record_id.replace('%', '%25').replace('#', '%23')}"


def load_jsonl(path: Path, data: bytes, group: str = "public") -> list[SourceDoc]:
    """Each line {"id", "text", "metadata"} → one SourceDoc; blank lines are skipped.

    '{"id": "hr-1", "text": "연차휴가는 15일이다.", "metadata": {"page": 3}}' in /d/hr.jsonl
    → SourceDoc(doc_id="/d/hr.jsonl#hr-1", record_id="hr-1", title="hr-1",
                blocks=[Block("연차휴가는 15일이다.", page=3)], ...)

    Raises:
        LoadError: naming the line for invalid JSON, a missing id/text, or a duplicate id.
    """
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text at byte {exc.start}") from exc
    source = str(path.resolve())
    docs: list[SourceDoc] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        record_id, text, metadata = _jsonl_record(path, number, line)
        if record_id in first_line:
            raise LoadError(path, f"line {number}: duplicate id {record_id!r} (first on line {first_line[record_id]})")
        first_line[record_id] = number
        canonical = json.dumps({"id": record_id, "text": text, "metadata": metadata}, sort_keys=True, ensure_ascii=False)
        docs.append(
            SourceDoc(
                doc_id=jsonl_doc_id(source, record_id),
                source=source,
                title=str(metadata.get("title") or record_id),
                blocks=[Block(text.strip(), page=_jsonl_page(path, number, metadata))],
                sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                group=group,
                metadata=metadata,
                record_id=record_id,
            )
        )
    if not docs:
        raise EmptyDocumentError(path, "no records (only blank lines)")
    return docs


# ---------------------------------------------------------------- dispatch

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".md": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".hwpx": load_hwpx,
    ".hwp": load_hwp,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
}
# Loaders that also take the Ocr (None when OCR is not installed).
OCR_LOADERS: dict[str, Callable[[Path, bytes, LoadLimits, Ocr | None], tuple[str | None, list[Block]]]] = {
    ".pdf": load_pdf,
    **dict.fromkeys(IMAGE_EXTENSIONS, load_image),
}
SUPPORTED_EXTENSIONS = (*LOADERS, *OCR_LOADERS, ".jsonl")


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
        UnsupportedFileType: the extension is not one of SUPPORTED_EXTENSIONS.
        LoadError: any other failure; the message names the file and the reason.
    """
    path = Path(path)
    limits = limits or LoadLimits()
    ext = path.suffix.lower()
    refuse_legacy(path)  # .doc/.ppt/.xls: say to save it in the new format
    if ext not in SUPPORTED_EXTENSIONS:
        shown = f"'{ext}'" if ext else "(none)"
        raise UnsupportedFileType(
            path, f"unsupported file type {shown} (supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))})"
        )
    data = _read_checked(path, limits)
    try:
        if ext == ".jsonl":
            return load_jsonl(path, data, group)
        if ext in OCR_LOADERS:
            title, blocks = OCR_LOADERS[ext](path, data, limits, ocr)
        else:
            title, blocks = LOADERS[ext](path, data, limits)
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
