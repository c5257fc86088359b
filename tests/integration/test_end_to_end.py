"""End to end on real components: stac-fastapi-pgstac → watcher → Tansu → dispatcher → Ray Serve → Redis
→ API (SSE) and the ``detections`` topic — with the dispatcher SIGKILLed in the middle of a scene.

The dispatcher runs as its own process (``lookout dispatch``, as in production), connected to the test's
Ray and Serve application; the watcher and the API run in this process. Every component is built by
:class:`~services.composition.Composition`, as ``lookout up`` and the component commands build them.
The model is the ``tiny`` preset with random weights and threshold 0, so every covered pixel is
foreground and each detection is the AOI itself (clipped to the scene): "inside the AOI" is a sharp
check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import rasterio
import ray
import torch
from ray import serve
from shapely.geometry import shape

from danet.checkpoint import save_checkpoint
from danet.config import load_preset
from danet.geo import raster_footprint_crs84
from danet.model import build_model
from services.adapters.kafka_client import ensure_topics
from services.adapters.stac_client import StacPublisher
from services.composition import ComponentThreads, Composition
from services.settings import REPO_ROOT, DispatcherSettings, NamespaceSettings, SegmenterSettings
from tests.support.http_files import serve_folder
from tests.support.kafka import topic_records
from tests.support.rasters import aoi_for_pixels, write_rgb_cog
from tests.support.sse import SseSubscriber
from tests.support.stac import make_collection, make_item

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# About a third of the 900 x 900 px scene: ~50 tiles of 64 px, so a scene takes seconds, not milliseconds.
AOI_ROWS, AOI_COLS = (100.5, 500.5), (200.5, 700.5)
TOLERANCE = 1e-7  # GeoJSON coordinates are rounded to 7 decimals after clipping
DEADLINE_S = 240.0


class DispatcherProcess:
    """``python -m services.cli dispatch`` with the given environment; killed or stopped by PID."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> DispatcherProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "-v", "dispatch"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no goodbye to the consumer group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_until(predicate, timeout_s: float, what: str, dispatcher: DispatcherProcess) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        assert dispatcher.process is None or dispatcher.process.poll() is None, (
            f"the dispatcher exited while waiting for {what}:\n{dispatcher.log_tail()}"
        )
        time.sleep(0.05)
    pytest.fail(f"{what} not seen within {timeout_s} s; dispatcher log:\n{dispatcher.log_tail()}")


def test_a_stac_item_becomes_one_detection_on_sse_and_kafka_even_when_the_dispatcher_is_killed(
    ray_local, local_stack, stack_settings, tmp_path
):
    tag = uuid.uuid4().hex[:8]
    cfg = load_preset("tiny")
    torch.manual_seed(5)
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", build_model(cfg, pretrained=False), cfg)
    app_name = f"e2e-{tag}"
    settings = stack_settings.model_copy(
        update={
            "namespace": NamespaceSettings(topic_prefix=f"e2e{tag}-", redis_prefix=f"e2e-{tag}:"),
            # A long batch wait with batches that never fill: each call takes >= 0.3 s, so a scene takes
            # seconds whatever the CPU, and the kill lands in its middle.
            "segmenter": SegmenterSettings(
                app_name=app_name,
                checkpoint=checkpoint,
                device="cpu",
                max_batch_size=16,
                batch_wait_timeout_s=0.3,
            ),
            "dispatcher": DispatcherSettings(group_id=f"e2e-{tag}", max_pairs_per_call=4),
            # Any collection id; a free port.
            "api": stack_settings.api.model_copy(update={"collections": None, "port": 0}),
            "watcher": stack_settings.watcher.model_copy(
                update={"sources": [stack_settings.stac.api_url], "poll_interval_s": 1.0}
            ),
        }
    )
    composition = Composition(settings)
    keys, topics = composition.keys, composition.topics
    ensure_topics(settings.kafka, topics.all())  # one partition each, before any producer auto-creates

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    cog = write_rgb_cog(scenes / "atlanta.tif")
    aoi = aoi_for_pixels(cog, AOI_ROWS, AOI_COLS)
    with rasterio.open(cog) as ds:
        footprint = raster_footprint_crs84(ds.crs, ds.transform, (ds.height, ds.width))
    collection = f"e2e-{tag}"
    publisher = StacPublisher(settings.stac.api_url)
    publisher.put_collection(
        make_collection(collection, [-180, -90, 180, 90], datetime(2024, 1, 1, tzinfo=UTC))
    )

    serve.start(proxy_location="Disabled")
    composition.deploy_segmenter()
    env = (
        os.environ
        | local_stack.environment()
        | {
            "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
            "LOOKOUT_NAMESPACE__TOPIC_PREFIX": settings.namespace.topic_prefix,
            "LOOKOUT_NAMESPACE__REDIS_PREFIX": settings.namespace.redis_prefix,
            "LOOKOUT_SEGMENTER__APP_NAME": app_name,
            "LOOKOUT_DISPATCHER__GROUP_ID": settings.dispatcher.group_id,
            "LOOKOUT_DISPATCHER__MAX_PAIRS_PER_CALL": "4",
            "OMP_NUM_THREADS": "1",
        }
    )
    dispatcher = DispatcherProcess(env, tmp_path / "dispatcher.log")
    watching = ComponentThreads()
    api = composition.api_server(composition.api_app()).start()
    stores = composition.stores()
    redis_client, detections = stores.redis, stores.detections
    subscriber = None
    try:
        with serve_folder(scenes) as (base_url, _served):
            created = httpx.post(
                f"{api.url}/queries",
                json={
                    "text": "all buildings",
                    "aoi": aoi,
                    "collections": [collection],
                    "threshold": 0.0,
                    "start": "2024-06-01T00:00:00Z",
                },
            )
            assert created.status_code == 201, created.text
            query_id = created.json()["id"]
            subscriber = SseSubscriber(f"{api.url}/queries/{query_id}/stream").start()
            watching.start("watcher", composition.watcher())
            dispatcher.start()

            def publish(item_id: str, day: int) -> None:
                item = make_item(item_id, collection, datetime(2024, 6, day, 10, tzinfo=UTC), footprint)
                item.assets["visual"].href = f"{base_url}/atlanta.tif"
                publisher.add_item(item)

            def seen(item_id: str):
                return lambda features: any(f["properties"]["item_id"] == item_id for f in features)

            # 1. The plain path: POST an item, its detection streams out.
            publish("scene-1", 1)
            subscriber.wait_for(seen("scene-1"), DEADLINE_S, "a detection of scene-1")

            # 2. SIGKILL the dispatcher once it has started scene-2 and before it stored anything.
            publish("scene-2", 8)
            attempts = keys.dispatch_attempts(settings.dispatcher.group_id, topics.scenes, 0, 1)
            wait_until(lambda: redis_client.exists(attempts), DEADLINE_S, "the start of scene-2", dispatcher)
            dispatcher.kill()
            assert not [d for d in detections.list(query_id) if d.item_id == "scene-2"], (
                "the kill came after scene-2 was stored: it did not hit the middle of the scene"
            )
            assert int(redis_client.hget(attempts, "count")) == 1

            dispatcher.start()  # a new member of the same consumer group resumes from the last commit
            subscriber.wait_for(seen("scene-2"), DEADLINE_S, "a detection of scene-2 after the restart")
            # The ledger forgets a record once it is done (stored, produced, committed).
            wait_until(lambda: not redis_client.exists(attempts), DEADLINE_S, "scene-2 done", dispatcher)
            # Nothing writes once the dispatcher is gone: the Redis stream's last entry is the end of what
            # the SSE subscriber can get, and the detections topic's end offset is fixed.
            dispatcher.stop()
            assert dispatcher.process.poll() is not None, "the dispatcher still runs"
            stream_end = redis_client.xrevrange(keys.detection_stream(query_id), count=1)
            assert stream_end, "no detection on the Redis stream"
            end_id = stream_end[0][0].decode()
            subscriber.wait_for(
                lambda _: subscriber.last_id == end_id, DEADLINE_S, f"the stream's last entry {end_id}"
            )
    finally:
        if subscriber is not None:
            subscriber.stop()
        dispatcher.stop()
        watching.stop()
        api.stop()
        serve.delete(app_name)
        publisher.close()

    stored = detections.list(query_id)
    assert {d.item_id for d in stored} == {"scene-1", "scene-2"}
    stored_ids = sorted(d.id for d in stored)

    streamed = subscriber.features()
    streamed_ids = [f["id"] for f in streamed]
    assert sorted(streamed_ids) == stored_ids, "SSE: every stored detection exactly once"
    assert len(set(streamed_ids)) == len(streamed_ids)

    produced = [r for r in topic_records(settings.kafka.bootstrap_servers, topics.detections)]
    assert {r.key for r in produced} == {query_id.encode()}
    produced_ids = [json.loads(r.value)["id"] for r in produced]
    assert sorted(produced_ids) == stored_ids, "Kafka detections topic: every stored detection exactly once"

    area = shape(aoi).buffer(TOLERANCE)
    for feature in streamed:
        geometry = shape(feature["geometry"])
        assert area.contains(geometry), "CRS84 geometry inside the AOI"
        lon, lat = geometry.centroid.x, geometry.centroid.y
        assert -84.5 < lon < -84.3, "CRS84 lon/lat of Atlanta, not UTM metres"
        assert 33.6 < lat < 33.8
        assert feature["properties"]["area_m2"] > 0
    changes = {f["properties"]["item_id"]: f["properties"]["change"] for f in streamed}
    assert changes == {"scene-1": "new", "scene-2": "persisting"}
    stores.close()
