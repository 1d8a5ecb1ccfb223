"""Request bodies that try to fill the disk: a 50 MB upload without a key, an oversized upload with
one, a 1 MB feedback `citations` list.

Contract: no key -> 401 before the body is stored (the server's TMPDIR and state dir grow by at
most 1 MB while it streams); over the upload cap -> 413; feedback whose citations JSON is over
1 MB -> 422 (the state DB grows by at most 100 KB).
"""

from __future__ import annotations

import json
import select
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.security.live import LiveServer
from tests.security.probes import DiskWatch, HealthMonitor, tree_bytes

pytestmark = pytest.mark.security

MB = 1 << 20


def stream_upload(url: str, key: str | None, size: int, group: str = "a", limit_s: float = 120.0) -> tuple[int | None, int, float]:
    """POST a `size`-byte multipart upload to /v1/documents over a raw socket, 256 KB at a time,
    stopping as soon as the server answers (a client library would hide an early answer behind
    a write error). Returns (status or None, bytes of the file sent, seconds)."""
    boundary = "secsuite7f3a"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="group"\r\n\r\n{group}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    parts = urlsplit(url)
    request = (f"POST /v1/documents HTTP/1.1\r\nHost: {parts.netloc}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {len(head) + size + len(tail)}\r\nConnection: close\r\n"
               + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n").encode()
    chunk = ("가나다라마바사아자차카타파하\n".encode() * 10_000)[: 256 * 1024]
    start, sent, answer = time.monotonic(), 0, b""
    with socket.create_connection((parts.hostname, parts.port), timeout=limit_s) as sock:
        try:
            sock.sendall(request + head)
            while sent < size and time.monotonic() - start < limit_s:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered before the body was complete
                piece = chunk[: size - sent]
                sock.sendall(piece)
                sent += len(piece)
            else:
                sock.sendall(tail)
        except OSError:
            pass  # reset after an early answer: read what it said
        sock.settimeout(max(1.0, limit_s - (time.monotonic() - start)))
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return status, sent, time.monotonic() - start


def test_unauthenticated_upload_is_refused_before_the_body_is_stored(live: LiveServer):
    folders = [live.tmp, live.state_dir]
    with HealthMonitor(live.url) as hz, DiskWatch(live.pid, folders) as disk:
        status, sent, took = stream_upload(live.url, None, 50 * MB)
    problems = []
    if status != 401:
        problems.append(f"50 MB upload without a key: status {status} (must be 401)")
    if disk.grew > MB:
        problems.append(f"while {sent / MB:.0f} MB streamed without a key ({took:.1f} s), the server's TMPDIR and "
                        f"state dir grew by {disk.grew / MB:.1f} MB (at most 1 MB): the body was spooled before the key check")
    if problem := hz.problem("during the unauthenticated 50 MB upload"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_upload_over_the_cap_is_refused_with_413(live: LiveServer):
    """The cap is 2 MB here (server.max_upload_mb); 5 MB from an admin must get 413, not be stored."""
    with HealthMonitor(live.url) as hz:
        status, sent, took = stream_upload(live.url, live.keys["root"], 5 * MB)
    problems = []
    if status != 413:
        problems.append(f"5 MB upload (cap 2 MB) by root: status {status} after {sent / MB:.1f} MB, {took:.1f} s (must be 413)")
    if list(live.state_dir.rglob("big.txt")):
        problems.append("the over-cap upload was stored: big.txt is in the state dir")
    if problem := hz.problem("during the over-cap upload"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_feedback_with_megabytes_of_citations_is_refused(live: LiveServer):
    citations = [{"n": i + 1, "quote": "가" * 30_000, "source": "x.txt"} for i in range(20)]
    body = {"rating": 1, "question": "질문", "answer": "답변", "citations": citations}
    assert len(json.dumps(body["citations"]).encode()) > MB
    before = tree_bytes([live.state_dir])
    with HealthMonitor(live.url) as hz:
        r = live.call("POST", "/v1/feedback", "user_a", json=body)
    grew = tree_bytes([live.state_dir]) - before
    problems = []
    if r.status_code != 422:
        problems.append(f"feedback with {len(json.dumps(citations)) / MB:.1f} MB of citations: {r.status_code} "
                        f"{r.text[:200]} (must be 422)")
    if grew > 100 * 1024:
        problems.append(f"the state dir grew by {grew / 1024:.0f} KB (at most 100 KB)")
    if problem := hz.problem("during the oversized feedback"):
        problems.append(problem)
    assert not problems, "\n".join(problems)
