"""Hostile callers of the HTTP API over fast fake models: a scoped admin, bad group names,
unauthenticated bodies, unbounded requests, exposure of paths, CORS and metrics.

The same attacks against a real `chulcheo serve` are in tests/security/.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.server.api import create_app


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def scoped(make_service):
    """(client, service, keys): root (admin *), hr_admin (admin of hr only), kim (public), lee (hr)."""
    service = make_service()
    keys = {name: service.keys.create(name, role, groups)[1] for name, role, groups in (
        ("root", "admin", "*"), ("hr_admin", "admin", "hr"), ("kim", "user", "public"), ("lee", "user", "hr"))}
    return TestClient(create_app(service, ui=False)), service, keys


def doc_of(client, key, name):
    return next(d for d in client.get("/v1/documents", headers=auth(key)).json()["documents"] if d["source"] == name)


def test_a_scoped_admin_cannot_create_or_widen_keys_beyond_its_groups(scoped):
    client, _, keys = scoped
    hr = auth(keys["hr_admin"])
    for groups in (["*"], ["public"], ["hr", "public"]):
        r = client.post("/v1/keys", headers=hr, json={"name": "x" + str(len(groups)), "role": "admin", "groups": groups})
        assert r.status_code == 403, (groups, r.text)
    r = client.post("/v1/keys", headers=hr, json={"name": "park", "role": "user", "groups": ["hr"]})
    assert r.status_code == 201 and r.json()["groups"] == ["hr"]
    listed = {k["name"] for k in client.get("/v1/keys", headers=hr).json()["keys"]}
    assert listed == {"hr_admin", "lee", "park"}  # root and kim reach beyond hr: not even listed


def test_a_scoped_admin_cannot_revoke_a_broader_or_another_groups_key(scoped):
    client, _, keys = scoped
    hr = auth(keys["hr_admin"])
    for name in ("root", "kim"):
        assert client.delete(f"/v1/keys/{name}", headers=hr).status_code == 404
        assert client.get("/v1/me", headers=auth(keys[name])).status_code == 200  # still alive
    assert client.delete("/v1/keys/lee", headers=hr).status_code == 200
    assert client.get("/v1/me", headers=auth(keys["lee"])).status_code == 401


def test_a_scoped_admin_cannot_touch_another_groups_documents(scoped):
    client, service, keys = scoped
    hr = auth(keys["hr_admin"])
    r = client.post("/v1/documents", headers=hr, data={"group": "public"},
                    files={"file": ("공지.txt", "사내 공지: 연차휴가는 30일이다.".encode())})
    assert r.status_code == 403 and "public" in r.json()["detail"]
    public_doc = doc_of(client, keys["root"], "취업규칙.txt")
    for spec in (public_doc["doc_id"], public_doc["path"]):
        assert client.delete("/v1/documents", params={"doc_id": spec}, headers=hr).status_code == 404
    assert {d["group"] for d in client.get("/v1/documents", headers=hr).json()["documents"]} == {"hr"}
    hits = client.post("/v1/search", json={"query": "연차휴가"}, headers=auth(keys["kim"])).json()["hits"]
    assert hits and hits[0]["source"] == "취업규칙.txt"  # still there
    # re-index, jobs and stats stay inside hr
    job = client.post("/v1/reindex", headers=hr).json()["job"]
    service.jobs.wait(job["id"], timeout=30)
    assert client.get(f"/v1/jobs/{job['id']}", headers=hr).json()["result"]["unchanged"] == 1
    root_job = client.post("/v1/reindex", headers=auth(keys["root"])).json()["job"]
    assert client.get(f"/v1/jobs/{root_job['id']}", headers=hr).status_code == 404
    assert [j["id"] for j in client.get("/v1/jobs", headers=hr).json()["jobs"]] == [job["id"]]
    stats = client.get("/v1/stats", headers=hr).json()
    assert stats["groups"] == {"hr": 1} and stats["index_dir"] is None
    service.jobs.wait(root_job["id"], timeout=30)


@pytest.mark.parametrize("group", [".", "..", ".staging", "a/b", ".hidden", "a.b"])
def test_group_names_with_dots_or_slashes_are_refused(scoped, group):
    client, service, keys = scoped
    root = auth(keys["root"])
    r = client.post("/v1/keys", headers=root, json={"name": "g", "role": "user", "groups": [group]})
    assert r.status_code == 422, r.text
    r = client.post("/v1/documents", headers=root, data={"group": group},
                    files={"file": ("규정.txt", "연차휴가는 15일이다.".encode())})
    assert r.status_code == 422, r.text
    assert not service.upload_dir.exists() or not any(p.is_file() for p in service.upload_dir.rglob("*"))
    assert not (service.upload_dir.parent / "규정.txt").exists()


def test_users_see_file_names_and_opaque_ids_admins_also_the_path_and_delete_takes_either(scoped):
    client, service, keys = scoped
    a = client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(keys["kim"])).json()
    dump = json.dumps(a, ensure_ascii=False)
    assert str(service.settings.state_dir.parent) not in dump and "/" not in a["hits"][0]["doc_id"]
    assert a["hits"][0]["source"] == "취업규칙.txt" and a["citations"][0]["source"] == "취업규칙.txt"
    assert a["citations"][0]["doc_id"] == a["hits"][0]["doc_id"] and "/" not in a["hits"][0]["chunk_id"]
    assert "path" not in a["hits"][0]
    listed = client.get("/v1/documents", headers=auth(keys["kim"])).json()["documents"]
    assert all("/" not in d["source"] and "path" not in d for d in listed)
    admin_view = doc_of(client, keys["root"], "취업규칙.txt")
    assert admin_view["doc_id"] == a["hits"][0]["doc_id"] and admin_view["path"].startswith("/")
    r = client.delete("/v1/documents", params={"doc_id": admin_view["path"]}, headers=auth(keys["root"]))
    assert r.status_code == 200 and r.json()["deleted"] == [admin_view["doc_id"]]


def test_a_body_without_a_key_is_refused_before_it_is_read(make_service, tmp_path, monkeypatch):
    import tempfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    service = make_service(max_upload_mb=1)
    client = TestClient(create_app(service, ui=False))
    read = []

    def body():
        for _ in range(20):  # 20 MB, streamed: counted as it is (not) read
            read.append(1)
            yield b"x" * (1 << 20)

    r = client.post("/v1/documents", content=body(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 401 and len(read) <= 2
    assert not any(spool.rglob("*"))
    key = service.keys.create("root", "admin", "*")[1]
    big = b"x" * (3 << 20)
    r = client.post("/v1/documents", content=big, headers={**auth(key), "content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    r = client.post("/v1/search", content=json.dumps({"query": "가" * (1 << 20)}),  # over max_body_mb = 2
                    headers={**auth(key), "content-type": "application/json"})
    assert r.status_code in (413, 422)
    huge = json.dumps({"query": "가" * (3 << 20)})
    assert client.post("/v1/search", content=huge, headers={**auth(key), "content-type": "application/json"}).status_code == 413


def test_verify_is_bounded_in_size_and_shares_the_question_rate_limit(make_service):
    service = make_service(ask_per_minute=6, ask_burst=2, verify_max_chars=5000)
    key = service.keys.create("kim", "user", "public")[1]
    client = TestClient(create_app(service, ui=False))
    big = {"answer": "연차휴가는 15일입니다.", "passages": [{"id": f"p{i}", "text": "가" * 2000} for i in range(3)]}
    r = client.post("/v1/verify", json=big, headers=auth(key))
    assert r.status_code == 413 and "verify_max_chars" in r.json()["detail"]
    small = {"answer": "연차휴가는 15일입니다.", "passages": [{"id": "p1", "text": "연차휴가는 15일이다."}]}
    assert client.post("/v1/verify", json=small, headers=auth(key)).status_code == 200
    assert client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(key)).status_code == 200
    r = client.post("/v1/verify", json=small, headers=auth(key))
    assert r.status_code == 429 and r.headers["retry-after"]


def test_a_check_whose_caller_went_away_is_stopped(make_service):
    from app.auth import OPEN_PRINCIPAL
    from app.service import ClientGone
    from grounding import Passage

    service = make_service(open_mode=True)
    passages = [Passage(id=f"p{i}", text="연차휴가는 15일이다. 병가는 연간 60일 이내이다. " * 50) for i in range(20)]
    with pytest.raises(ClientGone):
        service.verify(OPEN_PRINCIPAL, "연차휴가는 15일입니다. " * 20, passages, cancelled=lambda: True)
    assert service._check_slots.acquire(timeout=1)  # the slot was given back
    service._check_slots.release()


def test_feedback_is_bounded_and_rate_limited(make_service):
    service = make_service(feedback_per_minute=6, feedback_burst=2)
    key = service.keys.create("kim", "user", "public")[1]
    client = TestClient(create_app(service, ui=False))
    huge = {"rating": -1, "question": "q", "answer": "a", "citations": [{"quote": "가" * 5000}] * 20}
    r = client.post("/v1/feedback", json=huge, headers=auth(key))
    assert r.status_code == 422 and "citations" in r.text
    ok = {"rating": 1, "question": "연차휴가는 며칠인가요?", "answer": "15일입니다."}
    assert [client.post("/v1/feedback", json=ok, headers=auth(key)).status_code for _ in range(3)] == [200, 200, 429]
    assert len(service.feedback.list()) == 2


def test_no_cors_unless_origins_are_configured(make_service):
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    client = TestClient(create_app(make_service(), ui=True))
    for r in (client.options("/v1/ask", headers=preflight), client.get("/healthz", headers={"Origin": "http://localhost:3000"}),
              client.options("/gradio_api/queue/join", headers=preflight)):
        assert "access-control-allow-origin" not in r.headers, r.headers
    allowed = TestClient(create_app(make_service(cors_origins=["https://intra.example.com"]), ui=False))
    r = allowed.options("/v1/ask", headers={**preflight, "Origin": "https://intra.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://intra.example.com"


def test_metrics_settings(make_service):
    off = TestClient(create_app(make_service(metrics="off"), ui=False))
    assert off.get("/metrics").status_code == 404
    public = TestClient(create_app(make_service(metrics="public"), ui=False))
    assert "chulcheo_index_documents" in public.get("/metrics").text
    service = make_service()
    scoped_admin = service.keys.create("hr_admin", "admin", "hr")[1]
    restricted = TestClient(create_app(service, ui=False))
    assert "chulcheo_index_documents" not in restricted.get("/metrics", headers=auth(scoped_admin)).text
