"""Photos and scans of pages (`.png`, `.jpg`, `.jpeg`, `.tif`, `.tiff`), read by OCR.

    load_image(path, data, limits, ocr) -> (None, [Block("공지 …", page=1, layout=True, ocr_confidence=91.0)])
        each frame of a multi-page TIFF is a page; without OCR, NeedsOcrError
"""

from __future__ import annotations

import io
from pathlib import Path

from ingest.errors import (
    EmptyDocumentError,
    LoadError,
    NeedsOcrError,
    UnsafeDocumentError,
)
from ingest.ocr import INSTALL_HINT, Ocr, OcrBudgetSpent, OcrError
from ingest.types import Block

from .common import LoadLimits
from .registry import Format, Magic, register

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

    def frames():  # read here, one after another; Tesseract reads them side by side
        for number, frame in enumerate(ImageSequence.Iterator(image), 1):
            if number > limits.max_pages:
                raise UnsafeDocumentError(path, f"too many pages (frames over the limit {limits.max_pages})")
            width, height = frame.size
            if width * height > limits.max_image_pixels:
                raise UnsafeDocumentError(path, f"image too large ({width}x{height} pixels > limit "
                                                f"{limits.max_image_pixels:,}) on page {number}")
            yield number, frame.convert("L")

    with image:
        total = getattr(image, "n_frames", 1)
        try:
            for number, result in ocr.read_many(frames(), total):
                if isinstance(result, OcrError):
                    raise LoadError(path, f"page {number}: {result}") from result
                if isinstance(result, Exception):
                    raise result
                if result.text:
                    blocks.append(Block(result.text, page=number, layout=True, ocr_confidence=result.confidence))
        except OcrBudgetSpent:
            pass  # a sampling Ocr (an upload's check) has read its pages
    if not blocks and ocr.budget is None:
        raise EmptyDocumentError(path, "OCR found no text in the image")
    return None, blocks


register(Format("image", IMAGE_EXTENSIONS, load=load_image, ocr=True, accepts=("gif", "webp"), magic=(
    Magic("png", "a PNG image", lambda p: p.head.startswith(b"\x89PNG\r\n\x1a\n")),
    Magic("jpeg", "a JPEG image", lambda p: p.head.startswith(b"\xff\xd8\xff")),
    Magic("tiff", "a TIFF image", lambda p: p.head.startswith((b"II*\x00", b"MM\x00*"))),
)))
