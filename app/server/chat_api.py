"""OpenAI-compatible chat over the same checked answers: `POST /v1/chat/completions`, `GET /v1/models`.

    client = openai.OpenAI(base_url="http://localhost:8000/v1", api_key=KEY)
    client.chat.completions.create(model="chulcheo", messages=[{"role": "user", "content": "연차휴가는 며칠인가요?"}])
    -> choices[0].message.content == "연차휴가는 15일입니다 [1].", plus `citations` beside it

The last user message is the question and the earlier user/assistant turns its conversation
(a follow-up is rewritten to stand alone, as in /v1/ask); system messages cannot change how the
answer is checked and are ignored. The answer, its [n] markers and `citations` (file, page,
group, quote, highlight, boxes, opaque doc id) are those of /v1/ask, under the same keys, groups
and rate limits. Streaming sends only sentences that passed the check. Errors have OpenAI's shape
`{"error": {"message", "type", "code"}}`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from grounding import Answer, SentenceCheck
from grounding.ground import render_all

from ..auth import Principal
from ..schemas import answer_to_dict, public_answer
from ..service import Service
from .deps import Caller
from .errors import ChatError, UnknownModel, error_status, scrub_paths
from .streams import EventPump, stopped_on_disconnect

log = logging.getLogger(__name__)

MODEL = "chulcheo"
CHAT_PATHS = ("/v1/chat/", "/v1/models")
_CREATED = int(time.time())


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=40)
    text: str | None = Field(None, max_length=8000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=8000)] | Annotated[list[ContentPart], Field(max_length=20)] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The Chat Completions request. `max_tokens`, `max_completion_tokens`, `temperature`,
    `top_p` and the other sampling fields are accepted and ignored: the server's generation
    settings decide, because every sentence must still pass the check."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(MODEL, max_length=100, examples=[MODEL])
    messages: list[ChatMessage] = Field(min_length=1, max_length=50)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one answer per request.")
    max_tokens: int | None = Field(None, ge=1, description="Ignored: the server's generation.max_tokens applies.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Ignored, as max_tokens.")
    temperature: float | None = Field(None, ge=0, le=2, description="Ignored: the server's setting applies.")


def openai_error(status: int, kind: str, message: str) -> dict[str, Any]:
    """{"error": {"message", "type", "code"}} as OpenAI clients read it."""
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
             429: "rate_limit_error"}
    kind_type = kinds.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind_type, "code": kind, "param": None}}


def is_chat_path(path: str) -> bool:
    return path.startswith(CHAT_PATHS)


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The last user message and the user/assistant turns before it.

    Raises:
        ChatError: the conversation does not end with a user message, or it is empty or too long.
    """
    if messages[-1].role != "user":
        raise ChatError("the last message must be the user's question (role \"user\")")
    question = messages[-1].text().strip()
    if not question:
        raise ChatError("the last user message has no text")
    if len(question) > 2000:
        raise ChatError(f"the question is {len(question):,} characters; at most 2,000")
    history = [{"role": m.role, "content": m.text()} for m in messages[:-1]
               if m.role in ("user", "assistant") and m.text().strip()]
    return question, history


def add_chat_routes(app: FastAPI, service: Service) -> None:
    """Mount /v1/models and /v1/chat/completions (the same keys as every /v1 route)."""

    @app.get("/v1/models", tags=["openai"], summary="Models that can be asked (OpenAI-compatible)")
    def models(who: Caller) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": _CREATED, "owned_by": "chulcheo"}]}

    @app.post("/v1/chat/completions", tags=["openai"], summary="Chat Completions over checked, cited answers",
              description="OpenAI's Chat Completions shape. The answer text carries [n] markers; `citations` "
              "(as in /v1/ask) ride in `choices[0].message` and at the top level (streaming: in the last chunk). "
              "Same keys, groups and rate limits as /v1/ask; errors as `{\"error\": {\"message\", \"type\", \"code\"}}`.")
    async def chat(body: ChatRequest, who: Caller, request: Request):
        if body.model != MODEL:
            raise UnknownModel(f"model {body.model!r} does not exist; GET /v1/models lists {MODEL!r}")
        question, history = question_and_history(body.messages)
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _streamed(service, who, request, question, history, cid, include_usage)
        async with stopped_on_disconnect(request) as stop:
            events = service.stream(who, question, history, cancelled=stop.is_set)
            async for event in EventPump(events, stop):
                if event.kind == "answer":
                    answer = event.answer
                    break
            else:
                raise RuntimeError("the answer stream ended without an answer")
        citations = _citations(answer, who)
        usage = await run_in_threadpool(service.usage, question, history, answer.answer)
        return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": answer.answer, "refusal": None,
                                         "citations": citations}}],
                "usage": usage, "citations": citations, "abstained": answer.abstained}


def _citations(answer: Answer, who: Principal) -> list[dict[str, Any]]:
    return public_answer({"citations": answer_to_dict(answer)["citations"]}, admin=who.is_admin)["citations"]


def _shown(check: SentenceCheck) -> bool:
    return check.supported or check.not_found


async def _streamed(service: Service, who: Principal, request: Request, question: str,
                    history: list[dict[str, str]], cid: str, include_usage: bool) -> StreamingResponse:
    guard = contextlib.AsyncExitStack()
    async with guard:
        stop = await guard.enter_async_context(stopped_on_disconnect(request))
        events = aiter(EventPump(service.stream(who, question, history, cancelled=stop.is_set), stop))
        guard.push_async_callback(events.aclose)
        first = await anext(events)  # errors before the first event (busy, rate limit, no index) get a status code
        cleanup = guard.pop_all()
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def body():
        sent: list[str] = []
        streamed: set[str] = set()
        async with cleanup:
            yield chunk({"role": "assistant", "content": ""})
            try:
                event = first
                while True:
                    if event.kind == "sentence" and event.check is not None and _shown(event.check):
                        piece = render_all([event.check])
                        streamed.add(event.check.text)
                        text = (" " if sent else "") + piece
                        sent.append(text)
                        yield chunk({"content": text})
                    elif event.kind == "answer":
                        answer = event.answer
                        rest = _rest(answer, "".join(sent), streamed)
                        if rest:
                            yield chunk({"content": rest})
                        citations = _citations(answer, who)
                        yield chunk({}, "stop", citations=citations, abstained=answer.abstained)
                        if include_usage:
                            usage = await run_in_threadpool(service.usage, question, history, "".join(sent) + rest)
                            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                                    "choices": [], "usage": usage}
                            yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
                        break
                    event = await anext(events)
            except StopAsyncIteration:
                pass
            except Exception as exc:  # headers are sent: the failure goes in the stream, as OpenAI does
                log.error("chat stream failed", exc_info=exc)
                status, kind = error_status(exc)
                yield f"data: {json.dumps(openai_error(status, kind, scrub_paths(str(exc))), ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _rest(answer: Answer, sent: str, streamed: set[str]) -> str:
    """What the final answer adds to the sentences already streamed: its remainder when the
    stream is its beginning (the usual case), else the shown sentences not streamed yet."""
    final = answer.answer.strip()
    if not sent:
        return final
    if final.startswith(sent.strip()):
        return final[len(sent.strip()):]
    missing = [render_all([s]) for s in answer.sentences if _shown(s) and s.text not in streamed
               and (answer.mode != "extractive" or s.quoted or s.not_found)]
    return "".join(" " + m for m in missing)
