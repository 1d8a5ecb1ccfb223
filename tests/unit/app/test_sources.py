"""The source viewer (원문 보기) over fast fakes: page images, original files, citation boxes,
and who may reach them. The same attacks against a real server are in tests/security/test_viewer.py."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.server.api import create_app
from app.sources import NoSource, SourceChanged
from tests.pdfs import build_pdf, find_korean_ttf

FONT = find_korean_ttf()
pytestmark = pytest.mark.skipif(FONT is None, reason="no Hangul TrueType font (apt-get install fonts-nanum)")

PAGES = {
    "public": ["출장 여비 규정\n국내 출장의 일비는 하루 2만원으로 한다. 숙박비는 실비로 정산한다.",
               "해외 출장의 일비는 하루 60달러로 한다. 항공권은 일반석을 원칙으로 한다."],
    "hr": ["인사 기밀\n2027년 임원 연봉 인상률은 7.5퍼센트로 확정되었다. 대상자는 12명이다."],
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def viewer(make_service, tmp_path):
    """(client, service, keys, ids): a PDF in public and one in hr beside the text documents."""
    service = make_service()
    for group, pages in PAGES.items():
        folder = tmp_path / "pdfs" / group
        folder.mkdir(parents=True)
        (folder / f"{group}_규정.pdf").write_bytes(build_pdf(pages, FONT))
        service.pipeline.ingest([folder], group)
    keys = {name: service.keys.create(name, role, groups)[1] for name, role, groups in (
        ("root", "admin", "*"), ("hr_admin", "admin", "hr"), ("kim", "user", "public"), ("lee", "user", "hr"))}
    client = TestClient(create_app(service, ui=False))
    ids = {d["source"]: d["doc_id"] for d in client.get("/v1/documents", headers=auth(keys["root"])).json()["documents"]}
    return client, service, keys, ids


def test_a_cited_page_comes_back_as_a_png_of_the_asked_width(viewer):
    client, _, keys, ids = viewer
    r = client.get(f"/v1/documents/{ids['public_규정.pdf']}/pages/2.png", headers=auth(keys["kim"]), params={"width": 400})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-content-type-options"] == "nosniff"
    assert "private" in r.headers["cache-control"]
    image = Image.open(io.BytesIO(r.content))
    assert image.width == 400 and image.height > 500  # A4 portrait
    # not blank: text was drawn
    assert image.convert("L").getextrema()[0] < 100


def test_the_page_is_cached_by_content_and_served_again_without_rendering(viewer, monkeypatch):
    client, service, keys, ids = viewer
    url = f"/v1/documents/{ids['public_규정.pdf']}/pages/1.png"
    first = client.get(url, headers=auth(keys["kim"])).content
    import app.sources

    def broken(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(app.sources, "render_page", broken)
    assert client.get(url, headers=auth(keys["kim"])).content == first
    assert list((service.settings.index_dir / "page-cache").glob("*/1-1000.png"))


def test_another_groups_document_is_not_found_like_a_missing_one(viewer):
    client, _, keys, ids = viewer
    hr_pdf = ids["hr_규정.pdf"]
    for path in (f"/v1/documents/{hr_pdf}/pages/1.png", f"/v1/documents/{hr_pdf}/file"):
        r = client.get(path, headers=auth(keys["kim"]))
        assert r.status_code == 404, r.text
        assert "연봉" not in r.text and "hr_규정" not in r.text
        missing = client.get(path.replace(hr_pdf, "d_" + "0" * 20), headers=auth(keys["kim"]))
        assert missing.status_code == 404 and missing.json()["error"] == r.json()["error"]
        assert client.get(path, headers=auth(keys["lee"])).status_code == 200
        assert client.get(path).status_code == 401  # no key, no cookie


def test_an_admin_of_one_group_cannot_view_the_others(viewer):
    client, _, keys, ids = viewer
    hr = auth(keys["hr_admin"])
    assert client.get(f"/v1/documents/{ids['public_규정.pdf']}/file", headers=hr).status_code == 404
    assert client.get(f"/v1/documents/{ids['hr_규정.pdf']}/file", headers=hr).status_code == 200


def test_stored_paths_and_traversal_are_not_ids(viewer):
    client, service, keys, _ = viewer
    kim = auth(keys["kim"])
    hr_path = next(d.doc_id for d in service.pipeline.documents() if d.group == "hr" and d.source.endswith(".pdf"))
    for spec in (hr_path, "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "*", "d_"):
        r = client.get(f"/v1/documents/{spec}/file", headers=kim)
        assert r.status_code == 404, (spec, r.status_code)
        assert "root:x:0" not in r.text


def test_pages_without_indexed_text_formats_without_pages_and_bad_widths_are_refused(viewer):
    client, _, keys, ids = viewer
    root = auth(keys["root"])
    pdf = ids["public_규정.pdf"]
    assert client.get(f"/v1/documents/{pdf}/pages/3.png", headers=root).status_code == 404
    assert client.get(f"/v1/documents/{pdf}/pages/0.png", headers=root).status_code == 404
    assert client.get(f"/v1/documents/{pdf}/pages/99999999999.png", headers=root).status_code == 404
    r = client.get(f"/v1/documents/{ids['취업규칙.txt']}/pages/1.png", headers=root)
    assert r.status_code == 404 and "no page images" in r.json()["detail"]
    for width in (50, 100_000):
        assert client.get(f"/v1/documents/{pdf}/pages/1.png", headers=root, params={"width": width}).status_code == 422


def test_the_original_file_downloads_as_an_attachment_that_cannot_run(viewer):
    client, _, keys, ids = viewer
    r = client.get(f"/v1/documents/{ids['취업규칙.txt']}/file", headers=auth(keys["kim"]))
    assert r.status_code == 200 and "연차휴가는 15일이다." in r.content.decode("utf-8")
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-security-policy"] == "sandbox" and r.headers["x-content-type-options"] == "nosniff"
    pdf = client.get(f"/v1/documents/{ids['public_규정.pdf']}/file", headers=auth(keys["kim"]))
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"


def test_a_file_changed_or_removed_since_indexing_is_not_shown(viewer, tmp_path):
    client, service, keys, ids = viewer
    kim = auth(keys["kim"])
    pdf = tmp_path / "pdfs" / "public" / "public_규정.pdf"
    pdf.write_bytes(build_pdf(["전혀 다른 내용"], FONT))
    r = client.get(f"/v1/documents/{ids['public_규정.pdf']}/pages/1.png", headers=kim)
    assert r.status_code == 409 and "re-index" in r.json()["detail"]
    pdf.unlink()
    assert client.get(f"/v1/documents/{ids['public_규정.pdf']}/file", headers=kim).status_code == 404
    who = service.authenticate(keys["kim"])
    with pytest.raises(NoSource):
        service.original_file(who, ids["public_규정.pdf"])
    assert issubclass(SourceChanged, RuntimeError)


def test_views_are_metered_per_key(make_service, tmp_path):
    service = make_service(view_per_minute=1, view_burst=2)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "규정.pdf").write_bytes(build_pdf(PAGES["public"], FONT))
    service.pipeline.ingest([folder], "public")
    key = service.keys.create("kim", "user", "public")[1]
    other = service.keys.create("park", "user", "public")[1]
    client = TestClient(create_app(service, ui=False))
    doc = next(d["doc_id"] for d in client.get("/v1/documents", headers=auth(key)).json()["documents"]
               if d["source"] == "규정.pdf")
    codes = [client.get(f"/v1/documents/{doc}/pages/1.png", headers=auth(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get(f"/v1/documents/{doc}/pages/1.png", headers=auth(other)).status_code == 200


def test_citations_of_a_pdf_carry_the_boxes_of_their_span(viewer):
    client, service, keys, ids = viewer
    r = client.post("/v1/ask", headers=auth(keys["lee"]), json={"question": "2027년 임원 연봉 인상률은?"})
    assert r.status_code == 200, r.text
    cites = [c for c in r.json()["citations"] if c["source"] == "hr_규정.pdf"]
    assert cites and cites[0]["page"] == 1
    boxes = cites[0]["boxes"]
    assert boxes and all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in boxes)
    # the boxes lie on the page's dark (text) pixels
    image = Image.open(io.BytesIO(client.get(f"/v1/documents/{cites[0]['doc_id']}/pages/1.png",
                                             headers=auth(keys["lee"])).content)).convert("L")
    x0, y0, x1, y1 = boxes[0]
    crop = image.crop((int(x0 * image.width), int(y0 * image.height), int(x1 * image.width), int(y1 * image.height)))
    assert crop.getextrema()[0] < 100


def test_the_web_ui_session_cookie_opens_pages_of_its_own_groups_only(viewer):
    client, service, keys, ids = viewer
    token = service.login("kim", keys["kim"])
    client.cookies.set("chulcheo_session", token)
    assert client.get(f"/v1/documents/{ids['public_규정.pdf']}/pages/1.png").status_code == 200
    assert client.get(f"/v1/documents/{ids['hr_규정.pdf']}/pages/1.png").status_code == 404
    client.cookies.set("chulcheo_session", "forged")
    assert client.get(f"/v1/documents/{ids['public_규정.pdf']}/pages/1.png").status_code == 401


def test_surrounding_text_of_a_citation_stays_in_its_document(viewer):
    _, service, keys, ids = viewer
    who = service.authenticate(keys["kim"])
    doc = service.viewable(who, ids["취업규칙.txt"])
    around = service.surrounding(who, ids["취업규칙.txt"], doc.chunk_ids[0])
    assert around and around[0].chunk_id == doc.chunk_ids[0] and all(c.doc_id == doc.doc_id for c in around)
    hr = next(d for d in service.pipeline.documents() if d.group == "hr")
    with pytest.raises(NoSource):
        service.surrounding(who, ids["취업규칙.txt"], hr.chunk_ids[0])
