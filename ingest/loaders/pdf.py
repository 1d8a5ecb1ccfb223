"""PDF documents: one Block per page from the text layer (pypdf); tables as rows; scanned pages read by OCR.

    load_pdf(path, data, limits)      -> (None, [Block("제1조 …", page=1, layout=True), …])
    load_pdf(path, data, limits, ocr) -> the same, scanned pages (an image and no text layer) OCR'd

Page text keeps its layout line breaks (`Block.layout`); the chunker reflows it. A ruled table
(`pdf_tables`) becomes a Block of its rows with their column headers, its caption as the
heading, between the page's text above and below it:
    [Block("…위원회가 정한다.", page=2, layout=True),
     Block("구분: 본사 | 예산(억원) 2024년: 12.5 | …", page=2, heading="<표 1> 부서별 예산"),
     Block("다음 각 호의 …", page=2, layout=True)]
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from ingest.errors import (
    EmptyDocumentError,
    EncryptedDocumentError,
    LoadError,
    NeedsOcrError,
    UnsafeDocumentError,
)
from ingest.ocr import INSTALL_HINT, Ocr, OcrBudgetSpent, OcrError, render_scan
from ingest.types import Block

from .common import LoadLimits
from .pdf_tables import Header, Rulings, find_tables, split_page
from .registry import Format, Magic, register

log = logging.getLogger(__name__)

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
    extracted: dict[int, tuple[str, Rulings]] = {}  # what pypdf read: the text, and what the page draws
    for number in range(1, page_count + 1):
        rulings = Rulings()
        try:
            extracted[number] = (pages[number - 1].extract_text(visitor_operand_before=rulings.visit) or "", rulings)
        except Exception as exc:  # one broken page should not lose the rest of the document
            log.warning("%s: page %d: text extraction failed (%s: %s)", path, number, type(exc).__name__, exc)
            failures.append((number, exc))
            continue
        text = _clean(extracted[number][0])
        if len(re.sub(r"\s", "", text)) < _SCANNED_CHARS:
            thin.append(number)
        if text:
            blocks.append(Block(text, page=number, layout=True))  # lines as typeset: reflowed when chunked
    if blocks:
        blocks = _with_tables(path, data, pages, blocks, extracted)
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


def _clean(text: str) -> str:
    return text.replace("\x00", "").replace("\r\n", "\n").strip()


def _with_tables(path: Path, data: bytes, pages, blocks: list[Block],
                 extracted: dict[int, tuple[str, Rulings]]) -> list[Block]:
    """Pages with ruled tables (`pdf_tables`): each table's rows as a Block of their own, its
    caption as the heading, in place of its cells in the page's text; the text above and below
    stays layout text. A page whose tables cannot be placed keeps its text as it was."""
    found = find_tables(path, data, {b.page: extracted[b.page] for b in blocks
                                     if b.page is not None and _upright(pages[b.page - 1])})
    if not found:
        return blocks
    out: list[Block] = []
    carried: Header | None = None
    for block in blocks:
        assert block.page is not None
        result = None
        if block.page in found:
            page = pages[block.page - 1]
            try:
                result = split_page(path, page, extracted[block.page][0], found[block.page],
                                    float(page.mediabox.height), carried)
            except Exception as exc:  # the text stays as pypdf read it
                log.warning("%s: page %d: tables not placed (%s: %s)", path, block.page, type(exc).__name__, exc)
        if result is None:
            out.append(block)
            carried = None
            continue
        parts, carried = result
        for part in parts:
            if part.is_table:
                out.append(Block("\n".join(part.rows), page=block.page, heading=part.caption))
            elif text := _clean(part.text):
                out.append(Block(text, page=block.page, layout=True))
    return out


def _upright(page) -> bool:
    """A page shown as drawn (no /Rotate): table boxes and text positions share its coordinates."""
    try:
        return page.rotation % 360 == 0
    except Exception:  # a broken /Rotate: leave the page's tables as text
        return False


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

    def rendered():  # in this thread (pdfium is not thread-safe); Tesseract reads them side by side
        for number in numbers:
            try:
                yield number, render_scan(document[number - 1], limits.max_image_pixels)
            except Exception as exc:  # pdfium cannot render this page: the others are still read
                yield number, OcrError(f"cannot render for OCR ({exc})")

    try:
        for number, result in ocr.read_many(rendered(), len(numbers)):
            if isinstance(result, Exception):
                log.warning("%s: page %d: %s", path, number, result)
            elif result.text:
                read[number] = Block(result.text, page=number, layout=True, ocr_confidence=result.confidence)
    except OcrBudgetSpent:
        pass  # a sampling Ocr (an upload's check) has read its pages
    finally:
        document.close()
    return read



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


register(Format("PDF document", (".pdf",), load=load_pdf, ocr=True,
                magic=(Magic("pdf", "a PDF document", lambda p: p.text_start.startswith(b"%pdf-")),)))
