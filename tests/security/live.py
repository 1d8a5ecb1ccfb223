"""A real `chulcheo serve` for the hostile-user suite: two access groups, each with one secret.

with start_server(base, model_dir) as server:
    server.call("POST", "/v1/search", "user_b", json={"query": "A팀 비밀 암호"})  # -> httpx.Response
    server.leaks(response.text, "user_b")  # -> ["group a's secret (청포도)"] if a's secret came back

Layout under `base`: home/ (the server's HOME; the state dir is home/.local/share/chulcheo, where
chulcheo keeps it by default), tmp/ (the server's TMPDIR), index/, and harness/ (the server log and
files the attacks bring; not the server's). Keys are made with `chulcheo keys create`, documents are
uploaded through the API by `root`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# The source tree the server (and the `chulcheo` CLI beside it) runs from: this checkout, or
# e.g. a `git archive` of another commit to compare a fix with the code before it.
SOURCE = Path(os.environ.get("CHULCHEO_SECURITY_SOURCE") or ROOT)
LLM = "qwen2.5-coder-0.5b-instruct"

SECRET = {"a": "A팀 비밀 암호는 청포도 4417이다.", "b": "B팀 비밀 암호는 산딸기 9052이다."}
# The secret's word: no request of the suite ever contains it, so any response with it leaked it.
MARK = {"a": "청포도", "b": "산딸기"}
DOC_NAME = {"a": "A팀_보안수칙.txt", "b": "B팀_보안수칙.txt"}
DOC_TEXT = {g: f"{g.upper()}팀 보안 수칙\n\n{SECRET[g]} 이 암호는 {g.upper()}팀 구성원에게만 알린다.\n"
            f"{g.upper()}팀 회의는 매주 월요일 오전 10시에 열린다.\n" for g in SECRET}
PASSWD = "root:x:0:0"  # the first line of /etc/passwd

# name -> (role, groups); group of each key's documents it may see
KEYS = {"root": ("admin", "*"), "adm_a": ("admin", "a"), "user_a": ("user", "a"), "user_b": ("user", "b")}
SEES = {None: set(), "root": {"a", "b"}, "adm_a": {"a"}, "user_a": {"a"}, "user_b": {"b"}}

# Small limits keep attacks cheap (README "Serving"; settings.ServerSettings).
SERVER_SETTINGS = {
    "CHULCHEO_SERVER__ANSWER_WAIT_S": "20",
    "CHULCHEO_SERVER__ASK_TIMEOUT_S": "60",
    "CHULCHEO_SERVER__MAX_UPLOAD_MB": "2",
    "CHULCHEO_SERVER__ASK_PER_MINUTE": "60",
    "CHULCHEO_GENERATION__MODEL": LLM,
    "CHULCHEO_GENERATION__MAX_TOKENS": "64",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen
    base: Path
    model_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the embedding backend
    keys: dict[str, str] = field(default_factory=dict)
    passwd_seen: list[str] = field(default_factory=list)  # every response that held /etc/passwd

    # ------------------------------------------------------------------ layout
    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def state_dir(self) -> Path:
        return self.home / ".local" / "share" / "chulcheo"

    @property
    def index_dir(self) -> Path:
        return self.base / "index"

    @property
    def harness(self) -> Path:
        return self.base / "harness"

    @property
    def log(self) -> Path:
        return self.harness / "serve.log"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def env(self, server: bool) -> dict[str, str]:
        """The environment of the server (own HOME and TMPDIR) or of a `chulcheo` CLI call beside it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHULCHEO_", "GRADIO_"))}
        env |= {"CHULCHEO_STATE_DIR": str(self.state_dir), "CHULCHEO_INDEX_DIR": str(self.index_dir),
                "CHULCHEO_MODEL_DIR": str(self.model_dir), **SERVER_SETTINGS, **self.extra_env}
        if server:
            env |= {"HOME": str(self.home), "TMPDIR": str(self.tmp), "PYTHONDONTWRITEBYTECODE": "1"}
        return env

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    # ------------------------------------------------------------------ requests
    def headers(self, caller: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[caller]}"} if caller else {}

    def call(self, method: str, path: str, caller: str | None = None, timeout: float = 60.0,
             **kwargs: Any) -> httpx.Response:
        """One request as `caller` (a key name, or None for no key); the body is scanned for /etc/passwd."""
        headers = {**self.headers(caller), **kwargs.pop("headers", {})}
        r = httpx.request(method, self.url + path, headers=headers, timeout=timeout, **kwargs)
        self.scan(r.text, f"{method} {path} as {caller or 'anonymous'}")
        return r

    def scan(self, text: str, what: str) -> None:
        if PASSWD in text:
            self.passwd_seen.append(f"{what}: {text[max(0, text.find(PASSWD) - 100):][:300]!r}")

    def leaks(self, text: str, caller: str | None) -> list[str]:
        """Which other groups' secrets `text` (a response to `caller`) contains."""
        return [f"group {g}'s secret ({MARK[g]})" for g in MARK if g not in SEES[caller] and MARK[g] in text]

    def search(self, caller: str, query: str, k: int = 20, timeout: float = 60.0) -> list[dict[str, Any]]:
        r = self.call("POST", "/v1/search", caller, json={"query": query, "k": k}, timeout=timeout)
        assert r.status_code == 200, f"search as {caller}: {r.status_code} {r.text[:300]}"
        return r.json()["hits"]

    def finds(self, caller: str, query: str, needle: str) -> bool:
        """Does `caller`'s search for `query` return a hit whose text holds `needle`?"""
        return any(needle in h["text"] for h in self.search(caller, query))

    def upload(self, caller: str, name: str, data: bytes, group: str, wait: bool = True) -> httpx.Response:
        return self.call("POST", "/v1/documents", caller, params={"wait": str(wait).lower()},
                         data={"group": group}, files={"file": (name, data)}, timeout=300)

    def documents(self, caller: str = "root") -> list[dict[str, Any]]:
        r = self.call("GET", "/v1/documents", caller)
        assert r.status_code == 200, r.text
        return r.json()["documents"]

    def doc_ids(self, group: str) -> list[str]:
        """Ids of the indexed secret document of `group` (as root sees them)."""
        return [d["doc_id"] for d in self.documents()
                if d["group"] == group and d["doc_id"] and DOC_NAME[group] in (d.get("source") or "")]

    def job_ids(self, group: str) -> list[str]:
        r = self.call("GET", "/v1/jobs", "root")
        return [j["id"] for j in r.json().get("jobs", []) if (j.get("detail") or {}).get("group") == group]

    # ------------------------------------------------------------------ keys and repair
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "app", *args], cwd=SOURCE, env=self.env(server=False),
                              capture_output=True, text=True, timeout=300)
        assert not check or done.returncode == 0, f"chulcheo {' '.join(args)}: {done.stderr[-2000:]}"
        return done

    def make_key(self, name: str, via_api: bool = True) -> str:
        """(Re)create the suite's key `name` with its role and groups; returns and remembers the key."""
        role, groups = KEYS[name]
        if via_api and name != "root":
            self.call("DELETE", f"/v1/keys/{name}", "root")
            r = self.call("POST", "/v1/keys", "root", json={"name": name, "role": role, "groups": groups.split(",")})
            assert r.status_code == 201, f"re-creating key {name}: {r.status_code} {r.text}"
            key = r.json()["key"]
        else:
            self.cli("keys", "revoke", name, check=False)
            key = json.loads(self.cli("keys", "create", "--name", name, "--role", role, "--groups", groups,
                                      "--json").stdout)["key"]
        self.keys[name] = key
        return key

    def key_works(self, name: str) -> bool:
        r = self.call("GET", "/v1/me", name, timeout=30)
        role, groups = KEYS[name]
        return r.status_code == 200 and r.json().get("groups") == groups.split(",") and r.json().get("role") == role

    def restore(self) -> list[str]:
        """Undo what an earlier (failed) attack broke: revoked or changed keys, deleted secret
        documents. Returns what had to be repaired (each test starts from the same server state)."""
        repaired = []
        if not self.key_works("root"):
            self.make_key("root", via_api=False)
            repaired.append("key root")
        for name in KEYS:
            if name != "root" and not self.key_works(name):
                self.make_key(name)
                repaired.append(f"key {name}")
        for group in SECRET:
            if not self.finds("root", SECRET[group], MARK[group]):
                r = self.upload("root", DOC_NAME[group], DOC_TEXT[group].encode(), group)
                assert r.status_code == 200 and r.json()["job"]["status"] == "done", r.text
                repaired.append(f"group {group}'s document")
        return repaired

    # ------------------------------------------------------------------ state
    def outside_state(self) -> list[Path]:
        """Files under the server's HOME and TMPDIR that are not inside its state dir."""
        from .probes import files_under

        return [p for folder in (self.home, self.tmp) for p in files_under(folder)
                if not p.is_relative_to(self.state_dir)]


def onnx_copy_usable(model_dir: Path) -> bool:
    """Does the server's source (SOURCE, which may differ from this checkout) accept the int8 ONNX
    copy of its default embedding model as it is? Asked in a subprocess run from SOURCE."""
    probe = ("import sys; from app.models import get_spec, model_path; from app.settings import Settings; "
             "from retrieval.embed_onnx import read_export; s = Settings(); "
             "sys.exit(0 if s.embedding.backend != 'onnx-int8' or "
             "read_export(model_path(get_spec(s.embedding.model), s.model_dir)) else 1)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHULCHEO_")} | {"CHULCHEO_MODEL_DIR": str(model_dir)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=SOURCE, env=env, capture_output=True, timeout=300)
    return done.returncode == 0


def _wait(what: str, server: LiveServer, ok, limit: float) -> None:
    deadline = time.monotonic() + limit
    while True:
        assert server.proc.poll() is None, f"chulcheo serve exited while waiting for {what}: {server.log_tail()}"
        try:
            if ok():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what}: not within {limit:g} s: {server.log_tail()}"
        time.sleep(0.5)


@contextmanager
def start_server(base: Path, model_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """Keys first (CLI), then `chulcheo serve`; documents are uploaded once the models are loaded."""
    port = free_port()
    for d in ("home", "tmp", "harness"):
        (base / d).mkdir(parents=True, exist_ok=True)
    server = LiveServer(url=f"http://127.0.0.1:{port}", proc=None, base=base, model_dir=model_dir,  # type: ignore[arg-type]
                        extra_env=extra_env or {})
    server.state_dir.mkdir(parents=True, exist_ok=True)
    makers = {name: subprocess.Popen(
        [sys.executable, "-m", "app", "keys", "create", "--name", name, "--role", role, "--groups", groups, "--json"],
        cwd=SOURCE, env=server.env(server=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (role, groups) in KEYS.items()}
    for name, maker in makers.items():
        out, errs = maker.communicate(timeout=300)
        assert maker.returncode == 0, f"chulcheo keys create {name}: {errs[-2000:]}"
        server.keys[name] = json.loads(out)["key"]
    log = server.log.open("w", encoding="utf-8")
    server.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=SOURCE,
                                   env=server.env(server=True), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait("/healthz", server, lambda: httpx.get(server.url + "/healthz", timeout=5).status_code == 200, 120)
        _wait("model warm-up", server,
              lambda: httpx.get(server.url + "/readyz", timeout=5).json().get("reason") != "loading models", 300)
        for group in SECRET:
            r = server.upload("root", DOC_NAME[group], DOC_TEXT[group].encode(), group)
            assert r.status_code == 200 and r.json()["job"]["status"] == "done", f"upload {group}: {r.text}"
        _wait("/readyz", server, lambda: httpx.get(server.url + "/readyz", timeout=5).status_code == 200, 120)
        yield server
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
        log.close()
