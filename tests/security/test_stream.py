"""A client that opens an answer stream and hangs up must not keep the only answer slot.

Contract: user_a opens POST /v1/ask/stream, reads the first event and closes the connection;
within 30 s a /v1/ask from user_b completes with 200 (the slot was released).
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.security.live import LiveServer
from tests.security.probes import HealthMonitor

pytestmark = pytest.mark.security


def test_dropped_stream_releases_the_answer_slot(live: LiveServer):
    try:  # the control: the slot is free before the attack (an earlier test may have leaked it)
        before = live.call("POST", "/v1/ask", "user_b", json={"question": "B팀 회의 요일은?"}, timeout=40).status_code
    except httpx.TimeoutException:
        before = None
    if before != 200:
        pytest.fail(f"the answer slot was already unusable before the attack (user_b's /v1/ask: {before}); "
                    "an earlier test left it taken")
    problems = []
    with HealthMonitor(live.url) as hz:
        first = ""
        with httpx.Client(timeout=60) as client:
            with client.stream("POST", live.url + "/v1/ask/stream", headers=live.headers("user_a"),
                               json={"question": "A팀 회의는 언제 열리나요?"}) as r:
                assert r.status_code == 200, f"user_a's /v1/ask/stream: {r.status_code} {r.read()[:300]!r}"
                for line in r.iter_lines():
                    first += line + "\n"
                    if line.startswith("data:"):
                        break  # one event read; leaving both blocks closes the connection
        assert first.startswith("event:"), f"harness: the stream's first event was {first!r}"
        dropped = time.monotonic()
        try:
            answer = live.call("POST", "/v1/ask", "user_b", json={"question": "B팀 회의는 언제 열리나요?"}, timeout=30)
            status, text = answer.status_code, answer.text[:300]
        except httpx.TimeoutException:
            status, text = None, "no answer within 30 s"
        took = time.monotonic() - dropped
    if status != 200:
        problems.append(f"after user_a dropped its answer stream, user_b's /v1/ask got {status} after {took:.0f} s "
                        f"({text}): the dropped stream kept the answer slot")
    if problem := hz.problem("while a dropped stream's answer slot was awaited"):
        problems.append(problem)
    assert not problems, "\n".join(problems)
