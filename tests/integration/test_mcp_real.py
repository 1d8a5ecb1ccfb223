"""chulcheo's MCP server with the official SDK's client over both transports: streamable HTTP
at /mcp on a running `chulcheo serve` (Bearer key; a wrong-group call and a call without a key)
and stdio (`chulcheo mcp --key …` as a subprocess, as a desktop agent starts it)."""

from __future__ import annotations

import sys

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.integration.conftest import HR_SECRET, ROOT

pytestmark = pytest.mark.integration

SECRET_WORD = "48억"


def over_http(live_server, key: str | None, statuses: list[int] | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def seen(response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    http = httpx2.AsyncClient(headers=headers, timeout=300, event_hooks={"response": [seen]})
    return Client(streamable_http_client(live_server["url"] + "/mcp", http_client=http))


async def tool(client: Client, name: str, args: dict):
    result = await client.call_tool(name, args)
    return result.structured_content, "".join(getattr(c, "text", "") for c in result.content), result.is_error


def test_http_tools_answer_within_the_keys_groups(live_server):
    async def go():
        async with over_http(live_server, live_server["user"]) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            answer = await tool(client, "ask", {"question": "연차휴가는 며칠인가요?"})
            hits = await tool(client, "search", {"query": "임원 보수 한도", "k": 10})
            docs = await tool(client, "list_documents", {})
        async with over_http(live_server, live_server["admin"]) as client:
            admin_hits = await tool(client, "search", {"query": "임원 보수 한도", "k": 3})
        return names, answer, hits, docs, admin_hits

    names, answer, hits, docs, admin_hits = anyio.run(go)
    assert names == {"search", "ask", "list_documents", "get_passage"}
    assert not answer[2] and answer[0]["citations"] and answer[0]["answer"], answer
    assert not hits[2] and SECRET_WORD not in str(hits[0]) and all(h["group"] == "public" for h in hits[0]["hits"])
    assert all(d["group"] == "public" for d in docs[0]["documents"])
    assert SECRET_WORD in str(admin_hits[0]), "control: the admin of * finds hr's document"
    assert HR_SECRET  # the secret the user must not see


def test_http_mcp_without_a_key_is_refused(live_server):
    for key in (None, "chk_forged_key"):
        statuses: list[int] = []

        async def go():
            async with over_http(live_server, key, statuses) as client:
                return await client.list_tools()
        with pytest.raises(Exception):  # the SDK's client gives up: no tool list without a key
            anyio.run(go)
        assert statuses and set(statuses) == {401}, statuses


def test_stdio_mcp_acts_as_its_key(live_server):
    params = StdioServerParameters(command=sys.executable, args=["-m", "app", "mcp", "--key", live_server["user"]],
                                   env=dict(live_server["env"]), cwd=str(ROOT))

    async def go():
        async with Client(params, read_timeout_seconds=300) as client:
            hits = await tool(client, "search", {"query": "연차휴가", "k": 3})
            secret = await tool(client, "search", {"query": "임원 보수 한도", "k": 10})
            passage = await tool(client, "get_passage", {"chunk_id": hits[0]["hits"][0]["chunk_id"]})
        return hits, secret, passage

    hits, secret, passage = anyio.run(go)
    assert hits[0]["hits"] and hits[0]["hits"][0]["group"] == "public"
    assert SECRET_WORD not in str(secret[0])
    assert not passage[2] and passage[0]["passage"]["text"] == hits[0]["hits"][0]["text"]
