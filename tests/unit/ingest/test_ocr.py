"""OCR plumbing with a stand-in `tesseract` (a script that prints a fixed TSV and counts its
calls): scanned PDF pages and image files are read, results cached by image, an upload check
reads only its first pages, and without OCR such files say what to install; the clean-up
before Tesseract (skew found and undone, word boxes mapped back onto the page as scanned). The
real Tesseract reads Korean in tests/integration/test_ocr_real.py."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from ingest.chunk import Chunker
from ingest.errors import EmptyDocumentError, NeedsOcrError, UnsafeDocumentError
from ingest.load import LoadLimits, load_file
from ingest.ocr import Cleanup, Ocr, OcrBudgetSpent, OcrError, Word, _prepared, cleaned_page, estimate_skew, parse_tsv, unturn_box
from tests.pdfs import find_korean_ttf
from tests.scans import PAGES, degrade, printed_page

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


# ---------------------------------------------------------------- clean-up: denoise, deskew


@pytest.fixture(scope="module")
def straight_page():
    font = find_korean_ttf()
    if font is None:
        pytest.skip("no Korean TrueType font found (install fonts-nanum: apt-get install -y fonts-nanum)")
    image, _ = printed_page(PAGES[1], font, dpi=150)
    return image


@pytest.mark.parametrize("skew", [1.7, -1.2, 2.6])
def test_the_skew_of_a_turned_page_is_found_within_a_third_of_a_degree(straight_page, skew):
    turned = straight_page.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    assert estimate_skew(turned) == pytest.approx(skew, abs=0.3)
    assert abs(estimate_skew(straight_page)) < 0.1
    assert estimate_skew(Image.new("L", (800, 1100), 255)) == 0.0  # a blank page has no lines to go by


def test_a_straight_clean_page_is_read_as_it_is_and_a_noisy_turned_one_is_cleaned(straight_page):
    image, angle = cleaned_page(straight_page)
    assert angle == 0.0 and image.tobytes() == straight_page.tobytes()
    scan = degrade(straight_page, skew=1.5, seed=3)
    image, angle = cleaned_page(scan)
    assert angle == pytest.approx(-1.5, abs=0.3)
    assert image.size[0] > scan.size[0]  # turned with the corners kept
    specks = lambda im: int((np.asarray(im) < 100)[:40, :].sum())  # the top margin: nothing is printed there
    assert specks(scan) > 50 and specks(image) < specks(scan) // 10


def test_a_word_box_read_on_the_straightened_page_lands_on_the_word_of_the_page_as_scanned(straight_page):
    page = Image.new("L", straight_page.size, 255)
    font = ImageFont.truetype(str(find_korean_ttf()), 40)
    ImageDraw.Draw(page).text((820, 120), "2만5천원", font=font, fill=0)  # near a corner: it moves most
    scanned = page.rotate(1.8, resample=Image.Resampling.BICUBIC, fillcolor=255)
    straightened = scanned.rotate(-1.8, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    left, top, right, bottom = ink_box(straightened)  # what Tesseract would report there
    word = Word("2만5천원", left, top, right - left, bottom - top, 95.0)
    back = unturn_box(word, -1.8, straightened.size, scanned.size)
    want = ink_box(scanned)
    got = (back.left, back.top, back.left + back.width, back.top + back.height)
    assert all(abs(g - w) <= 3 for g, w in zip(got, want)), (got, want)
    assert back.text == "2만5천원" and back.confidence == 95.0


def test_read_maps_word_boxes_back_and_keeps_the_prepared_page_size(tmp_path, fake_tesseract, straight_page):
    scan = straight_page.rotate(2.0, resample=Image.Resampling.BICUBIC, fillcolor=255)
    page = Ocr(None, binary=fake_tesseract.binary).read(scan)
    prepared = _prepared(scan)
    assert page.size == prepared.size  # the page the viewer renders, not the straightened one
    turned, angle = cleaned_page(prepared)
    assert angle == pytest.approx(-2.0, abs=0.3)
    read_there = parse_tsv(tsv()).words  # the stand-in reports these boxes on the straightened page
    assert page.words == [unturn_box(w, angle, turned.size, prepared.size) for w in read_there]
    assert page.words != read_there
    # a different clean-up is another cache entry: a page cleaned differently is read again
    assert Ocr(None).key(scan) != Ocr(None, cleanup=Cleanup(deskew=False)).key(scan)


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box (left, top, right, bottom) of the dark pixels."""
    ys, xs = np.nonzero(np.asarray(image) < 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_a_page_cached_before_clean_up_is_read_again_but_the_viewer_still_finds_its_boxes(tmp_path, fake_tesseract):
    image = page_image()
    old = Ocr(tmp_path / "cache", binary=fake_tesseract.binary)
    # the key pages were cached under before clean-up existed
    v1 = hashlib.sha256(f"L:{image.size}:kor+eng:2480:4:v1".encode())
    v1.update(image.tobytes())
    assert old.key(image, "v1") == v1.hexdigest()
    entry = parse_tsv(tsv(), (2480, 3508))
    old._store(v1.hexdigest(), entry)
    viewer = Ocr(tmp_path / "cache", binary="/nonexistent/tesseract")
    assert viewer.cached(image) == entry  # the page viewer boxes quotes from it
    ingest = Ocr(tmp_path / "cache", binary=fake_tesseract.binary)
    ingest.read(image)
    assert ingest.reads == 1 and fake_tesseract.reads() == 1  # an index build reads the page again
    assert viewer.cached(image) != entry and viewer.cached(image).size == _prepared(image).size


def test_read_many_reads_pages_side_by_side_in_order_and_reports_progress(tmp_path, fake_tesseract):
    import threading
    import time

    ocr = Ocr(tmp_path / "cache", binary=fake_tesseract.binary)
    ocr.workers = 2
    seen: list[tuple[int, int]] = []
    ocr.on_page = lambda done, total: seen.append((done, total))
    active, most = [0], [0]
    lock = threading.Lock()
    read = ocr.read

    def counted(image):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)  # long enough for the second worker to start: the overlap is what is tested
        try:
            return read(image)
        finally:
            with lock:
                active[0] -= 1

    ocr.read = counted
    pages = [(n, page_image(mark=10 * n)) for n in range(1, 6)] + [(6, OcrError("render failed"))]
    results = list(ocr.read_many(iter(pages), total=6))
    assert [n for n, _ in results] == [1, 2, 3, 4, 5, 6]  # the order given
    assert all("15일이다." in r.text for _, r in results[:5]) and isinstance(results[5][1], OcrError)
    assert seen == [(i, 6) for i in range(1, 7)] and most[0] == 2 and fake_tesseract.reads() == 5
    sample = ocr.sampling(2)  # an upload check: its budget ends the reading
    with pytest.raises(OcrBudgetSpent):
        list(sample.read_many(iter(pages), total=6))


def test_two_workers_reading_the_same_page_write_one_cache_entry(tmp_path, fake_tesseract):
    ocr = Ocr(tmp_path / "cache", binary=fake_tesseract.binary)
    ocr.workers = 2
    same = page_image()
    results = list(ocr.read_many(iter([(1, same), (2, same.copy())]), total=2))
    assert all(not isinstance(r, Exception) for _, r in results)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1 and not list((tmp_path / "cache").rglob("*.tmp"))
