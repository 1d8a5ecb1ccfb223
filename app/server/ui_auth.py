"""The web UI's front door: login sessions bound to the key, and files only from the caller's own uploads.

GET /login -> the Korean login form; POST /login (username = key name, password = key) sets the
`chulcheo_session` cookie (HttpOnly, SameSite=Strict); GET /logout ends the session.
Gradio sees each request's user as the session's handle (auth_dependency), never a key name:
a handler resolves it to the key on every call, so a revoked key's sessions stop at once.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .guard import MB, SESSION_COOKIE, client_host, header_value, scope_headers, send_error, session_token

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger(__name__)

_LOGIN_HTML = """<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>출처 · 로그인</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{{font-family:"Noto Sans KR","NanumGothic",sans-serif;background:#f3f4f6;margin:0}}
form{{max-width:380px;margin:12vh auto;background:#fff;padding:28px;border-radius:10px;box-shadow:0 1px 4px #0002}}
h1{{font-size:1.3em;margin:0 0 6px}}p{{color:#4b5563;font-size:.9em;line-height:1.5}}label{{display:block;margin-top:12px;font-size:.9em}}
input{{width:100%;box-sizing:border-box;padding:8px;margin-top:4px;border:1px solid #d1d5db;border-radius:6px}}
button{{margin-top:18px;width:100%;padding:10px;background:#ea580c;color:#fff;border:0;border-radius:6px;font-size:1em}}
.err{{color:#b91c1c}}</style></head><body>
<form method="post" action="login"><h1>출처 · 사내 문서 질의응답</h1>
<p>사용자 이름에는 키 이름을, 비밀번호에는 발급받은 API 키(<code>chk_…</code>)를 입력하세요.
키는 관리자가 <code>chulcheo keys create</code>로 발급합니다.</p>{error}
<label>사용자 이름<input name="username" id="username" autocomplete="username" required maxlength="64"></label>
<label>API 키<input name="password" id="password" type="password" autocomplete="current-password" required maxlength="200"></label>
<button type="submit" id="login">로그인</button></form></body></html>"""


def login_page(error: str = "") -> str:
    return _LOGIN_HTML.format(error=f'<p class="err">{html.escape(error)}</p>' if error else "")


def add_login_routes(app: FastAPI, service: Service) -> None:
    """GET/POST /login and GET /logout on the parent app (they win over Gradio's own)."""

    @app.get("/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return HTMLResponse(login_page())

    @app.post("/login", include_in_schema=False, response_model=None)
    async def login(request: Request) -> HTMLResponse | RedirectResponse:
        body = (await request.body()).decode("utf-8", "replace")  # bounded by RequestGuard (16 KB)
        form = {k: v[0] for k, v in parse_qs(body).items() if v}
        token = await run_in_threadpool(service.login, form.get("username", ""), form.get("password", ""))
        if token is None:
            return HTMLResponse(login_page("이름 또는 키가 올바르지 않습니다."), status_code=401)
        response = RedirectResponse("./", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https",
                            max_age=int(service.settings.server.session_hours * 3600))
        return response

    @app.get("/logout", include_in_schema=False)
    def logout(request: Request) -> RedirectResponse:
        if service.sessions is not None:
            service.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response


def session_dependency(service: Service):
    """Gradio's auth_dependency: the session handle of a request's cookie, or None (401)."""
    async def user(request: Request) -> str | None:
        if service.sessions is None:
            return None
        host = request.client.host if request.client else None
        return await run_in_threadpool(service.ui_handle, host, request.headers, request.cookies.get(SESSION_COOKIE))
    return user


class UploadRegistry:
    """Which UI session uploaded which file (Gradio's own record is one set for everybody)."""

    def __init__(self, max_age_s: float = 3600) -> None:
        self.max_age_s = max_age_s
        self._owners: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def add(self, path: str, owner: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._owners = {p: o for p, o in self._owners.items() if now - o[1] < self.max_age_s}
            self._owners[os.path.realpath(path)] = (owner, now)

    def owner(self, path: str) -> str | None:
        entry = self._owners.get(os.path.realpath(path))
        return entry[0] if entry and time.monotonic() - entry[1] < self.max_age_s else None

    def forget(self, path: str) -> None:
        with self._lock:
            self._owners.pop(os.path.realpath(path), None)


def check_ui_file(path: str, owner: str | None, registry: UploadRegistry, root: Path, open_mode: bool) -> str | None:
    """Why a file handed to a UI handler may not be read (None: it may).

    Only a regular file (no symlink, device or folder) inside the UI's upload folder, uploaded
    through the UI by the same session, is accepted: a request that names a server path
    ("/etc/passwd", "/dev/zero") or another user's upload is refused before it is opened.
    """
    real = os.path.realpath(path)
    if not Path(real).is_relative_to(root.resolve()):
        return "이 세션에서 올린 파일이 아닙니다 (서버 경로는 받지 않습니다)"
    try:
        st = os.lstat(path)
    except OSError:
        return "파일을 찾을 수 없습니다"
    import stat

    if not stat.S_ISREG(st.st_mode):
        return "일반 파일이 아닙니다"
    if not open_mode and registry.owner(path) != owner:
        return "이 세션에서 올린 파일이 아닙니다"
    return None


class SessionHashes:
    """The login that first used each Gradio session_hash (the most recent `limit` hashes)."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session_hash: str, owner: str) -> bool:
        """True when `owner` may use `session_hash` (it is new, or already `owner`'s)."""
        with self._lock:
            current = self._owners.setdefault(session_hash, owner)
            self._owners.move_to_end(session_hash)
            while len(self._owners) > self.limit:
                self._owners.popitem(last=False)
            return current == owner


_HASH_IN_PATH = re.compile(r"^/gradio_api/(?:heartbeat|stream)/([^/]+)")


def hashes_in_url(scope: Scope) -> list[str]:
    """session_hash values a Gradio request names in its path or query string."""
    found = [m.group(1)] if (m := _HASH_IN_PATH.match(scope["path"])) else []
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return found + query.get("session_hash", [])


def hashes_in_json(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    value = data.get("session_hash") if isinstance(data, dict) else None
    return [value] if isinstance(value, str) else []


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class UiGuard:
    """ASGI middleware for the UI: `/` without a session goes to the login page, and the files a
    session uploads through Gradio are recorded as that session's."""

    def __init__(self, app: ASGIApp, service: Service, registry: UploadRegistry) -> None:
        self.app = app
        self.service = service
        self.registry = registry
        self.hashes = SessionHashes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.service.open_mode:
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/":
            if await self._handle(scope) is None:
                await RedirectResponse("login", status_code=303)(scope, receive, send)
                return
        if method == "POST" and path == "/gradio_api/upload":
            await self._record_upload(scope, receive, send)
            return
        if path.startswith("/gradio_api/file=") and not await self._may_fetch(scope, path):
            # Gradio serves any file in its upload folder to any logged-in user; ours only to its uploader
            await _not_found(send)
            return
        if path.startswith("/gradio_api/"):
            await self._own_session_hash(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _own_session_hash(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Gradio keys a page's events, results and state by the `session_hash` the browser made
        up, and anyone who sends or listens on that hash gets them. The first login to use a hash
        owns it; a request of another login that names it is refused (403)."""
        handle = await self._handle(scope)
        if handle is None:  # not logged in: Gradio's own check answers 401
            await self.app(scope, receive, send)
            return
        hashes = hashes_in_url(scope)
        replay = receive
        if scope["method"] == "POST" and (header_value(scope, b"content-type") or "").startswith("application/json"):
            limit = int(self.service.settings.server.max_body_mb * MB)
            body = await _read_body(receive, limit)
            if body is None:
                await send_error(send, 413, "too_large", f"request body is over this route's limit of {limit:,} bytes")
                return
            hashes += hashes_in_json(body)
            replay = _replayed(body, receive)
        if not all(self.hashes.claim(h, handle) for h in hashes):
            await send_error(send, 403, "forbidden", "this session_hash belongs to another login")
            return
        await self.app(scope, replay, send)

    async def _may_fetch(self, scope: Scope, path: str) -> bool:
        from urllib.parse import unquote

        target = unquote(path.removeprefix("/gradio_api/file="))
        if target.startswith(("http://", "https://")):
            return False  # Gradio would fetch it for the caller: never a proxy
        uploads = os.environ.get("GRADIO_TEMP_DIR")
        if not uploads or not Path(os.path.realpath(target)).is_relative_to(os.path.realpath(uploads)):
            return True  # Gradio's own allow-list decides (its static files)
        owner = self.registry.owner(target)
        return owner is not None and owner == await self._handle(scope)

    async def _handle(self, scope: Scope) -> str | None:
        if self.service.sessions is None:
            return None
        return await run_in_threadpool(self.service.ui_handle, client_host(scope), scope_headers(scope),
                                       session_token(scope))

    async def _record_upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = await self._handle(scope)
        status = 0
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200 and len(body) < 1 << 20:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if status == 200 and owner is not None:
            try:
                paths = json.loads(bytes(body))
            except ValueError:
                return
            for p in paths if isinstance(paths, list) else []:
                if isinstance(p, str):
                    self.registry.add(p, owner)


async def _not_found(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"not found"})


class RedactSessionHash(logging.Filter):
    """Access-log lines show Gradio URLs with ?session_hash=…: keep the hash out of the logs."""

    _HASH = re.compile(r"(session_hash=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(self._HASH.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        return True
