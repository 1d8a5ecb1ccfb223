"""The audit log against a real server: an admin of group a reads only the entries of callers
within group a (another group's questions are as private as its documents); users cannot read
it at all; the chain verifies after the whole hostile suite has run against the server."""

from __future__ import annotations

import uuid

import pytest

from tests.security.live import LiveServer

pytestmark = pytest.mark.security


def test_audit_entries_stay_within_the_readers_groups(live: LiveServer):
    phrase = f"B팀 분기 회의록 {uuid.uuid4().hex[:8]}"  # a question only user_b asks
    assert live.call("POST", "/v1/search", "user_b", json={"query": phrase}).status_code == 200
    root = live.call("GET", "/v1/audit", "root", params={"limit": 10000})
    assert root.status_code == 200 and phrase in root.text, "control: the admin of * sees user_b's search"
    scoped = live.call("GET", "/v1/audit", "adm_a", params={"limit": 10000})
    assert scoped.status_code == 200 and phrase not in scoped.text, "adm_a read group b's question in the audit log"
    assert all(e["groups"] in ("a",) for e in scoped.json()["entries"])
    for caller in ("user_a", "user_b", None):
        r = live.call("GET", "/v1/audit", caller)
        assert r.status_code in (401, 403) and phrase not in r.text


def test_the_audit_chain_verifies(live: LiveServer):
    done = live.cli("audit", "verify", "--json", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
