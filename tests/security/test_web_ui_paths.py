"""The admin tab's upload handler given a server path instead of an uploaded file.

An admin session calls "on_upload" with {"path": …, "meta": {"_type": "gradio.FileData"}} naming
a file the caller never uploaded: a symlink to /etc/passwd, /etc/passwd itself, a path climbing
out of Gradio's upload folder, and /dev/zero (endless). Contract: the call fails or is refused,
/healthz stays under 1 s throughout, nothing of /etc/passwd becomes searchable, and the server
is not left at 100 % CPU. /dev/zero runs last of the suite's attacks (see conftest.MODULE_ORDER):
a server that reads it never stops.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.security.ui_client import GradioSession, file_data
from tests.security.live import PASSWD, LiveServer
from tests.security.probes import HealthMonitor, cpu_percent

pytestmark = pytest.mark.security


def target(live: LiveServer, ui: GradioSession, kind: str) -> str:
    if kind == "symlink":
        link = live.harness / "attacker" / "passwd.txt"
        link.parent.mkdir(exist_ok=True)
        if not link.is_symlink():
            os.symlink("/etc/passwd", link)
        return str(link)
    if kind == "climb":  # from the folder Gradio keeps uploads in, up to /etc/passwd
        up = ui.upload("발판.txt", "발판 파일".encode())
        assert up.status_code == 200, f"harness: /gradio_api/upload by root: {up.status_code} {up.text[:200]}"
        return up.json()[0].rsplit("/", 1)[0] + "/../../../../../../../../etc/passwd"
    return kind


def purge_passwd(live: LiveServer) -> None:
    """Delete documents an earlier case indexed from /etc/passwd, so each case is judged on its own."""
    r = httpx.post(live.url + "/v1/search", json={"query": "root /root /bin/bash daemon nologin", "k": 20},
                   headers=live.headers("root"), timeout=20)  # not live.call: the case already reported this
    ids = {h["doc_id"] for h in r.json().get("hits", []) if PASSWD in h["text"]} if r.status_code == 200 else set()
    if ids:
        live.call("DELETE", "/v1/documents", "root", params={"doc_id": sorted(ids)})


@pytest.mark.parametrize("kind", ["symlink", "/etc/passwd", "climb", "/dev/zero"])
def test_upload_handler_refuses_server_paths(live: LiveServer, kind):
    purge_passwd(live)
    problems = []
    with GradioSession(live.url, timeout=15, observe=live.scan) as ui:
        assert ui.login("root", live.keys["root"]).status_code in (200, 302, 303), "harness: root's login failed"
        path = target(live, ui, kind)
        with HealthMonitor(live.url) as hz:
            run = ui.run("on_upload", [[file_data(path)], "a"], timeout=20)
        note = str(run.output[1]) if run.completed and run.output else ""
        if run.completed and "✔" in note:
            problems.append(f"on_upload accepted the server path {path!r} and indexed it: {note[:300]!r}")
        if run.timed_out:
            problems.append(f"on_upload of {path!r} gave no result within 20 s (the server is reading it?)")
        if problem := hz.problem(f"while on_upload was given {path!r}"):
            problems.append(problem)
    used = cpu_percent(live.pid, 2.0)
    if used > 50:
        problems.append(f"the server uses {used:.0f} % CPU 2 s after the call (still reading {path!r}?)")
    try:
        hits = live.search("root", "root /root /bin/bash daemon nologin", timeout=20)
        if any(PASSWD in h["text"] for h in hits):
            problems.append(f"/etc/passwd is searchable after on_upload of {path!r}")
    except httpx.HTTPError as exc:
        problems.append(f"the server does not answer a search after on_upload of {path!r}: {type(exc).__name__}")
    assert not problems, "\n".join(problems)
