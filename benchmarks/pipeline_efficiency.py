"""Pipeline efficiency: (tile, query) pairs/s through the whole stack ÷ pairs/s of the bare segmenter.

Whole stack: the scene simulator writes K real SpaceNet scenes (COGs) into a static STAC catalog, the
watcher finds them and produces them to Kafka (embedded Tansu), the dispatcher consumes them, reads the
windows over scene ∩ AOI, sends the pairs of Q standing queries to the segmenter on Ray Serve, stitches,
vectorizes, stores detections in Redis, produces them to the ``detections`` topic and commits. The
clock runs from the dispatcher's first segmenter call to the commit of the last scene (consumer-group
join and the watcher's first poll are start-up, reported apart).

Bare segmenter: the same number of pairs, through the same Serve application and client, in calls of
the same size (``dispatcher.max_pairs_per_call``) — the model with nothing around it. Measured before
and after the stack run (the mean is the reference), so background load hits both alike.

Ray listens on all interfaces, so run it inside the loopback-only namespace:

    bash deploy/netns.sh .venv/bin/python -m benchmarks.pipeline_efficiency [--scenes 6] [--queries 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import (
    offline_ray_environment,
    pipeline_running,
    require_loopback_namespace,
    service_settings,
)

offline_ray_environment()

import numpy as np
import ray
from ray import serve

from danet.config import InputContract
from services.adapters.kafka_client import ensure_topics
from services.composition import Composition
from services.contracts import QueryCreate
from services.embedded.stack import LocalStack
from services.segmenter.client import ServeSegmenter
from services.settings import LookoutSettings, NamespaceSettings
from services.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi
from tests.support.dispatching import committed_offset

TEXTS = ("all buildings", "the roads", "the trees along the street", "the parking lots")


class TimedSegmenter:
    """The dispatcher's segmenter, with the pairs it was sent and when its first call began counted."""

    def __init__(self, inner: ServeSegmenter) -> None:
        self.inner = inner
        self.pairs = 0
        self.calls = 0
        self.first_call: float | None = None
        self.in_calls_s = 0.0

    @property
    def input_size(self) -> int:
        return self.inner.input_size

    @property
    def input_contract(self) -> InputContract:
        return self.inner.input_contract

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def segment(self, tiles: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        if self.first_call is None:
            self.first_call = time.perf_counter()
        self.pairs += len(tiles)
        self.calls += 1
        start = time.perf_counter()
        try:
            return self.inner.segment(tiles, texts)
        finally:
            self.in_calls_s += time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=6, help="scenes published (K)")
    parser.add_argument("--queries", type=int, default=2, help=f"standing queries (Q, at most {len(TEXTS)})")
    parser.add_argument("--preset", help="model preset instead of the configured checkpoint (e.g. tiny)")
    parser.add_argument("--bare-pairs", type=int, default=96, help="pairs per bare-segmenter measurement")
    parser.add_argument("--ray-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    if not 1 <= args.queries <= len(TEXTS):
        parser.error(f"--queries: choose 1..{len(TEXTS)}")
    return args


def bare_pairs_per_s(segmenter: ServeSegmenter, pairs: int, call_size: int, texts: Sequence[str]) -> float:
    """Pairs/s of the segmenter alone, called like the dispatcher calls it."""
    size = segmenter.input_size
    tiles = np.random.default_rng(0).integers(0, 256, (call_size, 3, size, size), dtype=np.uint8)
    call_texts = [texts[i % len(texts)] for i in range(call_size)]
    done, start = 0, time.perf_counter()
    while done < pairs:
        n = min(call_size, pairs - done)
        segmenter.segment(tiles[:n], call_texts[:n])
        done += n
    return pairs / (time.perf_counter() - start)


def run_stack(
    settings: LookoutSettings, segmenter: TimedSegmenter, scenes: int, deadline_s: float
) -> tuple[float, float]:
    """Watcher + dispatcher over the catalog until every scene is committed: (busy seconds, start-up s)."""
    scenes_topic, group = settings.topics().scenes, settings.dispatcher.group_id
    started = time.perf_counter()
    with pipeline_running(settings, segmenter):
        end = started + deadline_s
        while committed_offset(settings.kafka, group, scenes_topic) < scenes:
            if time.perf_counter() > end:
                done = committed_offset(settings.kafka, group, scenes_topic)
                raise TimeoutError(f"only {done} of {scenes} scenes committed in {deadline_s} s")
            time.sleep(0.05)
        finished = time.perf_counter()
    assert segmenter.first_call is not None
    return finished - segmenter.first_call, segmenter.first_call - started


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    args = parse_args(argv)
    require_loopback_namespace()
    run_id = f"{os.getpid()}-{int(time.time())}"
    base = service_settings(args.preset)
    with (
        tempfile.TemporaryDirectory(prefix="lookout-bench-") as folder,
        LocalStack(["redis", "kafka"], settings=base) as stack,
    ):
        catalog_dir = Path(folder) / "catalog"
        simulator = SceneSimulator(catalog_dir)
        settings = stack.connected_settings().model_copy(
            update={
                "namespace": NamespaceSettings(
                    topic_prefix=f"bench{run_id}-", redis_prefix=f"bench-{run_id}:"
                ),
                "watcher": base.watcher.model_copy(
                    update={"sources": [str(simulator.catalog_path)], "poll_interval_s": 1.0}
                ),
            }
        )
        composition = Composition(settings)
        ensure_topics(settings.kafka, composition.topics.all())
        stores = composition.stores()
        texts = TEXTS[: args.queries]
        for text in texts:
            stores.queries.create(
                QueryCreate(
                    text=text,
                    aoi=sample_query_aoi(),
                    collections=[SIM_COLLECTION],
                    start=datetime.now(UTC) - timedelta(days=1),
                )
            )
        for _ in range(args.scenes):
            simulator.publish_next()

        ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(proxy_location="Disabled")
            client = composition.deploy_segmenter()
            call_size = settings.dispatcher.max_pairs_per_call
            bare_pairs_per_s(client, call_size * 2, call_size, texts)  # warm-up: first batches, text cache

            timed = TimedSegmenter(client)
            before = bare_pairs_per_s(client, args.bare_pairs, call_size, texts)
            busy_s, startup_s = run_stack(settings, timed, args.scenes, deadline_s=1800)
            after = bare_pairs_per_s(client, args.bare_pairs, call_size, texts)
            info = client.model_info
        finally:
            serve.shutdown()
            ray.shutdown()
            stores.close()

    bare = (before + after) / 2
    stack_rate = timed.pairs / busy_s
    print(
        f"pipeline efficiency: {info['model_name']} ({info['input_size']} px) on {info['device']}, "
        f"{os.cpu_count()} CPUs here, Ray {args.ray_cpus} CPUs"
    )
    print(
        f"  whole stack: {args.scenes} SpaceNet scenes x {args.queries} queries = {timed.pairs} pairs in "
        f"{timed.calls} segmenter calls, {busy_s:.1f} s from the first segmenter call to the last commit "
        f"(start-up before it: {startup_s:.1f} s) -> {stack_rate:.2f} pairs/s"
    )
    print(
        f"  bare segmenter (calls of {call_size} pairs): {before:.2f} pairs/s before, {after:.2f} after "
        f"-> {bare:.2f} pairs/s"
    )
    print(
        f"  the dispatcher waited on the segmenter {timed.in_calls_s:.1f} s of those {busy_s:.1f} s "
        f"({timed.in_calls_s / busy_s:.0%}); the rest is reading, stitching, vectorizing, Redis and Kafka"
    )
    print(f"  efficiency = stack / bare = {stack_rate / bare:.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
