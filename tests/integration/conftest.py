"""Integration tests run the real default models; they skip with a reason where one is missing.

`real_settings` and `korquad_path` live in tests/conftest.py (the reliability tests use them too)."""

from __future__ import annotations

from pathlib import Path

import pytest

# ---------------------------------------------------------------- a real `chulcheo serve`
ROOT = Path(__file__).resolve().parents[2]
HR_SECRET = "2026년 임원 보수 한도는 총 48억 원이다."


def stop(process, timeout: float = 30) -> None:
    """Terminate a server subprocess; kill it if it does not exit within `timeout` seconds."""
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_up(proc, url: str, log: Path, what: str, timeout: float = 240, headers: dict | None = None) -> None:
    """Poll `url` until it answers 200; fails with the log's tail if `proc` exits or `timeout` passes."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{what} exited: {log.read_text(errors='replace')[-3000:]}"
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what} not up in {timeout:g} s: {log.read_text(errors='replace')[-3000:]}"
        time.sleep(1)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(real_settings, tmp_path_factory):
    """A real `chulcheo serve` (default embedding model, 0.5B GGUF for speed, web UI on) over the
    sample documents (group public) and one hr document; keys for an admin and a public user.

    Yields {"url", "admin", "user", "env", "log"}; the server is stopped afterwards.
    """
    import json
    import os
    import subprocess
    import sys

    from app.models import get_spec, is_present

    llm = get_spec("qwen2.5-coder-0.5b-instruct")
    if not is_present(llm, real_settings.model_dir):
        pytest.skip(f"{llm.name} is not provisioned: run `chulcheo models pull {llm.name}`")
    base = tmp_path_factory.mktemp("serve")
    env = os.environ | {
        "CHULCHEO_INDEX_DIR": str(base / "index"), "CHULCHEO_STATE_DIR": str(base / "state"),
        "CHULCHEO_GENERATION__MODEL": llm.name, "CHULCHEO_GENERATION__MAX_TOKENS": "96",
    }

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return done.stdout

    hr = base / "hr"
    hr.mkdir()
    (hr / "임원보수.txt").write_text(f"임원 보수 규정\n\n{HR_SECRET}\n", encoding="utf-8")
    cli("ingest", "sample_corpus")
    cli("ingest", str(hr), "--group", "hr")
    admin = json.loads(cli("keys", "create", "--name", "admin", "--role", "admin", "--groups", "*", "--json"))["key"]
    user = json.loads(cli("keys", "create", "--name", "kim", "--role", "user", "--groups", "public", "--json"))["key"]
    port = free_port()
    log = (base / "serve.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/readyz", base / "serve.log", "chulcheo serve")
        yield {"url": url, "admin": admin, "user": user, "env": env, "log": base / "serve.log"}
    finally:
        stop(proc)
        log.close()
