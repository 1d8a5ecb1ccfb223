"""ingest.pages: a page rendered to PNG and where a quote sits on it (text layer or OCR words)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ingest.ocr import OcrPage, Word
from ingest.pages import Box, PageCache, PageNotFound, find_chars, has_page_images, locate, locate_words, merge_lines, render_page
from tests.pdfs import build_pdf, find_korean_ttf

FONT = find_korean_ttf()
needs_font = pytest.mark.skipif(FONT is None, reason="no Hangul TrueType font (apt-get install fonts-nanum)")


def test_find_chars_ignores_whitespace_and_line_breaks():
    page = "제1조 연차\r\n휴가는 15일"
    assert find_chars(page, "연차휴가는") == [4, 5, 8, 9, 10]
    assert "".join(page[i] for i in find_chars(page, "연차 휴가는 15일")) == "연차휴가는15일"
    assert find_chars(page, "병가는 60일") == []
    assert find_chars("", "연차") == [] and find_chars(page, " ") == []


def test_find_chars_takes_the_shared_runs_of_a_quote_that_was_rewritten():
    # a table row as chunked ("구분: 2024년 | 예산: 12.5억원") against the page's cells
    page = "구분 2024년 2025년\n예산 12.5억원 13.0억원"
    found = "".join(page[i] for i in find_chars(page, "구분: 2024년 | 예산: 12.5억원"))
    assert "2024년" in found and "12.5억원" in found
    assert find_chars(page, "전혀 관계없는 문장입니다") == []  # no long enough run: nothing, not noise


def test_merge_lines_makes_one_box_per_line_run():
    chars = [(0.1, 0.10, 0.12, 0.12), (0.12, 0.10, 0.14, 0.12), (0.0, 0.0, 0.0, 0.0),  # a space: no extent
             (0.1, 0.13, 0.12, 0.15), (0.12, 0.13, 0.15, 0.15)]
    assert merge_lines(chars) == [Box(0.1, 0.10, 0.14, 0.12), Box(0.1, 0.13, 0.15, 0.15)]
    assert Box(0.123456, 0, 1, 1).to_list() == [0.1235, 0, 1, 1]


def test_locate_words_boxes_the_ocr_words_of_a_quote():
    words = [Word("연차휴가는", 100, 100, 200, 40, 95), Word("15일이다.", 320, 100, 160, 40, 93),
             Word("병가는", 100, 160, 120, 40, 90), Word("60일이다.", 240, 160, 160, 40, 91)]
    page = OcrPage("연차휴가는 15일이다.\n병가는 60일이다.", 92, words, (1000, 2000))
    boxes = locate_words(page, "연차휴가는 15일이다.")
    assert boxes == [Box(0.1, 0.05, 0.48, 0.07)]
    assert len(locate_words(page, "15일이다. 병가는")) == 2  # two lines
    assert locate_words(OcrPage("", 0, [], (0, 0)), "연차") == []


@needs_font
def test_render_and_locate_on_a_pdf_text_layer(tmp_path):
    pdf = tmp_path / "규정.pdf"
    pdf.write_bytes(build_pdf(["제목\n연차휴가는 15일을 부여한다. 병가는 60일 이내로 한다.", "둘째 쪽"], FONT))
    png = render_page(pdf, 1, 500, 60_000_000)
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.width == 500
    boxes = locate(pdf, 1, "병가는 60일 이내로 한다.")
    assert len(boxes) == 1
    b = boxes[0]
    crop = image.crop((int(b.x0 * 500), int(b.y0 * image.height), int(b.x1 * 500), int(b.y1 * image.height)))
    assert crop.getextrema()[0] < 100  # text under the box
    assert b.y0 > 0.03 and b.x1 - b.x0 > 0.1
    assert locate(pdf, 2, "병가는 60일") == []  # not on that page
    with pytest.raises(PageNotFound):
        render_page(pdf, 3, 500, 60_000_000)
    # a page may not exceed the pixel limit, whatever width is asked
    small = Image.open(io.BytesIO(render_page(pdf, 1, 4000, 100_000)))
    assert small.width * small.height <= 100_000 * 1.02


def test_images_render_by_frame_and_text_files_have_no_pages(tmp_path):
    frames = [Image.new("RGB", (300, 400), c) for c in ("white", "black")]
    tiff = tmp_path / "스캔.tiff"
    frames[0].save(tiff, save_all=True, append_images=frames[1:])
    second = Image.open(io.BytesIO(render_page(tiff, 2, 1000, 60_000_000)))
    assert second.size == (300, 400) and second.convert("L").getextrema() == (0, 0)  # never scaled up
    with pytest.raises(PageNotFound):
        render_page(tiff, 3, 1000, 60_000_000)
    txt = tmp_path / "a.txt"
    txt.write_text("연차", encoding="utf-8")
    with pytest.raises(PageNotFound):
        render_page(txt, 1, 1000, 60_000_000)
    assert has_page_images("x.PDF") and has_page_images("y.jpg") and not has_page_images("z.hwpx")


def test_page_cache_keeps_under_its_size(tmp_path):
    cache = PageCache(tmp_path / "pages", max_bytes=2500)
    for n in range(1, 6):
        cache.put("ab" * 32, n, 100, bytes(1000))
    assert cache.get("ab" * 32, 5, 100) == bytes(1000)
    cache.prune()
    assert sum(p.stat().st_size for p in (tmp_path / "pages").rglob("*.png")) <= 2500
    assert cache.get("ab" * 32, 1, 100) is None  # the oldest went first
    with pytest.raises(ValueError):
        cache.path("../../etc", 1, 100)
