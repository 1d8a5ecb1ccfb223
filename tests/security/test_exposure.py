"""What a user key or a passer-by learns about the server beyond answers: paths, index size, CORS.

Contract: for user keys, hits and citations name a document by its bare file name (`source`)
and an opaque `doc_id`/`chunk_id` (no "/", no state or index path); anonymous /metrics has no
index counts; no response allows a foreign origin (no `access-control-allow-origin`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.live import DOC_NAME, LiveServer
from tests.security.probes import HealthMonitor

pytestmark = pytest.mark.security

ORIGIN = "http://localhost:3000"


def path_problems(live: LiveServer, where: str, item: dict[str, Any]) -> list[str]:
    """What in one hit or citation gives away a server path."""
    problems = []
    secret_dirs = [str(live.state_dir), str(live.index_dir), str(live.base)]
    for field in ("source", "doc_id", "chunk_id"):
        value = str(item.get(field) or "")
        if "/" in value or "\\" in value or any(d in value for d in secret_dirs):
            problems.append(f"{where} {field} = {value!r} names a server path")
    return problems


def test_search_hits_name_documents_without_server_paths(live: LiveServer):
    hits = live.search("user_a", "A팀 비밀 암호는 무엇인가요?")
    assert hits, "user_a's search for its own group's secret found nothing (harness: the document is missing)"
    problems = [p for h in hits for p in path_problems(live, f"search hit {h.get('rank')}", h)]
    assert any(DOC_NAME["a"] in (h.get("source") or "") for h in hits), f"group a's document not among {hits}"
    assert not problems, "\n".join(problems)


def test_answer_citations_and_hits_name_documents_without_server_paths(live: LiveServer):
    with HealthMonitor(live.url) as hz:
        r = live.call("POST", "/v1/ask", "user_a", json={"question": "A팀 비밀 암호는 무엇인가요?"}, timeout=120)
    assert r.status_code == 200, f"user_a's /v1/ask: {r.status_code} {r.text[:300]}"
    answer = r.json()
    problems = [p for i, c in enumerate(answer["citations"]) for p in path_problems(live, f"citation {i + 1}", c)]
    problems += [p for h in answer["hits"] for p in path_problems(live, f"answer hit {h.get('rank')}", h)]
    if (hz_problem := hz.problem("during one answer")) is not None:
        problems.append(hz_problem)
    assert answer["hits"], f"the answer has no hits to check: {answer}"
    assert not problems, "\n".join(problems)


def test_anonymous_metrics_do_not_reveal_the_index_size(live: LiveServer):
    r = live.call("GET", "/metrics")
    leaked = [name for name in ("chulcheo_index_documents", "chulcheo_index_chunks") if name in r.text]
    assert r.status_code in (401, 403, 404) or not leaked, (
        f"anonymous GET /metrics answered {r.status_code} with the index size ({', '.join(leaked)})")


@pytest.mark.parametrize(("method", "path", "caller", "headers"), [
    ("OPTIONS", "/v1/ask", None, {"Access-Control-Request-Method": "POST",
                                  "Access-Control-Request-Headers": "authorization,content-type"}),
    ("OPTIONS", "/gradio_api/queue/join", None, {"Access-Control-Request-Method": "POST"}),
    ("GET", "/v1/me", "user_a", {}),
    ("GET", "/healthz", None, {}),
    ("GET", "/", None, {}),
    ("GET", "/config", None, {}),
    ("GET", "/gradio_api/info", None, {}),
], ids=["preflight /v1/ask", "preflight queue/join", "GET /v1/me", "GET /healthz", "GET /", "GET /config",
        "GET /gradio_api/info"])
def test_no_cross_origin_access_is_allowed(live: LiveServer, method, path, caller, headers):
    r = live.call(method, path, caller, headers={"Origin": ORIGIN, **headers})
    allowed = r.headers.get("access-control-allow-origin")
    assert allowed is None, (f"{method} {path} with Origin {ORIGIN} answered {r.status_code} with "
                             f"access-control-allow-origin: {allowed!r} (credentials: "
                             f"{r.headers.get('access-control-allow-credentials')!r}): a page on {ORIGIN} may read it")
