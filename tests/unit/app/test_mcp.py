"""The MCP tools over fast fakes, called by the official SDK's client in-process; over HTTP
(/mcp on a running serve, Bearer key) and stdio (`chulcheo mcp`) in tests/integration/test_mcp_real.py."""

from __future__ import annotations

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client

from app.server.api import create_app
from app.server.mcp_tools import build_mcp


@pytest.fixture
def mcp_as(make_service):
    """mcp_as(name) -> an MCP server acting as kim (public) or lee (hr)."""
    service = make_service()
    keys = {n: service.keys.create(n, "user", g)[1] for n, g in (("kim", "public"), ("lee", "hr"))}

    def server(name: str):
        who = service.authenticate(keys[name])
        return build_mcp(service, lambda ctx: who)

    server.service, server.keys = service, keys
    return server


def call(server, tool: str, args: dict) -> tuple[dict | None, str, bool]:
    """(structured result, text content, is_error) of one tool call through the SDK client."""
    async def go():
        async with Client(server) as client:
            result = await client.call_tool(tool, args)
            text = "".join(getattr(c, "text", "") for c in result.content)
            return result.structured_content, text, result.is_error
    return anyio.run(go)


def test_the_four_tools_are_listed_with_korean_and_english_descriptions(mcp_as):
    async def go():
        async with Client(mcp_as("kim")) as client:
            return (await client.list_tools()).tools
    tools = {t.name: t for t in anyio.run(go)}
    assert set(tools) == {"search", "ask", "list_documents", "get_passage"}
    for tool in tools.values():
        assert any("가" <= ch <= "힣" for ch in tool.description) and "the" in tool.description.lower()


def test_search_and_ask_stay_within_the_keys_groups(mcp_as):
    found, _, error = call(mcp_as("kim"), "search", {"query": "비밀코드 자두나무", "k": 10})
    assert not error and found["hits"] and all(h["group"] == "public" for h in found["hits"])
    assert "자두나무" not in str(found["hits"])
    own, _, _ = call(mcp_as("lee"), "search", {"query": "비밀코드", "k": 3})
    assert "자두나무" in own["hits"][0]["text"] and own["hits"][0]["doc_id"].startswith("d_")
    answer, _, _ = call(mcp_as("kim"), "ask", {"question": "연차휴가는 며칠인가요?"})
    assert "15일" in answer["answer"] and "[1]" in answer["answer"] and answer["citations"][0]["source"] == "취업규칙.txt"
    hidden, _, _ = call(mcp_as("kim"), "ask", {"question": "비밀코드는 무엇인가요?"})
    assert "자두나무" not in str(hidden)


def test_list_documents_and_get_passage(mcp_as):
    docs, _, _ = call(mcp_as("kim"), "list_documents", {})
    assert [d["source"] for d in docs["documents"]] == ["취업규칙.txt"] and "path" not in docs["documents"][0]
    hit = call(mcp_as("kim"), "search", {"query": "연차휴가", "k": 1})[0]["hits"][0]
    passage, _, error = call(mcp_as("kim"), "get_passage", {"chunk_id": hit["chunk_id"]})
    assert not error and passage["passage"]["text"] == hit["text"] and passage["source"] == "취업규칙.txt"
    secret = call(mcp_as("lee"), "search", {"query": "비밀코드", "k": 1})[0]["hits"][0]["chunk_id"]
    _, text, error = call(mcp_as("kim"), "get_passage", {"chunk_id": secret})
    assert error and "not found" in text and "자두나무" not in text
    for bad in ("", "d_0000#0001", "../../etc/passwd#1", secret.split("#")[0]):
        _, text, error = call(mcp_as("kim"), "get_passage", {"chunk_id": bad})
        assert error and "root:x" not in text


def test_the_question_rate_limit_applies_to_ask(make_service):
    service = make_service(ask_burst=1, ask_per_minute=1)
    who = service.authenticate(service.keys.create("kim", "user", "public")[1])
    server = build_mcp(service, lambda ctx: who)
    first = call(server, "ask", {"question": "연차휴가는 며칠인가요?"})
    second = call(server, "ask", {"question": "연차휴가는 며칠인가요?"})
    assert not first[2] and second[2] and "retry in" in second[1]


def test_http_mcp_refuses_a_call_without_a_valid_key(mcp_as):
    with TestClient(create_app(mcp_as.service, ui=False)) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        for headers in ({}, {"Authorization": "Bearer chk_forged"}):
            r = http.post("/mcp", json=body, headers={**headers, "Accept": "application/json, text/event-stream"})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert http.get("/mcp").status_code == 401
