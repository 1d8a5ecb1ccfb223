"""The web UI's 피드백 tab (admins): the rated answers, filtered by date and document, and a
review form that marks the right passage or writes the right answer, so that `chulcheo
feedback export` turns the rating into a test case. Handlers check the admin on every call."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..audit import via
from ..schemas import public_id
from ..service import Service
from .ui_render import error_text, file_name

FEEDBACK_HEADERS = ["번호", "시각", "사용자", "평가", "질문", "답변", "출처", "의견", "검토"]


def feedback_rows(service: Service, user: str | None, since: str = "", doc: str = "") -> tuple[list[list[Any]], str]:
    """(rows for FEEDBACK_HEADERS, note) of the ratings the admin may see."""
    try:
        who = service.ui_principal(user)
        with via("ui"):
            rows = service.feedback_entries(who, since=(since or "").strip() or None, doc=doc or None)
    except Exception as exc:
        return [], f"✗ {error_text(exc)}"
    table = []
    for r in rows:
        cited = ", ".join(sorted({file_name(str(c.get("source") or "")) for c in r["citations"] if isinstance(c, dict)}))
        review = ""
        if r["reviewed_at"]:
            mark = f"{file_name(r['gold_doc'] or '')} p.{r['gold_page']}" if r["gold_page"] else file_name(r["gold_doc"] or "")
            review = " · ".join(x for x in (mark, "답변 작성" if r["gold_answer"] else "") if x) + f" ({r['reviewed_by']})"
        table.append([r["id"], (r["created"] or "")[:16].replace("T", " "), r["user"], "👍" if r["rating"] == 1 else "👎",
                      r["question"], r["answer"][:300], cited, r["comment"], review])
    return table, f"평가 {len(table)}건" if table else "평가가 없습니다."


def document_choices(service: Service, user: str | None) -> list[tuple[str, str]]:
    """(label, opaque id) of the documents the admin may mark as the right passage."""
    try:
        who = service.ui_principal(user)
        docs = [d for d in service.pipeline.documents() if who.can_see(d.group)]
    except Exception:
        return []
    return [(f"{file_name(d.source)} ({d.group})", public_id(d.doc_id)) for d in docs]


def save_review(service: Service, user: str | None, feedback_id: Any, doc: str | None, page: Any, answer: str) -> str:
    """Store the review of one rating; a Korean note either way."""
    try:
        who = service.ui_principal(user)
        number = int(feedback_id)
        page_no = int(page) if page not in (None, "", 0) else None
        with via("ui"):
            service.review_feedback(who, number, answer or None, doc or None, page_no)
    except Exception as exc:
        return f"✗ {error_text(exc)}"
    return f"✔ 피드백 {number}번 검토를 저장했습니다. `chulcheo feedback export`로 평가 세트에 들어갑니다."


def build_feedback_tab(service: Service, user_of) -> tuple[gr.Tab, Any]:
    """The 피드백 tab (hidden until an admin loads the page) and its refresh function."""
    with gr.Tab("피드백", id="feedback", visible=service.open_mode) as tab:
        with gr.Row():
            since = gr.Textbox(label="이 날짜부터", placeholder="2026-12-01", scale=1, elem_id="ck-fb-since")
            doc = gr.Dropdown([], label="문서", value=None, scale=2, elem_id="ck-fb-doc")
            load = gr.Button("불러오기", scale=1, elem_id="ck-fb-load")
        note = gr.Markdown()
        table = gr.Dataframe(headers=FEEDBACK_HEADERS, interactive=False, wrap=True, elem_id="ck-fb-table")
        gr.Markdown("**검토**: 잘못된 답변의 맞는 근거 문서(쪽)를 고르거나 맞는 답변을 적으면 평가 세트의 문항이 됩니다.")
        with gr.Row():
            number = gr.Number(label="피드백 번호", precision=0, elem_id="ck-fb-id")
            right_doc = gr.Dropdown([], label="맞는 근거 문서", value=None, elem_id="ck-fb-right-doc")
            page = gr.Number(label="쪽 (선택)", precision=0, elem_id="ck-fb-page")
        answer = gr.Textbox(label="맞는 답변 (선택)", lines=2, elem_id="ck-fb-answer")
        save = gr.Button("검토 저장", variant="primary", elem_id="ck-fb-save")
        result = gr.Markdown(elem_id="ck-fb-result")

    def refresh(since_: str, doc_: str | None, request: gr.Request):
        user = user_of(request)
        rows, text = feedback_rows(service, user, since_, doc_ or "")
        choices = document_choices(service, user)
        return rows, text, gr.Dropdown(choices=choices, value=doc_), gr.Dropdown(choices=choices)

    def on_save(number_: Any, doc_: str | None, page_: Any, answer_: str, since_: str, filt: str | None,
                request: gr.Request):
        user = user_of(request)
        text = save_review(service, user, number_, doc_, page_, answer_)
        rows, _ = feedback_rows(service, user, since_, filt or "")
        return text, rows

    load.click(refresh, [since, doc], [table, note, doc, right_doc])
    save.click(on_save, [number, right_doc, page, answer, since, doc], [result, table])
    return tab, (refresh, [since, doc], [table, note, doc, right_doc])
