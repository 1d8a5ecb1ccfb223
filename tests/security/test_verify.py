"""/v1/verify as a CPU furnace: the check of any text against any passages a user sends.

Contract: one key's quick verifies hit the rate limit it shares with asks (429); passages over
the server's cap (1,000,000 characters in total is over it) are refused quickly (413 or 422 in
under 5 s); a large allowed verify whose client hangs up after 1 s stops burning CPU (/healthz
stays fast, and a small verify after it returns within 10 s).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.security.live import LiveServer
from tests.security.probes import HealthMonitor, cpu_percent

pytestmark = pytest.mark.security

SMALL = {"answer": "A팀 회의는 월요일 오전 10시에 열린다.",
         "passages": [{"id": "p1", "text": "A팀 회의는 매주 월요일 오전 10시에 열린다."}]}
SENTENCES = ("{n}번 규정에 따라 연차휴가는 입사 1년 후 {d}일이 주어진다.", "출장비는 하루 {d}만 원까지 지급한다.",
             "재택근무는 주 {d}일까지 허용한다.", "보안 점검은 매월 {d}일에 실시한다.")


def korean_text(chars: int, seed: int = 0) -> str:
    """Regulation-like Korean sentences, `chars` characters long (the checker's real work)."""
    out, i = [], seed
    while sum(len(s) + 1 for s in out) < chars:
        out.append(SENTENCES[i % len(SENTENCES)].format(n=i, d=i % 28 + 1))
        i += 1
    return " ".join(out)[:chars]


def fresh_user(live: LiveServer, name: str) -> str:
    """A user key of group a of its own, so its rate-limit bucket is the test's alone."""
    live.call("DELETE", f"/v1/keys/{name}", "root")
    r = live.call("POST", "/v1/keys", "root", json={"name": name, "role": "user", "groups": ["a"]})
    assert r.status_code == 201, f"harness: creating key {name}: {r.text[:300]}"
    return r.json()["key"]


def test_verify_flood_hits_the_rate_limit_shared_with_asks(live: LiveServer):
    key = fresh_user(live, "verify_flood")
    headers = {"Authorization": f"Bearer {key}"}

    def verify(_: int) -> int:
        return httpx.post(live.url + "/v1/verify", json=SMALL, headers=headers, timeout=60).status_code

    with HealthMonitor(live.url) as hz, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(verify, range(24)))
        ask = httpx.post(live.url + "/v1/ask", json={"question": "A팀 회의는 언제인가요?"}, headers=headers, timeout=90)
    live.call("DELETE", "/v1/keys/verify_flood", "root")
    problems = []
    if 429 not in statuses:
        problems.append(f"24 verifies at once from one user key were never limited: statuses {sorted(set(statuses))}")
    elif ask.status_code != 429:
        problems.append(f"right after its verifies were limited, the same key's /v1/ask got {ask.status_code} "
                        "(the limit must be shared with asks)")
    if bad := [s for s in statuses if s >= 500]:
        problems.append(f"{len(bad)} verifies failed with {sorted(set(bad))}")
    if problem := hz.problem("during the verify flood"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_verify_of_a_disconnected_client_stops(live: LiveServer):
    """100,000 characters of passages and a 2,000-character answer: tens of seconds of checking."""
    big = {"answer": korean_text(2_000, 7), "question": "연차휴가는 며칠인가요?",
           "passages": [{"id": f"p{i}", "text": korean_text(20_000, i * 1000)} for i in range(5)]}
    problems = []
    with HealthMonitor(live.url) as hz:
        start = time.monotonic()
        try:
            r = httpx.post(live.url + "/v1/verify", json=big, headers=live.headers("user_a"), timeout=1.0)
            note = f"answered {r.status_code} in {time.monotonic() - start:.1f} s (before the hang-up)"
        except httpx.TimeoutException:
            note = "hung up after 1 s"
        time.sleep(3)  # time to notice the hang-up
        used = cpu_percent(live.pid, 2.0)
        if used > 50:
            problems.append(f"5 s after the client of a large verify {note}, the server still uses {used:.0f} % CPU")
        start = time.monotonic()
        try:
            small = live.call("POST", "/v1/verify", "user_a", json=SMALL, timeout=10).status_code
        except httpx.TimeoutException:
            small = None
        if small != 200:
            problems.append(f"a small verify after the abandoned large one: {small} after {time.monotonic() - start:.1f} s "
                            "(must be 200 within 10 s)")
    if problem := hz.problem("while a large verify's client had hung up"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_verify_over_the_passage_cap_is_refused_quickly(live: LiveServer):
    """11 passages of 95,500 characters (1,050,500 in all; each under the 100,000 per-passage limit).

    Short Latin words: cheap to check per character (a server that accepts them is busy for
    seconds, not minutes; Korean sentences cost ~20x more, one endless word ~25x)."""
    text = ("lorem ipsum " * 8000)[:95_500]
    body = {"answer": "연차휴가는 15일이다.", "passages": [{"id": f"p{i}", "text": text} for i in range(11)]}
    problems = []
    with HealthMonitor(live.url) as hz:
        start = time.monotonic()
        try:
            status = live.call("POST", "/v1/verify", "user_a", json=body, timeout=5).status_code
        except httpx.TimeoutException:
            status = None
        took = time.monotonic() - start
    if status not in (413, 422) or took >= 5:
        problems.append(f"verify with 1,050,500 characters of passages: {status or 'no answer'} after {took:.1f} s "
                        "(must be 413 or 422 within 5 s)")
    if problem := hz.problem("during the over-cap verify"):
        problems.append(problem)
    assert not problems, "\n".join(problems)
