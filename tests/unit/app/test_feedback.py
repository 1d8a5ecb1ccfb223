"""Feedback that becomes test cases: admins list the ratings of their groups' users, mark the
right passage or write the right answer, and `chulcheo feedback export` writes QA JSONL that
`chulcheo eval answers` reads."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app as cli
from app.server import ui_feedback
from app.server.api import create_app
from evaluation.inputs import read_qa_jsonl


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def rated(make_service):
    """kim (public) 👍 a cited answer, lee (hr) 👎 one; admins of * and of hr."""
    service = make_service()
    keys = {n: service.keys.create(n, r, g)[1] for n, r, g in (
        ("root", "admin", "*"), ("hr_admin", "admin", "hr"), ("kim", "user", "public"), ("lee", "user", "hr"))}
    http = TestClient(create_app(service, ui=False))
    for name, question, rating in (("kim", "연차휴가는 며칠인가요?", 1), ("lee", "비밀코드는 무엇인가요?", -1)):
        answer = http.post("/v1/ask", headers=auth(keys[name]), json={"question": question}).json()
        r = http.post("/v1/feedback", headers=auth(keys[name]), json={
            "rating": rating, "question": question, "answer": answer["answer"], "citations": answer["citations"],
            "comment": "틀렸어요" if rating < 0 else ""})
        assert r.status_code == 200, r.text
    return service, keys, http


def test_admins_list_the_ratings_of_their_groups_only(rated):
    _, keys, http = rated
    everything = http.get("/v1/feedback", headers=auth(keys["root"])).json()["feedback"]
    assert [f["user"] for f in everything] == ["lee", "kim"]  # newest first
    assert everything[1]["citations"][0]["source"] == "취업규칙.txt"
    hr = http.get("/v1/feedback", headers=auth(keys["hr_admin"])).json()["feedback"]
    assert [f["user"] for f in hr] == ["lee"]
    doc = everything[1]["citations"][0]["doc_id"]
    assert [f["user"] for f in http.get("/v1/feedback", headers=auth(keys["root"]), params={"doc": doc}).json()["feedback"]] == ["kim"]
    assert http.get("/v1/feedback", headers=auth(keys["root"]), params={"since": "2999-01-01"}).json()["feedback"] == []
    assert http.get("/v1/feedback", headers=auth(keys["kim"])).status_code == 403


def test_a_review_marks_the_right_passage_within_the_admins_reach(rated):
    service, keys, http = rated
    (lee,) = http.get("/v1/feedback", headers=auth(keys["hr_admin"])).json()["feedback"]
    hr_doc = next(d["doc_id"] for d in http.get("/v1/documents", headers=auth(keys["hr_admin"])).json()["documents"])
    r = http.post(f"/v1/feedback/{lee['id']}/review", headers=auth(keys["hr_admin"]),
                  json={"answer": "비밀코드는 자두나무 73호이다.", "doc_id": hr_doc})
    assert r.status_code == 200 and r.json()["gold_doc"] == hr_doc and r.json()["reviewed_by"] == "hr_admin"
    kim_id = next(f["id"] for f in http.get("/v1/feedback", headers=auth(keys["root"])).json()["feedback"] if f["user"] == "kim")
    assert http.post(f"/v1/feedback/{kim_id}/review", headers=auth(keys["hr_admin"]),
                     json={"answer": "x"}).status_code == 404  # kim's rating is beyond hr
    public_doc = next(d["doc_id"] for d in http.get("/v1/documents", headers=auth(keys["root"])).json()["documents"]
                      if d["group"] == "public")
    assert http.post(f"/v1/feedback/{lee['id']}/review", headers=auth(keys["hr_admin"]),
                     json={"doc_id": public_doc}).status_code == 404  # a document beyond hr
    assert http.post(f"/v1/feedback/{lee['id']}/review", headers=auth(keys["hr_admin"]), json={}).status_code == 422
    assert any(e["action"] == "feedback_review" for e in service.audit.entries())


def test_export_writes_qa_jsonl_that_eval_answers_reads(rated, tmp_path, monkeypatch):
    service, keys, http = rated
    (lee,) = http.get("/v1/feedback", headers=auth(keys["hr_admin"])).json()["feedback"]
    hr_doc = next(d for d in service.pipeline.documents() if d.group == "hr")
    service.review_feedback(service.authenticate(keys["root"]), lee["id"], "비밀코드는 자두나무 73호이다.", hr_doc.doc_id, None)
    monkeypatch.setenv("CHULCHEO_STATE_DIR", str(service.settings.state_dir))
    monkeypatch.setenv("CHULCHEO_INDEX_DIR", str(service.settings.index_dir))
    out = tmp_path / "feedback_qa.jsonl"
    done = CliRunner().invoke(cli, ["feedback", "export", "--out", str(out)])
    assert done.exit_code == 0, done.output
    rows = read_qa_jsonl(out)  # the evaluation's own reader accepts it
    by_query = {r["query"]: r for r in rows}
    liked = by_query["연차휴가는 며칠인가요?"]
    assert liked["gold_ids"][0].endswith("취업규칙.txt") and "15일" in liked["answer"] and "[1]" not in liked["answer"]
    fixed = by_query["비밀코드는 무엇인가요?"]
    assert fixed["gold_ids"] == [hr_doc.doc_id] and fixed["answer"] == "비밀코드는 자두나무 73호이다."
    reviewed_only = CliRunner().invoke(cli, ["feedback", "export", "--reviewed-only"]).output
    assert [json.loads(line)["query"] for line in reviewed_only.splitlines()] == ["비밀코드는 무엇인가요?"]


def test_the_feedback_tab_handlers(rated):
    service, keys, _ = rated
    admin = service.sessions.handle(service.login("hr_admin", keys["hr_admin"]))
    user = service.sessions.handle(service.login("kim", keys["kim"]))
    rows, note = ui_feedback.feedback_rows(service, admin)
    assert [r[2] for r in rows] == ["lee"] and rows[0][3] == "👎" and "1건" in note
    assert ui_feedback.feedback_rows(service, user)[0] == []  # a user sees no ratings
    choices = ui_feedback.document_choices(service, admin)
    assert choices and all("(hr)" in label for label, _ in choices)
    saved = ui_feedback.save_review(service, admin, rows[0][0], choices[0][1], None, "맞는 답")
    assert saved.startswith("✔")
    assert "✗" in ui_feedback.save_review(service, user, rows[0][0], None, None, "x")
    assert ui_feedback.feedback_rows(service, admin)[0][0][8].endswith("(hr_admin)")
