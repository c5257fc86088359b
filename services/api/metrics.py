"""Prometheus metrics of the API and the webhook dispatcher, on a registry of their own.

A registry per app (not prometheus_client's global one) lets several apps live in one process (tests,
``lookout up``) without clashing metric names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.store import SkippedSceneStore

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"


class ApiMetrics:
    """Request counts/latency by route, detections served, SSE clients, webhook outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "lookout_api_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lookout_api_request_duration_seconds",
            "Time to answer a request, by method and route template (streams excluded)",
            ["method", "route"],
            registry=self.registry,
        )
        self.detections_served = Counter(
            "lookout_api_detections_served",
            "Detections returned, by channel (detections, ogc, stream)",
            ["channel"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "lookout_api_sse_clients", "Open Server-Sent Events connections", registry=self.registry
        )
        self.webhook_deliveries = Counter(
            "lookout_webhook_deliveries",
            "Detections delivered to a webhook (a 2xx answer)",
            registry=self.registry,
        )
        self.webhook_retries = Counter(
            "lookout_webhook_retries",
            "Failed webhook attempts that were retried, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "lookout_webhook_failures",
            "Webhook deliveries that failed every attempt of a pass (they stay pending), by reason",
            ["reason"],
            registry=self.registry,
        )


class DeadLetterCounts(Collector):
    """``lookout_dispatcher_dead_letters_total{code}``: scenes the dispatchers dead-lettered, by code
    (input refusals ``not_optical``, ``gsd_out_of_range``, ``no_image_asset``, other permanent failures,
    ``retries_exhausted``), read from Redis at each scrape. The dispatchers count them there; records that
    are no scene message (``malformed_message``) are dead-lettered without Redis and not counted, and a
    scene dead-lettered again after a crash before its commit counts twice."""

    def __init__(self, store: SkippedSceneStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """One sample per code; none when Redis does not answer (the scrape still succeeds)."""
        family = CounterMetricFamily(
            "lookout_dispatcher_dead_letters",
            "Scenes dead-lettered by the dispatchers, by code",
            labels=["code"],
        )
        try:
            counts = self.store.dead_letter_counts()
        except redis.RedisError as exc:
            log.warning("metrics: dead-letter counts unavailable: %s", exc)
            counts = {}
        for code, count in sorted(counts.items()):
            family.add_metric([code], count)
        yield family


class RequestMetricsMiddleware:
    """Counts every HTTP request and times those that are not event streams.

    A plain ASGI middleware (not BaseHTTPMiddleware), so SSE responses and client disconnects pass
    through untouched. The route label is the matched path template, never the raw path.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, then record the request under its route template."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def observe_send(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            await send(message)

        try:
            await self.app(scope, receive, observe_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            if not streaming:
                self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
