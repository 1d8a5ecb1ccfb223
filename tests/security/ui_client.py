"""A minimal Gradio client over httpx: log in like the browser, then call event handlers the way
the page's JavaScript does (gradio/routes.py: POST /gradio_api/queue/join, then the SSE stream
GET /gradio_api/queue/data?session_hash=…).

ui = GradioSession(url); ui.login("user_a", key).status_code -> 200
run = ui.run("on_chat", ["A팀 비밀 암호는?", None]); run.completed, run.output -> True, [[…messages…], "<cards>", …]
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

LOGIN_COOKIE = "chulcheo_session"


def file_data(path: str) -> dict[str, Any]:
    """The JSON a gr.File input sends for a file on the server: {"path": …, "meta": {"_type": "gradio.FileData"}}."""
    return {"path": path, "orig_name": path.rsplit("/", 1)[-1], "meta": {"_type": "gradio.FileData"}}


@dataclass
class GradioRun:
    """What one event call returned: the join status, every SSE message, and the raw text seen."""

    join_status: int  # 0: the join itself got no answer
    messages: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""  # everything the server sent for this call (join response + stream), for leak checks
    timed_out: bool = False

    @property
    def completed(self) -> bool:
        """The handler ran to the end without an error."""
        done = [m for m in self.messages if m.get("msg") == "process_completed"]
        return bool(done) and bool(done[-1].get("success"))

    @property
    def output(self) -> list[Any] | None:
        """The handler's last output values (None when it failed or never finished)."""
        for m in reversed(self.messages):
            if m.get("msg") in ("process_completed", "process_generating") and m.get("success"):
                return (m.get("output") or {}).get("data")
        return None

    def describe(self) -> str:
        last = self.messages[-1] if self.messages else {}
        return (f"join {self.join_status}, {len(self.messages)} messages, last {last.get('msg')!r}"
                f"{' (timed out)' if self.timed_out else ''}: {self.text[-300:]!r}")


class GradioSession:
    """One browser tab: its own cookie jar and session hash (a new hash per call unless given)."""

    def __init__(self, url: str, timeout: float = 30.0, observe: Callable[[str, str], None] | None = None) -> None:
        """`observe(text, what)` sees every response body of uploads and handler calls (leak scans)."""
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)
        self.observe = observe or (lambda text, what: None)
        self._config: dict[str, Any] | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GradioSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ login
    def login(self, name: str, key: str) -> httpx.Response:
        """POST /login with the form the login page sends; the cookie jar keeps the session cookie."""
        return self.http.post("/login", data={"username": name, "password": key})

    def cookies(self) -> dict[str, str]:
        return dict(self.http.cookies)

    def adopt_cookies(self, cookies: dict[str, str]) -> None:
        """Use another session's cookies (a stolen or stale cookie), dropping our own."""
        self.http.cookies.clear()
        for name, value in cookies.items():
            self.http.cookies.set(name, value)

    # ------------------------------------------------------------------ app description
    def config(self) -> dict[str, Any]:
        if self._config is None:
            r = self.http.get("/config")
            r.raise_for_status()
            self._config = r.json()
        return self._config

    def dependencies(self) -> list[dict[str, Any]]:
        """The event handlers of the page, as /config lists them (each has "id", "api_name", "inputs")."""
        return list(self.config()["dependencies"])

    def fn_index(self, api_name: str) -> int:
        for dep in self.dependencies():
            if dep.get("api_name") == api_name:
                return int(dep["id"])
        names = [d.get("api_name") for d in self.dependencies()]
        raise LookupError(f"no Gradio handler named {api_name!r} in /config (handlers: {names})")

    def component(self, component_id: int) -> dict[str, Any]:
        return next(c for c in self.config()["components"] if c["id"] == component_id)

    # ------------------------------------------------------------------ calls
    def upload(self, name: str, data: bytes) -> httpx.Response:
        """POST /gradio_api/upload like gr.File does; a 200 response is the list of server paths."""
        r = self.http.post("/gradio_api/upload", files={"files": (name, data, "application/octet-stream")})
        self.observe(r.text, f"POST /gradio_api/upload {name}")
        return r

    def join(self, fn: int | str, data: list[Any], session_hash: str, event_data: Any = None) -> httpx.Response:
        fn_index = fn if isinstance(fn, int) else self.fn_index(fn)
        return self.http.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "session_hash": session_hash,
            "event_data": event_data, "trigger_id": None})

    def listen(self, session_hash: str, run: GradioRun, timeout: float = 120.0) -> GradioRun:
        """Read the session's SSE stream until its events are done (close_stream) or `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash},
                                  timeout=httpx.Timeout(timeout, read=min(timeout, 30.0))) as r:
                if r.status_code != 200:
                    run.text += f"\n[queue/data {r.status_code}] " + r.read().decode(errors="replace")
                    run.messages.append({"msg": f"http_{r.status_code}", "success": False})
                    return run
                for line in r.iter_lines():
                    run.text += line + "\n"
                    if line.startswith("data:"):
                        try:
                            message = json.loads(line[5:].strip())
                        except ValueError:
                            continue
                        run.messages.append(message)
                        if message.get("msg") in ("close_stream", "unexpected_error"):
                            return run
                    if time.monotonic() > deadline:
                        run.timed_out = True
                        return run
        except httpx.TimeoutException:
            run.timed_out = True
        except httpx.HTTPError as exc:
            run.text += f"\n[{type(exc).__name__}: {exc}]"
        return run

    def run(self, fn: int | str, data: list[Any], session_hash: str | None = None, event_data: Any = None,
            timeout: float = 120.0) -> GradioRun:
        """Join the queue and read the result, as the page does after a click."""
        session_hash = session_hash or new_session_hash()
        try:
            joined = self.join(fn, data, session_hash, event_data)
        except httpx.TimeoutException:  # a server stuck on the call may not even confirm the join
            return GradioRun(join_status=0, text="[queue/join timed out]", timed_out=True)
        run = GradioRun(join_status=joined.status_code, text=joined.text)
        if joined.status_code == 200:
            self.listen(session_hash, run, timeout)
        self.observe(run.text, f"Gradio handler {fn}")
        return run


def new_session_hash() -> str:
    """A session hash like the page makes (random, 11 characters)."""
    return secrets.token_hex(6)[:11]
