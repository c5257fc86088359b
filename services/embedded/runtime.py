"""``lookout up``: the whole service on one machine with embedded defaults.

Starts, in order: Redis and the Kafka-protocol broker (child processes), a local Ray with the DANet
segmenter on Ray Serve, the scene simulator (real SpaceNet imagery as COGs in a local static STAC
catalog), the watcher, the dispatcher, the HTTP API and the webhook dispatcher (threads of this
process), then registers the sample standing query. Everything stops in reverse order.

Ray listens on every interface, so this must run in a loopback-only network namespace on shared
machines (``deploy/up.sh`` does that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.adapters.redis_client import make_redis
from services.api.app import create_app
from services.api.metrics import ApiMetrics
from services.api.server import ApiServer
from services.api.webhooks import WebhookDispatcher
from services.contracts import Query, QueryCreate
from services.dispatcher.consumer import Dispatcher
from services.embedded.stack import LocalStack
from services.segmenter.client import ServeSegmenter
from services.segmenter.serve_app import build_app
from services.settings import LookoutSettings
from services.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi
from services.store import QueryStore
from services.watcher import Watcher

log = logging.getLogger(__name__)

SAMPLE_QUERY_TEXT = "all buildings"


@dataclass
class EmbeddedRuntime:
    """Every component of the service, started by :meth:`start` and stopped by :meth:`stop`."""

    settings: LookoutSettings
    stop_event: threading.Event = field(default_factory=threading.Event)
    stack: LocalStack | None = None
    api: ApiServer | None = None
    sample_query: Query | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def start(self, *, ray_cpus: int = 2) -> EmbeddedRuntime:
        """Start everything; on failure stop what started and re-raise."""
        try:
            self._start(ray_cpus)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, ray_cpus: int) -> None:
        import ray
        from ray import serve

        self.stack = LocalStack(["redis", "kafka"], settings=self.settings).start()
        settings = self.stack.connected_settings()
        catalog_dir = self.stack.state_dir / "catalog"
        simulator = SceneSimulator.from_settings(settings.simulator, catalog_dir=catalog_dir)
        settings = settings.model_copy(
            update={"watcher": settings.watcher.model_copy(update={"sources": [str(simulator.catalog_path)]})}
        )
        self.settings = settings

        log.info("starting Ray (%d CPUs) and the segmenter", ray_cpus)
        ray.init(address="local", num_cpus=ray_cpus, include_dashboard=False, log_to_driver=False)
        self.closers.append(ray.shutdown)
        # The dispatcher calls the segmenter through a handle: no HTTP proxy is needed.
        serve.start(proxy_location="Disabled")
        self.closers.append(serve.shutdown)
        serve.run(build_app(settings), name=settings.segmenter.app_name, route_prefix=None)
        segmenter = ServeSegmenter.from_app(settings.segmenter.app_name)

        redis_client = make_redis(settings.redis)
        self.closers.append(redis_client.close)
        queries = QueryStore(redis_client, settings.redis_keys())
        self.sample_query = queries.create(
            QueryCreate(
                text=SAMPLE_QUERY_TEXT,
                aoi=sample_query_aoi(),
                collections=[SIM_COLLECTION],
                start=datetime.now(UTC) - timedelta(days=1),
            )
        )
        simulator.publish_next()  # the first scene is there before the watcher's first poll

        watcher = Watcher.from_settings(settings)
        self.closers.append(watcher.close)
        dispatcher = Dispatcher(settings, segmenter)
        self.closers.append(dispatcher.close)
        metrics = ApiMetrics()
        webhooks = WebhookDispatcher.from_settings(settings, metrics=metrics)
        self.closers.append(webhooks.close)
        app = create_app(settings, metrics=metrics, components={"watcher": watcher.status})
        self.api = ApiServer(app, settings.api.host, settings.api.port).start()

        interval = settings.simulator.interval_s
        self._spawn("simulator", lambda: simulator.run(interval, self.stop_event))
        self._spawn("watcher", lambda: watcher.run(self.stop_event))
        self._spawn("dispatcher", lambda: dispatcher.run(self.stop_event))
        self._spawn("webhooks", lambda: webhooks.run(self.stop_event))

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:
                log.exception("%s stopped with an error", name)

        thread = threading.Thread(target=guarded, name=f"lookout-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        """Stop threads, the API, Ray and the embedded servers, in reverse order of start."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)
        if self.api is not None:
            self.api.stop()
            self.api = None
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                log.exception("closing %s failed", getattr(close, "__qualname__", close))
        self.closers.clear()
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
