"""The HTTP API over fast fake models: auth, roles, group isolation, documents, jobs, streaming, metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.server.api import create_app


@pytest.fixture
def api(make_service):
    """(client, service, keys by name) with an admin key for every group and users of public / hr."""
    service = make_service()
    keys = {
        "admin": service.keys.create("admin", "admin", "*")[1],
        "public": service.keys.create("kim", "user", "public")[1],
        "hr": service.keys.create("lee", "user", "hr")[1],
    }
    return TestClient(create_app(service, ui=False)), service, keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_401_bad_key_401_user_on_admin_route_403(api):
    client, _, keys = api
    r = client.post("/v1/search", json={"query": "연차휴가"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["detail"]
    assert client.post("/v1/search", json={"query": "연차휴가"}, headers=auth("chk_00000000_" + "x" * 43)).status_code == 401
    assert client.post("/v1/search", json={"query": "연차휴가"}, headers={"Authorization": "Basic abc"}).status_code == 401
    for method, path in [("get", "/v1/documents/x"), ("post", "/v1/reindex"), ("get", "/v1/keys"),
                         ("get", "/v1/stats"), ("get", "/v1/jobs"), ("delete", "/v1/documents?doc_id=x")]:
        r = client.request(method.upper(), path, headers=auth(keys["public"]))
        assert r.status_code in (403, 404, 405), (path, r.status_code)
        if path != "/v1/documents/x":
            assert r.status_code == 403 and "admin" in r.json()["detail"], path
    r = client.post("/v1/documents", headers=auth(keys["public"]), files={"file": ("a.txt", "내용".encode())})
    assert r.status_code == 403


def test_user_never_sees_another_groups_chunk_even_for_its_exact_text(api):
    client, _, keys = api
    secret = "비밀코드는 자두나무 73호이다."
    for mode in ("hybrid", "bm25", "dense"):
        hits = client.post("/v1/search", json={"query": secret, "k": 50, "mode": mode}, headers=auth(keys["public"])).json()["hits"]
        # BM25 finds nothing (no public chunk shares a word); dense always ranks something
        assert (hits or mode == "bm25") and all(h["group"] == "public" and "자두나무" not in h["text"] for h in hits), mode
    answer = client.post("/v1/ask", json={"question": "비밀코드는 무엇인가요?"}, headers=auth(keys["public"])).json()
    dump = json.dumps(answer, ensure_ascii=False)
    assert "자두나무" not in dump and all(h["group"] == "public" for h in answer["hits"])
    # the hr user and the admin do see it
    answer = client.post("/v1/ask", json={"question": "비밀코드는 무엇인가요?"}, headers=auth(keys["hr"])).json()
    assert "자두나무 73호" in answer["answer"] and answer["citations"][0]["quote"] in answer["hits"][0]["text"]
    docs = client.get("/v1/documents", headers=auth(keys["public"])).json()["documents"]
    assert docs and {d["group"] for d in docs} == {"public"}


def test_ask_returns_the_answer_contract(api):
    client, _, keys = api
    r = client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(keys["public"]))
    assert r.status_code == 200
    a = r.json()
    assert {"answer", "abstained", "sentences", "citations", "hits", "timings"} <= set(a)
    assert a["answer"] == "연차휴가는 15일입니다 [1]." and not a["abstained"]
    c = a["citations"][0]
    hit = next(h for h in a["hits"] if h["chunk_id"] == c["chunk_id"])
    assert hit["text"][c["start"]:c["end"]] == c["quote"] and "15일" in c["quote"]
    # a follow-up with history, and a caught wrong number ("90일" vs the source's 60일)
    r = client.post("/v1/ask", headers=auth(keys["public"]), json={
        "question": "병가는요?", "history": [{"role": "user", "content": "연차휴가는 며칠인가요?"},
                                          {"role": "assistant", "content": "연차휴가는 15일입니다."}]})
    assert r.status_code == 200 and "90일" not in r.json()["answer"]


def test_ask_stream_sends_tokens_then_checked_sentences_then_the_answer(api):
    client, _, keys = api
    with client.stream("POST", "/v1/ask/stream", json={"question": "연차휴가는 며칠인가요?"},
                       headers=auth(keys["public"])) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = [(b.split("\n")[0].removeprefix("event: "), json.loads(b.split("\n")[1].removeprefix("data: ")))
              for b in body.strip().split("\n\n")]
    kinds = [k for k, _ in events]
    assert kinds[0] == "token" and kinds[-1] == "answer" and "sentence" in kinds
    assert kinds.index("sentence") > kinds.index("token")
    assert "".join(d["text"] for k, d in events if k == "token") == "연차휴가는 15일입니다."
    sentence = next(d for k, d in events if k == "sentence")
    assert sentence["supported"] and sentence["citations"] == [1]
    assert events[-1][1]["citations"][0]["n"] == 1


def test_verify_checks_text_against_given_passages(api):
    client, _, keys = api
    r = client.post("/v1/verify", headers=auth(keys["public"]), json={
        "answer": "연차휴가는 15일입니다. 연차휴가는 20일입니다.",
        "passages": [{"id": "p1", "text": "연차휴가는 15일이다."}]})
    assert r.status_code == 200
    s = r.json()["sentences"]
    assert [x["supported"] for x in s] == [True, False] and "numbers" in s[1]["reasons"]
    assert r.json()["citations"][0]["quote"] == "연차휴가는 15일이다."


def test_upload_list_search_delete_and_reindex(api):
    client, service, keys = api
    admin = auth(keys["admin"])
    text = "사내 동호회 지원금은 분기마다 12만 원이다."
    r = client.post("/v1/documents", headers=admin, data={"group": "public"},
                    files={"file": ("../../동호회.txt", text.encode("cp949"))})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert job["kind"] == "upload" and job["detail"]["filename"] == "동호회.txt"
    service.jobs.wait(job["id"], timeout=60)
    done = client.get(f"/v1/jobs/{job['id']}", headers=admin).json()
    assert done["status"] == "done" and done["result"]["added"] == 1 and done["progress"] == 1.0
    stored = Path(job["detail"]["path"])  # uploads/<group>/<version>/<name>: a re-upload never overwrites it
    assert stored.is_file() and stored.name == "동호회.txt" and stored.parent.parent == (service.upload_dir / "public").resolve()
    docs = client.get("/v1/documents", headers=admin).json()["documents"]
    doc = next(d for d in docs if d["path"] == str(stored))
    assert doc["status"] == "indexed" and doc["chunks"] == 1 and doc["group"] == "public"
    assert doc["source"] == "동호회.txt" and doc["doc_id"].startswith("d_") and "/" not in doc["doc_id"]
    hits = client.post("/v1/search", json={"query": "동호회 지원금"}, headers=auth(keys["public"])).json()["hits"]
    assert hits[0]["doc_id"] == doc["doc_id"] and hits[0]["source"] == "동호회.txt" and "path" not in hits[0]
    # the hr user does not see a public upload... and cannot delete it
    assert client.delete("/v1/documents", params={"doc_id": doc["doc_id"]}, headers=auth(keys["hr"])).status_code == 403
    # re-index: nothing changed, nothing re-embedded
    r = client.post("/v1/reindex", headers=admin)
    assert r.status_code == 202
    result = service.jobs.wait(r.json()["job"]["id"], timeout=60).to_dict()
    assert result["status"] == "done" and result["result"]["unchanged"] == 3 and result["result"]["added"] == 0
    r = client.delete("/v1/documents", params={"doc_id": doc["doc_id"]}, headers=admin)
    assert r.status_code == 200 and r.json()["deleted"] == [doc["doc_id"]] and not stored.exists()
    assert client.delete("/v1/documents", params={"doc_id": doc["doc_id"]}, headers=admin).status_code == 404
    assert client.get("/v1/jobs/nope", headers=admin).status_code == 404


@pytest.mark.parametrize("name, data, status, words", [
    ("악성.exe", b"MZ\x90\x00", 415, "not accepted"),
    ("빈파일.txt", b"", 422, "empty"),
    ("바이너리.txt", bytes(range(256)) * 40, 422, "binary"),
    ("깨진.pdf", b"%PDF-1.7\n garbage", 422, "pdf"),
    ("", b"abc", 422, "file"),
])
def test_bad_uploads_are_refused_with_a_reason_and_nothing_is_stored(api, name, data, status, words):
    client, service, keys = api
    before = client.get("/v1/documents", headers=auth(keys["admin"])).json()["documents"]
    r = client.post("/v1/documents", headers=auth(keys["admin"]), data={"group": "public"},
                    files={"file": (name, data)})
    assert r.status_code == status, r.text
    assert words.lower() in json.dumps(r.json()["detail"], ensure_ascii=False).lower()
    assert client.get("/v1/documents", headers=auth(keys["admin"])).json()["documents"] == before
    stored = [p for p in service.upload_dir.rglob("*") if p.is_file()] if service.upload_dir.exists() else []
    assert stored == []


def test_oversized_upload_413_and_nothing_stored(make_service):
    service = make_service(max_upload_mb=0.01)
    key = service.keys.create("admin", "admin", "*")[1]
    client = TestClient(create_app(service, ui=False))
    r = client.post("/v1/documents", headers=auth(key), files={"file": ("큰파일.txt", ("가" * 6000).encode())})
    assert r.status_code == 413 and "upload limit" in r.json()["detail"] and "큰파일.txt" in r.json()["detail"]
    assert not any(p.is_file() for p in service.upload_dir.rglob("*"))


def test_keys_over_the_api_and_revocation(api):
    client, _, keys = api
    admin = auth(keys["admin"])
    r = client.post("/v1/keys", headers=admin, json={"name": "park", "role": "user", "groups": ["hr", "finance"]})
    assert r.status_code == 201 and r.json()["key"].startswith("chk_") and r.json()["groups"] == ["finance", "hr"]
    new = r.json()["key"]
    assert client.get("/v1/me", headers=auth(new)).json()["name"] == "park"
    listed = client.get("/v1/keys", headers=admin).json()["keys"]
    assert {k["name"] for k in listed} == {"admin", "kim", "lee", "park"} and all("key" not in k for k in listed)
    assert client.post("/v1/keys", headers=admin, json={"name": "park"}).status_code == 422  # taken
    assert client.delete("/v1/keys/park", headers=admin).status_code == 200
    assert client.get("/v1/me", headers=auth(new)).status_code == 401


def test_feedback_is_stored_with_question_answer_and_citations(api):
    client, service, keys = api
    r = client.post("/v1/feedback", headers=auth(keys["public"]), json={
        "rating": -1, "question": "연차휴가는 며칠인가요?", "answer": "연차휴가는 15일입니다 [1].",
        "citations": [{"n": 1, "quote": "연차휴가는 15일이다."}], "comment": "출처가 오래됨"})
    assert r.status_code == 200
    (row,) = service.feedback.list()
    assert (row["user"], row["rating"], row["citations"][0]["n"]) == ("kim", -1, 1)
    assert client.post("/v1/feedback", headers=auth(keys["public"]),
                       json={"rating": 5, "question": "q", "answer": "a"}).status_code == 422


def test_health_ready_and_metrics(api, make_service, tmp_path):
    client, _, keys = api
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post("/v1/search", json={"query": "연차휴가"}, headers=auth(keys["public"]))
    client.post("/v1/search", json={"query": "연차휴가"})
    anonymous = client.get("/metrics").text
    assert "chulcheo_index_documents" not in anonymous and "chulcheo_requests_total" in anonymous
    text = client.get("/metrics", headers=auth(keys["admin"])).text
    assert 'chulcheo_requests_total{method="POST",route="/v1/search",status="200"} 1.0' in text
    # refused before routing (no key, body never read): counted, without a route
    assert 'chulcheo_requests_total{method="POST",route="other",status="401"} 1.0' in text
    assert "chulcheo_index_documents 2.0" in text and "chulcheo_index_chunks" in text
    assert 'chulcheo_request_seconds_bucket{le="0.5",method="POST",route="/v1/search"}' in text
    # a server with no index is alive but not ready, and says why
    empty = make_service(open_mode=True)
    empty.pipeline.settings = empty.pipeline.settings.model_copy(update={"index_dir": tmp_path / "nothing"})
    bare = TestClient(create_app(empty, ui=False))
    assert bare.get("/healthz").status_code == 200
    r = bare.get("/readyz")
    assert r.status_code == 503 and "no index" in r.json()["reason"]
    r = bare.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"})
    assert r.status_code == 503 and r.json()["error"] == "no_index"
    assert str(tmp_path) not in r.json()["detail"] and "nothing" in r.json()["detail"]  # no server paths


def test_open_mode_needs_no_key(make_service):
    client = TestClient(create_app(make_service(open_mode=True), ui=False))
    assert client.post("/v1/search", json={"query": "비밀코드"}).json()["hits"]
    assert client.get("/v1/me").json()["role"] == "admin"


def test_concurrent_requests_are_safe(make_service):
    """Searches and answers from many threads at once: all succeed, answers are serialized."""
    from concurrent.futures import ThreadPoolExecutor

    service = make_service(ask_per_minute=0)  # this test is about concurrency, not the rate limit
    keys = {"public": service.keys.create("kim", "user", "public")[1], "hr": service.keys.create("lee", "user", "hr")[1]}
    client = TestClient(create_app(service, ui=False))

    def one(i: int) -> int:
        if i % 3 == 0:
            r = client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(keys["public"]))
            assert r.json()["answer"] == "연차휴가는 15일입니다 [1]."
        else:
            r = client.post("/v1/search", json={"query": "재택근무"}, headers=auth(keys["hr" if i % 2 else "public"]))
            assert all(h["group"] == ("hr" if i % 2 else "public") for h in r.json()["hits"])
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(24))) == {200}


def test_a_question_that_waits_too_long_for_the_model_gets_503(make_service):
    service = make_service(open_mode=True, answer_wait_s=0.2)
    client = TestClient(create_app(service, ui=False))
    service._answer_slots.acquire()  # another answer holds the only slot
    try:
        r = client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"})
        assert r.status_code == 503 and r.json()["error"] == "busy" and "retry" in r.json()["detail"]
        assert client.post("/v1/search", json={"query": "연차휴가"}).status_code == 200  # searches go on
    finally:
        service._answer_slots.release()
    assert client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}).status_code == 200


def test_document_list_shows_queued_and_failed_uploads(api, monkeypatch):
    import threading

    client, service, keys = api
    admin = auth(keys["admin"])
    gate, real_ingest = threading.Event(), service.pipeline.ingest

    def slow_then_broken(paths, group="public", **kw):
        gate.wait(10)
        raise RuntimeError("embedding model crashed")

    monkeypatch.setattr(service.pipeline, "ingest", slow_then_broken)
    job = client.post("/v1/documents", headers=admin, files={"file": ("회의록.txt", "회의는 매주 월요일이다.".encode())}).json()["job"]
    rows = client.get("/v1/documents", headers=admin).json()["documents"]
    pending = next(r for r in rows if r["source"].endswith("회의록.txt"))
    assert pending["status"] in ("queued", "indexing") and pending["doc_id"] is None and pending["job"] == job["id"]
    gate.set()
    assert service.jobs.wait(job["id"], timeout=10).status == "failed"
    rows = client.get("/v1/documents", headers=admin).json()["documents"]
    failed = next(r for r in rows if r["source"].endswith("회의록.txt"))
    assert failed["status"] == "failed" and "embedding model crashed" in failed["error"]
    assert not [p for p in service.upload_dir.rglob("회의록.txt")]  # not indexed: not kept
    # the user of another group does not see it at all
    assert all(not r["source"].endswith("회의록.txt") for r in
               client.get("/v1/documents", headers=auth(keys["hr"])).json()["documents"])
    monkeypatch.setattr(service.pipeline, "ingest", real_ingest)


def test_warm_up_loads_the_models_and_readyz_reports_a_broken_llm(make_service):
    service = make_service(open_mode=True)
    service.start_warm_up().join(30)
    assert service.pipeline._retriever is not None and service.pipeline._checker is not None
    assert service.ready() == (True, "ok")

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("qwen.gguf: not a GGUF file")

    service.pipeline._generator = Broken()
    service.warm_up()
    client = TestClient(create_app(service, ui=False))
    r = client.get("/readyz")
    assert r.status_code == 503 and "not a GGUF file" in r.json()["reason"]


def test_questions_per_key_are_rate_limited_with_retry_after(make_service):
    service = make_service(ask_per_minute=6, ask_burst=2)
    kim, lee = service.keys.create("kim", "user", "public")[1], service.keys.create("lee", "user", "public")[1]
    client = TestClient(create_app(service, ui=False))
    ask = lambda key: client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(key))  # noqa: E731
    assert [ask(kim).status_code for _ in range(2)] == [200, 200]
    r = ask(kim)
    assert r.status_code == 429 and r.json()["error"] == "rate_limited" and "kim" in r.json()["detail"]
    assert 1 <= int(r.headers["retry-after"]) <= 10  # one question per 10 s
    assert ask(lee).status_code == 200  # another key has its own bucket
    assert client.post("/v1/search", json={"query": "연차휴가"}, headers=auth(kim)).status_code == 200  # searches are not limited
    with client.stream("POST", "/v1/ask/stream", json={"question": "연차휴가는 며칠인가요?"}, headers=auth(kim)) as s:
        assert s.status_code == 429


def test_rate_limiter_refills_over_time():
    from app.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("a") == 0.0 and limiter.take("b") == 0.0
    assert RateLimiter(per_minute=0, burst=1).take("a") == 0.0  # off


def test_an_answer_past_the_timeout_is_stopped_with_504(make_service):
    from generation.scripted import ScriptedGenerator

    service = make_service(open_mode=True, ask_timeout_s=0.3)

    class Slow(ScriptedGenerator):
        def stream(self, messages, params=None):
            for piece in super().stream(messages, params):
                time.sleep(0.1)
                yield piece

    service.pipeline._generator = Slow(lambda m: "연차휴가는 15일입니다. " * 5)
    client = TestClient(create_app(service, ui=False))
    r = client.post("/v1/ask", json={"question": "연차휴가는 며칠인가요?"})
    assert r.status_code == 504 and r.json()["error"] == "timeout" and "ask_timeout_s" in r.json()["detail"]
    with client.stream("POST", "/v1/ask/stream", json={"question": "연차휴가는 며칠인가요?"}) as s:
        body = "".join(s.iter_text())
    assert "event: error" in body and '"status": 504' in body and "event: answer" not in body
    assert service._answer_slots.acquire(timeout=1)  # the slot was given back
    service._answer_slots.release()


def test_readyz_says_loading_until_the_warm_up_is_done(make_service):
    import threading

    service = make_service(open_mode=True)
    gate = threading.Event()
    service.pipeline._generator.count_tokens = lambda text: gate.wait(10) and 1  # a slow model load
    client = TestClient(create_app(service, ui=False))
    thread = service.start_warm_up()
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["reason"] == "loading models"
    assert client.get("/healthz").status_code == 200
    gate.set()
    thread.join(10)
    assert client.get("/readyz").status_code == 200
