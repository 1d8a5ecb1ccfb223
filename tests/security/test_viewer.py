"""The source viewer (원문 보기) against a real server: page images and original files.

Contract: GET /v1/documents/{id}/pages/{n}.png and /file serve only documents of the caller's
groups, by key or by the web UI's session cookie; another group's document is 404 exactly like
a missing one, for users and for an admin of other groups; stored paths and traversal are not
ids; Gradio's own file routes serve neither the stored documents nor the rendered pages; page
width is bounded, views are metered, a downloaded HTML file cannot run in the site.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.pdfs import build_pdf, find_korean_ttf
from tests.security.live import MARK, LiveServer
from tests.security.ui_client import GradioSession

pytestmark = pytest.mark.security

FONT = find_korean_ttf()
PDF_NAME = {"a": "A팀_보안점검.pdf", "b": "B팀_보안점검.pdf"}
PDF_TEXT = {g: f"{g.upper()}팀 보안 점검표\n{g.upper()}팀 점검 암호는 {MARK[g]} 점검 코드이다. 점검은 분기마다 한다." for g in MARK}


@pytest.fixture
def pdfs(live: LiveServer) -> dict[str, dict]:
    """Group a's and b's PDF as root sees them in /v1/documents (uploaded once per server)."""
    if FONT is None:
        pytest.skip("no Hangul TrueType font (apt-get install fonts-nanum)")
    docs = {d.get("source"): d for d in live.documents("root")}
    for group, name in PDF_NAME.items():
        if name not in docs or docs[name].get("status") != "indexed":
            r = live.upload("root", name, build_pdf([PDF_TEXT[group]], FONT), group)
            assert r.status_code == 200 and r.json()["job"]["status"] == "done", f"harness: upload {name}: {r.text[:300]}"
    docs = {d.get("source"): d for d in live.documents("root")}
    return {g: docs[name] for g, name in PDF_NAME.items()}


def page(doc: dict, n: int = 1) -> str:
    return f"/v1/documents/{doc['doc_id']}/pages/{n}.png"


def file(doc: dict) -> str:
    return f"/v1/documents/{doc['doc_id']}/file"


def test_the_owner_group_sees_its_page_and_file(live: LiveServer, pdfs):
    """The control: without it every refusal below could be a broken route."""
    r = live.call("GET", page(pdfs["b"]), "user_b")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), f"user_b's own page: {r.status_code} {r.text[:200]}"
    f = live.call("GET", file(pdfs["b"]), "user_b")
    assert f.status_code == 200 and f.content.startswith(b"%PDF"), f"user_b's own file: {f.status_code}"


@pytest.mark.parametrize("caller", ["user_a", "adm_a", None])
def test_another_groups_page_and_file_are_unreachable(live: LiveServer, pdfs, caller):
    missing = {"doc_id": "d_" + "0" * 20}
    for route in (page, file):
        r = live.call("GET", route(pdfs["b"]), caller)
        assert r.status_code == (401 if caller is None else 404), f"{route.__name__} of b's PDF as {caller}: {r.status_code}"
        assert not live.leaks(r.text, caller) and b"%PDF" not in r.content[:8] and b"PNG" not in r.content[:8]
        if caller:  # the same answer as a document that does not exist: nothing tells them apart
            none = live.call("GET", route(missing), caller)
            assert (none.status_code, none.json()["error"]) == (r.status_code, r.json()["error"])


def test_paths_and_traversal_are_not_document_ids(live: LiveServer, pdfs):
    stored = pdfs["b"]["path"]  # root sees where b's PDF is stored
    for spec in (quote(stored, safe=""), quote("../../../../etc/passwd", safe=""), "..", "%2e%2e", "*"):
        for suffix in ("/file", "/pages/1.png"):
            r = live.call("GET", f"/v1/documents/{spec}{suffix}", "user_a")
            assert r.status_code in (404, 405), f"{spec}{suffix} as user_a: {r.status_code}"
            assert not live.leaks(r.text, "user_a") and not r.content.startswith(b"%PDF")


def test_the_ui_session_cookie_reaches_its_own_groups_only(live: LiveServer, pdfs):
    with GradioSession(live.url, observe=live.scan) as ui:
        assert ui.login("user_a", live.keys["user_a"]).status_code in (200, 302, 303)
        assert ui.http.get(page(pdfs["a"])).status_code == 200, "control: user_a's session opens a's page"
        for route in (page, file):
            r = ui.http.get(route(pdfs["b"]))
            assert r.status_code == 404, f"{route.__name__} of b's PDF with user_a's session: {r.status_code}"
    with GradioSession(live.url) as forged:
        forged.http.cookies.set("chulcheo_session", "not-a-session")
        assert forged.http.get(page(pdfs["a"])).status_code == 401


def test_gradio_file_routes_serve_neither_stored_documents_nor_rendered_pages(live: LiveServer, pdfs):
    assert live.call("GET", page(pdfs["b"]), "user_b").status_code == 200  # now rendered and cached
    cached = sorted((live.index_dir / "page-cache").glob("*/*.png"))
    assert cached, "harness: no rendered page in the page cache"
    targets = [pdfs["b"]["path"], str(cached[0])]
    with GradioSession(live.url, observe=live.scan) as ui:
        assert ui.login("user_a", live.keys["user_a"]).status_code in (200, 302, 303)
        for target in targets:
            for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
                r = ui.http.get(prefix + target)
                assert r.status_code in (403, 404, 405), f"{prefix}{target} with user_a's session: {r.status_code}"
                assert not r.content.startswith((b"%PDF", b"\x89PNG")) and not live.leaks(r.text, "user_a")


def test_page_width_and_page_numbers_are_bounded(live: LiveServer, pdfs):
    for params, status in (({"width": 100_000}, 422), ({"width": 10}, 422), ({"width": 3000}, 422)):
        r = live.call("GET", page(pdfs["a"]), "user_a", params=params)
        assert r.status_code == status, f"width {params['width']}: {r.status_code}"
    for n in (0, 2, 10**12):
        assert live.call("GET", page(pdfs["a"], n), "user_a").status_code in (404, 422), f"page {n}"


def test_views_are_metered_per_key(live: LiveServer, pdfs):
    codes = [live.call("GET", page(pdfs["a"]), "adm_a").status_code for _ in range(40)]
    assert 429 in codes, f"40 page views at once were never limited: {sorted(set(codes))}"
    assert live.call("GET", page(pdfs["b"]), "user_b").status_code == 200, "another key is not limited by adm_a's views"


def test_a_downloaded_html_document_cannot_run_in_the_site(live: LiveServer):
    html = "<html><body><p>A팀 안내문: 점심시간은 12시이다.</p><script>fetch('/v1/keys')</script></body></html>"
    r = live.upload("root", "A팀_안내.html", html.encode(), "a")
    assert r.status_code == 200, r.text[:300]
    doc = next(d for d in live.documents("user_a") if d.get("source") == "A팀_안내.html")
    f = live.call("GET", file(doc), "user_a")
    assert f.status_code == 200
    assert f.headers["content-disposition"].startswith("attachment")
    assert f.headers.get("content-security-policy") == "sandbox" and f.headers.get("x-content-type-options") == "nosniff"
