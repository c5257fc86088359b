"""Faults of the infrastructure, each stated and survived on real components.

- A segmenter replica killed while it holds a call's requests: they are sent again, the call returns
  every result, equal to what an undisturbed segmenter returns.
- Redis stopped and restarted while scenes flow: the dispatcher stops committing, waits, resumes, and
  every scene's detections are delivered exactly once.

(The dispatcher killed mid-scene is in test_end_to_end.py; STAC API and imagery faults in
test_watcher_faults.py and test_dispatcher_bad_inputs.py.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
import rasterio
import ray
import torch
from ray import serve

from danet.checkpoint import save_checkpoint
from danet.config import load_preset
from danet.geo import raster_footprint_crs84
from danet.model import build_model
from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.backoff import Backoff
from services.contracts import QueryCreate, SceneMessage, Topics
from services.dispatcher import Dispatcher
from services.dispatcher import consumer as consumer_module
from services.embedded.redis_server import RedisServer
from services.segmenter import build_local_segmenter
from services.segmenter.client import ServeSegmenter
from services.segmenter.serve_app import build_app
from services.settings import NamespaceSettings, RedisSettings, SegmenterSettings
from services.store import DetectionStore, QueryStore
from tests.support.dispatching import committed_offset, running, wait_committed
from tests.support.kafka import topic_records
from tests.support.rasters import aoi_for_pixels, write_rgb_cog
from tests.support.segmenters import tiny_segmenter
from tests.support.stac import make_item

pytestmark = pytest.mark.integration


def wait_for_ongoing_requests(replica: ray.actor.ActorHandle, want: int, timeout_s: float) -> None:
    """Block until the Serve replica actor counts ``want`` ongoing requests (its queue length, which Serve's
    router reads too; answered on a thread of its own, so a busy replica still answers)."""
    end = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < end:
        seen = ray.get(replica.get_num_ongoing_requests.remote(), timeout=timeout_s)
        if seen >= want:
            return
        time.sleep(0.05)
    pytest.fail(f"the replica held {seen} of {want} requests after {timeout_s} s")


def wait_for_outage_warnings(
    caplog: pytest.LogCaptureFixture, want: int, errors: list[BaseException], timeout_s: float
) -> list[str]:
    """Block until the dispatcher has logged ``want`` "Redis unavailable" warnings; returns them."""
    end = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < end and not errors:
        seen = [
            r.getMessage()
            for r in list(caplog.records)
            if r.name == consumer_module.__name__ and "Redis unavailable" in r.getMessage()
        ]
        if len(seen) >= want:
            return seen
        time.sleep(0.05)
    pytest.fail(f"{len(seen)} of {want} Redis outage warnings within {timeout_s} s (errors: {errors!r})")


@pytest.mark.slow
def test_a_segmenter_replica_killed_holding_a_call_costs_resends_not_results(
    ray_local, stack_settings, tmp_path, keys
):
    cfg = load_preset("tiny")
    torch.manual_seed(3)
    checkpoint = save_checkpoint(tmp_path / "tiny.pt", build_model(cfg, pretrained=False), cfg)
    segmenter = SegmenterSettings(
        app_name="replica-kill",
        checkpoint=checkpoint,
        device="cpu",
        # A batch that never fills waits 3 s: the 32 requests sit in the replica while it is killed (the
        # test waits until the replica counts all of them, however long they take to get there).
        max_batch_size=64,
        batch_wait_timeout_s=3.0,
    )
    settings = stack_settings.model_copy(update={"segmenter": segmenter})
    serve.start(proxy_location="Disabled")
    handle = serve.run(build_app(settings, keys=keys), name=segmenter.app_name, route_prefix=None)
    try:
        remote = ServeSegmenter(handle, timeout_s=180)
        tiles = np.random.default_rng(1).integers(0, 256, (32, 3, 64, 64), dtype=np.uint8)
        texts = ["the ships in the harbour", "small airplanes"] * 16
        first_replica = handle.stats.remote().result()["replica"]

        replica = ray.get_actor(first_replica, namespace="serve")

        results: list[np.ndarray] = []
        call = threading.Thread(target=lambda: results.append(remote.segment(tiles, texts)))
        call.start()
        # Kill once the replica holds every request of the call (waiting for its batch to fill).
        wait_for_ongoing_requests(replica, len(tiles), timeout_s=120)
        ray.kill(replica, no_restart=True)
        call.join(timeout=300)
        assert not call.is_alive(), "the call did not return after the replica was killed"

        assert remote.resent > 0, "no request was lost with the replica: the kill did not hit the call"
        (probabilities,) = results
        expected = build_local_segmenter(segmenter).segment(tiles, texts)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        assert handle.stats.remote().result()["replica"] != first_replica  # Serve replaced it
    finally:
        serve.delete(segmenter.app_name)


def test_redis_stopped_and_restarted_while_scenes_flow_loses_and_repeats_nothing(
    stack_settings, tmp_path, caplog
):
    """Fault: the Redis the dispatcher stores into goes away with two scenes in the topic, and comes
    back (durable: append-only file) once the dispatcher has met the outage and tried again. Expected: no
    commit while it is away, the dispatcher keeps running, and after the restart every scene is delivered
    exactly once (Redis stream and the detections topic), nothing dead-lettered."""
    tag = uuid.uuid4().hex[:8]
    redis_dir = tmp_path / "redis"
    server = RedisServer(redis_dir, durable=True).start()
    settings = stack_settings.model_copy(
        update={
            "redis": RedisSettings(url=server.url, socket_timeout_s=1),
            "namespace": NamespaceSettings(topic_prefix=f"redis{tag}-", redis_prefix=f"redis-{tag}:"),
            "dispatcher": stack_settings.dispatcher.model_copy(
                update={"group_id": f"redis-{tag}", "backoff": Backoff(initial_s=0.2, max_s=60, jitter_s=0)}
            ),
        }
    )
    keys, topics = settings.redis_keys(), settings.topics()
    ensure_topics(settings.kafka, topics.all())
    cog = write_rgb_cog(tmp_path / "atlanta.tif")
    aoi = aoi_for_pixels(cog, (300.5, 400.5), (500.5, 620.5))
    client = make_redis(settings.redis)
    query = QueryStore(client, keys).create(
        QueryCreate(text="the buildings", aoi=aoi, collections=["atlanta"], threshold=0.0)
    )
    segmenter = tiny_segmenter("danet-tiny@faults")
    dispatcher = Dispatcher(settings, segmenter, keys=keys, topics=topics)
    producer = make_producer(settings.kafka)

    def produce(item_id: str) -> None:
        with rasterio.open(cog) as ds:
            footprint = raster_footprint_crs84(ds.crs, ds.transform, (ds.height, ds.width))
        item = make_item(item_id, "atlanta", datetime(2024, 6, 1, tzinfo=UTC), footprint)
        item.assets["visual"].href = str(cog)
        scene = SceneMessage(
            collection="atlanta", item_id=item_id, item=item.to_dict(), observed_at=datetime.now(UTC)
        )
        producer.send(topics.scenes, key=scene.key.encode(), value=scene.to_bytes()).get(timeout=30)

    group = settings.dispatcher.group_id
    caplog.set_level(logging.WARNING, logger=consumer_module.__name__)
    restarted = None
    try:
        with running(dispatcher) as errors:
            produce("scene-1")
            wait_committed(settings.kafka, group, topics.scenes, 1, errors)

            server.stop()
            produce("scene-2")
            produce("scene-3")
            # Evidence of the outage, not a pause: the dispatcher met Redis down, backed off and met it
            # again (its warning each time), all on scene-2.
            outages = wait_for_outage_warnings(caplog, want=3, errors=errors, timeout_s=120)
            assert all(message.startswith(f"{topics.scenes}[0]@1: ") for message in outages), outages
            assert not errors, f"the dispatcher died without Redis: {errors!r}"
            assert committed_offset(settings.kafka, group, topics.scenes) == 1, (
                "committed what it could not store"
            )

            restarted = RedisServer(redis_dir, port=server.port, durable=True).start()
            wait_committed(settings.kafka, group, topics.scenes, 3, errors)
    finally:
        producer.close(timeout=10)

    try:
        stored = DetectionStore(client, keys).list(query.id)
        assert sorted({d.item_id for d in stored}) == ["scene-1", "scene-2", "scene-3"]
        stored_ids = sorted(d.id for d in stored)
        streamed = [f[b"id"].decode() for _, f in client.xrange(keys.detection_stream(query.id))]
        assert sorted(streamed) == stored_ids, "Redis stream (SSE): each detection exactly once"
        produced = [
            json.loads(r.value)["id"]
            for r in topic_records(settings.kafka.bootstrap_servers, topics.detections)
        ]
        assert sorted(produced) == stored_ids, "detections topic: each detection exactly once"
        assert topic_records(settings.kafka.bootstrap_servers, Topics.dead_letter(topics.scenes)) == []
    finally:
        client.close()
        if restarted is not None:
            restarted.stop()
