"""``lookout up``: the whole service on one machine with embedded defaults.

Starts, in order: Redis and the Kafka-protocol broker (child processes), a local Ray with the DANet
segmenter on Ray Serve, the sample standing query, the scene simulator (real SpaceNet imagery as COGs in
a local static STAC catalog), the watcher, the dispatcher and the webhook dispatcher (threads of this
process), then the HTTP API. The components are built by :class:`~services.composition.Composition`,
as ``lookout watch``/``dispatch``/``api`` build them. Everything stops in reverse order.

Ray listens on every interface, so this must run in a loopback-only network namespace on shared
machines (``deploy/up.sh`` does that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.api.server import ApiServer
from services.composition import ComponentThreads, Composition, close_in_reverse
from services.contracts import Query, QueryCreate
from services.embedded.stack import LocalStack
from services.settings import LookoutSettings
from services.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi

log = logging.getLogger(__name__)

SAMPLE_QUERY_TEXT = "all buildings"


@dataclass
class EmbeddedRuntime:
    """Every component of the service, started by :meth:`start` and stopped by :meth:`stop`."""

    settings: LookoutSettings
    stack: LocalStack | None = None
    api: ApiServer | None = None
    sample_query: Query | None = None
    threads: ComponentThreads = field(default_factory=ComponentThreads)
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
        composition = Composition(settings)
        segmenter = composition.deploy_segmenter()

        stores = composition.stores()
        self.closers.append(stores.close)
        self.sample_query = stores.queries.create(
            QueryCreate(
                text=SAMPLE_QUERY_TEXT,
                aoi=sample_query_aoi(),
                collections=[SIM_COLLECTION],
                start=datetime.now(UTC) - timedelta(days=1),
            )
        )
        simulator.publish_next()  # the first scene is there before the watcher's first poll

        # Each component is handed to the threads as soon as it is built, so stop() closes it even when a
        # later one fails to start.
        interval = settings.simulator.interval_s
        self.threads.start_loop("simulator", lambda stop: simulator.run(interval, stop))
        watcher = composition.watcher()
        self.threads.start("watcher", watcher)
        self.threads.start("dispatcher", composition.dispatcher(segmenter))
        app, webhooks = composition.api_with_webhooks(components={"watcher": watcher.status})
        self.threads.start("webhooks", webhooks)
        self.api = composition.api_server(app).start()

    def stop(self) -> None:
        """Stop threads, the API, Ray and the embedded servers, in reverse order of start."""
        self.threads.stop()
        if self.api is not None:
            self.api.stop()
            self.api = None
        close_in_reverse(self.closers)
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
