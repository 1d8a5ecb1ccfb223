"""OpenAICompatGenerator against a tiny in-process HTTP server: SSE parsing and error mapping.

The fake server's behaviour is picked per test through `FakeServer.mode`; what it received
is kept in `FakeServer.requests`.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generation.errors import GenerationError
from generation.openai_compat import OpenAICompatGenerator, _sse_data
from generation.types import GenerationParams, Message

ASK = [Message("user", "다음 문장을 그대로 따라 쓰세요: 안녕하세요")]
ANSWER_PIECES = ["안녕", "하세", "요"]


def _chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        mode = self.server.mode
        if mode == "http500":
            return self._send(500, b'{"error": "model crashed"}')
        if mode == "bad_json":
            return self._send(200, b"{not json")
        if mode == "no_choices":
            return self._send(200, b'{"id": "x"}')
        if body.get("stream"):
            return self._stream(mode)
        text = "".join(ANSWER_PIECES)
        reply = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3},
        }
        self._send(200, json.dumps(reply).encode())

    def _stream(self, mode: str):
        events = [_chunk(None)] + [_chunk(p) for p in ANSWER_PIECES] + [_chunk(None, "stop"), {"choices": []}]
        lines = [": keep-alive\n\n"] + [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events]
        if mode == "stream_bad_json":
            lines.insert(2, "data: {broken\n\n")
        if mode == "stream_error":
            lines.insert(2, 'data: {"error": {"message": "out of memory"}}\n\n')
        lines.append("data: [DONE]\n\n")
        lines.append('data: {"choices": [{"delta": {"content": "after done"}}]}\n\n')
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for line in lines:
            self.wfile.write(line.encode("utf-8"))
            self.wfile.flush()

    def _send(self, status: int, payload: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.requests: list[dict] = []


@pytest.fixture(scope="module")
def server():
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def generator(server):
    server.mode, server.requests[:] = "ok", []
    g = OpenAICompatGenerator(f"http://127.0.0.1:{server.server_port}/v1/", "qwen", api_key="secret", timeout_s=5)
    yield g
    g.close()


def test_generate_posts_chat_and_reads_usage(generator, server):
    params = GenerationParams(max_tokens=16, temperature=0.0, stop=("\n",), seed=7)
    completion = generator.generate(ASK, params)
    assert (completion.text, completion.finish_reason) == ("안녕하세요", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (12, 3)
    sent = server.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer secret"
    assert sent["body"]["messages"] == [{"role": "user", "content": ASK[0].content}]
    assert sent["body"]["max_tokens"] == 16 and sent["body"]["stop"] == ["\n"] and sent["body"]["seed"] == 7
    assert sent["body"]["stream"] is False


def test_stream_parses_sse_and_stops_at_done(generator, server):
    assert list(generator.stream(ASK)) == ANSWER_PIECES
    assert server.requests[-1]["body"]["stream"] is True


def test_model_id_names_model_and_url(generator, server):
    assert generator.model_id == f"qwen@http://127.0.0.1:{server.server_port}/v1"


def test_server_down_names_the_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = OpenAICompatGenerator(f"http://127.0.0.1:{port}/v1", "qwen", timeout_s=2)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with pytest.raises(GenerationError, match="cannot be reached") as info:
        g.generate(ASK)
    assert url in str(info.value)
    with pytest.raises(GenerationError, match=url):
        list(g.stream(ASK))


@pytest.mark.parametrize(
    ("mode", "message"),
    [("http500", "HTTP 500: .*model crashed"), ("bad_json", "malformed JSON"), ("no_choices", "unexpected body")],
)
def test_bad_answers_become_generation_errors(generator, server, mode, message):
    server.mode = mode
    with pytest.raises(GenerationError, match=message) as info:
        generator.generate(ASK)
    assert generator.url in str(info.value)


@pytest.mark.parametrize(
    ("mode", "message"),
    [("http500", "HTTP 500"), ("stream_bad_json", "streamed malformed JSON"), ("stream_error", "out of memory")],
)
def test_bad_streams_become_generation_errors(generator, server, mode, message):
    server.mode = mode
    with pytest.raises(GenerationError, match=message):
        list(generator.stream(ASK))


def test_count_tokens_overestimates_without_the_server():
    g = OpenAICompatGenerator("http://127.0.0.1:9/v1", "qwen")
    assert g.count_tokens("안녕하세요") == 7
    assert g.count_tokens("hello world") == 6
    assert g.count_tokens("3억원") == 4  # 1 digit + ceil(2.5)
    assert g.count_tokens("") == 0


def test_sse_data_joins_multiline_events_and_skips_comments():
    lines = [": ping", "data: {\"a\":", "data: 1}", "", "event: x", "data:[DONE]"]
    assert list(_sse_data(iter(lines))) == ['{"a":\n1}', "[DONE]"]
