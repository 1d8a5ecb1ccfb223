"""The MCP endpoint (/mcp) against a real server, by hostile callers, through the SDK's client.

Contract: user_b's tool calls (search, ask, get_passage with group a's passage ids, list_documents)
never return group a's secret; /mcp without a valid key is 401 before a body is read, whatever
its size; an over-long body from a valid key is refused (413), and the server keeps answering.
"""

from __future__ import annotations

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.security.live import LiveServer

pytestmark = pytest.mark.security


def calls(live: LiveServer, caller: str, plan: list[tuple[str, dict]]) -> list[str]:
    """The text of each tool result (content and structured content) of `plan`, as `caller`."""
    async def go():
        http = httpx2.AsyncClient(headers=live.headers(caller), timeout=120)
        out = []
        async with Client(streamable_http_client(live.url + "/mcp", http_client=http)) as client:
            for name, args in plan:
                result = await client.call_tool(name, args)
                out.append(f"{result.structured_content} {''.join(getattr(c, 'text', '') for c in result.content)}")
        return out
    return anyio.run(go)


def test_mcp_tools_never_give_another_groups_secret(live: LiveServer):
    a_chunks = [h["chunk_id"] for h in live.search("root", "A팀 비밀 암호") if h["group"] == "a"]
    assert a_chunks, "harness: root finds no passage of group a"
    plan = [("search", {"query": "A팀 비밀 암호", "k": 50}), ("ask", {"question": "A팀 비밀 암호는 무엇인가요?"}),
            ("list_documents", {}), *[("get_passage", {"chunk_id": c}) for c in a_chunks[:3]],
            ("get_passage", {"chunk_id": a_chunks[0].split("#")[0] + "#../../../etc/passwd"})]
    for text in calls(live, "user_b", plan):
        assert not live.leaks(text, "user_b"), f"user_b got group a's secret through MCP: {text[:400]}"
        live.scan(text, "MCP tool result for user_b")
    own = calls(live, "user_a", [("search", {"query": "A팀 비밀 암호", "k": 5})])
    assert "청포도" in own[0], "control: user_a finds its own secret through MCP"


def test_mcp_without_a_valid_key_is_refused_before_the_body_is_read(live: LiveServer):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "A팀"}}}
    for headers in ({}, {"Authorization": "Bearer chk_forged"}):
        r = httpx.post(live.url + "/mcp", json=body, headers={**headers, "Accept": "application/json, text/event-stream"},
                       timeout=30)
        assert r.status_code == 401 and "청포도" not in r.text, r.text[:200]
        assert httpx.get(live.url + "/mcp", headers=headers, timeout=30).status_code == 401
    big = httpx.post(live.url + "/mcp", content=b"x" * (20 << 20), headers={"Content-Type": "application/json"}, timeout=60)
    assert big.status_code == 401
    over = httpx.post(live.url + "/mcp", content=b"x" * (5 << 20), timeout=60,
                      headers={**live.headers("user_b"), "Content-Type": "application/json"})
    assert over.status_code == 413, over.text[:200]
    assert httpx.get(live.url + "/healthz", timeout=10).status_code == 200
