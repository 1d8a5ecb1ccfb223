"""chulcheo as an MCP server (the official `mcp` SDK): tools `search`, `ask`, `list_documents`
and `get_passage` over the same Service, for agents.

    chulcheo mcp --key chk_…                    # stdio, for a desktop agent (its key's groups)
    POST /mcp  Authorization: Bearer chk_…       # streamable HTTP on `chulcheo serve`

Over HTTP every request needs a valid key before anything is read (the body guard and
`BearerOnly` below), and each tool call acts as that key: its groups filter every result, the
question rate limit and answer slots apply to `ask`, `k` is capped like /v1/search. The
server is stateless (no MCP session to keep), so any replica can answer any call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from ..audit import via
from ..auth import AuthError, Principal, bearer_key
from ..schemas import answer_to_dict, hit_to_dict, public_answer, public_chunk_id, public_view
from ..service import Service
from .errors import HANDLED, scrub_paths

log = logging.getLogger(__name__)

PATH = "/mcp"

INSTRUCTIONS = (
    "chulcheo (출처): 사내 문서에서 찾은 근거로만 답합니다. 답의 모든 문장에 출처가 붙습니다. "
    "Answers come only from the company's own documents the key may see; every sentence is cited. "
    "Use `ask` for a checked answer, `search` for passages, `get_passage` to read around a passage."
)

# Each caller: the principal of a tool call (HTTP: its Bearer key; stdio: the key given at start).
WhoOf = Callable[[Context | None], Principal]


def build_mcp(service: Service, who_of: WhoOf) -> MCPServer:
    """The MCP server with chulcheo's four tools, each acting as `who_of(ctx)`."""
    server = MCPServer("chulcheo", instructions=INSTRUCTIONS, version="1")

    async def run(fn: Callable[[Principal], Any], ctx: Context | None) -> Any:
        try:
            who = who_of(ctx)
            with via("mcp"):  # stdio too; over HTTP the request is marked already
                return await anyio.to_thread.run_sync(fn, who)
        except HANDLED as exc:  # our errors, with their reason (paths shortened), for the agent to read
            raise ToolError(scrub_paths(str(exc))) from exc

    @server.tool(name="search", description=(
        "문서 검색: 질문이나 검색어로 사내 문서의 관련 구절을 찾습니다 (키의 그룹 안에서만). "
        "Hybrid search of the company's documents within the key's groups; returns passages with "
        "file, page, group and text. k: how many (at most the server's search_k_max)."))
    async def search(query: str, k: int = 5, ctx: Context | None = None) -> dict[str, Any]:
        def go(who: Principal) -> dict[str, Any]:
            hits = service.search(who, query, max(1, k))
            return {"query": query, "hits": [public_view(hit_to_dict(h), admin=who.is_admin) for h in hits]}
        return await run(go, ctx)

    @server.tool(name="ask", description=(
        "질문하기: 문서에 근거한 짧은 한국어 답을 받습니다. 모든 문장이 확인되어 [n] 출처가 붙고, "
        "근거가 없으면 답하지 않습니다. Ask a question: a short Korean answer whose every sentence "
        "was checked against the documents, with [n] markers and the citations (file, page, quote)."))
    async def ask(question: str, ctx: Context | None = None) -> dict[str, Any]:
        def go(who: Principal) -> dict[str, Any]:
            answer = public_answer(answer_to_dict(service.ask(who, question)), admin=who.is_admin)
            return {k: answer[k] for k in ("answer", "abstained", "citations")}
        return await run(go, ctx)

    @server.tool(name="list_documents", description=(
        "문서 목록: 키가 볼 수 있는 문서와 상태. List the documents the key may see, with their "
        "opaque ids, file names, groups, pages and status."))
    async def list_documents(ctx: Context | None = None) -> dict[str, Any]:
        def go(who: Principal) -> dict[str, Any]:
            keep = ("doc_id", "source", "title", "group", "chunks", "pages", "status", "error")
            service.audit.record(who, "list_documents")
            return {"documents": [{k: d.get(k) for k in keep}
                                  for d in (public_view(d, admin=False) for d in service.documents(who))]}
        return await run(go, ctx)

    @server.tool(name="get_passage", description=(
        "구절 읽기: 검색 결과나 출처의 chunk_id로 그 구절과 앞뒤 구절을 읽습니다. Read a passage by "
        "its chunk_id (from search hits or citations) with the passages just before and after it."))
    async def get_passage(chunk_id: str, ctx: Context | None = None) -> dict[str, Any]:
        def go(who: Principal) -> dict[str, Any]:
            doc_id, _, suffix = chunk_id.partition("#")
            doc = service.viewable(who, doc_id)
            internal = next((c for c in doc.chunk_ids if c.endswith("#" + suffix)), None)
            if not suffix or internal is None:
                raise ToolError(f"passage {chunk_id!r}: not found among the documents you may see")
            chunks = service.surrounding(who, doc_id, internal)
            shown = [{"chunk_id": public_chunk_id(c.chunk_id, c.doc_id), "page": c.page, "text": c.text}
                     for c in chunks]
            at = next(i for i, c in enumerate(chunks) if c.chunk_id == internal)
            return {"chunk_id": chunk_id, "source": public_view({"source": doc.source}, admin=False)["source"],
                    "group": doc.group, "passage": shown[at], "before": shown[:at], "after": shown[at + 1:]}
        return await run(go, ctx)

    return server


def http_who(service: Service) -> WhoOf:
    """The caller of an HTTP tool call: its Bearer key (checked again at every call)."""
    def who_of(ctx: Context | None) -> Principal:
        headers = (ctx.headers if ctx is not None else None) or {}
        return service.authenticate(bearer_key(headers.get("authorization")))
    return who_of


class BearerOnly:
    """ASGI wrapper: a request to the MCP endpoint without a valid key gets 401 before MCP sees it."""

    def __init__(self, app, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from .guard import header_value, send_error

        if scope["type"] == "http" and not self.service.open_mode:
            key = bearer_key(header_value(scope, b"authorization"))
            try:
                await anyio.to_thread.run_sync(self.service.authenticate, key)
            except AuthError as exc:
                await send_error(send, 401, "auth", str(exc))
                return
        await self.app(scope, receive, send)


def mount_mcp(app, service: Service):
    """Add POST/GET/DELETE /mcp (streamable HTTP, stateless, JSON responses) to `app`; returns the
    MCP server, whose `session_manager.run()` the app's lifespan must enter."""
    from starlette.routing import Route

    server = build_mcp(service, http_who(service))
    inner = server.streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True,
        max_request_body_size=int(service.settings.server.max_body_mb * 1024 * 1024),
        # every request carries a key (BearerOnly), so another site cannot call it through a
        # browser; a fixed Host list would break every deployment behind a proxy
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.append(Route(PATH, endpoint=BearerOnly(inner, service), methods=["GET", "POST", "DELETE"]))
    return server
