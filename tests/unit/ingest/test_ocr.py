"""OCR plumbing with a stand-in `tesseract` (a script that prints a fixed TSV and counts its
calls): scanned PDF pages and image files are read, results cached by image, an upload check
reads only its first pages, and without OCR such files say what to install. The real
Tesseract reads Korean in tests/integration/test_ocr_real.py."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw

from ingest.chunk import Chunker
from ingest.errors import EmptyDocumentError, NeedsOcrError, UnsafeDocumentError
from ingest.load import LoadLimits, load_file
from ingest.ocr import Ocr, parse_tsv

HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
WORDS = [  # (block, par, line, text, conf)
    (1, 1, 1, "연차휴가는", 96), (1, 1, 1, "입사", 91), (1, 1, 2, "1년", 88), (1, 1, 2, "후", 90),
    (1, 1, 2, "15일이다.", 94), (1, 2, 1, "병가는", 72), (1, 2, 1, "60일이다.", 70),
]


def tsv(words=WORDS) -> str:
    rows = [HEADER, "1\t1\t0\t0\t0\t0\t0\t0\t2480\t3508\t-1\t"]
    rows += [f"5\t1\t{b}\t{p}\t{ln}\t{i}\t{10 * i}\t{40 * ln}\t50\t30\t{c}\t{t}" for i, (b, p, ln, t, c) in enumerate(words, 1)]
    return "\n".join(rows) + "\n"


def test_tesseract_tsv_becomes_lines_paragraphs_words_and_a_confidence():
    page = parse_tsv(tsv(), (2480, 3508))
    assert page.text == "연차휴가는 입사\n1년 후 15일이다.\n\n병가는 60일이다."
    assert len(page.words) == 7 and page.words[0].text == "연차휴가는" and page.words[0].width == 50
    assert page.confidence == pytest.approx(sum(w[4] for w in WORDS) / 7, abs=0.05)
    assert not page.low_confidence and parse_tsv(HEADER).text == "" and parse_tsv(HEADER).confidence == 0


@pytest.fixture
def fake_tesseract(tmp_path: Path):
    """A `tesseract` on disk that prints TSV (or nothing for an all-white image) and logs each read."""
    out = tmp_path / "page.tsv"
    out.write_text(tsv(), encoding="utf-8")
    calls = tmp_path / "calls"
    script = tmp_path / "tesseract"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--list-langs" ]; then printf 'List of available languages:\\neng\\nkor\\n'; exit 0; fi
echo read >> {calls}
cat {out}
""", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    class Fake:
        binary = str(script)

        @staticmethod
        def reads() -> int:
            return len(calls.read_text().splitlines()) if calls.exists() else 0

        @staticmethod
        def prints(text: str) -> None:
            out.write_text(text, encoding="utf-8")

    return Fake


def page_image(mark: int = 0) -> Image.Image:
    image = Image.new("L", (600, 800), 255)
    ImageDraw.Draw(image).rectangle((50, 50 + mark, 400, 80 + mark), fill=0)  # "print" on the page
    return image


def scanned_pdf(pages: int) -> bytes:
    pdf = FPDF()
    for i in range(pages):
        pdf.add_page()
        pdf.image(page_image(mark=10 * i), x=0, y=0, w=210)
    return bytes(pdf.output())


def test_a_scanned_pdf_is_read_page_by_page_and_cached(tmp_path, fake_tesseract):
    path = tmp_path / "결재문서.pdf"
    path.write_bytes(scanned_pdf(2))
    ocr = Ocr.find(tmp_path / "cache", binary=fake_tesseract.binary)
    assert ocr is not None
    (doc,) = load_file(path, ocr=ocr)
    assert doc.pages == [1, 2] and all(b.layout and b.ocr_confidence for b in doc.blocks)
    assert "15일이다." in doc.blocks[0].text and fake_tesseract.reads() == 2
    # the same pages again (a re-index): served from the cache, Tesseract is not run
    load_file(path, ocr=Ocr(tmp_path / "cache", binary=fake_tesseract.binary))
    assert fake_tesseract.reads() == 2
    # the page's confidence rides on its chunks; reflow joins the line OCR broke inside a sentence
    # (one page: the stand-in reads every page alike, which would make its lines running headers)
    chunks = Chunker(lambda ts: [len(t) for t in ts]).chunk(replace(doc, blocks=doc.blocks[:1]))
    assert chunks[0].metadata["ocr_confidence"] == doc.blocks[0].ocr_confidence
    assert "연차휴가는 입사 1년 후 15일이다." in chunks[0].text


def test_an_upload_check_reads_only_the_first_pages(tmp_path, fake_tesseract):
    path = tmp_path / "긴스캔.pdf"
    path.write_bytes(scanned_pdf(4))
    ocr = Ocr(tmp_path / "cache", binary=fake_tesseract.binary)
    (doc,) = load_file(path, ocr=ocr.sampling(2))
    assert doc.pages == [1, 2] and fake_tesseract.reads() == 2
    assert not (tmp_path / "cache").exists()  # a check (perhaps refused) leaves nothing behind


def test_image_files_and_multi_page_tiffs_are_documents(tmp_path, fake_tesseract):
    ocr = Ocr(None, binary=fake_tesseract.binary)
    png = tmp_path / "공지사진.png"
    page_image().save(png)
    (doc,) = load_file(png, ocr=ocr)
    assert doc.title == "공지사진" and doc.pages == [1] and "병가는 60일이다." in doc.text
    tiff = tmp_path / "팩스.tiff"
    first, *rest = [page_image(mark=i) for i in range(3)]
    first.save(tiff, save_all=True, append_images=rest)
    assert load_file(tiff, ocr=ocr)[0].pages == [1, 2, 3]
    # a page OCR finds nothing on
    fake_tesseract.prints(HEADER + "\n")
    blank = tmp_path / "빈사진.jpg"
    Image.new("RGB", (300, 300), "white").save(blank)
    with pytest.raises(EmptyDocumentError, match="OCR found no text"):
        load_file(blank, ocr=Ocr(None, binary=fake_tesseract.binary))


def test_without_ocr_a_scan_says_what_to_install_and_a_huge_image_is_refused(tmp_path):
    pdf = tmp_path / "스캔.pdf"
    pdf.write_bytes(scanned_pdf(1))
    with pytest.raises(NeedsOcrError) as info:
        load_file(pdf)
    assert "no text layer" in info.value.reason and "tesseract-ocr-kor" in info.value.reason
    png = tmp_path / "사진.png"
    page_image().save(png)
    with pytest.raises(NeedsOcrError, match="tesseract-ocr tesseract-ocr-kor"):
        load_file(png)
    with pytest.raises(UnsafeDocumentError, match="image too large"):
        load_file(png, ocr=Ocr(None, binary="/nonexistent"), limits=LoadLimits(max_image_pixels=1000))


def test_ocr_is_off_where_tesseract_or_its_korean_model_is_missing(tmp_path, monkeypatch):
    assert Ocr.find(binary=str(tmp_path / "no-such-tesseract")) is None
    eng_only = tmp_path / "tesseract"
    eng_only.write_text("#!/bin/sh\nprintf 'List of available languages:\\neng\\n'\n", encoding="utf-8")
    eng_only.chmod(0o755)
    assert Ocr.find(binary=str(eng_only)) is None
    assert os.access(eng_only, os.X_OK)


def test_a_text_pdf_is_never_given_to_ocr(tmp_path, fake_tesseract, korean_ttf):
    pdf = FPDF()
    pdf.add_font("nanum", fname=str(korean_ttf))
    pdf.set_font("nanum", size=12)
    pdf.add_page()
    pdf.cell(text="연차휴가는 15일이다.")
    path = tmp_path / "규정.pdf"
    path.write_bytes(bytes(pdf.output()))
    (doc,) = load_file(path, ocr=Ocr(None, binary=fake_tesseract.binary))
    assert doc.text == "연차휴가는 15일이다." and fake_tesseract.reads() == 0
