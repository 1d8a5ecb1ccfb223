"""The real server over HTTP: `chulcheo serve` with the default embedding model and a real GGUF LLM."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import HR_SECRET

pytestmark = pytest.mark.integration


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_ask_over_http_returns_a_cited_answer(live_server):
    r = httpx.post(f"{live_server['url']}/v1/ask", json={"question": "연차휴가는 며칠인가요?"},
                   headers=bearer(live_server["user"]), timeout=300)
    assert r.status_code == 200, r.text
    a = r.json()
    assert not a["abstained"] and a["citations"], a
    for c in a["citations"]:  # every citation quotes its chunk exactly
        hit = next(h for h in a["hits"] if h["chunk_id"] == c["chunk_id"])
        assert c["quote"] and c["quote"] in hit["text"]
    assert "15일" in a["answer"] and any(c["source"].endswith("취업규칙.md") for c in a["citations"])


def test_stream_over_http_ends_with_the_verified_answer(live_server):
    with httpx.stream("POST", f"{live_server['url']}/v1/ask/stream", json={"question": "USB 메모리를 써도 되나요?"},
                      headers=bearer(live_server["user"]), timeout=300) as r:
        assert r.status_code == 200
        frames = "".join(r.iter_text()).strip().split("\n\n")
    kinds = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert kinds[0] == "token" and kinds[-1] == "answer", kinds
    final = json.loads(frames[-1].split("\n", 1)[1].removeprefix("data: "))
    assert final["abstained"] or final["citations"]


def test_public_user_never_gets_the_hr_document(live_server):
    url, user, admin = live_server["url"], live_server["user"], live_server["admin"]
    hits = httpx.post(f"{url}/v1/search", json={"query": HR_SECRET, "k": 20}, headers=bearer(user), timeout=60).json()["hits"]
    assert all(h["group"] == "public" and "48억" not in h["text"] for h in hits)
    answer = httpx.post(f"{url}/v1/ask", json={"question": "2026년 임원 보수 한도는 얼마인가요?"},
                        headers=bearer(user), timeout=300).json()
    assert all(h["group"] == "public" for h in answer["hits"]) and "48억" not in answer["answer"]
    top = httpx.post(f"{url}/v1/search", json={"query": HR_SECRET}, headers=bearer(admin), timeout=60).json()["hits"][0]
    assert top["group"] == "hr" and "48억" in top["text"]


def test_auth_roles_upload_and_metrics_over_http(live_server):
    url, user, admin = live_server["url"], live_server["user"], live_server["admin"]
    assert httpx.post(f"{url}/v1/search", json={"query": "식대"}, timeout=30).status_code == 401
    assert httpx.post(f"{url}/v1/reindex", headers=bearer(user), timeout=30).status_code == 403
    r = httpx.post(f"{url}/v1/documents?wait=true", headers=bearer(admin), data={"group": "public"}, timeout=300,
                   files={"file": ("독서모임.txt", "사내 독서 모임 지원금은 한 달에 3만 5천 원이다.".encode())})
    assert r.status_code == 200 and r.json()["job"]["status"] == "done", r.text
    top = httpx.post(f"{url}/v1/search", json={"query": "독서 모임 지원금"}, headers=bearer(user), timeout=60).json()["hits"][0]
    assert top["source"] == "독서모임.txt"  # the file name, never the server's path  # (the browser test uploads its own file to the same server)
    bad = httpx.post(f"{url}/v1/documents", headers=bearer(admin), files={"file": ("x.exe", b"MZ")}, timeout=30)
    assert bad.status_code == 415 and "x.exe" in bad.json()["detail"]
    anonymous = httpx.get(f"{url}/metrics", timeout=30).text  # request counts only
    assert 'route="/v1/search",status="200"' in anonymous and "chulcheo_index_chunks" not in anonymous
    assert "chulcheo_index_chunks" in httpx.get(f"{url}/metrics", headers=bearer(admin), timeout=30).text
    assert httpx.get(f"{url}/docs", timeout=30).status_code == 200
    assert httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]["/v1/ask"]
