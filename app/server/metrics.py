"""Prometheus metrics of one server: requests, latency, index size, jobs.

metrics.observe("POST", "/v1/ask", 200, 4.2); metrics.render() -> (text, content type)
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger(__name__)

# Answers take seconds on CPU, searches milliseconds: buckets cover both.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)


class Metrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter("chulcheo_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("chulcheo_request_seconds", "HTTP request latency", ["method", "route"],
                                 buckets=_BUCKETS, registry=self.registry)
        # What an anonymous scrape may see: request counts and latency, nothing about the documents.
        self._requests_only = CollectorRegistry()
        self._requests_only.register(self.requests)
        self._requests_only.register(self.latency)
        self.documents = Gauge("chulcheo_index_documents", "Indexed documents", registry=self.registry)
        self.chunks = Gauge("chulcheo_index_chunks", "Indexed chunks", registry=self.registry)
        self.jobs = Gauge("chulcheo_jobs", "Background jobs by status", ["status"], registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, full: bool = True) -> tuple[bytes, str]:
        """The exposition text; without `full`, request figures only (no index or job sizes)."""
        if not full:
            return generate_latest(self._requests_only), CONTENT_TYPE_LATEST
        try:  # sizes are read at scrape time from the live manifest (no vectors loaded)
            docs = self.service.pipeline.documents()
            self.documents.set(len(docs))
            self.chunks.set(sum(len(d.chunk_ids) for d in docs))
        except Exception as exc:  # an unreadable index must not break monitoring
            log.warning("metrics: index size unavailable: %s", exc)
        for status, n in self.service.jobs.counts().items():
            self.jobs.labels(status).set(n)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware: count every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "other"  # the template: bounded label values
            self.metrics.observe(scope["method"], path, status, time.perf_counter() - start)
