"""Who may send the server a request body, and how big: checked before a byte of it is read.

app.add_middleware(RequestGuard, service=service)

FastAPI reads (and spools to disk) a whole multipart body before a route's key check runs, so
200 MB sent with no key used to land in the temp folder before the 401. This ASGI middleware
answers 401 to a body-carrying request without a valid key (API) or UI session (web UI) and
413 to a body over its route's cap, from the headers alone, and stops reading a body whose
chunks go past the cap.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import bearer_key

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger(__name__)

MB = 1024 * 1024
SESSION_COOKIE = "chulcheo_session"
# Routes that take a body without a key: the UI's login form (small).
_LOGIN = ("/login",)
_LOGIN_MAX = 16 * 1024
# Multipart overhead on top of the file itself.
_MULTIPART_SLACK = MB


def session_token(scope: Scope) -> str | None:
    """The UI session cookie's value from raw ASGI headers."""
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == SESSION_COOKIE:
                    return val
    return None


def client_host(scope: Scope) -> str | None:
    """The address the connection comes from (uvicorn runs without proxy_headers: the peer)."""
    client = scope.get("client")
    return client[0] if client else None


def scope_headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (the last of repeated ones)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestGuard:
    """ASGI middleware: authenticate, then bound, every request that carries a body."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    def limit(self, path: str) -> int:
        s = self.service.settings.server
        if path in _LOGIN:
            return _LOGIN_MAX
        if path in ("/v1/documents", "/gradio_api/upload"):
            return int(s.max_upload_mb * MB) + _MULTIPART_SLACK
        return int(s.max_body_mb * MB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        refusal = await run_in_threadpool(self._refusal, scope, path)
        if refusal is not None:
            await send_error(send, *refusal, path=path)
            return
        limit = self.limit(path)
        length = header_value(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await send_error(send, 413, "too_large", f"request body of {int(length):,} bytes is over this route's "
                             f"limit of {limit:,} bytes", path=path)
            return
        await self._bounded(scope, receive, send, limit)

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str, str] | None:
        """(status, kind, message) when the caller may not send a body here; runs off the event loop."""
        service = self.service
        if service.open_mode or path in _LOGIN:
            return None
        if path.startswith("/v1/") or path == "/mcp":  # API and MCP: a Bearer key
            key = bearer_key(header_value(scope, b"authorization"))
            if not key and path != "/mcp" and service.trusted(client_host(scope), scope_headers(scope)):
                return None  # signed in by the company's proxy (auth.trusted_header_*)
            if not key:
                return 401, "auth", "missing API key: send `Authorization: Bearer <key>`"
            if service.keys is None or service.keys.verify(key) is None:
                return 401, "auth", "invalid API key (unknown, revoked or mistyped)"
            return None
        if service.ui_handle(client_host(scope), scope_headers(scope), session_token(scope)) is None:
            return 401, "auth", "not logged in: log in at /login"
        return None

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True  # the app sees a client that went away; nothing more is read
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if over:
                    return  # the 413 below is the answer
                started = True
            elif over and not started:
                return
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not over:
                raise
        if over and not started:
            await send_error(send, 413, "too_large", f"request body is over this route's limit of {limit:,} bytes",
                             path=scope["path"])


async def send_error(send: Send, status: int, kind: str, detail: str, path: str = "") -> None:
    """A JSON error sent from the middleware; OpenAI's shape on the OpenAI-compatible routes."""
    from .chat_api import is_chat_path, openai_error

    shaped = openai_error(status, kind, detail) if is_chat_path(path) else {"detail": detail, "error": kind}
    body = json.dumps(shaped).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
