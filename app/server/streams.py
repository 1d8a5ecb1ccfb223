"""Blocking answer streams driven from async routes, stopped when the client goes away.

stop = threading.Event()
pump = EventPump(service.stream(who, "연차휴가는 며칠인가요?", cancelled=stop.is_set), stop)
async for event in pump: ...        # each item as soon as the model produced it
pump.stop()                         # the driving thread closes the stream: the answer slot is freed

A sync generator handed to Starlette is never closed when its client disconnects, so the
model kept running and the only answer slot stayed taken; here one thread owns the iterator
from its first step to its close, and the async side only reads a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

from starlette.requests import Request

log = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM, _ERROR, _END = "item", "error", "end"


class EventPump(Generic[T]):
    """Run `iterator` on its own thread; iterate the pump (async) to get its items or its error."""

    def __init__(self, iterator: Iterator[T], stop: threading.Event | None = None) -> None:
        self._iterator = iterator
        self._stop = stop or threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="chulcheo-stream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop after the item it is producing; it then closes the iterator."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        try:
            for item in self._iterator:
                self._put(_ITEM, item)
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the reader, which raises it in the route
            self._put(_ERROR, exc)
        finally:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                try:
                    close()  # GeneratorExit in the stream: the model stops and the slot is released
                except Exception:
                    log.exception("closing an answer stream failed")
            self._put(_END, None)

    def _put(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is gone (server shutting down)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        try:
            while True:
                kind, value = await self._queue.get()
                if kind == _ITEM:
                    yield value
                elif kind == _ERROR:
                    raise value
                else:
                    return
        finally:  # the reader left early (disconnect, error, cancellation): stop the producer
            self.stop()


async def watch_disconnect(request: Request, stop: threading.Event) -> None:
    """Set `stop` as soon as the client of `request` has gone away (run it as a task once the
    body has been read). It waits on the connection itself: `Request.is_disconnected()` polls
    with an already-cancelled scope and misses a disconnect behind an awaiting receive wrapper."""
    while not stop.is_set():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            log.info("%s %s: client went away; stopping its work", request.method, request.url.path)
            stop.set()
            return


@contextlib.asynccontextmanager
async def stopped_on_disconnect(request: Request) -> AsyncIterator[threading.Event]:
    """An Event that is set when the client disconnects (and when the block ends)."""
    stop = threading.Event()
    watcher = asyncio.create_task(watch_disconnect(request, stop))
    try:
        yield stop
    finally:
        stop.set()
        watcher.cancel()
