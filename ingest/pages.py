"""A stored document's pages as an employee sees them: a page rendered to PNG, and the boxes a
quoted span covers on it (from the PDF's text layer, or from OCR's word boxes for scans).

    render_page(Path("취업규칙.pdf"), 3, width=1000)                 -> PNG bytes of page 3
    locate(Path("취업규칙.pdf"), 3, "연차휴가는 15일을 부여한다.")      -> [Box(0.12, 0.30, 0.55, 0.33)]
    locate_words(ocr_page, "연차휴가는 15일")                          -> the words' boxes on a scan

Boxes are fractions of the page (0-1, origin top left), so a client draws them over the page
image at any size. A quote is looked up with whitespace ignored (reflow joined the PDF's line
breaks), exactly first and otherwise by its longest matching runs; a quote that cannot be found
on the page gets no boxes rather than wrong ones.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from ingest.loaders.images import IMAGE_EXTENSIONS  # the formats read page by page as images
from ingest.ocr import Ocr, OcrPage, render_scan

log = logging.getLogger(__name__)

PDF_EXTENSIONS = (".pdf",)
MIN_RUN = 4  # characters: shorter common runs of a quote and a page are chance, not the quote
MIN_FOUND = 0.5  # of the quote's letters: below this the quote is not on the page


class PageNotFound(LookupError):
    """The document has no such page, or its format has no page images."""


@dataclass(frozen=True)
class Box:
    """A highlighted rectangle as fractions of the page's width and height, origin top left."""

    x0: float
    y0: float
    x1: float
    y1: float

    def to_list(self) -> list[float]:
        return [round(self.x0, 4), round(self.y0, 4), round(self.x1, 4), round(self.y1, 4)]


def has_page_images(source: str | os.PathLike[str]) -> bool:
    """Whether a document's pages can be shown as images (PDFs and scans/photos)."""
    return Path(source).suffix.lower() in PDF_EXTENSIONS + IMAGE_EXTENSIONS


# ---------------------------------------------------------------- rendering

def render_page(path: Path, number: int, width: int, max_pixels: int) -> bytes:
    """Page `number` (1-based) of a PDF or image file as PNG bytes, `width` pixels wide (fewer
    when the page would exceed `max_pixels`; an image is never scaled up).

    Raises:
        PageNotFound: no such page, or not a PDF/image.
    """
    suffix = path.suffix.lower()
    if suffix in PDF_EXTENSIONS:
        image = _render_pdf_page(path, number, width, max_pixels)
    elif suffix in IMAGE_EXTENSIONS:
        image = _image_frame(path, number, max_pixels).convert("RGB")
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))))
    else:
        raise PageNotFound(f"{path.name}: a {suffix or 'text'} file has no page images")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _render_pdf_page(path: Path, number: int, width: int, max_pixels: int):
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        page = _pdf_page(document, number, path)
        w, h = page.get_size()
        scale = min(width / max(w, 1.0), (max_pixels / max(w * h, 1.0)) ** 0.5)
        return page.render(scale=scale).to_pil()
    finally:
        document.close()


def _pdf_page(document, number: int, path: Path):
    if not 1 <= number <= len(document):
        raise PageNotFound(f"{path.name}: no page {number} (it has {len(document)})")
    return document[number - 1]


def _image_frame(path: Path, number: int, max_pixels: int):
    from PIL import Image, ImageSequence

    image = Image.open(path)
    if image.width * image.height > max_pixels:
        raise PageNotFound(f"{path.name}: image too large to show ({image.width}x{image.height})")
    for i, frame in enumerate(ImageSequence.Iterator(image), 1):
        if i == number:
            if frame.width * frame.height > max_pixels:
                raise PageNotFound(f"{path.name}: page {number} too large to show")
            frame.load()
            return frame.copy()
        if i > number:
            break
    raise PageNotFound(f"{path.name}: no page {number}")


# ---------------------------------------------------------------- where a quote sits

def locate(path: Path, number: int, text: str, *, ocr: Ocr | None = None, max_pixels: int = 60_000_000) -> list[Box]:
    """The boxes `text` covers on page `number`: from the PDF's text layer, else (a scanned page
    or an image) from the cached OCR result of that page, when `ocr` has it."""
    if not text.strip():
        return []
    suffix = path.suffix.lower()
    if suffix in PDF_EXTENSIONS:
        boxes, scanned = _locate_pdf(path, number, text, max_pixels, ocr)
        return boxes if boxes or scanned is None else locate_words(scanned, text)
    if suffix in IMAGE_EXTENSIONS and ocr is not None:
        page = ocr.cached(_image_frame(path, number, max_pixels).convert("L"))
        return locate_words(page, text) if page is not None else []
    return []


def _locate_pdf(path: Path, number: int, text: str, max_pixels: int, ocr: Ocr | None) -> tuple[list[Box], OcrPage | None]:
    """(boxes from the text layer, the cached OCR of the page when the layer has no text)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        page = _pdf_page(document, number, path)
        width, height = page.get_size()
        textpage = page.get_textpage()
        count = textpage.count_chars()
        chars = textpage.get_text_range(0, count) if count > 0 else ""
        if len(chars) != count:  # pdfium's text and its char indexes disagree: no safe mapping
            chars = ""
        if not chars.strip():
            return [], (ocr.cached(render_scan(page, max_pixels)) if ocr is not None else None)
        found = find_chars(chars, text)
        rects = []
        for i in found:
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            rects.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
        return merge_lines(rects), None
    finally:
        document.close()


def locate_words(page: OcrPage, text: str) -> list[Box]:
    """The boxes of the OCR words `text` covers (their pixels as fractions of the page image)."""
    width, height = page.size
    if not page.words or width <= 0 or height <= 0:
        return []
    letters: list[str] = []
    owner: list[int] = []
    for i, word in enumerate(page.words):
        for ch in word.text:
            if not ch.isspace():
                letters.append(ch)
                owner.append(i)
    hit = sorted({owner[i] for i in find_chars("".join(letters), text)})
    rects = [(w.left / width, w.top / height, (w.left + w.width) / width, (w.top + w.height) / height)
             for w in (page.words[i] for i in hit)]
    return merge_lines(rects)


def find_chars(page: str, text: str) -> list[int]:
    """Indexes of the characters of `page` that spell `text`, whitespace ignored on both sides:
    the first exact occurrence, else the runs of at least MIN_RUN characters they share in
    order, when those cover at least MIN_FOUND of `text`'s letters; [] when it is not there.

    find_chars("제1조 연차\\r\\n휴가는 15일", "연차휴가는") -> [4, 5, 8, 9, 10]
    """
    index = [i for i, ch in enumerate(page) if not ch.isspace()]
    hay = "".join(page[i] for i in index)
    needle = "".join(ch for ch in text if not ch.isspace())
    if not needle or not hay:
        return []
    at = hay.find(needle)
    if at >= 0:
        return index[at:at + len(needle)]
    matcher = SequenceMatcher(None, hay, needle, autojunk=False)
    runs = [m for m in matcher.get_matching_blocks() if m.size >= min(MIN_RUN, len(needle))]
    if sum(m.size for m in runs) < MIN_FOUND * len(needle):
        return []
    return [index[m.a + k] for m in runs for k in range(m.size)]


def merge_lines(rects: Sequence[tuple[float, float, float, float]]) -> list[Box]:
    """Character or word rectangles in reading order, merged into one box per line run: a new box
    starts where the next rectangle is on another line or goes back to the left."""
    boxes: list[list[float]] = []
    for x0, y0, x1, y1 in rects:
        if x1 <= x0 or y1 <= y0:
            continue  # a space or a generated line break has no extent
        if boxes:
            b = boxes[-1]
            middle = (y0 + y1) / 2
            if b[1] <= middle <= b[3] and x0 >= b[0] - 1e-3 and x0 - b[2] < 3 * (y1 - y0):
                b[0], b[1], b[2], b[3] = min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)
                continue
        boxes.append([x0, y0, x1, y1])
    return [Box(*(min(1.0, max(0.0, v)) for v in b)) for b in boxes]


# ---------------------------------------------------------------- cache

class PageCache:
    """Rendered pages on disk, `<root>/<document sha256>/<page>-<width>.png`, at most `max_bytes`
    (the least recently written go first). Keyed by content, so a changed file never shows an
    old page; reached only through the routes that check the caller's groups."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._writes = 0

    def path(self, sha256: str, number: int, width: int) -> Path:
        if not sha256.isalnum():
            raise ValueError(f"not a content hash: {sha256!r}")
        return self.root / sha256 / f"{int(number)}-{int(width)}.png"

    def get(self, sha256: str, number: int, width: int) -> bytes | None:
        try:
            return self.path(sha256, number, width).read_bytes()
        except OSError:
            return None

    def put(self, sha256: str, number: int, width: int, png: bytes) -> None:
        path = self.path(sha256, number, width)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(png)
            tmp.replace(path)
        except OSError as exc:
            log.warning("page cache not written (%s): %s", path, exc)
            return
        self._writes += 1
        if self._writes % 20 == 1:
            self.prune()

    def prune(self) -> int:
        """Remove the oldest pages until the cache fits `max_bytes`; returns how many went."""
        files = []
        for p in self.root.glob("*/*.png"):
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, p in sorted(files):
            if total <= self.max_bytes:
                break
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        if removed:
            log.info("page cache: removed %d old pages to stay under %d MB", removed, self.max_bytes >> 20)
        return removed
