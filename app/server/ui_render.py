"""What the web UI shows, as HTML: checked answers, citation cards, Korean error messages.

answer_html(answer) -> '<div class="ck-answer">연차휴가는 15일입니다 <span class="ck-ref">[1]</span>.</div>'
cards_html(answer)  -> one card per citation: file name, page, group, the chunk with the quote in <mark>
Documents are untrusted: every piece of their text is HTML-escaped here.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generation.errors import GenerationError
from grounding import Answer, Citation, SentenceCheck
from ingest.errors import IndexLockedError, LoadError
from ingest.load import SUPPORTED_EXTENSIONS
from ingest.pages import has_page_images
from prompts import ABSTAIN
from retrieval.errors import IndexNotFoundError, RetrievalError
from retrieval.types import Chunk

from ..auth import AuthError, PermissionDenied
from ..models import ModelNotProvisionedError
from ..limits import RateLimited
from ..schemas import public_id
from ..service import AnswerTimeout, NotFound, ServerBusy, Service, UploadRejected

log = logging.getLogger(__name__)

REASONS = {"numbers": "숫자·단위가 문서와 다름", "negation": "부정 표현이 문서와 다름",
           "entities": "문서에 없는 이름·용어", "coverage": "문서에서 충분한 근거를 찾지 못함",
           "no_content": "확인할 내용이 없음", "non_answer": "질문을 되풀이할 뿐 답이 없음",
           "question_type": "질문이 묻는 수·날짜·이름에 답하지 않음"}
NO_CARDS = '<div class="ck-empty">답변의 출처가 여기에 표시됩니다.</div>'
_ERRORS: tuple[tuple[type[BaseException], str, bool], ...] = (  # (type, message, show the detail)
    (AuthError, "로그인 정보가 더 이상 유효하지 않습니다 (키가 취소되었을 수 있습니다). 다시 로그인하세요.", False),
    (PermissionDenied, "관리자 권한이 필요합니다. 관리자 키로 로그인하세요.", False),
    (IndexNotFoundError, "아직 색인된 문서가 없습니다. 관리 탭에서 문서를 올리거나 `chulcheo ingest`로 색인하세요.", False),
    (ModelNotProvisionedError, "필요한 모델이 설치되지 않았습니다. 관리자에게 `chulcheo models pull` 실행을 요청하세요.", True),
    (GenerationError, "답변 모델을 실행하지 못했습니다. 잠시 후 다시 시도하세요.", True),
    (RateLimited, "질문이 너무 잦습니다. 잠시 후 다시 시도하세요.", True),
    (ServerBusy, "다른 질문들의 답변을 만드는 중이라 지금은 받을 수 없습니다. 잠시 후 다시 시도하세요.", False),
    (AnswerTimeout, "답변이 너무 오래 걸려 중단했습니다. 질문을 좁혀 다시 시도하세요.", False),
    (IndexLockedError, "다른 색인 작업이 진행 중입니다. 잠시 후 다시 시도하세요.", False),
    (NotFound, "찾을 수 없습니다.", True),
    (LoadError, "문서를 읽을 수 없습니다.", True),
    (RetrievalError, "색인을 읽을 수 없습니다. 관리자에게 다시 색인을 요청하세요.", True),
    (ValueError, "입력을 확인하세요.", True),
)


# ---------------------------------------------------------------------- rendering
def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def file_name(source: str) -> str:
    """"/srv/docs/hr/규정.txt" -> "규정.txt": cards never show server paths."""
    return Path(source).name or source


def error_text(exc: BaseException) -> str:
    """A Korean message for a failure: IndexNotFoundError(…) -> "아직 색인된 문서가 없습니다. …"."""
    for kind, message, detail in _ERRORS:
        if isinstance(exc, kind):
            return f"{message} ({exc})" if detail else message
    log.error("web UI handler failed", exc_info=exc)
    return f"처리 중 오류가 발생했습니다 ({type(exc).__name__}). 서버 로그를 확인하세요."


def upload_reason(service: Service, exc: UploadRejected) -> str:
    """Why an upload was refused, in Korean: status 415 -> "허용되지 않는 파일 형식입니다 (허용: .txt, …)"."""
    if exc.status == 415:
        allowed = sorted(set(service.settings.server.upload_types) & set(SUPPORTED_EXTENSIONS))
        return f"허용되지 않는 파일 형식입니다 (허용: {', '.join(allowed)})"
    if exc.status == 413:
        return f"파일이 업로드 한도({service.settings.server.max_upload_mb:g} MB)보다 큽니다"
    return "빈 파일입니다" if "empty" in exc.reason else f"파일을 읽을 수 없습니다 ({exc.reason})"


def sentence_html(s: SentenceCheck) -> str:
    """One checked sentence: "연차휴가는 15일입니다 [1]." — or, unsupported, flagged ⚠ with the reason."""
    text = s.text.strip()
    if s.not_found:
        return f'<span class="ck-notfound">ℹ {_esc(text)}</span>'
    if not s.supported:
        why = ", ".join(REASONS.get(r, r) for r in s.reasons) or "근거를 찾지 못함"
        return (f'<span class="ck-unsupported" title="{_esc(why)}">⚠ 확인되지 않음: {_esc(text)} '
                f'<small>({_esc(why)})</small></span>')
    body = text.rstrip(".!?。")
    refs = "".join(f"[{n}]" for n in s.citations)
    html = f'{_esc(body.rstrip())} <span class="ck-ref">{refs}</span>{_esc(text[len(body):])}'
    # a source sentence quoted word for word (not written by the model) is set apart
    return f'<span class="ck-quote" title="문서 원문">{html}</span>' if s.quoted else html


def answer_html(answer: Answer, mark: bool = False) -> str:
    """The assistant's message: checked sentences, a labelled quote of the source, or the abstention.

    Wrapped in one <div> so the chat's Markdown renderer leaves the (escaped) text alone.
    """
    if answer.abstained:
        return (f'<div class="ck-answer ck-abstain">ℹ {_esc(ABSTAIN)}<br><small>질문을 바꿔 보거나, '
                "필요한 문서를 관리자에게 요청하세요.</small></div>")
    label = ""
    if answer.mode == "extractive":
        shown = [s for s in answer.sentences if s.quoted or s.not_found]
        label = ('<div class="ck-label">문서 원문 인용 — 모델이 쓴 문장을 확인하지 못해, '
                 "문서의 해당 문장을 그대로 보여 드립니다.</div>")
    else:
        shown = [s for s in answer.sentences if s.supported or s.not_found or (mark and _flaggable(s))]
    return f'<div class="ck-answer">{label}{" ".join(sentence_html(s) for s in shown)}</div>'


def streaming_html(checks: list[SentenceCheck], mark: bool = False) -> str:
    """The answer so far (checked sentences only) and a "확인 중…" status."""
    shown = " ".join(sentence_html(s) for s in checks if s.supported or s.not_found or (mark and _flaggable(s)))
    return f'<div class="ck-answer">{shown} <span class="ck-status"><span class="ck-dot">●</span> 확인 중…</span></div>'


def _flaggable(s: SentenceCheck) -> bool:
    """Shown flagged in mark mode: a sentence the check refused, not one left out for length."""
    return "budget" not in s.reasons


def excerpt_html(text: str, start: int, end: int, around: int = 240,
                 highlight: tuple[int | None, int | None] = (None, None)) -> str:
    """Escaped text with text[start:end] in <mark>, cut `around` characters each side; the part
    the answer relies on (`highlight`, inside the quote) in <strong> within the mark.

    excerpt_html("연차휴가는 15일이다. 병가는…", 0, 12) -> "<mark>연차휴가는 15일이다.</mark> 병가는…"
    """
    lo, hi = max(0, start - around), min(len(text), end + around)
    head = ("…" if lo else "") + _esc(text[lo:start])
    tail = _esc(text[end:hi]) + ("…" if hi < len(text) else "")
    hs, he = highlight
    if hs is None or he is None or not start <= hs < he <= end:
        return f"{head}<mark>{_esc(text[start:end])}</mark>{tail}"
    inner = f"{_esc(text[start:hs])}<strong>{_esc(text[hs:he])}</strong>{_esc(text[he:end])}"
    return f"{head}<mark>{inner}</mark>{tail}"


def card_html(label: str, source: str, page: int | None, group: str, body_html: str, footer_html: str = "") -> str:
    meta = " · ".join(x for x in (f"{page}쪽" if page else "", f"그룹 {group}" if group else "") if x)
    return (f'<div class="ck-card"><div class="ck-head"><span class="ck-n">{_esc(label)}</span> '
            f'<b class="ck-file">{_esc(file_name(source))}</b> <span class="ck-meta">{_esc(meta)}</span></div>'
            f'<div class="ck-text">{body_html}</div>{footer_html}</div>')


def cards_html(answer: Answer, around: Callable[[Citation], list[Chunk]] | None = None) -> str:
    """One card per citation [n]: file, page, group and the chunk with the supporting quote marked,
    and 원문 보기: the page image with the span boxed (PDFs, scans) or the cited passage among its
    neighbours (`around(citation)`, other formats), and the original file to download."""
    if answer.abstained or not answer.citations:
        return '<div class="ck-empty">이 답변에는 인용할 출처가 없습니다.</div>'
    chunks = {h.chunk.chunk_id: h.chunk for h in answer.hits}
    cards = []
    for c in answer.citations:
        chunk = chunks.get(c.chunk_id)
        body = (excerpt_html(chunk.text, c.start, c.end, highlight=(c.highlight_start, c.highlight_end))
                if chunk else f"<mark>{_esc(c.quote)}</mark>")
        cards.append(card_html(f"[{c.n}]", c.source, c.page, chunk.group if chunk else "", body, source_html(c, around)))
    return f'<div class="ck-cards"><div class="ck-title">출처</div>{"".join(cards)}</div>'


def source_html(c: Citation, around: Callable[[Citation], list[Chunk]] | None = None) -> str:
    """원문 보기 of one citation (a closed <details>: the page image loads only when opened).

    Pages and files come from GET /v1/documents/{id}/pages/{n}.png and /file, which check the
    caller's groups with the UI's session cookie; nothing goes through Gradio's file routes.
    """
    doc = public_id(c.doc_id)
    if has_page_images(c.source) and c.page:
        marks = "".join(
            f'<span class="ck-hl" style="left:{x0 * 100:.2f}%;top:{y0 * 100:.2f}%;'
            f'width:{(x1 - x0) * 100:.2f}%;height:{(y1 - y0) * 100:.2f}%"></span>' for x0, y0, x1, y1 in c.boxes)
        note = "" if c.boxes else '<div class="ck-meta">이 쪽에서 인용 위치를 찾지 못했습니다. 인용문은 위 카드에 있습니다.</div>'
        view = (f'<div class="ck-page"><img src="v1/documents/{doc}/pages/{int(c.page)}.png" loading="lazy" '
                f'alt="{_esc(file_name(c.source))} {int(c.page)}쪽">{marks}</div>{note}')
    else:
        view = _passage_html(c, around(c) if around is not None else [])
    return (f'<details class="ck-src"><summary>원문 보기</summary>{view}'
            f'<a class="ck-dl" href="v1/documents/{doc}/file" download>원본 파일 내려받기</a></details>')


def _passage_html(c: Citation, chunks: list[Chunk]) -> str:
    """The cited chunk between its neighbours, the quote marked; the quote alone without them."""
    parts = []
    for chunk in chunks:
        if chunk.chunk_id == c.chunk_id:
            hs, he = c.highlight_start, c.highlight_end
            parts.append(excerpt_html(chunk.text, c.start, c.end, around=len(chunk.text), highlight=(hs, he)))
        else:
            parts.append(f'<span class="ck-near">{_esc(chunk.text)}</span>')
    if not any(chunk.chunk_id == c.chunk_id for chunk in chunks):
        parts = [f"<mark>{_esc(c.quote)}</mark>"]
    return f'<div class="ck-around">{"<br><br>".join(parts)}</div>'


def _notes(lines: list[tuple[str, str]]) -> str:
    return '<ul class="ck-notes">' + "".join(f"<li>{icon} {_esc(t)}</li>" for icon, t in lines) + "</ul>"
