"""OpenAICompatGenerator: a chat model behind an OpenAI-compatible HTTP server.

vLLM, llama.cpp's server (and llama-cpp-python's), TGI and Ollama all serve
POST {base_url}/chat/completions; this backend only needs httpx, so a deployment with a GPU
box can keep the heavy model off the machine that runs chulcheo.

    g = OpenAICompatGenerator("http://gpu-box:8000/v1", "qwen2.5-7b-instruct")
    g.generate([Message("user", "안녕하세요")]).text -> "안녕하세요! 무엇을 도와드릴까요?"
    g.model_id -> "qwen2.5-7b-instruct@http://gpu-box:8000/v1"
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from .errors import GenerationError
from .text import to_chat_dicts
from .types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)


class OpenAICompatGenerator:
    """Talks to {base_url}/chat/completions; every failure becomes a GenerationError naming the URL.

    Args:
        base_url: the API root including its version, e.g. "http://127.0.0.1:8080/v1".
        model: the model name the server knows.
        api_key: sent as "Authorization: Bearer ..." when given.
        timeout_s: per-request timeout (connect, read, write).
        context_size: the server model's window; the server does not report it portably.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120,
        context_size: int = 4096,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"{model}@{self.base_url}"
        self.context_size = context_size
        self.url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def count_tokens(self, text: str) -> int:
        """A conservative (high) estimate that never needs the server.

        1.25 tokens per non-ASCII character, 1 per ASCII digit, 1 per 2 other ASCII characters.
        Measured against Qwen2.5's tokenizer (which splits numbers into single digits): Korean
        prose 41 real → 50 estimated, a Korean sentence with 억원/percentages 55 → 62, English
        18 → 33; only rare syllables or bare jamo ("뷁", "ㄱㄴㄷ") can come out ~10% above it.
        count_tokens("안녕하세요") -> 7; count_tokens("hello world") -> 6.
        """
        non_ascii = sum(1 for ch in text if ord(ch) > 127)
        digits = sum(1 for ch in text if "0" <= ch <= "9")
        return math.ceil(1.25 * non_ascii + digits + (len(text) - non_ascii - digits) / 2)

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        """POST the chat and return the first choice."""
        started = time.monotonic()
        body = self._post(self._payload(messages, params, stream=False))
        try:
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GenerationError(f"{self.url} returned an unexpected body ({exc!r}): {_short(body)}") from exc
        usage = body.get("usage") or {}
        return Completion(
            text,
            finish,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            {"total_s": time.monotonic() - started},
        )

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[str]:
        """POST with stream=true and yield each delta's content from the server-sent events."""
        payload = self._payload(messages, params, stream=True)
        try:
            with self._client.stream("POST", self.url, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response)
                for data in _sse_data(response.iter_lines()):
                    if data == "[DONE]":
                        return
                    piece = self._delta(data)
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _payload(self, messages: Sequence[Message], params: GenerationParams | None, stream: bool) -> dict:
        p = params or GenerationParams()
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": to_chat_dicts(messages),
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "stream": stream,
        }
        if p.stop:
            payload["stop"] = list(p.stop)
        if p.seed is not None:
            payload["seed"] = p.seed
        if p.repeat_penalty != 1.0:
            # Not in the OpenAI spec: llama.cpp reads repeat_penalty, vLLM/TGI repetition_penalty;
            # each ignores the other's name.
            payload["repeat_penalty"] = payload["repetition_penalty"] = p.repeat_penalty
        return payload

    def _post(self, payload: dict) -> dict:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            raise self._http_error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise GenerationError(f"{self.url} returned malformed JSON: {_short(response.text)}") from exc
        if not isinstance(body, dict):
            raise GenerationError(f"{self.url} returned JSON that is not an object: {_short(body)}")
        return body

    def _delta(self, data: str) -> str:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GenerationError(f"{self.url} streamed malformed JSON: {_short(data)}") from exc
        if isinstance(event, dict) and event.get("error"):
            raise GenerationError(f"{self.url} reported an error mid-stream: {_short(event['error'])}")
        try:
            choices = event["choices"]
            if not choices:  # some servers end with a usage-only event
                return ""
            return (choices[0].get("delta") or {}).get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GenerationError(f"{self.url} streamed an unexpected event ({exc!r}): {_short(data)}") from exc

    def _http_error(self, response: httpx.Response) -> GenerationError:
        return GenerationError(f"{self.url} answered HTTP {response.status_code}: {_short(response.text)}")

    def _transport_error(self, exc: httpx.HTTPError) -> GenerationError:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "cannot be reached"
        logger.warning("openai_compat: %s %s: %r", self.url, kind, exc)
        return GenerationError(f"{self.url} {kind}: {exc or type(exc).__name__}")


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The payload of each server-sent event: "data: {...}" lines joined per event.

    ["data: {\\"a\\": 1}", "", ": keep-alive", "data: [DONE]"] -> ['{"a": 1}', "[DONE]"]
    """
    buffer: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            buffer.append(line[5:].removeprefix(" "))
        elif not line.strip() and buffer:
            yield "\n".join(buffer)
            buffer = []
        # Other fields (event:, id:, retry:) and ": comments" carry nothing we use.
    if buffer:
        yield "\n".join(buffer)


def _short(value: object, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
