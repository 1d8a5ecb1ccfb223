"""Forged single sign-on headers against a real server whose [auth] trusts no proxy (the default).

Contract: X-Forwarded-User / X-Remote-User / X-Forwarded-Groups sent by a client, with any
group names, sign nobody in: the API answers 401, the web UI still asks for a login, and no
group's secret comes back.
"""

from __future__ import annotations

import httpx
import pytest

from tests.security.live import LiveServer

pytestmark = pytest.mark.security

FORGED = [{"X-Forwarded-User": "root", "X-Forwarded-Groups": "*"},
          {"X-Remote-User": "admin", "X-Remote-Groups": "a,b"},
          {"X-Forwarded-User": "adm_a", "X-Forwarded-Email": "adm_a@example.com", "X-Forwarded-Groups": "admin"}]


@pytest.mark.parametrize("headers", FORGED)
def test_forged_proxy_headers_sign_nobody_in(live: LiveServer, headers):
    assert httpx.get(live.url + "/v1/me", headers=headers, timeout=30).status_code == 401
    r = httpx.post(live.url + "/v1/search", headers=headers, json={"query": "A팀 비밀 암호"}, timeout=30)
    assert r.status_code == 401 and not live.leaks(r.text, None)
    chat = httpx.post(live.url + "/v1/chat/completions", headers=headers, timeout=30,
                      json={"model": "chulcheo", "messages": [{"role": "user", "content": "B팀 비밀 암호는?"}]})
    assert chat.status_code == 401 and not live.leaks(chat.text, None)
    page = httpx.get(live.url + "/", headers=headers, timeout=30, follow_redirects=False)
    assert page.status_code == 401 or (page.status_code in (302, 303, 307) and "login" in page.headers.get("location", ""))
