"""The web UI's handlers and rendering over fast fake models; the real browser run is in tests/integration."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.server import ui, ui_render
from app.server.api import create_app
from app.schemas import public_id
from grounding import Answer, Citation, SentenceCheck
from prompts import ABSTAIN
from retrieval.types import Chunk, Hit

QUESTION = "연차휴가는 며칠인가요?"


@pytest.fixture
def svc(make_service):
    """A keyed service with an admin (every group), kim (public) and lee (hr), each logged in to
    the UI: `svc.ui_users[name]` is the session handle the handlers get as the user."""
    service = make_service()
    service.ui_keys, service.ui_users = {}, {}
    for name, role, groups in (("admin", "admin", "*"), ("kim", "user", "public"), ("lee", "user", "hr")):
        service.ui_keys[name] = key = service.keys.create(name, role, groups)[1]
        service.ui_users[name] = service.sessions.handle(service.login(name, key))
    return service


@pytest.fixture
def users(svc):
    return svc.ui_users


def last(states):
    """The final (messages, cards, turns, textbox) state of a chat run."""
    return states[-1]


def shown_answer(state) -> str:
    return state[0][-1]["content"]


def evil_answer() -> Answer:
    text = "공지 <script>alert('x')</script> 연차휴가는 15일이다. 끝 & 기타"
    start = text.index("연차휴가")
    end = text.index("이다.") + 3
    chunk = Chunk("c1", "d1", text, "/srv/docs/규정 <b>.txt", page=3, group="hr")
    check = SentenceCheck("연차휴가는 15일입니다.", True, 0.9, citations=[1])
    cite = Citation(1, "d1", chunk.source, 3, "c1", text[start:end], start, end)
    return Answer("연차휴가는 15일입니다 [1].", False, "generated", [check], [cite], [Hit(chunk, 1.0, 1)], QUESTION, QUESTION)


def test_citation_card_marks_the_quote_and_escapes_untrusted_document_text():
    html = ui_render.cards_html(evil_answer())
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; 기타" in html
    assert "<mark>연차휴가는 15일이다.</mark>" in html
    assert "[1]" in html and "규정 &lt;b&gt;.txt" in html and "/srv/docs" not in html  # file name only
    assert "3쪽" in html and "그룹 hr" in html


def test_answer_rendering_labels_extractive_marks_unsupported_and_escapes():
    a = evil_answer()
    bad = SentenceCheck("병가는 <i>90일</i>입니다.", False, 0.1, reasons=["numbers"])
    mixed = Answer(a.answer, False, "generated", [*a.sentences, bad], a.citations, a.hits, QUESTION, QUESTION)
    assert ui_render.answer_html(mixed) == '<div class="ck-answer">연차휴가는 15일입니다 <span class="ck-ref">[1]</span>.</div>'
    marked = ui_render.answer_html(mixed, mark=True)
    assert "⚠ 확인되지 않음" in marked and "ck-unsupported" in marked and "숫자·단위가 문서와 다름" in marked
    assert "<i>" not in marked and "&lt;i&gt;90일" in marked
    quoted = SentenceCheck("연차휴가는 15일이다.", True, 1.0, citations=[1], quoted=True)
    extractive = Answer(a.answer, False, "extractive", [bad, quoted], a.citations, a.hits, QUESTION, QUESTION)
    shown = ui_render.answer_html(extractive)
    assert "문서 원문 인용" in shown and "연차휴가는 15일이다" in shown and "90일" not in shown
    assert ui_render.excerpt_html("가" * 300 + "나다" + "라" * 300, 300, 302, around=5) == "…가가가가가<mark>나다</mark>라라라라라…"


def test_a_quoted_unit_a_not_found_part_and_the_highlight_inside_a_card():
    a = evil_answer()
    text = a.hits[0].chunk.text
    start, end = a.citations[0].start, a.citations[0].end
    hs = text.index("15일")
    cite = Citation(1, "d1", a.citations[0].source, 3, "c1", text[start:end], start, end, hs, hs + 3)
    quoted = SentenceCheck("연차휴가는 15일이다.", True, 1.0, citations=[1], quoted=True)
    note = SentenceCheck("질문 중 '병가'에 대한 내용은 문서에서 찾지 못했습니다.", False, 0.0, reasons=["not_found"], not_found=True)
    cut = SentenceCheck("병가는 60일입니다.", False, 0.9, reasons=["budget"])
    answer = Answer("…", False, "generated", [quoted, note, cut], [cite], a.hits, QUESTION, QUESTION)
    html = ui_render.answer_html(answer, mark=True)
    assert 'class="ck-quote"' in html and '<span class="ck-notfound">ℹ 질문 중 &#x27;병가&#x27;' in html
    assert "60일" not in html  # left out for length is not a refused sentence: not flagged either
    card = ui_render.cards_html(answer)
    assert "<mark>연차휴가는 <strong>15일</strong>이다.</mark>" in card
    # a highlight outside the quote is ignored, never shown as if relied on
    assert "<strong>" not in ui_render.excerpt_html(text, start, end, highlight=(0, 3))


def test_source_view_of_a_pdf_citation_shows_its_page_with_the_span_boxed():
    a = evil_answer()
    c = a.citations[0]
    pdf = Citation(1, "/srv/docs/규정.pdf", "/srv/docs/규정.pdf", 3, "c1", c.quote, c.start, c.end,
                   boxes=((0.1, 0.2, 0.5, 0.25),))
    html = ui_render.source_html(pdf)
    doc = public_id("/srv/docs/규정.pdf")
    assert html.startswith('<details class="ck-src"><summary>원문 보기</summary>')  # closed: the page loads when opened
    assert f'src="v1/documents/{doc}/pages/3.png"' in html and 'loading="lazy"' in html
    assert 'style="left:10.00%;top:20.00%;width:40.00%;height:5.00%"' in html
    assert f'href="v1/documents/{doc}/file" download' in html and "/srv/docs" not in html
    unboxed = ui_render.source_html(Citation(1, "d", "/srv/스캔.png", 1, "c1", c.quote, c.start, c.end))
    assert "ck-hl" not in unboxed and "찾지 못했습니다" in unboxed


def test_source_view_of_a_text_citation_shows_its_neighbours_escaped():
    a = evil_answer()
    c = a.citations[0]
    before = Chunk("c0", "d1", "앞 문단 <img src=x onerror=alert(1)>", "/srv/docs/규정 <b>.txt", group="hr")
    after = Chunk("c2", "d1", "뒤 문단", "/srv/docs/규정 <b>.txt", group="hr")
    html = ui_render.source_html(c, lambda cite: [before, a.hits[0].chunk, after])
    assert "<img" not in html and "앞 문단 &lt;img" in html and "뒤 문단" in html
    assert "<mark>연차휴가는 15일이다.</mark>" in html and "&lt;script&gt;" in html
    assert ui_render.source_html(c, lambda cite: []).count("<mark>") == 1  # the quote alone
    assert "원문 보기" in ui_render.cards_html(a)


def test_chat_cards_open_the_cited_passage_of_the_callers_own_documents(svc, users):
    *_, cards, _, _ = last(list(ui.chat(svc, users["kim"], QUESTION, [])))
    assert "원문 보기" in cards and 'class="ck-around"' in cards and "15일" in cards
    assert "자두나무" not in cards  # hr's secret never shows up around a public citation


def test_chat_streams_checked_sentences_and_ends_with_a_cited_answer(svc, users):
    states = list(ui.chat(svc, users["kim"], QUESTION, []))
    assert "확인 중" in shown_answer(states[0]) and states[0][3] == ""  # the textbox is cleared at once
    messages, cards, turns, _ = last(states)
    assert messages[0] == {"role": "user", "content": QUESTION}
    assert "연차휴가는 15일입니다" in messages[1]["content"] and "[1]" in messages[1]["content"]
    assert "확인 중" not in messages[1]["content"]
    assert "<mark>연차휴가는 15일이다.</mark>" in cards and "취업규칙.txt" in cards and "그룹 public" in cards
    (turn,) = turns
    assert turn["plain"] == "연차휴가는 15일입니다." and turn["citations"][0]["quote"] == "연차휴가는 15일이다."


def test_follow_up_sends_earlier_turns_as_plain_history(svc, users, monkeypatch):
    turns = last(list(ui.chat(svc, users["kim"], QUESTION, [])))[2]
    seen = []
    stream = svc.stream
    monkeypatch.setattr(svc, "stream", lambda who, q, history=None: seen.append(history) or stream(who, q, history))
    messages, _, turns, _ = last(list(ui.chat(svc, users["kim"], "재택근무는요?", turns)))
    assert seen == [[{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "연차휴가는 15일입니다."}]]
    assert len(messages) == 4 and len(turns) == 2 and "재택근무" in messages[3]["content"]


def test_public_user_never_sees_hr_text(svc, users):
    states = list(ui.chat(svc, users["kim"], "비밀코드는 무엇인가요?", []))
    assert all("자두나무" not in json.dumps(s[:3], ensure_ascii=False) for s in states)
    assert "자두나무" not in ui.search_documents(svc, users["kim"], "비밀코드 자두나무 73호")
    assert "자두나무 73호" in ui.search_documents(svc, users["lee"], "비밀코드 자두나무 73호")
    assert "자두나무 73호" in shown_answer(last(list(ui.chat(svc, users["lee"], "비밀코드는 무엇인가요?", []))))


def test_abstention_and_errors_are_korean_messages(svc, users, make_service, tmp_path):
    messages, cards, turns, _ = last(list(ui.chat(svc, users["kim"], "회사 주차장은 어디에 있나요?", [])))
    assert ABSTAIN in messages[-1]["content"] and "출처가 없습니다" in cards and turns[0]["citations"] == []
    empty = make_service(open_mode=True)
    empty.pipeline.settings = empty.pipeline.settings.model_copy(update={"index_dir": tmp_path / "nothing"})
    messages, cards, turns, _ = last(list(ui.chat(empty, None, QUESTION, [])))
    assert "아직 색인된 문서가 없습니다" in messages[-1]["content"] and turns[0]["plain"] is None
    assert "다시 로그인" in shown_answer(last(list(ui.chat(svc, "revoked-user", QUESTION, []))))
    assert last(list(ui.chat(svc, users["kim"], "   ", [])))[2] == []  # nothing asked, nothing added


def test_wrong_number_is_quoted_or_marked_never_shown_as_fact(svc, users):
    states = list(ui.chat(svc, users["kim"], "병가는 며칠인가요?", []))  # the fake model says 90일; the source 60일
    assert all("90일" not in shown_answer(s) for s in states)
    final = shown_answer(last(states))
    assert "문서 원문 인용" in final and "60일" in final
    settings = svc.pipeline.settings
    svc.pipeline.settings = settings.model_copy(update={"answer": settings.answer.model_copy(update={"unsupported": "mark"})})
    svc.pipeline._checker = None  # rebuilt from the new settings
    states = list(ui.chat(svc, users["kim"], "병가는 며칠인가요?", []))
    flagged = [shown_answer(s) for s in states if "90일" in shown_answer(s)]
    assert flagged and all("⚠ 확인되지 않음" in f and "숫자·단위가 문서와 다름" in f for f in flagged)


def test_feedback_is_stored_with_question_answer_and_citations(svc, users):
    turns = last(list(ui.chat(svc, users["kim"], QUESTION, [])))[2]
    assert ui.feedback(svc, users["kim"], turns, 1, False) == "의견을 저장했습니다. 감사합니다."
    (row,) = svc.feedback.list()
    assert (row["user"], row["rating"], row["question"]) == ("kim", -1, QUESTION)
    assert row["answer"] == "연차휴가는 15일입니다 [1]." and row["citations"][0]["quote"] == "연차휴가는 15일이다."
    ui.feedback(svc, users["kim"], turns, 1, True)
    assert svc.feedback.list()[0]["rating"] == 1
    assert "남길 수 없습니다" in ui.feedback(svc, users["kim"], turns, 7, True)
    assert ui.feedback(svc, users["kim"], turns, 1, "") == "" and len(svc.feedback.list()) == 2  # un-clicked: nothing stored


def test_admin_uploads_searches_and_deletes_a_document(svc, users, tmp_path):
    doc = tmp_path / "동호회.txt"
    doc.write_text("사내 동호회 지원금은 분기마다 12만 원이다.", encoding="utf-8")
    bad = tmp_path / "설치.exe"
    bad.write_bytes(b"MZ\x90\x00")
    calls = []
    result = ui.upload_files(svc, users["admin"], [str(doc), str(bad)], "public", lambda f, desc="": calls.append(f))
    assert "✔ 동호회.txt: 색인 완료" in result and "✗ 설치.exe: 거부됨 — 허용되지 않는 파일 형식입니다" in result
    rows, choices, note = ui.documents_view(svc, users["admin"])
    (row,) = [r for r in rows if r[0] == "동호회.txt"]
    assert row[1:4] == ["public", 1, "색인됨"] and row[4] and note == ""
    assert "12만 원" in ui.search_documents(svc, users["admin"], "동호회 지원금")
    assert "문서 3개" in ui.stats_html(svc, users["admin"])
    assert "다시 색인 완료" in ui.reindex_all(svc, users["admin"], lambda f, desc="": None)
    assert "삭제했습니다" in ui.delete_documents(svc, users["admin"], [row[5]])
    assert all(r[0] != "동호회.txt" for r in ui.documents_view(svc, users["admin"])[0])
    assert all(f <= 1 for f in calls)


def test_non_admin_gets_a_korean_permission_message(svc, users, tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("안녕하세요", encoding="utf-8")
    assert ui.session_info(svc, users["kim"]) == ("**kim** 님 (사용자 · 그룹: public)", False)
    assert ui.session_info(svc, users["admin"])[1] is True
    for result in (ui.upload_files(svc, users["kim"], [str(doc)]), ui.documents_view(svc, users["kim"])[2],
                   ui.delete_documents(svc, users["kim"], ["x"]), ui.reindex_all(svc, users["kim"]), ui.stats_html(svc, users["kim"])):
        assert "관리자 권한이 필요합니다" in result
    assert not svc.upload_dir.exists() or not any(p.is_file() for p in svc.upload_dir.rglob("*"))


def test_ui_is_mounted_at_root_behind_the_key_login(svc):
    client = TestClient(create_app(svc))
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "login"
    form = client.get("/login")
    assert form.status_code == 200 and "API 키" in form.text and 'name="password"' in form.text
    assert client.get("/config").status_code == 401
    key = svc.keys.create("park", "admin", "*")[1]
    assert client.post("/login", data={"username": "park", "password": "wrong"}).status_code == 401
    assert client.post("/login", data={"username": "kim", "password": key}).status_code == 401  # someone else's key
    r = client.post("/login", data={"username": "park", "password": key}, follow_redirects=False)
    assert r.status_code == 303 and "chulcheo_session" in r.cookies
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/").status_code == 200
    config = client.get("/config").json()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"질문하기", "관리", "문서 검색"} <= labels
    assert client.get("/healthz").json() == {"status": "ok"}  # the API is not shadowed by the UI
    client.get("/logout")
    assert client.get("/config").status_code == 401


def test_a_ui_session_dies_with_its_key_and_never_passes_to_a_new_key_of_the_same_name(svc, users):
    assert ui.session_info(svc, users["kim"])[0].startswith("**kim**")
    svc.revoke_key(svc.ui_principal(users["admin"]), "kim")
    assert "다시 로그인" in ui.session_info(svc, users["kim"])[0]
    svc.keys.create("kim", "user", "hr")  # same name, another group
    assert "다시 로그인" in ui.session_info(svc, users["kim"])[0]
    assert "다시 로그인" in shown_answer(last(list(ui.chat(svc, users["kim"], "비밀코드는 무엇인가요?", []))))


def test_conversation_state_belongs_to_the_login_that_made_it(svc, users):
    import gradio as gr

    turns = last(list(ui.chat(svc, users["lee"], "비밀코드는 무엇인가요?", [])))[2]
    state = ui.owned(turns, users["lee"])
    assert ui.own_turns(state, users["lee"]) == turns
    with pytest.raises(gr.Error):  # kim sent lee's session_hash: lee's state is refused, not read
        ui.own_turns(state, users["kim"])
    assert ui.own_turns(None, users["kim"]) == [] and ui.own_turns([], users["kim"]) == []


def test_ui_upload_accepts_only_this_sessions_own_regular_files(svc, users, tmp_path):
    from app.server.ui_auth import UploadRegistry, check_ui_file

    root = tmp_path / "ui-uploads"
    (root / "abc").mkdir(parents=True)
    mine = root / "abc" / "규정.txt"
    mine.write_text("연차휴가는 15일이다.", encoding="utf-8")
    theirs = root / "abc" / "남의파일.txt"
    theirs.write_text("비밀", encoding="utf-8")
    link = root / "abc" / "link.txt"
    link.symlink_to("/etc/passwd")
    registry = UploadRegistry()
    registry.add(str(mine), users["admin"])
    registry.add(str(theirs), users["kim"])
    registry.add(str(link), users["admin"])
    check = lambda p: check_ui_file(str(p), users["admin"], registry, root, open_mode=False)  # noqa: E731
    assert check(mine) is None
    assert "서버 경로" in check("/etc/passwd") and "서버 경로" in check("/dev/zero")
    assert "서버 경로" in check(root / ".." / "outside.txt")
    assert check(theirs) and check(link) and check(root / "abc")  # another session's, a symlink, a folder


def test_open_mode_needs_no_login_and_shows_admin(make_service):
    service = make_service(open_mode=True)
    client = TestClient(create_app(service))
    page = client.get("/")
    assert page.status_code == 200 and '"auth_required":true' not in page.text
    assert client.get("/config").status_code == 200
    assert ui.session_info(service, None)[1] is True


def test_rate_limit_and_timeout_are_korean_messages():
    from app.limits import RateLimited
    from app.service import AnswerTimeout

    assert "너무 잦습니다" in ui_render.error_text(RateLimited("key 'kim': retry in 9 s", 9))
    assert "오래 걸려" in ui_render.error_text(AnswerTimeout("took longer than 180 s"))


def test_a_gradio_session_hash_belongs_to_the_login_that_first_used_it(svc):
    app = create_app(svc)
    kim, lee = TestClient(app), TestClient(app)
    for client, name in ((kim, "kim"), (lee, "lee")):
        r = client.post("/login", data={"username": name, "password": svc.ui_keys[name]}, follow_redirects=False)
        assert r.status_code == 303
    join = {"data": ["연차휴가는 며칠인가요?"], "fn_index": 0, "session_hash": "h-kim-1", "event_data": None}
    assert kim.post("/gradio_api/queue/join", json=join).status_code != 403
    # lee names kim's hash: to send events into it, to listen on it, or to keep it alive
    assert lee.post("/gradio_api/queue/join", json=join).status_code == 403
    assert lee.get("/gradio_api/queue/data", params={"session_hash": "h-kim-1"}).status_code == 403
    assert lee.get("/gradio_api/heartbeat/h-kim-1").status_code == 403
    assert lee.post("/gradio_api/cancel", json={"session_hash": "h-kim-1", "fn_index": 0,
                                               "event_id": "x"}).status_code == 403
    assert lee.post("/gradio_api/queue/join", json={**join, "session_hash": "h-lee-1"}).status_code != 403
