"""Bounded load test: N standing queries x M scenes per minute for T minutes, through every real component.

A STAC API (stac-fastapi-pgstac), the watcher, Kafka (Tansu), the dispatcher, the segmenter on Ray Serve,
Redis and the HTTP API all run here; N subscribers read their query's SSE stream like `lookout
subscribe`. Every 60/M seconds a new scene (a real SpaceNet COG, radiometry varied, served over HTTP with
Range support) is POSTed to the STAC API. Queries use threshold 0, so every (query, scene) must deliver
at least one detection: anything missing is lost, anything seen twice is a duplicate.

Prints throughput, latency percentiles from the STAC POST to the SSE delivery of a (query, scene)'s first
detection, peak memory of the whole process tree (this process, Ray's workers, Redis, Tansu, PostgreSQL
and the STAC API), and the lost and duplicated counts (both must be 0).

Ray listens on all interfaces, so run it inside the loopback-only namespace:

    bash deploy/netns.sh .venv/bin/python -m benchmarks.load_test [--queries 4] [--rate 2] [--minutes 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import (
    offline_ray_environment,
    pipeline_running,
    require_loopback_namespace,
    service_settings,
)

offline_ray_environment()

import httpx
import numpy as np
import psutil
import ray
from ray import serve

from services.adapters.stac_client import StacPublisher
from services.api.server import ApiServer
from services.composition import Composition
from services.embedded.stack import LocalStack
from services.settings import LookoutSettings, NamespaceSettings
from services.simulator import sample_query_aoi
from services.simulator.cog import write_rgb_cog
from services.simulator.imagery import footprint_crs84, load_scene, spacenet_tile, vary_radiometry
from tests.support.http_files import serve_folder
from tests.support.sse import SseSubscriber
from tests.support.stac import make_collection, make_item

TEXTS = ("all buildings", "the roads", "the trees", "the parking lots", "the cars", "the roofs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=4, help="standing queries (N)")
    parser.add_argument("--rate", type=float, default=2.0, help="scenes published per minute (M)")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long scenes are published (T)")
    parser.add_argument(
        "--drain-s", type=float, default=300.0, help="how long to wait for the last deliveries"
    )
    parser.add_argument("--preset", help="model preset instead of the configured checkpoint (e.g. tiny)")
    parser.add_argument("--ray-cpus", type=int, default=2)
    return parser.parse_args(argv)


class MemorySampler:
    """Peak resident memory of this process and all its descendants, sampled every second."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory", daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue  # ended between listing and reading
        return total

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak_bytes = max(self.peak_bytes, self._sample())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def write_scenes(folder: Path, count: int) -> list[Path]:
    """``count`` COGs of the SpaceNet tile, each with its own radiometry (a new acquisition)."""
    scene = load_scene(spacenet_tile())
    return [
        write_rgb_cog(
            folder / f"scene-{i}.tif", vary_radiometry(scene.rgb, seed=i), scene.crs, scene.transform
        )
        for i in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (linear interpolation); NaN without values."""
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print the figures."""
    args = parse_args(argv)
    require_loopback_namespace()
    run_id = f"{os.getpid()}-{int(time.time())}"
    base = service_settings(args.preset)
    scene_count = max(1, round(args.rate * args.minutes))
    interval_s = 60.0 / args.rate
    collection = f"load-{run_id}"

    with (
        tempfile.TemporaryDirectory(prefix="lookout-load-") as folder,
        LocalStack(["redis", "kafka", "stac"], settings=base) as stack,
        MemorySampler() as memory,
    ):
        cogs = write_scenes(Path(folder), scene_count)
        scene = load_scene(spacenet_tile())
        footprint = footprint_crs84(scene.bounds, scene.crs)
        settings: LookoutSettings = stack.connected_settings().model_copy(
            update={
                "namespace": NamespaceSettings(topic_prefix=f"load{run_id}-", redis_prefix=f"load-{run_id}:"),
                "watcher": base.watcher.model_copy(
                    update={"sources": [stack.stac.url], "poll_interval_s": 1.0, "overlap_s": 3600}
                ),
                "api": base.api.model_copy(update={"collections": None, "port": 0}),
            }
        )
        composition = Composition(settings)
        publisher = StacPublisher(settings.stac.api_url)
        publisher.put_collection(
            make_collection(collection, list(footprint.bounds), datetime(2024, 1, 1, tzinfo=UTC))
        )

        ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        subscribers: list[SseSubscriber] = []
        api: ApiServer | None = None
        try:
            serve.start(proxy_location="Disabled")
            segmenter = composition.deploy_segmenter()
            api = composition.api_server(composition.api_app()).start()
            query_ids = []
            for i in range(args.queries):
                created = httpx.post(
                    f"{api.url}/queries",
                    json={
                        "text": TEXTS[i % len(TEXTS)],
                        "aoi": sample_query_aoi(),
                        "collections": [collection],
                        "threshold": 0.0,
                        "start": "2024-01-01T00:00:00Z",
                    },
                    timeout=30,
                )
                created.raise_for_status()
                query_ids.append(created.json()["id"])
                subscribers.append(SseSubscriber(f"{api.url}/queries/{query_ids[-1]}/stream").start())

            published: dict[str, float] = {}
            with pipeline_running(settings, segmenter), serve_folder(Path(folder)) as (base_url, _served):
                start = time.monotonic()
                for i, cog in enumerate(cogs):
                    time.sleep(max(0.0, start + i * interval_s - time.monotonic()))
                    item = make_item(f"scene-{i}", collection, datetime.now(UTC), footprint)
                    item.assets["visual"].href = f"{base_url}/{cog.name}"
                    publisher.add_item(item)
                    published[item.id] = time.time()
                    print(f"  published {item.id} at +{time.monotonic() - start:.0f} s", flush=True)
                expected = len(published) * len(query_ids)
                deadline = time.monotonic() + args.drain_s + interval_s
                while time.monotonic() < deadline:
                    delivered = {
                        (q, f["properties"]["item_id"])
                        for q, s in zip(query_ids, subscribers, strict=True)
                        for f in s.features()
                    }
                    if len(delivered) >= expected:
                        break
                    time.sleep(0.5)
                time.sleep(2.0)  # room for a duplicate to arrive before counting
                wall_s = time.monotonic() - start
        finally:
            for subscriber in subscribers:
                subscriber.stop()
            if api is not None:
                api.stop()
            serve.shutdown()
            ray.shutdown()
            publisher.close()

    latencies, lost, duplicates, detections = [], [], 0, 0
    for query_id, subscriber in zip(query_ids, subscribers, strict=True):
        ids = [data["id"] for _, data in subscriber.events]
        duplicates += sum(n - 1 for n in Counter(ids).values())
        detections += len(ids)
        first: dict[str, float] = {}
        for (_, data), arrived in zip(subscriber.events, subscriber.arrivals, strict=True):
            first.setdefault(data["properties"]["item_id"], arrived)
        for item_id, posted in published.items():
            if item_id in first:
                latencies.append(first[item_id] - posted)
            else:
                lost.append((query_id, item_id))
    info = segmenter.model_info
    print(
        f"load test: {args.queries} queries x {args.rate:g} scenes/min for {args.minutes:g} min "
        f"({len(published)} scenes, {len(published) * args.queries} (query, scene) results expected); "
        f"{info['model_name']} ({info['input_size']} px) on {info['device']}, {os.cpu_count()} CPUs here"
    )
    print(
        f"  delivered {len(latencies)} (query, scene) results, {detections} detections over SSE in "
        f"{wall_s:.0f} s; lost {len(lost)}, duplicated {duplicates}"
    )
    print(
        f"  latency STAC POST -> SSE delivery: p50 {percentile(latencies, 50):.1f} s, p90 "
        f"{percentile(latencies, 90):.1f} s, p99 {percentile(latencies, 99):.1f} s, max "
        f"{max(latencies, default=float('nan')):.1f} s"
    )
    print(f"  throughput: {len(latencies) / wall_s * 60:.1f} (query, scene) results/min")
    print(f"  peak memory of the process tree: {memory.peak_bytes / 2**30:.2f} GiB")
    if lost:
        print(f"  LOST: {lost}")
    return 1 if lost or duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
