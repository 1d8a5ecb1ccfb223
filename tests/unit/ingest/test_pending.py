"""Scans ingested where OCR is missing: remembered as "needs OCR" (never dropped, never indexed
empty), indexed by the next ingest that can read them, and deletable while they wait."""

from __future__ import annotations

from ingest.ocr import Ocr
from ingest.pending import Waiting, WaitingForOcr
from tests.unit.ingest.test_ocr import fake_tesseract, scanned_pdf  # noqa: F401  (a fixture and a fixture maker)


def test_a_scan_without_ocr_waits_then_is_indexed_once_ocr_is_there(tmp_path, builder, fake_tesseract):  # noqa: F811
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "결재문서.pdf").write_bytes(scanned_pdf(2))
    (docs / "규정.txt").write_text("연차휴가는 15일이다.", encoding="utf-8")
    b = builder()
    report = b.ingest([docs], "hr")
    assert report.added == 1  # the text file; the scan is not indexed empty
    (failed,) = report.failed
    assert failed["needs_ocr"] is True and "tesseract-ocr" in failed["error"]
    assert report.to_dict()["needs_ocr"] == [str((docs / "결재문서.pdf").resolve())]
    (waiting,) = WaitingForOcr(b.index_dir).load().values()
    assert waiting.group == "hr" and waiting.source.endswith("결재문서.pdf") and len(waiting.sha256) == 64
    assert "OCR" in waiting.reason or "ocr" in waiting.reason.lower()

    b.ocr = Ocr(tmp_path / "ocr-cache", binary=fake_tesseract.binary)  # Tesseract installed now
    again = b.ingest([docs], "hr")
    assert again.added == 1 and not again.failed and again.to_dict()["needs_ocr"] == []
    assert WaitingForOcr(b.index_dir).load() == {}


def test_a_waiting_file_can_be_deleted_and_a_broken_list_reads_as_empty(tmp_path, builder):
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "팩스.pdf").write_bytes(scanned_pdf(1))
    b = builder()
    b.ingest([docs], "public")  # no index generation holds anything: only the waiting list
    doc_id = str((docs / "팩스.pdf").resolve())
    assert list(WaitingForOcr(b.index_dir).load()) == [doc_id]
    assert b.delete([doc_id]) == [doc_id]
    assert WaitingForOcr(b.index_dir).load() == {}
    assert b.delete([doc_id]) == []
    waiting = WaitingForOcr(b.index_dir)
    waiting.path.write_text("{not json", encoding="utf-8")
    assert waiting.load() == {}
    assert waiting.update(add=[Waiting("x", "x", "g", "why")]) == {"x": Waiting("x", "x", "g", "why")}


def test_an_ingest_reports_ocr_pages_to_its_progress_bar(tmp_path, builder, fake_tesseract):  # noqa: F811
    docs = tmp_path / "scans"
    docs.mkdir()
    (docs / "결재.pdf").write_bytes(scanned_pdf(3))
    b = builder()
    b.ocr = Ocr(tmp_path / "ocr-cache", binary=fake_tesseract.binary)
    b.ocr.workers = 2
    stages: list[tuple[str, int, int]] = []
    b.ingest([docs], "hr", progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert [s for s in stages if s[0] == "ocr"] == [("ocr", 1, 3), ("ocr", 2, 3), ("ocr", 3, 3)]
    assert fake_tesseract.reads() == 3
