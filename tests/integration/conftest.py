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
    import time

    import httpx

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
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"chulcheo serve exited: {(base / 'serve.log').read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready in 240 s: {(base / 'serve.log').read_text()[-3000:]}"
            time.sleep(1)
        yield {"url": url, "admin": admin, "user": user, "env": env, "log": base / "serve.log"}
    finally:
        stop(proc)
        log.close()
