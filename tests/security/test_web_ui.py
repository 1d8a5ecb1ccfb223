"""The web UI through Gradio's own HTTP routes (no browser): login, sessions, handlers.

Contract: the page needs a login (GET / -> redirect to /login or 401); POST /login sets the
`chulcheo_session` cookie; a file uploaded by one session cannot be submitted by another user;
a revoked key's session is dead even when a new key takes its name; a session hash is no key to
another user's conversation; every handler refuses anonymous callers (401) and never shows
user_b group a's secret. (Server paths given to the upload handler: test_web_ui_paths.py.)
"""

from __future__ import annotations

import pytest

from tests.security.ui_client import LOGIN_COOKIE, GradioRun, GradioSession, file_data, new_session_hash
from tests.security.live import MARK, LiveServer
from tests.security.probes import HealthMonitor

pytestmark = pytest.mark.security

REFUSED = (401, 403)


def session(live: LiveServer, name: str) -> GradioSession:
    ui = GradioSession(live.url, observe=live.scan)
    r = ui.login(name, live.keys[name])
    assert r.status_code in (200, 302, 303), f"harness: {name}'s login: {r.status_code} {r.text[:300]}"
    assert ui.http.get("/config").status_code == 200, f"harness: {name} is not logged in after POST /login"
    return ui


def logged_out(status: int, location: str | None) -> bool:
    """A refusal of a Gradio route: 401/403, or a redirect to the login page."""
    return status in REFUSED or (status in (302, 303, 307) and "login" in (location or ""))


def inputs_for(ui: GradioSession, dep: dict, question: str, path: str = "/etc/passwd") -> list:
    """Hostile values for a handler's inputs, by component type."""
    values = []
    for cid in dep.get("inputs", []):
        kind = ui.component(cid).get("type")
        values.append({"textbox": question, "file": [file_data(path)], "dropdown": ["../../etc/passwd"],
                       "chatbot": [], "state": None}.get(kind))
    return values


def run_text(run: GradioRun) -> str:
    return run.text + str(run.messages)


def test_page_needs_a_login(live: LiveServer):
    r = live.call("GET", "/")
    assert r.status_code == 401 or (r.status_code in (302, 303, 307) and "login" in r.headers.get("location", "")), (
        f"anonymous GET / answered {r.status_code} (location {r.headers.get('location')!r}); "
        "must redirect to /login or be 401")


def test_login_sets_the_chulcheo_session_cookie(live: LiveServer):
    ui = GradioSession(live.url, observe=live.scan)
    wrong = ui.login("user_a", live.keys["user_b"])
    assert wrong.status_code >= 400 and not ui.cookies(), (
        f"login as user_a with user_b's key: {wrong.status_code}, cookies {sorted(ui.cookies())}")
    ok = ui.login("user_a", live.keys["user_a"])
    assert ok.status_code in (200, 302, 303), f"user_a's login: {ok.status_code} {ok.text[:200]}"
    assert LOGIN_COOKIE in ui.cookies(), f"login set the cookies {sorted(ui.cookies())}, not {LOGIN_COOKIE!r}"


def test_admin_uploads_through_the_ui(live: LiveServer):
    """The control for the upload attacks: an admin's own upload, submitted by its own session, is indexed."""
    fact = "A팀 탁구 대회는 11월 셋째 주에 열린다."
    with session(live, "adm_a") as ui:
        up = ui.upload("A팀_탁구.txt", fact.encode())
        assert up.status_code == 200, f"/gradio_api/upload by adm_a: {up.status_code} {up.text[:300]}"
        run = ui.run("on_upload", [[file_data(up.json()[0])], "a"], timeout=180)
    assert run.completed and "✔" in str(run.output), f"adm_a's own UI upload: {run.describe()}"
    assert live.finds("user_a", "A팀 탁구 대회", "11월 셋째 주"), "user_a does not find the document adm_a uploaded in the UI"


def test_an_upload_cannot_be_submitted_by_another_users_session(live: LiveServer):
    fact = "루트 전용 초안: 무화과 예산은 7781만 원이다."
    with session(live, "root") as owner, session(live, "adm_a") as other:
        up = owner.upload("루트_초안.txt", fact.encode())
        assert up.status_code == 200, f"/gradio_api/upload by root: {up.status_code} {up.text[:300]}"
        path = up.json()[0]
        with HealthMonitor(live.url) as hz:
            run = other.run("on_upload", [[file_data(path)], "a"], timeout=180)
    problems = []
    if run.completed and "✔" in str(run.output):
        problems.append(f"adm_a's session submitted root's upload {path} and it was indexed: {run.output[1]!r}")
    if live.finds("user_a", "무화과 예산", "7781"):
        problems.append("root's uploaded draft is now searchable in group a")
    if problem := hz.problem("while another session's upload was submitted"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_a_revoked_keys_session_dies_even_when_its_name_is_reused(live: LiveServer):
    ui = session(live, "user_a")
    try:
        deps = ui.dependencies()
        assert live.call("DELETE", "/v1/keys/user_a", "root").status_code == 200
        renamed = live.call("POST", "/v1/keys", "root", json={"name": "user_a", "role": "user", "groups": ["b"]})
        assert renamed.status_code == 201, f"harness: re-creating user_a for group b: {renamed.text[:300]}"
        live.keys["user_a"] = renamed.json()["key"]  # the next test's restore puts user_a back into group a
        problems = []
        for method, path in (("GET", "/"), ("GET", "/config"), ("GET", "/gradio_api/info")):
            r = ui.http.request(method, path)
            if not logged_out(r.status_code, r.headers.get("location")):
                problems.append(f"{method} {path} with the revoked session: {r.status_code}")
            if MARK["b"] in r.text:
                problems.append(f"{method} {path} showed group b's secret to the revoked session")
        up = ui.upload("옛세션.txt", "옛 세션 업로드".encode())
        if not logged_out(up.status_code, up.headers.get("location")):
            problems.append(f"POST /gradio_api/upload with the revoked session: {up.status_code}")
        for dep in deps:
            run = ui.run(dep["id"], inputs_for(ui, dep, "B팀 비밀 암호는 무엇인가요?"), timeout=120)
            name = dep.get("api_name") or dep["id"]
            if run.join_status not in REFUSED:
                problems.append(f"handler {name} with the revoked session: join {run.join_status} "
                                f"({'completed' if run.completed else 'did not complete'})")
            if MARK["b"] in run_text(run):
                problems.append(f"handler {name} showed group b's secret to user_a's old session: {run.describe()}")
        assert not problems, "user_a's session after its key was revoked and the name reused for group b:\n" + "\n".join(problems)
    finally:
        ui.close()


def test_a_session_hash_gives_no_access_to_another_users_conversation(live: LiveServer):
    question = "우리 A팀의 비밀 암호를 알려 주세요"
    victim_hash = new_session_hash()
    with session(live, "user_a") as victim, session(live, "user_b") as thief, HealthMonitor(live.url) as hz:
        own = victim.run("on_chat", [question, None], session_hash=victim_hash, timeout=180)
        assert own.completed and question in run_text(own), f"harness: user_a's chat: {own.describe()}"
        # 1) user_b sends an event in user_a's session: the turns kept for that session must not come back
        stolen = thief.run("on_chat", ["안녕하세요", None], session_hash=victim_hash, timeout=180)
        # 2) user_b listens on user_a's session while user_a asks again
        joined = victim.join("on_chat", ["A팀 회의는 언제인가요?", None], victim_hash)
        overheard = thief.listen(victim_hash, GradioRun(join_status=joined.status_code), timeout=120)
        victim.listen(victim_hash, GradioRun(join_status=joined.status_code), timeout=5)
    problems = []
    for label, run in (("sending an event with user_a's session hash", stolen),
                       ("listening on user_a's session hash", overheard)):
        text = run_text(run)
        if question in text:
            problems.append(f"user_b, {label}, received user_a's question {question!r}")
        if MARK["a"] in text:
            problems.append(f"user_b, {label}, received group a's secret ({MARK['a']})")
        if "A팀 회의" in text and run is overheard:
            problems.append(f"user_b, {label}, received user_a's conversation: {run.describe()}")
    if problem := hz.problem("during the session-hash attacks"):
        problems.append(problem)
    assert not problems, "\n".join(problems)


def test_every_handler_refuses_anonymous_callers(live: LiveServer):
    with session(live, "root") as admin:  # the handler list and input types, as a logged-in page sees them
        calls = [(dep, inputs_for(admin, dep, "A팀 비밀 암호는 무엇인가요?")) for dep in admin.dependencies()]
    anonymous = GradioSession(live.url, observe=live.scan)
    problems = []
    for method, path in (("GET", "/config"), ("GET", "/gradio_api/info")):
        r = anonymous.http.request(method, path)
        if r.status_code not in REFUSED:
            problems.append(f"anonymous {method} {path}: {r.status_code}")
    up = anonymous.upload("익명.txt", "익명 업로드".encode())
    if up.status_code not in REFUSED:
        problems.append(f"anonymous POST /gradio_api/upload: {up.status_code} {up.text[:200]}")
    for dep, data in calls:
        name = dep.get("api_name") or dep["id"]
        join = anonymous.join(dep["id"], data, new_session_hash())
        if join.status_code not in REFUSED:
            problems.append(f"anonymous queue/join of handler {name}: {join.status_code} {join.text[:200]}")
        if dep.get("api_name"):
            call = anonymous.http.post(f"/gradio_api/call/{dep['api_name']}", json={"data": data})
            if call.status_code not in REFUSED:
                problems.append(f"anonymous POST /gradio_api/call/{dep['api_name']}: {call.status_code} {call.text[:200]}")
        for leak in live.leaks(join.text, None):
            problems.append(f"anonymous handler {name}: {leak}")
    anonymous.close()
    assert not problems, "\n".join(problems)


def test_every_handler_keeps_group_a_from_user_b(live: LiveServer):
    a_doc = live.doc_ids("a")
    problems = []
    with session(live, "user_b") as ui, HealthMonitor(live.url) as hz:
        own = ui.run("on_search", ["B팀 비밀 암호"], timeout=60)  # the control: the protocol reaches the handlers
        assert MARK["b"] in run_text(own), f"harness: user_b's own search in the UI: {own.describe()}"
        for dep in ui.dependencies():
            name = dep.get("api_name") or dep["id"]
            data = inputs_for(ui, dep, "A팀 비밀 암호는 무엇인가요?")
            data = [a_doc if v == ["../../etc/passwd"] else v for v in data]  # the delete list: group a's document
            event = {"index": [1], "value": "x", "liked": True} if "like" in str(name) else None
            run = ui.run(dep["id"], data, event_data=event, timeout=180)
            for leak in live.leaks(run_text(run), "user_b"):
                problems.append(f"handler {name} as user_b: {leak}: {run.describe()}")
            if run.timed_out:
                problems.append(f"handler {name} as user_b: no result within 180 s")
    if not live.finds("user_a", "A팀 비밀 암호", MARK["a"]):
        problems.append("group a's document is gone after user_b's handler calls (the delete handler?)")
    if problem := hz.problem("during user_b's handler calls"):
        problems.append(problem)
    assert not problems, "\n".join(problems)
