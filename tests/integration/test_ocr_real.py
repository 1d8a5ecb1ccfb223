"""The real Tesseract with its Korean model: a photographed notice (PNG rendered with a Hangul
font) and a scanned PDF page are read, indexed and found; a re-index reads no page twice.
Skips, saying what to install, where Tesseract or its Korean model is missing (.ci/run and
setup.sh install them where apt works)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from app.pipeline import Pipeline
from app.settings import Settings
from ingest.load import load_file
from ingest.ocr import INSTALL_HINT, Ocr
from tests.fakes import HashEmbedder
from tests.pdfs import find_korean_ttf
from tests.scans import lines_image

pytestmark = pytest.mark.integration

NOTICE = ["사내 공지", "연차휴가 신청은 인사포털에서", "사용 예정일 3일 전까지 한다.", "문의: 인사팀 내선 2345"]


@pytest.fixture(scope="module")
def ocr():
    found = Ocr.find()
    if found is None:
        pytest.skip(f"Tesseract with its Korean model is not installed: {INSTALL_HINT}")
    return found


def notice_image() -> Image.Image:
    ttf = find_korean_ttf()
    if ttf is None:
        pytest.skip("no Hangul TrueType font (apt-get install fonts-nanum)")
    return lines_image(NOTICE, ttf, size=(1200, 500), font_px=40, at=(60, 50), pitch=100)


def test_a_photo_of_a_notice_is_read_in_korean(tmp_path, ocr):
    path = tmp_path / "공지.png"
    notice_image().save(path)
    (doc,) = load_file(path, ocr=ocr)
    text = doc.text.replace(" ", "")
    for phrase in ("연차휴가신청은인사포털에서", "3일전까지", "인사팀내선2345"):
        assert phrase in text, doc.text
    (block,) = doc.blocks
    assert block.ocr_confidence is not None and block.ocr_confidence >= 60


def test_a_scanned_pdf_is_indexed_found_and_not_read_twice(tmp_path, ocr):
    picture = tmp_path / "scan.png"
    notice_image().convert("L").save(picture)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(picture), x=10, y=10, w=190)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "스캔공지.pdf").write_bytes(bytes(pdf.output()))
    settings = Settings(index_dir=tmp_path / "index")
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    report = pipeline.ingest([docs])
    assert not report.failed, report.failed
    (entry,) = pipeline.documents()
    assert list(entry.ocr_pages) == ["1"] and entry.low_confidence_pages() == []
    hits = pipeline.search("연차휴가 신청 인사포털", 3)
    assert hits and Path(hits[0].chunk.source).name == "스캔공지.pdf" and hits[0].chunk.page == 1
    cache = list((tmp_path / "index" / "ocr-cache").rglob("*.json"))
    assert len(cache) == 1
    # a second pipeline over the same index re-chunks nothing and reads no page again
    again = Pipeline(settings, embedder=HashEmbedder())
    ocr_again = again.ocr()
    assert ocr_again is not None
    (doc,) = load_file(docs / "스캔공지.pdf", ocr=ocr_again)
    assert ocr_again.reads == 0 and "인사포털" in doc.text.replace(" ", "")
