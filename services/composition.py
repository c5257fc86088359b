"""The composition root: every component of the service, built from one :class:`LookoutSettings`.

``lookout up`` (:mod:`services.embedded.runtime`), the component commands (``lookout watch``,
``dispatch``, ``serve``, ``api``), the benchmarks and the end-to-end test build their components here,
so each is wired one way everywhere: the Redis key layout and the Kafka topics of
``settings.namespace``, clients made from ``settings.redis``/``kafka``/``stac``, the segmenter as the
Serve application ``segmenter.app_name``, and the API sharing its metrics with its webhook deliveries.

The dispatcher (torch) and the segmenter (Ray) load their modules only when built, so ``lookout api``
and ``lookout watch`` start without the model stack.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import redis
from fastapi import FastAPI

from services.adapters.redis_client import make_redis
from services.api.app import create_app
from services.api.context import ComponentStatus
from services.api.metrics import ApiMetrics
from services.api.server import ApiServer
from services.api.webhooks import WebhookDispatcher
from services.settings import LookoutSettings
from services.store import DetectionStore, QueryStore
from services.watcher import Watcher

if TYPE_CHECKING:
    from ray.serve import Application

    from services.dispatcher.consumer import Dispatcher
    from services.segmenter import Segmenter
    from services.segmenter.client import ServeSegmenter

log = logging.getLogger(__name__)


class LoopingComponent(Protocol):
    """A component that works until its stop event is set, then releases its clients on ``close``."""

    def run(self, stop_event: threading.Event) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Stores:
    """The query and detection stores over one Redis client; :meth:`close` closes the client."""

    redis: redis.Redis
    queries: QueryStore
    detections: DetectionStore

    def close(self) -> None:
        """Close the Redis client."""
        self.redis.close()


class Composition:
    """Builds each component of the service from ``settings``; the caller runs and closes them."""

    def __init__(self, settings: LookoutSettings) -> None:
        self.settings = settings
        self.keys = settings.redis_keys()
        self.topics = settings.topics()

    def stores(self) -> Stores:
        """The query and detection stores over a new client of ``settings.redis``."""
        client = make_redis(self.settings.redis)
        return Stores(
            redis=client,
            queries=QueryStore(client, self.keys),
            detections=DetectionStore(client, self.keys, retention=self.settings.store.detection_retention()),
        )

    def watcher(self) -> Watcher:
        """The STAC watcher over the configured sources (creates the scenes topic if needed)."""
        return Watcher.from_settings(self.settings, keys=self.keys, topics=self.topics)

    def segmenter_app(self) -> Application:
        """The Ray Serve application holding DANet (``lookout serve``, KubeRay's ``serveConfigV2``)."""
        from services.segmenter.serve_app import build_app

        return build_app(self.settings, keys=self.keys)

    def deploy_segmenter(self, *, timeout_s: float | None = 300.0) -> ServeSegmenter:
        """Run the segmenter application on the connected Ray (Serve must be started or startable) as
        ``segmenter.app_name``, with no HTTP route, and return its client."""
        from ray import serve

        from services.segmenter.client import ServeSegmenter

        name = self.settings.segmenter.app_name
        handle = serve.run(self.segmenter_app(), name=name, route_prefix=None)
        return ServeSegmenter(handle, timeout_s=timeout_s)

    def segmenter(self) -> ServeSegmenter:
        """The client of the running segmenter application ``segmenter.app_name``."""
        from services.segmenter.client import ServeSegmenter

        return ServeSegmenter.from_app(self.settings.segmenter.app_name)

    def dispatcher(self, segmenter: Segmenter | None = None) -> Dispatcher:
        """The Kafka dispatcher, calling ``segmenter`` (default: the running Serve application)."""
        from services.dispatcher.consumer import Dispatcher

        return Dispatcher(self.settings, segmenter or self.segmenter(), keys=self.keys, topics=self.topics)

    def api_app(
        self,
        *,
        metrics: ApiMetrics | None = None,
        components: Mapping[str, ComponentStatus] | None = None,
    ) -> FastAPI:
        """The HTTP API; ``components`` are status callbacks ``/healthz`` reports (e.g. the watcher's)."""
        return create_app(self.settings, keys=self.keys, metrics=metrics, components=components)

    def webhooks(self, metrics: ApiMetrics | None = None) -> WebhookDispatcher:
        """The webhook deliveries over their own Redis client."""
        return WebhookDispatcher.from_settings(self.settings, keys=self.keys, metrics=metrics)

    def api_with_webhooks(
        self, *, components: Mapping[str, ComponentStatus] | None = None
    ) -> tuple[FastAPI, WebhookDispatcher]:
        """The API and the webhook deliveries each API replica runs beside it (replicas share the
        deliveries as one consumer group), counting into one metrics registry the API serves."""
        metrics = ApiMetrics()
        return self.api_app(metrics=metrics, components=components), self.webhooks(metrics)

    def api_server(self, app: FastAPI) -> ApiServer:
        """uvicorn serving ``app`` on ``api.host``:``api.port`` on a thread (not started)."""
        return ApiServer(app, self.settings.api.host, self.settings.api.port)


def run_until_stopped(component: LoopingComponent, stop_event: threading.Event) -> None:
    """Run ``component`` in this thread until ``stop_event`` is set, then close it."""
    try:
        component.run(stop_event)
    finally:
        component.close()


def close_in_reverse(closers: list[Callable[[], None]]) -> None:
    """Call each closer, last added first (a failing one is logged, the rest still run); empty the list."""
    for close in reversed(closers):
        try:
            close()
        except Exception:
            log.exception("closing %s failed", getattr(close, "__qualname__", close))
    closers.clear()


class ComponentThreads:
    """Components looping on daemon threads until :meth:`stop`, which sets their stop event, joins them
    and closes each (in reverse order of start)."""

    def __init__(self, stop_event: threading.Event | None = None, *, join_timeout_s: float = 30.0) -> None:
        self.stop_event = stop_event or threading.Event()
        self.join_timeout_s = join_timeout_s
        self.threads: list[threading.Thread] = []
        self.closers: list[Callable[[], None]] = []

    def start(self, name: str, component: LoopingComponent) -> None:
        """Run ``component`` on a thread; it is closed by :meth:`stop`."""
        self.closers.append(component.close)
        self.start_loop(name, component.run)

    def start_loop(self, name: str, run: Callable[[threading.Event], None]) -> None:
        """Run ``run(stop_event)`` on a thread; an error ends the thread and is logged, not raised."""

        def guarded() -> None:
            try:
                run(self.stop_event)
            except Exception:
                log.exception("%s stopped with an error", name)

        thread = threading.Thread(target=guarded, name=f"lookout-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        """Set the stop event, wait for the threads, then close the components."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=self.join_timeout_s)
        self.threads.clear()
        close_in_reverse(self.closers)
