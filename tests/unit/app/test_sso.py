"""Single sign-on by a trusted proxy's headers: believed only from auth.trusted_proxies,
mapped to document groups, never from any other address; the web UI needs no key login then."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from app.server import ui
from app.server.api import create_app
from app.sso import AuthSettings, TrustedHeaders

PROXY, ELSEWHERE = ("10.0.0.5", 40000), ("10.9.9.9", 40000)
# what a proxy sends: UTF-8 bytes (a Korean group name); the server decodes header bytes as Latin-1
HEADERS = {"X-Forwarded-User": "kim.hr", "X-Forwarded-Groups": "인사팀, 전사".encode()}
AS_SERVED = {k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v for k, v in HEADERS.items()}
SETTINGS = AuthSettings(trusted_header_user="X-Forwarded-User", trusted_header_groups="X-Forwarded-Groups",
                        trusted_proxies=["10.0.0.0/29"], group_map={"인사팀": "hr", "관리자": "*"},
                        admin_groups=["관리자"], default_groups=["public"])


@pytest.fixture
def sso_service(make_service):
    service = make_service()
    service.sso = TrustedHeaders(SETTINGS)
    return service


def test_headers_from_the_trusted_proxy_sign_the_user_in_with_mapped_groups(sso_service):
    http = TestClient(create_app(sso_service, ui=False), client=PROXY)
    me = http.get("/v1/me", headers=HEADERS).json()
    assert me == {"name": "kim.hr", "role": "user", "key_id": "sso:kim.hr", "groups": ["hr", "public"]}
    hits = http.post("/v1/search", headers=HEADERS, json={"query": "비밀코드", "k": 5}).json()["hits"]
    assert any("자두나무" in h["text"] for h in hits)  # hr's document, through the 인사팀 mapping
    admin = http.get("/v1/me", headers={"X-Forwarded-User": "boss", "X-Forwarded-Groups": "관리자".encode()}).json()
    assert admin["role"] == "admin" and admin["groups"] == ["*"]
    unmapped = http.get("/v1/me", headers={"X-Forwarded-User": "guest", "X-Forwarded-Groups": "외부".encode()}).json()
    assert unmapped["groups"] == ["public"]  # only the default group


def test_the_same_headers_from_another_address_are_ignored_and_logged(sso_service, caplog):
    http = TestClient(create_app(sso_service, ui=False), client=ELSEWHERE)
    with caplog.at_level(logging.WARNING, logger="app.sso"):
        r = http.get("/v1/me", headers=HEADERS)
        post = http.post("/v1/search", headers=HEADERS, json={"query": "비밀코드"})
    assert r.status_code == 401 and post.status_code == 401 and "자두나무" not in post.text
    assert "ignored X-Forwarded-User header" in caplog.text and "10.9.9.9" in caplog.text


def test_a_key_wins_over_headers_and_the_feature_is_off_by_default(make_service, sso_service):
    key = sso_service.keys.create("lee", "user", "public")[1]
    http = TestClient(create_app(sso_service, ui=False), client=PROXY)
    assert http.get("/v1/me", headers={**HEADERS, "Authorization": f"Bearer {key}"}).json()["name"] == "lee"
    plain = make_service()  # no [auth] settings: headers mean nothing, even from the proxy address
    assert not plain.sso.enabled
    assert TestClient(create_app(plain, ui=False), client=PROXY).get("/v1/me", headers=HEADERS).status_code == 401


def test_the_web_ui_needs_no_key_login_behind_the_proxy(sso_service):
    http = TestClient(create_app(sso_service, ui=True), client=PROXY, follow_redirects=False)
    page = http.get("/", headers=HEADERS)
    assert page.status_code == 200, page.headers.get("location")
    away = TestClient(create_app(sso_service, ui=True), client=ELSEWHERE, follow_redirects=False)
    assert away.get("/", headers=HEADERS).status_code in (303, 307) and "login" in away.get("/", headers=HEADERS).headers["location"]
    handle = sso_service.ui_handle(PROXY[0], AS_SERVED, None)
    assert handle and handle.startswith("sso:")
    *_, cards, _, _ = list(ui.chat(sso_service, handle, "비밀코드는 무엇인가요?", []))[-1]
    assert "자두나무" in cards  # the signed-in hr user's own document
    assert sso_service.ui_handle(ELSEWHERE[0], AS_SERVED, None) is None


def test_bad_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="trusted_proxies"):
        AuthSettings(trusted_proxies=["proxy.intranet"])
    with pytest.raises(ValueError, match="groups"):
        AuthSettings(group_map={"인사팀": "../hr"})
