"""The web UI (Gradio) at `/`: questions answered with their sources, and document admin.

app = mount_ui(create_app(service, ui=False), service)   # GET / -> login page (keys) or the chat
Handlers are plain functions of (service, login name, inputs), testable without a browser:
chat(service, "kim", "연차휴가는 며칠인가요?", []) -> yields (messages, cards HTML, turns, ""), the last
one with "연차휴가는 15일입니다 [1]." and a card for [1] with the quote in <mark>.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from grounding import Citation, SentenceCheck
from prompts import ABSTAIN
from retrieval.types import Chunk

from ..audit import via
from ..auth import AuthError, Principal
from ..jobs import Job
from ..pipeline import MB
from ..schemas import citation_to_dict
from ..service import Service, UploadRejected
from .ui_feedback import build_feedback_tab
from .ui_auth import RedactSessionHash, UiGuard, UploadRegistry, add_login_routes, check_ui_file, session_dependency
from .ui_render import (
    NO_CARDS,
    answer_html,
    card_html,
    cards_html,
    error_text,
    _esc,
    file_name,
    _notes,
    streaming_html,
    upload_reason,
)

log = logging.getLogger(__name__)

Progress = Callable[..., Any]  # gr.Progress, or a test's stand-in: progress(fraction, desc="…")

STATUS = {"indexed": "색인됨", "queued": "대기 중", "indexing": "색인 중", "failed": "실패", "needs_ocr": "OCR 필요"}
STAGES = {"read": "읽는 중", "ocr": "OCR 중 (쪽)", "chunk": "나누는 중", "embed": "임베딩 중", "write": "저장 중"}
DOC_HEADERS = ["파일", "그룹", "청크", "상태", "색인 시각", "doc_id"]


# ---------------------------------------------------------------------- chat
def chat_messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The Chatbot value: each turn's question (escaped) and its rendered answer."""
    return [m for t in turns for m in ({"role": "user", "content": _esc(t["question"])},
                                       {"role": "assistant", "content": t["html"]})]


def chat(service: Service, user: str | None, message: str,
         turns: list[dict[str, Any]]) -> Iterator[tuple[list[dict[str, str]], str, list[dict[str, Any]], str]]:
    """Answer `message`, yielding UI states (chat messages, citation cards, turns, textbox value).

    Only checked sentences are ever shown. `turns` keeps each answer's plain text (history of
    follow-ups) and citation dicts (feedback); an error becomes a Korean message, not a crash.
    """
    question, turns = (message or "").strip(), list(turns or [])
    if not question:
        yield chat_messages(turns), turns[-1]["cards"] if turns else NO_CARDS, turns, ""
        return
    mark = service.settings.answer.unsupported == "mark"
    pending = {"question": question, "html": streaming_html([], mark)}
    waiting = '<div class="ck-empty">답변을 확인하는 중입니다…</div>'
    yield chat_messages([*turns, pending]), waiting, turns, ""
    checks: list[SentenceCheck] = []
    answer = None
    try:
        who = service.ui_principal(user)
        history = [m for t in turns if t["plain"] is not None
                   for m in ({"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["plain"]})]
        with via("ui"):  # the stream is recorded as the web UI's when it ends
            events = service.stream(who, question, history)
        for event in events:
            if event.kind == "answer":
                answer = event.answer
            elif event.check is not None and (event.check.supported or event.check.not_found or mark):
                checks.append(event.check)
                pending["html"] = streaming_html(checks, mark)
                yield chat_messages([*turns, pending]), waiting, turns, ""
        if answer is None:
            raise RuntimeError("the answer stream ended without an answer")
    except Exception as exc:  # any failure is shown in the chat; the server keeps running
        turn = {"question": question, "html": f'<div class="ck-error">⚠ {_esc(error_text(exc))}</div>',
                "answer": None, "plain": None, "citations": [], "cards": NO_CARDS}
    else:
        shown = [s.text.strip() for s in answer.sentences
                 if s.not_found or (s.supported and (answer.mode != "extractive" or s.quoted))]
        turn = {"question": question, "html": answer_html(answer, mark), "answer": answer.answer,
                "plain": ABSTAIN if answer.abstained else " ".join(shown),
                "citations": [citation_to_dict(c) for c in answer.citations],
                "cards": cards_html(answer, around=functools.partial(_around, service, who))}
    turns = [*turns, turn]
    yield chat_messages(turns), turn["cards"], turns, ""


def _around(service: Service, who: Principal, c: Citation) -> list[Chunk]:
    """The cited passage with its neighbours for 원문 보기 (none when the index changed under it)."""
    try:
        return service.context_of(who, c.doc_id, c.chunk_id)
    except Exception as exc:  # a deleted or re-indexed document: the card still shows the quote
        log.info("no surrounding text for %s: %s", c.chunk_id, exc)
        return []


def feedback(service: Service, user: str | None, turns: list[dict[str, Any]], index: Any, liked: Any) -> str:
    """Store 👍/👎 on the answer at chat message `index` (user, assistant, user, …): -> "의견을 저장했습니다…".

    Un-clicking a thumb (liked "") stores nothing and says nothing.
    """
    rating = 1 if liked is True or liked == "Like" else -1 if liked is False or liked == "Dislike" else 0
    i = (index[0] if isinstance(index, list | tuple) else index or 0) // 2
    if not rating:
        return ""
    if not 0 <= i < len(turns) or turns[i]["answer"] is None:
        return "이 메시지에는 의견을 남길 수 없습니다."
    t = turns[i]
    try:
        with via("ui"):
            service.add_feedback(service.ui_principal(user), rating, t["question"], t["answer"], t["citations"])
    except Exception as exc:
        return error_text(exc)
    return "의견을 저장했습니다. 감사합니다."


# ---------------------------------------------------------------------- admin
def _admin(service: Service, user: str | None) -> Principal:
    who = service.ui_principal(user)
    who.require_admin("web UI admin")
    return who


def _noted(handler: Callable[..., str]) -> Callable[..., str]:
    """Admin handlers: a failure (not an admin, no index, …) becomes a Korean note, not an error popup."""
    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> str:
        try:
            with via("ui"):  # the audit log records these calls as the web UI's
                return handler(*args, **kwargs)
        except Exception as exc:
            return _notes([("✗", error_text(exc))])
    return run


def _when(iso: str | None) -> str:
    """"2026-03-02T04:05:06+00:00" -> "2026-03-02 13:05" in the server's time zone (ingest writes ISO UTC)."""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M") if iso else ""


def session_info(service: Service, user: str | None) -> tuple[str, bool]:
    """The header line and whether the admin tab is shown: ("**admin** 님 (관리자 · 그룹: 전체)", True)."""
    if service.open_mode:
        return "데모 모드 (로그인 없음): 모든 문서와 관리 기능을 쓸 수 있습니다.", True
    try:
        who = service.ui_principal(user)
    except AuthError as exc:
        return error_text(exc), False
    groups = "전체" if who.groups is None else ", ".join(sorted(who.groups))
    return f"**{_esc(who.name)}** 님 ({'관리자' if who.is_admin else '사용자'} · 그룹: {_esc(groups)})", who.is_admin


def documents_view(service: Service, user: str | None) -> tuple[list[list[Any]], list[tuple[str, str]], str]:
    """(table rows for DOC_HEADERS, delete choices [(label, doc_id)], note HTML)."""
    try:
        docs = service.documents(_admin(service, user))
    except Exception as exc:
        return [], [], _notes([("✗", error_text(exc))])
    rows, choices = [], []
    for d in docs:
        status = STATUS.get(d["status"], d["status"]) + (f": {d['error']}" if d.get("error") else "")
        rows.append([file_name(d["source"]), d["group"], d["chunks"], status, _when(d["ingested_at"]), d["doc_id"] or ""])
        if d["doc_id"]:
            choices.append((f"{file_name(d['source'])} ({d['group']}, {d['doc_id'][:10]})", d["doc_id"]))
    return rows, choices, ""


def wait_job(service: Service, job_id: str, progress: Progress | None, label: str,
             i: int = 0, n: int = 1, poll: float = 0.25) -> Job | None:
    """Poll a background job until it ends, reporting (i + its fraction) / n to `progress`."""
    while True:
        job = service.jobs.get(job_id)
        if job is None or job.status in ("done", "failed"):
            return job
        if progress is not None:
            progress((i + job.to_dict()["progress"]) / n, desc=f"{label}: {STAGES.get(job.stage, '대기 중')}")
        time.sleep(poll)


@_noted
def upload_files(service: Service, user: str | None, files: list[str] | None, group: str = "public",
                 progress: Progress | None = None) -> str:
    """Store and index each file (waiting for it); per file "✔ 규정.txt: 색인 완료 …" or why it was refused."""
    who = _admin(service, user)
    if not files:
        return _notes([("ℹ", "올릴 파일을 선택하세요.")])
    lines, jobs = [], []
    for f in files:
        path = Path(getattr(f, "name", f))  # a path, or a tempfile wrapper in older Gradio
        try:
            with path.open("rb") as data:
                jobs.append((path.name, service.upload(who, path.name, data, (group or "").strip() or "public")))
        except UploadRejected as exc:
            lines.append(("✗", f"{path.name}: 거부됨 — {upload_reason(service, exc)}"))
        except Exception as exc:
            lines.append(("✗", f"{path.name}: {error_text(exc)}"))
    for i, (name, job) in enumerate(jobs):
        done = wait_job(service, job.id, progress, name, i, len(jobs))
        if done is not None and done.status == "done":
            r = done.result or {}
            if r.get("needs_ocr"):
                lines.append(("⚠", f"{name}: 저장됨, 색인 안 됨 — 스캔 문서라 OCR이 필요합니다 "
                                   "(Tesseract 설치 후 '전체 다시 색인')"))
                continue
            how = "새 문서" if r.get("added") else "갱신됨" if r.get("updated") else "변경 없음"
            lines.append(("✔", f"{name}: 색인 완료 ({how}, 그룹 {done.detail.get('group')})"))
        else:
            lines.append(("✗", f"{name}: 색인 실패 — {done.error if done else '작업을 찾을 수 없음'}"))
    return _notes(lines)


@_noted
def delete_documents(service: Service, user: str | None, doc_ids: list[str] | str | None) -> str:
    who = _admin(service, user)
    ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids or [])
    if not ids:
        return _notes([("ℹ", "삭제할 문서를 고르세요.")])
    return _notes([("✔", f"삭제했습니다: {', '.join(file_name(d.source) for d in service.delete(who, ids))}")])


@_noted
def reindex_all(service: Service, user: str | None, progress: Progress | None = None) -> str:
    """Re-read every document's file (changed ones re-embedded); waits, reporting progress."""
    job = service.reindex(_admin(service, user))
    done = wait_job(service, job.id, progress, "다시 색인")
    if done is None or done.status != "done":
        return _notes([("✗", f"다시 색인 실패 — {done.error if done else '작업을 찾을 수 없음'}")])
    r = done.result or {}
    return _notes([("✔", f"다시 색인 완료: 새 문서 {r.get('added', 0)}, 갱신 {r.get('updated', 0)}, "
                         f"변경 없음 {r.get('unchanged', 0)}, 삭제 {r.get('deleted', 0)}, "
                         f"실패 {len(r.get('failed', []))} (청크 합계 {r.get('chunks', 0)})")])


@_noted
def stats_html(service: Service, user: str | None) -> str:
    s = service.stats(_admin(service, user))  # stats() itself does not check the role: it names models
    groups = ", ".join(f"{g} {n}개" for g, n in s["groups"].items()) or "없음"
    return _notes([("·", f"색인 현황: 문서 {s['documents']}개 · 청크 {s['chunks']}개 · 그룹별 문서: {groups}"),
                   ("·", f"임베딩 모델 {s['embedding_model']} · 답변 모델 {s['generation_model']}")])


@_noted
def search_documents(service: Service, user: str | None, query: str) -> str:
    """Hits within the caller's groups as cards (file, group, text), best first."""
    if not (query or "").strip():
        return _notes([("ℹ", "검색어를 입력하세요.")])
    hits = service.search(service.ui_principal(user), query, k=5)  # a preview: the best few
    cards = [card_html(f"{h.rank}.", h.chunk.source, h.chunk.page, h.chunk.group,
                       _esc(h.chunk.text[:200] + ("…" if len(h.chunk.text) > 200 else ""))) for h in hits]
    return f'<div class="ck-cards">{"".join(cards)}</div>' if cards else _notes([("ℹ", "검색 결과가 없습니다.")])


# ---------------------------------------------------------------------- wiring
CSS = """
.ck-answer{line-height:1.7}.ck-ref{color:#1d4ed8;font-weight:600;font-size:.85em}
.ck-unsupported{background:#fef3c7;color:#92400e;border-bottom:2px dashed #d97706;padding:0 2px}
.ck-status{color:#6b7280;font-size:.9em}.ck-dot{animation:ck-blink 1s infinite}.ck-error{color:#b91c1c}
@keyframes ck-blink{50%{opacity:.2}}.ck-title{font-weight:700;margin:4px 0}.ck-empty{color:#6b7280;padding:6px 2px}
.ck-label{font-size:.85em;color:#1e40af;background:#eff6ff;border-radius:4px;padding:2px 6px;margin-bottom:4px}
.ck-card{border:1px solid #d1d5db;border-radius:8px;padding:8px 12px;margin:8px 0;background:#fff;color:#111827}
.ck-head{margin-bottom:4px}.ck-n{color:#1d4ed8;font-weight:700}.ck-meta{color:#6b7280;font-size:.85em}
.ck-text{white-space:pre-wrap;font-size:.92em;line-height:1.6;max-height:16em;overflow-y:auto}
.ck-src{margin-top:6px;font-size:.9em}.ck-src summary{cursor:pointer;color:#1d4ed8}
.ck-page{position:relative;display:inline-block;width:100%;max-width:760px;margin:6px 0;border:1px solid #d1d5db}
.ck-page img{display:block;width:100%;height:auto}.ck-hl{position:absolute;background:rgba(250,204,21,.35);outline:2px solid #ea580c}
.ck-around{white-space:pre-wrap;max-height:24em;overflow-y:auto;margin:6px 0;line-height:1.6}.ck-near{color:#4b5563}
.ck-around mark{background:#fde68a;color:#111827}.ck-around mark strong{background:#f59e0b}.ck-dl{display:inline-block;margin-top:4px}
.ck-text mark{background:#fde68a;color:#111827;padding:0 1px}.ck-text mark strong{background:#f59e0b;font-weight:700}.ck-quote{border-left:3px solid #d1d5db;padding-left:4px;color:#374151}.ck-notfound{color:#6b7280}.ck-notes{list-style:none;padding-left:0}
"""


def _user(request: gr.Request | None) -> str | None:
    """The caller's session handle (set by the auth dependency; None in open mode)."""
    return getattr(request, "username", None)


def own_turns(state: Any, user: str | None) -> list[dict[str, Any]]:
    """The conversation kept in a session's state, only for the principal that started it.

    Gradio keys per-session state by the session_hash alone, which any other logged-in user
    could send; a state owned by another login is refused, never read or overwritten.
    Raises gr.Error for a foreign state.
    """
    if not state:
        return []
    if not isinstance(state, dict) or state.get("owner") != user:
        raise gr.Error("이 대화는 다른 로그인의 것입니다. 페이지를 새로 고치세요.")
    return list(state["turns"])


def owned(turns: list[dict[str, Any]], user: str | None) -> dict[str, Any]:
    return {"owner": user, "turns": turns}


def build_ui(service: Service, registry: UploadRegistry | None = None) -> gr.Blocks:
    """The Gradio Blocks: tab 질문하기 (chat + citation cards) and tab 관리 (shown to admins on load).

    `registry` records which session uploaded which file (mount_ui fills it from Gradio's upload route).
    """
    registry = registry or UploadRegistry()
    max_age = service.settings.server.ui_upload_max_age_s
    # delete_cache: files picked in the upload box but never submitted do not pile up
    with gr.Blocks(title="출처 · 사내 문서 질의응답", analytics_enabled=False,
                   delete_cache=(max(60, max_age // 4), max_age)) as demo:
        with gr.Row():
            with gr.Column(scale=4):
                gr.Markdown("## 출처 · 사내 문서 질의응답\n답변의 모든 문장에 근거 문서가 붙습니다.")
            with gr.Column(scale=1, min_width=220):
                who_md = gr.Markdown(elem_id="ck-who")
                if not service.open_mode:
                    gr.Button("로그아웃", link="/logout", size="sm")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("질문하기", id="chat"):
                chatbot = gr.Chatbot(label="대화", height=460, latex_delimiters=[], buttons=["copy"], elem_id="ck-chat",
                                     placeholder="사내 문서에 대해 질문하세요. 예: 연차휴가는 며칠인가요?")
                with gr.Row():
                    box = gr.Textbox(show_label=False, placeholder="질문을 입력하세요 (Enter로 보내기)", scale=8,
                                     elem_id="ck-question")
                    send = gr.Button("보내기", variant="primary", scale=1, elem_id="ck-send")
                    clear = gr.Button("새 대화", scale=1)
                cards = gr.HTML(NO_CARDS, elem_id="ck-cards")
            with gr.Tab("관리", id="admin", visible=service.open_mode) as admin_tab:
                with gr.Row():
                    with gr.Column():
                        files = gr.File(label="문서 올리기 (여러 개 가능)", file_count="multiple", type="filepath",
                                        elem_id="ck-files")
                        group = gr.Textbox("public", label="접근 그룹", info="이 그룹에 속한 사용자만 문서를 볼 수 있습니다.")
                        upload_btn = gr.Button("올리고 색인하기", variant="primary", elem_id="ck-upload")
                        upload_out = gr.HTML(elem_id="ck-upload-result")
                    with gr.Column():
                        query = gr.Textbox(label="문서 검색", placeholder="검색어 (예: 동호회 지원금)", elem_id="ck-search")
                        search_btn = gr.Button("검색", elem_id="ck-search-btn")
                        search_out = gr.HTML(elem_id="ck-search-result")
                table = gr.Dataframe(headers=DOC_HEADERS, label="문서 목록", interactive=False, wrap=True, elem_id="ck-docs")
                with gr.Row():
                    chosen = gr.Dropdown([], label="삭제할 문서", multiselect=True, scale=4)
                    with gr.Column(scale=1, min_width=180):
                        delete_btn = gr.Button("선택한 문서 삭제", variant="stop")
                        refresh = gr.Button("목록 새로 고침")
                        reindex_btn = gr.Button("전체 다시 색인")
                admin_out = gr.HTML()
                stats = gr.HTML()
            feedback_tab, (feedback_refresh, feedback_in, feedback_out) = build_feedback_tab(service, _user)

        def docs(request: gr.Request) -> tuple[Any, ...]:
            rows, choices, note = documents_view(service, _user(request))
            return rows, gr.Dropdown(choices=choices, value=[]), stats_html(service, _user(request)), note

        def on_load(request: gr.Request) -> tuple[Any, ...]:
            header, is_admin = session_info(service, _user(request))
            admin = docs(request)[:3] if is_admin else ([], gr.Dropdown(choices=[], value=[]), "")
            return header, gr.Tab(visible=is_admin), gr.Tab(visible=is_admin), *admin

        def on_chat(message: str, state: Any, request: gr.Request):
            user = _user(request)
            for messages, cards_, turns_, box_ in chat(service, user, message, own_turns(state, user)):
                yield messages, cards_, owned(turns_, user), box_

        def on_clear(state: Any, request: gr.Request):
            own_turns(state, _user(request))  # another login's conversation is not theirs to clear
            return [], NO_CARDS, owned([], _user(request)), ""

        def on_like(state: Any, data: gr.LikeData, request: gr.Request) -> None:
            user = _user(request)
            if said := feedback(service, user, own_turns(state, user), data.index, data.liked):
                gr.Info(said)

        def on_upload(paths: list[str] | None, group_: str, request: gr.Request, progress=gr.Progress()):
            user, root = _user(request), Path(os.environ.get("GRADIO_TEMP_DIR") or "/nonexistent")
            accepted, refused = [], []
            for p in paths or []:
                why = check_ui_file(p, user, registry, root, service.open_mode)
                (refused.append((Path(p).name, why)) if why else accepted.append(p))
            try:
                note = upload_files(service, user, accepted, group_, progress) if accepted or not refused else ""
            finally:  # Gradio's temporary copies: the stored upload is the only copy we keep
                for p in accepted:
                    Path(p).unlink(missing_ok=True)
                    registry.forget(p)
            if refused:
                note = _notes([("✗", f"{name}: 거부됨 — {why}") for name, why in refused]) + note
            return None, note, *docs(request)[:3]

        def on_reindex(request: gr.Request, progress=gr.Progress()):
            return reindex_all(service, _user(request), progress), *docs(request)[:3]

        def on_delete(ids: list[str], request: gr.Request):
            return delete_documents(service, _user(request), ids), *docs(request)[:3]

        def on_search(q: str, request: gr.Request) -> str:
            return search_documents(service, _user(request), q)

        docs_out = [table, chosen, stats]
        demo.load(on_load, None, [who_md, admin_tab, feedback_tab, *docs_out])
        demo.load(feedback_refresh, feedback_in, feedback_out)  # answers "not an admin" for users: nothing shown
        gr.on([box.submit, send.click], on_chat, [box, turns], [chatbot, cards, turns, box],
              concurrency_limit=service.settings.server.max_concurrent_answers)  # = the model's answer slots
        # the Chatbot's own trash button clears only what is shown; the turns (history, feedback) must go with it
        gr.on([clear.click, chatbot.clear], on_clear, [turns], [chatbot, cards, turns, box])
        chatbot.like(on_like, [turns], None)
        upload_btn.click(on_upload, [files, group], [files, upload_out, *docs_out], concurrency_limit=1)
        gr.on([query.submit, search_btn.click], on_search, [query], [search_out])
        refresh.click(docs, None, [*docs_out, admin_out])
        delete_btn.click(on_delete, [chosen], [admin_out, *docs_out])
        reindex_btn.click(on_reindex, None, [admin_out, *docs_out], concurrency_limit=1)
    return demo


def ui_upload_dir(service: Service) -> Path:
    """Where Gradio keeps the UI's uploads: inside the state folder, never the system temp folder."""
    return Path(service.settings.state_dir).resolve() / "ui-uploads"


def mount_ui(app: FastAPI, service: Service) -> FastAPI:
    """Mount the UI at `/`; with keys, /login opens a session bound to the key (see ui_auth)."""
    upload_dir = ui_upload_dir(service)
    upload_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(upload_dir)  # read by Gradio when the Blocks and app are made
    registry = UploadRegistry(service.settings.server.ui_upload_max_age_s)
    if not service.open_mode:
        add_login_routes(app, service)
        app.add_middleware(UiGuard, service=service, registry=registry)
    logging.getLogger("uvicorn.access").addFilter(RedactSessionHash())
    theme = gr.themes.Default(font=["Pretendard", "Noto Sans KR", "Malgun Gothic", "Apple SD Gothic Neo",
                                    "NanumGothic", "sans-serif"])  # Hangul first; nothing fetched from the web
    demo = build_ui(service, registry)
    app = gr.mount_gradio_app(
        app, demo, path="/",
        auth_dependency=None if service.open_mode else session_dependency(service),
        footer_links=[], run_history=False,  # run history would keep confidential answers in the browser
        max_file_size=int(service.settings.server.max_upload_mb * MB), ssr_mode=False, theme=theme, css=CSS,
    )
    # Gradio checks that a file named in an event is one it received ("uploaded by a user") only
    # once it believes it was launched; mounted apps never are, so /dev/zero or /etc/passwd were
    # copied as if uploaded. Mark it launched so that check runs, before ours in the handler.
    demo.has_launched = True
    return app
