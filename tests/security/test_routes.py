"""Every route of the server's /openapi.json, called by a hostile caller with plausible and hostile input.

Callers: no key, user_b (user of group b), adm_a (admin of group a). Input: a plausible request
aimed at the other group (its secret as the question, its group name, its document and job ids),
then per field path-traversal strings, "*", the other group's name, a NUL, a huge string and
wrong types, plus broken and deeply nested bodies. The contract: no response is a 5xx or hangs,
and no response carries the secret of a group the caller may not see.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.security.live import LiveServer
from tests.security.probes import HealthMonitor

pytestmark = pytest.mark.security

OTHER = {None: "a", "user_b": "a", "adm_a": "b"}  # the group each caller attacks
QUESTION = {"a": "A팀 비밀 암호는 무엇인가요?", "b": "B팀 비밀 암호는 무엇인가요?"}
TRAVERSAL = ["../../../../etc/passwd", "..", "..%2F..%2F..%2Fetc%2Fpasswd", "/etc/passwd"]
HUGE = "가" * 200_000
WRONG_TYPES: list[Any] = [None, 12345, ["x"], {"$ne": ""}]
# A valid body costs an LLM answer (~10 s here): only the plausible one (the question alone, aimed
# at the other group's secret) is valid; every mutation of it is one the schema refuses.
EXPENSIVE = ("/v1/ask",)
_names = itertools.count()


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def plausible(schema: dict[str, Any], spec: dict[str, Any], name: str, other: str) -> Any:
    """A value that passes the schema and aims at the other group (its question, its group name)."""
    schema = resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(s, spec).get("type") != "null"]
            return plausible(options[0], spec, name, other)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: plausible(v, spec, k, other) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [plausible(schema.get("items", {}), spec, name, other)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if name in ("question", "query", "answer", "content", "text"):
        return QUESTION[other]
    if name in ("groups", "group"):
        return other
    if name == "name":
        return f"fuzz{next(_names)}"
    return "안녕하세요"


def mutations(value: dict[str, Any], schema: dict[str, Any], spec: dict[str, Any], other: str,
              cheap_only: bool) -> Iterator[tuple[str, Any]]:
    """(label, body) pairs: each top-level field replaced by hostile strings and wrong types."""
    props = resolve(schema, spec).get("properties", {})
    for field in props:
        strings = [] if cheap_only else [*TRAVERSAL, "*", other, "\x00", f"{other},{other}"]
        for s in [*strings, HUGE]:
            yield f"{field}={s[:30]!r}", {**value, field: [s] if isinstance(value.get(field), list) else s}
        for wrong in WRONG_TYPES:
            yield f"{field}={wrong!r}", {**value, field: wrong}
        if isinstance(value.get(field), list):
            yield f"{field}=10k items", {**value, field: value[field] * 10_000}


def path_values(live: LiveServer, param: str, other: str) -> list[str]:
    own = {"job_id": live.job_ids(other), "name": ["root", f"user_{other}"]}.get(param, [])
    return [*own, *TRAVERSAL, "*", "x" * 5000, "\x00"]


def query_values(live: LiveServer, param: str, other: str) -> list[Any]:
    if param == "doc_id":
        return [live.doc_ids(other), *[[v] for v in (*TRAVERSAL, "*", "x" * 5000)]]
    if param == "wait":
        return ["false", "../../etc/passwd"]
    return [*TRAVERSAL, "*"]


def requests_for(live: LiveServer, spec: dict[str, Any], path: str, method: str, op: dict[str, Any],
                 caller: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, httpx.request kwargs with "url") for one operation."""
    other = OTHER[caller]
    params = op.get("parameters", [])
    path_params = [p["name"] for p in params if p["in"] == "path"]
    query_params = [p for p in params if p["in"] == "query"]
    urls = [(path, path)]
    for name in path_params:  # each value percent-encoded into one segment, and once raw ("../" unescaped)
        slot = "{" + name + "}"
        urls = [*[(f"{label} {name}={v[:30]!r}", url.replace(slot, quote(v, safe="")))
                  for label, url in urls for v in path_values(live, name, other)],
                *[(f"{label} {name} raw '../..'", url.replace(slot, "../../../etc/passwd")) for label, url in urls]]
    base_query = {p["name"]: plausible(p.get("schema", {}), spec, p["name"], other)
                  for p in query_params if p.get("required")}
    if "doc_id" in base_query:
        base_query["doc_id"] = live.doc_ids(other) or ["none"]
    queries = [("", base_query)] + [(f" ?{p['name']}={str(v)[:30]!r}", {**base_query, p["name"]: v})
                                   for p in query_params for v in query_values(live, p["name"], other)]
    content = (op.get("requestBody") or {}).get("content", {})
    for (url_label, url), (q_label, query) in itertools.product(urls, queries[:1] if path_params else queries):
        common = {"method": method.upper(), "url": url, "params": query}
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            body = plausible(schema, spec, "", other)
            cheap_only = path.startswith(EXPENSIVE)
            if cheap_only:  # the required fields only (no history: condensing it is a second LLM call)
                body = {k: v for k, v in body.items() if k in resolve(schema, spec).get("required", [])}
            yield f"{url_label}{q_label} plausible", {**common, "json": body}
            if q_label:
                continue
            for label, mutated in mutations(body, schema, spec, other, cheap_only):
                yield f"{url_label} {label}", {**common, "json": mutated}
            for label, raw in (("body '{'", b"{"), ("body []", b"[]"), ("body 'null'", b"null"),
                               ("body nested 50k", b"[" * 50_000 + b"]" * 50_000)):
                yield f"{url_label} {label}", {**common, "content": raw, "headers": {"Content-Type": "application/json"}}
        elif "multipart/form-data" in content:
            names = ["문서.txt", "../../../../tmp/evil.txt", "/etc/passwd.txt", "..", "a" * 300 + ".txt"]
            groups = [other, "*", "..", f"a,{other}", "../" + other, "x" * 100]
            yield f"{url_label}{q_label} plausible", {**common, "data": {"group": other},
                                                     "files": {"file": ("문서.txt", "퍼즈 테스트 문서입니다.".encode())}}
            if q_label:
                continue
            for name in names[1:]:
                yield f"{url_label} filename={name[:30]!r}", {**common, "data": {"group": other},
                                                             "files": {"file": (name, "퍼즈 문서.".encode())}}
            for group in groups[1:]:
                yield f"{url_label} group={group[:30]!r}", {**common, "data": {"group": group},
                                                           "files": {"file": ("문서.txt", "퍼즈 문서.".encode())}}
            yield f"{url_label} no file", {**common, "data": {"group": other}}
            yield f"{url_label} json body", {**common, "json": {"file": "/etc/passwd", "group": other}}
        else:
            yield f"{url_label}{q_label}", common


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) of every route; deleting routes last (they may destroy what others read)."""
    ops = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
           if method in ("get", "post", "put", "patch", "delete")]
    return sorted(ops, key=lambda o: (o[1] == "delete", o[0]))


@pytest.mark.parametrize("caller", [None, "user_b", "adm_a"], ids=["anonymous", "user_b", "adm_a"])
def test_every_route_refuses_hostile_callers_without_leaking(live: LiveServer, caller: str | None):
    spec = httpx.get(live.url + "/openapi.json", timeout=30).json()
    ops = operations(spec)
    assert any(p == "/v1/ask" for p, _, _ in ops), f"/openapi.json lists no /v1/ask: {sorted(spec['paths'])}"
    problems: list[str] = []
    sent = 0
    started = time.monotonic()
    slowest: list[tuple[float, str]] = []
    with HealthMonitor(live.url) as hz:
        for path, method, op in ops:
            for label, kwargs in requests_for(live, spec, path, method, op, caller):
                what = f"{method.upper()} {label} as {caller or 'anonymous'}"
                url = kwargs.pop("url")
                sent += 1
                try:
                    r = live.call(kwargs.pop("method"), url, caller, timeout=90, **kwargs)
                except httpx.TimeoutException:
                    problems.append(f"{what}: no response within 90 s (hung)")
                    continue
                except httpx.HTTPError as exc:
                    problems.append(f"{what}: connection failed: {type(exc).__name__}: {exc}")
                    continue
                if r.status_code >= 500:
                    problems.append(f"{what}: {r.status_code} {r.text[:200]!r}")
                for leak in live.leaks(r.text, caller):
                    problems.append(f"{what}: the response holds {leak}: {r.text[:300]!r}")
                if caller is None and r.status_code < 400 and path.startswith("/v1"):
                    problems.append(f"{what}: answered {r.status_code} without a key")
                slowest.append((r.elapsed.total_seconds(), f"{what}: {r.status_code}"))
    print("slowest requests:", *(f"{t:6.2f} s  {w[:150]}" for t, w in sorted(slowest, reverse=True)[:12]), sep="\n")
    if problem := hz.problem(f"during {sent} hostile requests"):
        problems.append(problem)
    assert not problems, (f"{len(problems)} of {sent} hostile requests ({time.monotonic() - started:.0f} s) went wrong:\n"
                          + "\n".join(problems[:60]))
