"""Answers are stopped when their client goes away: over a real uvicorn server (fast fake models)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from app.server.api import create_app
from app.server.streams import EventPump


class SlowGenerator:
    """Wraps the scripted LLM: each piece takes 0.2 s, and it counts the pieces it produced."""

    def __init__(self, inner):
        self.inner, self.pieces, self.closed = inner, 0, threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, messages, params=None):
        try:
            for _ in range(200):  # a model that would talk for 40 s
                time.sleep(0.2)
                self.pieces += 1
                yield "연차휴가는 "
        finally:
            self.closed.set()


@pytest.fixture
def live(make_service):
    """(url, service, key): the API on a real uvicorn server in a thread."""
    import uvicorn

    service = make_service(answer_wait_s=5, ask_per_minute=0)
    key = service.keys.create("kim", "user", "public")[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service, ui=False), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", service, key
    server.should_exit = True
    thread.join(10)


def test_a_dropped_stream_frees_the_answer_slot_and_stops_the_model(live):
    url, service, key = live
    slow = SlowGenerator(service.pipeline.generator)
    service.pipeline._generator = slow
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{url}/v1/ask/stream", json={"question": "연차휴가는 며칠인가요?"},
                      headers=headers, timeout=30) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the first event, then the client goes away
    assert slow.closed.wait(5), "the model kept generating after the client left"
    produced = slow.pieces
    time.sleep(0.6)
    assert slow.pieces == produced  # stopped, not just slowed
    assert service._answer_slots.acquire(timeout=2), "the answer slot was never released"
    service._answer_slots.release()


def test_a_question_whose_client_left_stops_too(live):
    url, service, key = live
    slow = SlowGenerator(service.pipeline.generator)
    service.pipeline._generator = slow
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/ask", json={"question": "연차휴가는 며칠인가요?"},
                   headers={"Authorization": f"Bearer {key}"}, timeout=1.0)
    assert slow.closed.wait(5), "the model kept generating for a client that left"
    assert service._answer_slots.acquire(timeout=2)
    service._answer_slots.release()


def test_event_pump_hands_over_items_errors_and_closes_on_early_exit():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    def broken():
        yield 1
        raise ValueError("모델 오류")

    async def main():
        got = []
        async for x in EventPump(items()):
            got.append(x)
            if x == 2:
                break
        errors = []
        try:
            async for x in EventPump(broken()):
                errors.append(x)
        except ValueError as exc:
            errors.append(str(exc))
        return got, errors

    got, errors = asyncio.run(main())
    assert got == [0, 1, 2] and closed.wait(2) and errors == [1, "모델 오류"]
