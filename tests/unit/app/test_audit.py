"""The audit log: every ask, search, chat, MCP call, view, upload, delete, re-index and key
change recorded with its caller, door, question (or its hash) and documents; a removed or
edited entry is detected; old entries pruned with the chain still verifiable."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from typer.testing import CliRunner

from app.audit import AuditLog, AuditSettings
from app.auth import Principal
from app.cli import app as cli
from app.server import ui
from app.server.api import create_app
from app.server.mcp_tools import build_mcp

KIM = Principal("kim", "user", frozenset({"public"}), "k1")


def test_a_chain_of_entries_verifies_and_any_edit_or_removal_is_named(tmp_path):
    log = AuditLog(tmp_path / "s.sqlite3")
    for i in range(5):
        log.record(KIM, "ask", question=f"질문 {i}", returned=["/d/a.txt"], cited=["/d/a.txt"], route="api")
    assert log.verify().ok and log.verify().entries == 5
    db = sqlite3.connect(log.path)
    db.execute("UPDATE audit SET question = '다른 질문' WHERE id = 3")
    db.commit()
    check = log.verify()
    assert not check.ok and check.problem == "entry 3: its content was changed"
    db.execute("UPDATE audit SET question = '질문 2' WHERE id = 3")
    db.execute("DELETE FROM audit WHERE id = 2")
    db.commit()
    assert log.verify().problem == "entry 3: the entry before it was removed or changed"
    db.close()
    tail = AuditLog(tmp_path / "t.sqlite3")
    for i in range(3):
        tail.record(KIM, "search", question=str(i))
    with sqlite3.connect(tail.path) as db2:
        db2.execute("DELETE FROM audit WHERE id = 3")
    assert "newest entries were removed" in tail.verify().problem


def test_questions_can_be_kept_as_hashes_only_and_old_entries_are_pruned(tmp_path):
    log = AuditLog(tmp_path / "s.sqlite3", AuditSettings(store_questions=False, retention_days=30))
    log.record(KIM, "ask", question="연봉 인상률은?")
    (entry,) = log.entries()
    assert entry["question"] is None and len(entry["question_sha256"]) == 64 and entry["caller"] == "kim"
    for _ in range(3):
        log.record(KIM, "search", question="x")
    assert log.prune(now=datetime.now(timezone.utc) + timedelta(days=31)) == 4
    log.record(KIM, "search", question="after")
    check = log.verify()
    assert check.ok and check.entries == 1  # the anchor moved: what is left still verifies
    off = AuditLog(tmp_path / "o.sqlite3", AuditSettings(enabled=False))
    off.record(KIM, "ask", question="q")
    assert off.entries() == []


@pytest.fixture
def audited_service(make_service):
    service = make_service()
    keys = {n: service.keys.create(n, r, g)[1] for n, r, g in
            (("root", "admin", "*"), ("hr_admin", "admin", "hr"), ("kim", "user", "public"))}
    return service, keys, TestClient(create_app(service, ui=False))


def test_every_door_and_action_is_recorded(audited_service, tmp_path):
    service, keys, http = audited_service
    kim, root = {"Authorization": f"Bearer {keys['kim']}"}, {"Authorization": f"Bearer {keys['root']}"}
    http.post("/v1/ask", headers=kim, json={"question": "연차휴가는 며칠인가요?"})
    http.post("/v1/search", headers=kim, json={"query": "병가"})
    http.post("/v1/chat/completions", headers=kim,
              json={"model": "chulcheo", "messages": [{"role": "user", "content": "재택근무는 며칠인가요?"}]})
    doc = next(d for d in http.get("/v1/documents", headers=kim).json()["documents"] if d["source"] == "취업규칙.txt")
    http.get(f"/v1/documents/{doc['doc_id']}/file", headers=kim)
    http.post("/v1/documents", headers=root, params={"wait": "true"}, data={"group": "public"},
              files={"file": ("공지.txt", "점심시간은 12시부터이다.".encode())})
    new = next(d for d in http.get("/v1/documents", headers=root).json()["documents"] if d["source"] == "공지.txt")
    http.delete("/v1/documents", headers=root, params={"doc_id": new["doc_id"]})
    http.post("/v1/keys", headers=root, json={"name": "park", "role": "user", "groups": ["public"]})
    http.delete("/v1/keys/park", headers=root)
    user = service.sessions.handle(service.login("kim", keys["kim"]))
    list(ui.chat(service, user, "병가는 며칠인가요?", []))
    mcp = build_mcp(service, lambda ctx: service.authenticate(keys["kim"]))

    async def agent():
        async with Client(mcp) as client:
            await client.call_tool("search", {"query": "재택근무"})
    anyio.run(agent)
    entries = service.audit.entries()
    seen = {(e["action"], e["route"]) for e in entries}
    assert {("ask", "api"), ("search", "api"), ("ask", "openai"), ("download", "api"), ("upload", "api"),
            ("delete", "api"), ("key_create", "api"), ("key_revoke", "api"), ("ask", "ui"), ("search", "mcp")} <= seen
    ask = next(e for e in entries if e["action"] == "ask" and e["route"] == "api")
    assert ask["caller"] == "kim" and ask["question"] == "연차휴가는 며칠인가요?" and ask["outcome"] == "ok"
    assert any(r.endswith("취업규칙.txt") for r in ask["cited"]) and ask["returned"]
    assert next(e for e in entries if e["action"] == "delete")["returned"][0].endswith("공지.txt")
    assert service.audit.verify().ok


def test_failures_are_recorded_with_their_kind(make_service):
    service = make_service(ask_burst=1, ask_per_minute=1)
    kim = service.authenticate(service.keys.create("kim", "user", "public")[1])
    service.ask(kim, "연차휴가는 며칠인가요?")
    with pytest.raises(Exception):
        service.ask(kim, "연차휴가는 며칠인가요?")
    outcomes = [e["outcome"] for e in service.audit.entries() if e["action"] == "ask"]
    assert outcomes == ["ok", "error: RateLimited"]


def test_get_audit_is_for_admins_within_their_groups(audited_service):
    service, keys, http = audited_service
    http.post("/v1/search", headers={"Authorization": f"Bearer {keys['kim']}"}, json={"query": "연차"})
    service.search(service.authenticate(keys["hr_admin"]), "비밀코드")
    everything = http.get("/v1/audit", headers={"Authorization": f"Bearer {keys['root']}"}).json()["entries"]
    assert {e["caller"] for e in everything} >= {"kim", "hr_admin"}
    scoped = http.get("/v1/audit", headers={"Authorization": f"Bearer {keys['hr_admin']}"}).json()["entries"]
    assert scoped and {e["caller"] for e in scoped} <= {"hr_admin"}  # kim's (public) entries are beyond hr
    assert http.get("/v1/audit", headers={"Authorization": f"Bearer {keys['kim']}"}).status_code == 403
    assert http.get("/v1/audit").status_code == 401


def test_cli_verify_and_export(audited_service, monkeypatch):
    service, keys, _ = audited_service
    monkeypatch.setenv("CHULCHEO_STATE_DIR", str(service.settings.state_dir))
    service.search(service.authenticate(keys["kim"]), "연차")
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    lines = runner.invoke(cli, ["audit", "export", "--since", "2000-01-01"]).output.splitlines()
    assert json.loads(lines[-1])["action"] == "search"
    csv_out = runner.invoke(cli, ["audit", "export", "--format", "csv"]).output
    assert csv_out.startswith("id,time,caller") and "search" in csv_out
    with sqlite3.connect(service.audit.path) as db:
        db.execute("UPDATE audit SET caller = 'someone' WHERE id = 1")
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1 and "entry 1" in bad.output
