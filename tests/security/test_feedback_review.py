"""Ratings and their review against a real server: an admin of group a neither reads nor
reviews the ratings of group b's users, nor marks group b's document as a right passage."""

from __future__ import annotations

import uuid

import pytest

from tests.security.live import LiveServer

pytestmark = pytest.mark.security


def test_a_scoped_admin_reaches_only_its_groups_ratings(live: LiveServer):
    comment = f"B팀 평가 {uuid.uuid4().hex[:8]}"
    r = live.call("POST", "/v1/feedback", "user_b", json={"rating": -1, "question": "B팀 회의 요일은?",
                                                           "answer": "모르겠습니다.", "comment": comment})
    assert r.status_code == 200, r.text
    rating = r.json()["id"]
    assert comment in live.call("GET", "/v1/feedback", "root").text, "control: the admin of * sees it"
    scoped = live.call("GET", "/v1/feedback", "adm_a", params={"limit": 5000})
    assert scoped.status_code == 200 and comment not in scoped.text
    review = live.call("POST", f"/v1/feedback/{rating}/review", "adm_a", json={"answer": "A팀 비밀 암호는 청포도"})
    assert review.status_code == 404, review.text
    for caller in ("user_a", "user_b"):
        assert live.call("GET", "/v1/feedback", caller).status_code == 403
    own = live.call("POST", "/v1/feedback", "user_a", json={"rating": -1, "question": "A팀 회의는?", "answer": "x"})
    b_doc = live.doc_ids("b")[0]
    marked = live.call("POST", f"/v1/feedback/{own.json()['id']}/review", "adm_a", json={"doc_id": b_doc})
    assert marked.status_code == 404 and not live.leaks(marked.text, "adm_a")
