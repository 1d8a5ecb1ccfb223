"""OCR character accuracy with the real Tesseract on the generated scans of tests/scans.py, read
through the loader: the clean 300 dpi scan at least 95 %, the noisy 200 dpi one (turned 1-2°,
blurred, noise and specks) at least 90 % (1 - CER against the rendered text, whitespace left
out: Tesseract's Korean model puts spaces inside words, "정 보 보안", which the figures in
docs/benchmarks.md "OCR" count separately). On the noisy scan, where pages are straightened
before they are read, every word box still lies over that word's ink on the page as scanned.
Skips, saying what to install, where Tesseract, its Korean model or a Hangul font is missing."""

from __future__ import annotations

import numpy as np
import pytest
import pypdfium2 as pdfium

from ingest.load import LoadLimits, load_file
from ingest.ocr import INSTALL_HINT, Ocr, _prepared, render_scan
from tests.pdfs import find_korean_ttf
from tests.scans import PAGES, char_accuracy, clean_scan, degrade, noisy_scan, printed_page

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def font():
    if Ocr.find() is None:
        pytest.skip(f"Tesseract with its Korean model is not installed: {INSTALL_HINT}")
    ttf = find_korean_ttf()
    if ttf is None:
        pytest.skip("no Hangul TrueType font (apt-get install fonts-nanum)")
    return ttf


def read_pages(tmp_path, name: str, pdf: bytes, ocr: Ocr) -> list[str]:
    path = tmp_path / name
    path.write_bytes(pdf)
    (doc,) = load_file(path, ocr=ocr)
    assert all(b.ocr_confidence is not None for b in doc.blocks)  # every page was read by OCR
    by_page = {b.page: b.text for b in doc.blocks}
    return [by_page.get(n, "") for n in range(1, max(doc.pages) + 1)]


def overall(truths: list[str], texts: list[str]) -> float:
    return char_accuracy("\n".join(truths), "\n".join(texts), spaces=False)


def test_the_clean_300_dpi_scan_is_read_at_95_percent(tmp_path, font):
    scan = clean_scan(font)
    texts = read_pages(tmp_path, "스캔_깨끗함.pdf", scan.pdf, Ocr(None))
    assert len(texts) == len(scan.texts)
    assert overall(scan.texts, texts) >= 0.95, texts
    assert "2만5천원" in texts[1].replace(" ", "")


def test_the_noisy_turned_200_dpi_scan_is_read_at_90_percent_with_boxes_on_the_words(tmp_path, font):
    scan = noisy_scan(font, seed=0)
    cache = tmp_path / "ocr-cache"
    texts = read_pages(tmp_path, "스캔_잡음.pdf", scan.pdf, Ocr(cache))
    assert overall(scan.texts, texts) >= 0.90, texts
    # the boxes of the straightened pages, back on the page as scanned: over ink of the same page
    # printed at the same angle without noise (scaled to the prepared page's pixels)
    document = pdfium.PdfDocument(scan.pdf)
    for number, skew in enumerate(scan.skews):
        ocr_page = Ocr(cache).cached(render_scan(document[number], LoadLimits().max_image_pixels))
        assert ocr_page is not None and ocr_page.words
        truth, _ = printed_page(PAGES[number], font, scan.dpi)
        ink = np.asarray(_prepared(degrade(truth, skew, 0, noise=0, specks=0, blur=0)).resize(ocr_page.size)) < 128
        sure = [w for w in ocr_page.words if w.confidence >= 80 and len(w.text) >= 2]
        # a box on its word's glyphs is ~20 % ink; boxes left unturned or turned the wrong way ~7 %
        inked = [w for w in sure if ink[w.top:w.top + w.height, w.left:w.left + w.width].mean() > 0.1]
        assert len(sure) > 40 and len(inked) >= 0.97 * len(sure), [w for w in sure if w not in inked][:5]
    document.close()

