"""The HTTP API (`/v1`, OpenAPI at `/docs`) over one Service; the web UI is mounted at `/`.

app = create_app(Service.from_settings(Settings()))
uvicorn.run(app, host="127.0.0.1", port=8000)
POST /v1/ask {"question": "연차휴가는 며칠인가요?"} -> the Answer JSON of `chulcheo ask --json`
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from grounding import Passage

from .chat_api import add_chat_routes, is_chat_path, openai_error
from .deps import Admin, Caller, Viewer
from .errors import HANDLED, error_status, scrub_paths
from .mcp_tools import mount_mcp
from ..audit import via
from .guard import RequestGuard
from ..limits import RateLimited
from .metrics import Metrics, MetricsMiddleware
from ..schemas import (
    answer_to_dict,
    grounded_to_dict,
    hit_to_dict,
    public_answer,
    public_id,
    public_view,
    sentence_to_dict,
)
from ..service import Service
from ..state import MAX_CITATIONS_BYTES
from .streams import EventPump, stopped_on_disconnect

log = logging.getLogger(__name__)

# a user's page or file: kept by the browser only, never by a shared cache; never sniffed as HTML
_PRIVATE = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000, examples=["연차휴가는 며칠인가요?"])
    history: list[Turn] = Field(default_factory=list, max_length=50,
                                description="Earlier turns, oldest first; the follow-up is rewritten to stand alone.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, examples=["연차휴가"])
    k: int | None = Field(None, ge=1, le=1000, description="Hits to return (capped by server.search_k_max).")
    mode: Literal["hybrid", "bm25", "dense"] | None = None


class PassageIn(BaseModel):
    id: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=100_000)
    doc_id: str = Field("", max_length=1000)
    source: str = Field("", max_length=1000)
    page: int | None = None
    context: str = Field("", max_length=2000, description="Title/heading: counts as evidence, never quoted.")


class VerifyRequest(BaseModel):
    answer: str = Field(min_length=1, max_length=20_000)
    passages: list[PassageIn] = Field(min_length=1, max_length=50)
    question: str = Field("", max_length=2000)


class ReviewRequest(BaseModel):
    answer: str | None = Field(None, max_length=5000, description="The right answer, in full sentences.")
    doc_id: str | None = Field(None, max_length=1000, description="The document that holds the right passage.")
    page: int | None = Field(None, ge=1, le=100_000)


class KeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["user", "admin"] = "user"
    groups: list[str] = Field(default_factory=lambda: ["public"], min_length=1, max_length=100)


class FeedbackRequest(BaseModel):
    rating: Literal[1, -1]
    question: str = Field(max_length=2000)
    answer: str = Field(max_length=20_000)
    citations: list[dict[str, Any]] = Field(default_factory=list, max_length=50,
                                            description=f"At most {MAX_CITATIONS_BYTES // 1024} KB as JSON.")
    comment: str = Field("", max_length=2000)

    @field_validator("citations")
    @classmethod
    def _bounded(cls, citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        size = len(json.dumps(citations, ensure_ascii=False).encode())
        if size > MAX_CITATIONS_BYTES:
            raise ValueError(f"citations: {size:,} bytes of JSON; at most {MAX_CITATIONS_BYTES:,}")
        return citations


def create_app(service: Service, *, ui: bool = True) -> FastAPI:
    """The FastAPI app: `/v1` API, health and metrics, and (with `ui`) the Gradio UI at `/`."""
    mcp: list = []  # the MCP server mounted below; its session manager runs with the app

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for server in mcp:
                await stack.enter_async_context(server.session_manager.run())
            yield

    app = FastAPI(
        lifespan=lifespan,
        title="chulcheo (출처)",
        version="1",
        description="Questions answered from your own Korean documents; every sentence carries its source. "
        "Send `Authorization: Bearer <key>` (keys: `chulcheo keys create`).",
    )
    metrics = Metrics(service)
    app.state.service = service
    # Always our own CORS policy (Gradio adds a permissive one of its own when the app has none):
    # no origins unless server.cors_origins lists them.
    app.add_middleware(CORSMiddleware, allow_origins=list(service.settings.server.cors_origins),
                       allow_credentials=False, allow_methods=["GET", "POST", "DELETE"],
                       allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(RequestGuard, service=service)
    app.add_middleware(FrontDoor)  # which door a call came through, for the audit log

    # Pure ASGI (not @app.middleware("http")): Starlette's BaseHTTPMiddleware hides a client's
    # disconnect from the routes, and answers must stop when their client goes away.
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status, kind = error_status(exc)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        detail = scrub_paths(str(exc))
        if is_chat_path(request.url.path):
            return JSONResponse(openai_error(status, kind, detail), status_code=status, headers=headers)
        return JSONResponse({"detail": detail, "error": kind}, status_code=status, headers=headers)

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not is_chat_path(request.url.path):
            return await request_validation_exception_handler(request, exc)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", "invalid request")
        return JSONResponse(openai_error(400, "invalid_request", message), status_code=400)

    app.add_exception_handler(RequestValidationError, invalid)

    # Our own error types map to 4xx/503 here, inside the middleware (so metrics count them);
    # anything else is a bug and becomes a logged 500.
    for exc_type in HANDLED:
        app.add_exception_handler(exc_type, handle)

    # ---------------------------------------------------------------- answering
    add_chat_routes(app, service)  # OpenAI-compatible: /v1/models, /v1/chat/completions
    mcp.append(mount_mcp(app, service))  # MCP over streamable HTTP at /mcp (Bearer key required)

    @app.post("/v1/ask", tags=["answers"], summary="Answer a question; every sentence checked and cited")
    async def ask(body: AskRequest, who: Caller, request: Request) -> dict[str, Any]:
        async with stopped_on_disconnect(request) as stop:
            events = service.stream(who, body.question, [t.model_dump() for t in body.history], cancelled=stop.is_set)
            async for event in EventPump(events, stop):
                if event.kind == "answer":
                    return public_answer(answer_to_dict(event.answer), admin=who.is_admin)
        raise RuntimeError("the answer stream ended without an answer")

    @app.post("/v1/ask/stream", tags=["answers"], summary="Server-sent events: tokens, checked sentences, then the answer")
    async def ask_stream(body: AskRequest, who: Caller, request: Request) -> StreamingResponse:
        async with contextlib.AsyncExitStack() as guard:
            stop = await guard.enter_async_context(stopped_on_disconnect(request))
            events = service.stream(who, body.question, [t.model_dump() for t in body.history], tokens=True,
                                    cancelled=stop.is_set)
            items = aiter(EventPump(events, stop))
            guard.push_async_callback(items.aclose)
            first = await anext(items)  # errors before the first event (no index, busy, bad question) get a status code
            body_stream = _sse(first, items, who.is_admin, guard.pop_all())
        return StreamingResponse(body_stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/search", tags=["answers"], summary="Hybrid search within the caller's groups")
    def search(body: SearchRequest, who: Caller) -> dict[str, Any]:
        hits = service.search(who, body.query, body.k, body.mode)
        return {"query": body.query, "hits": [public_view(hit_to_dict(h), admin=who.is_admin) for h in hits]}

    @app.post("/v1/verify", tags=["answers"], summary="Check any text against given passages",
              description="Metered like /v1/ask (same rate limit), bounded by server.verify_max_chars in total "
              "(413 over it) and stopped when the client goes away or after server.ask_timeout_s.")
    async def verify(body: VerifyRequest, who: Caller, request: Request) -> dict[str, Any]:
        passages = [Passage(id=p.id, text=p.text, doc_id=p.doc_id, source=p.source, page=p.page, context=p.context)
                    for p in body.passages]
        async with stopped_on_disconnect(request) as stop:
            checked = await run_in_threadpool(service.verify, who, body.answer, passages, body.question, stop.is_set)
        return grounded_to_dict(checked)

    @app.post("/v1/feedback", tags=["answers"], summary="Thumbs up (1) or down (-1) on an answer")
    def feedback(body: FeedbackRequest, who: Caller) -> dict[str, Any]:
        fid = service.add_feedback(who, body.rating, body.question, body.answer, body.citations, body.comment)
        return {"id": fid}

    @app.get("/v1/feedback", tags=["feedback"], summary="Ratings of users within the admin's groups, newest first",
             description="`since`/`until`: ISO dates or times; `doc`: an opaque id, stored id or file name the rating "
             "cites or was marked with.")
    def feedback_list(who: Admin, since: Annotated[str | None, Query(max_length=40)] = None,
                      until: Annotated[str | None, Query(max_length=40)] = None,
                      doc: Annotated[str | None, Query(max_length=1000)] = None,
                      limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
        rows = service.feedback_entries(who, since, until, doc, limit)
        return {"feedback": [_feedback_view(r, who) for r in rows]}

    @app.post("/v1/feedback/{feedback_id}/review", tags=["feedback"],
              summary="Mark the right passage and/or write the right answer of a rating (admin)",
              description="The rating becomes a test case of `chulcheo feedback export`.")
    def feedback_review(feedback_id: int, body: ReviewRequest, who: Admin) -> dict[str, Any]:
        row = service.review_feedback(who, feedback_id, body.answer, body.doc_id, body.page)
        return _feedback_view(row, who)

    @app.get("/v1/me", tags=["answers"], summary="Who the key belongs to")
    def me(who: Caller) -> dict[str, Any]:
        return who.to_dict()

    # ---------------------------------------------------------------- documents (admin)
    @app.get("/v1/documents", tags=["documents"], summary="Documents the caller may see, with status",
             description="`source` is the file name and `doc_id` an opaque id; admins also get the stored `path`.")
    def documents(who: Caller) -> dict[str, Any]:
        return {"documents": [public_view(d, admin=who.is_admin) for d in service.documents(who)]}

    @app.get("/v1/documents/{doc_id}/pages/{number}.png", tags=["documents"],
             summary="A cited page of a PDF or scan as an image (원문 보기)",
             description="Only pages that hold indexed text, of documents in the caller's groups (another "
             "group's document is 404 like a missing one); `width` in pixels (server.page_width by default, "
             "at most server.page_width_max). Draw a citation's `boxes` (fractions of the page) over it. "
             "Metered per key (server.view_per_minute); 409 when the file changed since it was indexed. "
             "Also accepts the web UI's session cookie.",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def page_image(doc_id: str, number: int, who: Viewer,
                   width: Annotated[int | None, Query(ge=100, le=4000)] = None) -> Response:
        png = service.page_image(who, doc_id, number, width)
        return Response(png, media_type="image/png", headers=_PRIVATE)

    @app.get("/v1/documents/{doc_id}/file", tags=["documents"], summary="Download a document's original file",
             description="Within the caller's groups; always as an attachment (never shown inline, so an uploaded "
             "HTML file cannot run in this site). Also accepts the web UI's session cookie.",
             response_class=FileResponse)
    def original_file(doc_id: str, who: Viewer) -> FileResponse:
        path, name = service.original_file(who, doc_id)
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(path, filename=name, media_type=media, content_disposition_type="attachment",
                            headers={**_PRIVATE, "Content-Security-Policy": "sandbox"})

    @app.post("/v1/documents", tags=["documents"], status_code=202,
              summary="Upload one file into an access group; indexed by a background job")
    def upload(
        who: Admin,
        file: Annotated[UploadFile, File(description="TXT, MD, HTML, PDF, DOCX, HWPX, HWP or JSONL")],
        group: Annotated[str, Form(max_length=64)] = "public",
        wait: Annotated[bool, Query(description="Return only when the job has finished")] = False,
    ) -> JSONResponse:
        job = service.upload(who, file.filename or "", file.file, group)
        if wait:
            job = service.jobs.wait(job.id, timeout=3600)
        return JSONResponse({"job": job.to_dict()}, status_code=200 if wait else 202)

    @app.delete("/v1/documents", tags=["documents"], summary="Delete documents by id (opaque or stored) or stored path")
    def delete(who: Admin, doc_id: Annotated[list[str], Query(min_length=1, max_length=1000)]) -> dict[str, Any]:
        return {"deleted": [public_id(d.doc_id) for d in service.delete(who, doc_id)]}

    @app.post("/v1/reindex", tags=["documents"], status_code=202,
              summary="Read every document's file within the caller's groups again, in the background")
    def reindex(who: Admin) -> dict[str, Any]:
        return {"job": service.reindex(who).to_dict()}

    @app.get("/v1/jobs/{job_id}", tags=["documents"], summary="Progress of a background job")
    def job(job_id: str, who: Admin) -> dict[str, Any]:
        return service.job(who, job_id).to_dict()

    @app.get("/v1/jobs", tags=["documents"], summary="Recent jobs within the caller's groups, newest first")
    def jobs(who: Admin) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in service.visible_jobs(who)]}

    @app.get("/v1/audit", tags=["operations"], summary="The audit log (admin): who asked, searched, viewed and changed what",
             description="Entries oldest first, only of callers within the admin's groups; `since` is an ISO date "
             "or time, `limit` the newest n (at most 10,000). `chulcheo audit verify` checks the hash chain.")
    def audit(who: Admin, since: Annotated[str | None, Query(max_length=40)] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
        who.require_admin("audit")
        entries = service.audit.entries(since=since, limit=limit, who=who)
        service.audit.record(who, "audit_read", detail=f"since={since} limit={limit}")
        return {"entries": entries}

    @app.get("/v1/stats", tags=["documents"], summary="Index size and groups (within the caller's groups)")
    def stats(who: Admin) -> dict[str, Any]:
        return service.stats(who)

    # ---------------------------------------------------------------- keys (admin)
    @app.get("/v1/keys", tags=["keys"], summary="API keys within the caller's groups (never their secrets)")
    def keys(who: Admin) -> dict[str, Any]:
        return {"keys": service.list_keys(who)}

    @app.post("/v1/keys", tags=["keys"], status_code=201,
              summary="Create a key (groups within the caller's own); the key is in this response only")
    def create_key(body: KeyRequest, who: Admin) -> dict[str, Any]:
        principal, key = service.create_key(who, body.name, body.role, body.groups)
        return {**principal.to_dict(), "key": key}

    @app.delete("/v1/keys/{name}", tags=["keys"], summary="Revoke a key (within the caller's groups) by name or key id")
    def revoke_key(name: str, who: Admin) -> dict[str, Any]:
        service.revoke_key(who, name)
        return {"revoked": name}

    # ---------------------------------------------------------------- operations
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:  # on the event loop: answers even when every worker thread is busy
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="An index is loaded and questions can be answered")
    def readyz() -> JSONResponse:
        ok, reason = service.ready()
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    if service.settings.server.metrics != "off":
        @app.get("/metrics", tags=["operations"], summary="Prometheus metrics",
                 description="Request counts for anyone; index and job figures only with an admin key of every "
                 "group (server.metrics = \"restricted\", the default) or for anyone (\"public\").",
                 response_class=PlainTextResponse)
        def metrics_route(request: Request) -> PlainTextResponse:
            body, content_type = metrics.render(full=_full_metrics(service, request))
            return PlainTextResponse(body, media_type=content_type)

    if ui:
        from .ui import mount_ui

        app = mount_ui(app, service)
    return app


class FrontDoor:
    """ASGI: marks the calls of a request with its front door (app.audit.via): mcp, openai, api or ui."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        door = "mcp" if path == "/mcp" else "openai" if is_chat_path(path) else "api" if path.startswith("/v1/") else "ui"
        with via(door):
            await self.app(scope, receive, send)


def _feedback_view(row: dict[str, Any], who) -> dict[str, Any]:
    """A rating as a caller sees it: opaque ids and file names in its citations and mark."""
    out = {**row, "citations": [public_view(c, admin=who.is_admin) if isinstance(c, dict) and c.get("doc_id")
                                and not str(c["doc_id"]).startswith("d_") else c for c in row["citations"]]}
    out["gold_doc"] = public_id(row["gold_doc"]) if row.get("gold_doc") else None
    return out


def _full_metrics(service: Service, request: Request) -> bool:
    """Whether this scrape may see index and job figures (see ServerSettings.metrics)."""
    if service.settings.server.metrics == "public" or service.open_mode:
        return True
    from ..auth import bearer_key

    key = bearer_key(request.headers.get("authorization"))
    who = service.keys.verify(key) if key and service.keys is not None else None
    return who is not None and who.is_admin and who.groups is None


async def _sse(first, events: AsyncIterator, admin: bool, cleanup: contextlib.AsyncExitStack) -> AsyncIterator[str]:
    """Format stream events as SSE: `event: token|sentence|answer|error` + one JSON `data:` line.

    Leaving early (the client went away) runs `cleanup`, which stops the model and frees its slot.
    """
    def frame(event) -> str:
        if event.kind == "token":
            data: dict[str, Any] = {"text": event.text}
        elif event.kind == "sentence":
            data = sentence_to_dict(event.check) if event.check else {"text": event.text}
        else:
            data = public_answer(answer_to_dict(event.answer), admin=admin)
        return f"event: {event.kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    async with cleanup:
        yield frame(first)
        try:
            async for event in events:
                yield frame(event)
        except Exception as exc:  # headers are sent: report the failure in the stream itself
            log.error("stream failed", exc_info=exc)
            status, kind = error_status(exc)
            detail = {"detail": scrub_paths(str(exc)), "error": kind, "status": status}
            yield f"event: error\ndata: {json.dumps(detail, ensure_ascii=False)}\n\n"

