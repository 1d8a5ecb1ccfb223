"""원문 보기 on scans with the real Tesseract: the span a citation quotes is boxed on the page
image from the OCR word boxes, for a scanned PDF page and for a photo (PNG), by finding the page's
OCR result in the cache under the key the loader used (the viewer never runs Tesseract)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest.load import load_file
from ingest.ocr import INSTALL_HINT, Ocr
from ingest.pages import locate, render_page
from tests.pdfs import find_korean_ttf

pytestmark = pytest.mark.integration

LINES = ["출장비 정산 안내", "국내 출장 일비는 하루 2만원이다.", "숙박비는 영수증으로 실비 정산한다.", "문의: 재무팀 내선 3310"]


@pytest.fixture(scope="module")
def ocr_cache(tmp_path_factory) -> Path:
    if Ocr.find() is None:
        pytest.skip(f"Tesseract with its Korean model is not installed: {INSTALL_HINT}")
    return tmp_path_factory.mktemp("ocr-cache")


def scan() -> Image.Image:
    ttf = find_korean_ttf()
    if ttf is None:
        pytest.skip("no Hangul TrueType font (apt-get install fonts-nanum)")
    font = ImageFont.truetype(str(ttf), 44)
    image = Image.new("L", (1654, 1100), 255)  # an A4-wide strip at 200 dpi
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(LINES):
        draw.text((120, 120 + 110 * i), line, font=font, fill=0)
    return image


def boxed_ink(png: bytes, boxes) -> list[int]:
    """The darkest pixel inside each box of the rendered page (text under a box is dark)."""
    page = Image.open(io.BytesIO(png)).convert("L")
    return [page.crop((int(b.x0 * page.width), int(b.y0 * page.height),
                       int(b.x1 * page.width) + 1, int(b.y1 * page.height) + 1)).getextrema()[0] for b in boxes]


@pytest.mark.parametrize("kind", ["pdf", "png"])
def test_a_quoted_line_of_a_scan_is_boxed_where_it_is_printed(tmp_path, ocr_cache, kind):
    path = tmp_path / f"출장비_안내.{kind}"
    scan().save(path, resolution=200.0)
    ocr = Ocr(ocr_cache)
    (doc,) = load_file(path, ocr=ocr)
    assert "2만원" in doc.text.replace(" ", "")
    assert ocr.reads == 1
    viewer = Ocr(ocr_cache, binary="/nonexistent/tesseract")  # the viewer only reads the cache
    boxes = locate(path, 1, "국내 출장 일비는 하루 2만원이다.", ocr=viewer)
    assert boxes, "the quoted line was not found among the OCR words"
    # one box on the second printed line: between the first and the third line's heights
    (box,) = boxes
    height = 1100
    assert 200 / height < (box.y0 + box.y1) / 2 < 310 / height, box
    assert box.x0 < 0.15 and box.x1 > 0.35, box
    png = render_page(path, 1, 800, 60_000_000)
    assert all(ink < 100 for ink in boxed_ink(png, boxes))
    # a sentence that is not on the page gets no boxes rather than wrong ones
    assert locate(path, 1, "해외 출장 항공권은 비즈니스석으로 한다.", ocr=viewer) == []
