"""An uploaded scan where OCR is missing is stored and listed as "needs OCR" with the reason,
never refused silently or indexed empty; a re-index reads it once OCR is installed; it can be
deleted while it waits; other groups never see it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.server.api import create_app
from ingest.ocr import Ocr
from tests.unit.ingest.test_ocr import fake_tesseract, scanned_pdf  # noqa: F401  (a fixture and a fixture maker)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_uploaded_scan_waits_for_ocr_then_is_indexed_by_a_reindex(make_service, tmp_path, fake_tesseract):  # noqa: F811
    service = make_service()
    service.pipeline.ocr = lambda: None  # Tesseract is not installed
    keys = {n: service.keys.create(n, r, g)[1] for n, r, g in (("hr_admin", "admin", "hr"), ("kim", "user", "public"))}
    client = TestClient(create_app(service, ui=False))
    r = client.post("/v1/documents", headers=auth(keys["hr_admin"]), params={"wait": "true"}, data={"group": "hr"},
                    files={"file": ("결재문서.pdf", scanned_pdf(1))})  # one page: the stand-in reads every page alike
    assert r.status_code == 200, r.text
    assert r.json()["job"]["status"] == "done" and r.json()["job"]["result"]["needs_ocr"]
    rows = client.get("/v1/documents", headers=auth(keys["hr_admin"])).json()["documents"]
    (row,) = [d for d in rows if d["source"] == "결재문서.pdf"]
    assert row["status"] == "needs_ocr" and "tesseract-ocr" in row["error"] and row["doc_id"].startswith("d_")
    assert "결재문서.pdf" not in str(client.get("/v1/documents", headers=auth(keys["kim"])).json())
    assert service.sweep_uploads() == []  # the stored scan is kept across a restart

    ocr = Ocr(tmp_path / "ocr-cache", binary=fake_tesseract.binary)
    service.pipeline.ocr = lambda: ocr  # installed now
    job = service.jobs.wait(client.post("/v1/reindex", headers=auth(keys["hr_admin"])).json()["job"]["id"], timeout=120)
    assert job.status == "done", job.error
    rows = client.get("/v1/documents", headers=auth(keys["hr_admin"])).json()["documents"]
    (row,) = [d for d in rows if d["source"] == "결재문서.pdf"]
    assert row["status"] == "indexed" and row["chunks"] > 0 and row["ocr_pages"]


def test_a_waiting_scan_can_be_deleted_with_its_stored_file(make_service):
    service = make_service()
    service.pipeline.ocr = lambda: None
    key = service.keys.create("root", "admin", "*")[1]
    client = TestClient(create_app(service, ui=False))
    client.post("/v1/documents", headers=auth(key), params={"wait": "true"}, data={"group": "public"},
                files={"file": ("팩스.pdf", scanned_pdf(1))})
    (row,) = [d for d in client.get("/v1/documents", headers=auth(key)).json()["documents"] if d["source"] == "팩스.pdf"]
    stored = row["path"]
    r = client.delete("/v1/documents", headers=auth(key), params={"doc_id": row["doc_id"]})
    assert r.status_code == 200 and r.json()["deleted"] == [row["doc_id"]]
    assert not [d for d in client.get("/v1/documents", headers=auth(key)).json()["documents"] if d["source"] == "팩스.pdf"]
    from pathlib import Path

    assert not Path(stored).exists()
