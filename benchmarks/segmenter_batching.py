"""Dynamic-batching gain and text-cache effect of the segmenter on Ray Serve, measured in one run.

Starts an embedded Redis and a local Ray, deploys three segmenter applications side by side — batch size
1 with the text cache, batch size 8 with the cache, batch size 8 without it — and pushes the same
(tile, text) pairs through ``ServeSegmenter`` in interleaved rounds (so a change of background load hits
every configuration alike). Prints pairs/s per configuration and the ratios, and the bytes one segmenter
call of ``--pairs`` pairs puts on the wire: uint8 tiles (now) against the float32 tiles normalised by the
caller that the dispatcher sent before the model's input contract moved into the segmenter.

Ray listens on all interfaces, so run it inside the loopback-only namespace:

    bash deploy/netns.sh .venv/bin/python -m benchmarks.segmenter_batching [--preset tiny|lite]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import offline_ray_environment, require_loopback_namespace

offline_ray_environment()

import numpy as np
import ray
from ray import serve

from danet.config import InputContract
from danet.model import normalize_tiles
from services.composition import Composition
from services.embedded.stack import LocalStack
from services.segmenter.client import ServeSegmenter
from services.settings import LookoutSettings, NamespaceSettings, SegmenterSettings, TextCacheSettings

TEXTS = (
    "the small storage tank on the right",
    "all airplanes at the airport",
    "the ship closest to the bridge",
    "the large building in the north",
    "vehicles on the road",
    "the tennis court next to the trees",
    "the round tank in the middle",
    "boats in the harbour",
)


@dataclass(frozen=True)
class Config:
    """One deployment to measure."""

    label: str
    max_batch_size: int
    text_cache: bool


CONFIGS = (
    Config("batch 1, cache on", 1, True),
    Config("batch 8, cache on", 8, True),
    Config("batch 8, cache off", 8, False),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", help="model preset (random or pretrained towers)")
    parser.add_argument("--checkpoint", type=Path, help="a DANet checkpoint instead of the preset")
    parser.add_argument("--pairs", type=int, default=64, help="(tile, text) pairs per round")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per configuration")
    parser.add_argument("--texts", type=int, default=4, help=f"distinct query texts (at most {len(TEXTS)})")
    parser.add_argument("--batch-wait-s", type=float, default=0.01, help="batch_wait_timeout_s")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--num-gpus", type=float, default=0.0, help="per replica")
    args = parser.parse_args(argv)
    if not 1 <= args.texts <= len(TEXTS):
        parser.error(f"--texts: choose 1..{len(TEXTS)}")
    return args


def deploy(config: Config, base: LookoutSettings, args: argparse.Namespace, run_id: str) -> ServeSegmenter:
    """Start one segmenter application for ``config`` and return its client."""
    segmenter = SegmenterSettings(
        app_name=f"bench-{config.max_batch_size}-{int(config.text_cache)}",
        checkpoint=args.checkpoint,
        preset=args.preset,
        device=args.device,
        num_gpus=args.num_gpus,
        max_batch_size=config.max_batch_size,
        batch_wait_timeout_s=args.batch_wait_s,
        text_cache=TextCacheSettings(enabled=config.text_cache),
    )
    namespace = NamespaceSettings(redis_prefix=f"bench-{run_id}-{segmenter.app_name}:")
    settings = base.model_copy(update={"segmenter": segmenter, "namespace": namespace})
    return Composition(settings).deploy_segmenter(timeout_s=600)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    args = parse_args(argv)
    require_loopback_namespace()
    run_id = f"{os.getpid()}-{int(time.time())}"
    with LocalStack(["redis"]) as stack:
        ray.init(
            address="local",
            num_cpus=len(CONFIGS) + 1,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=300 * 2**20,
        )
        try:
            # Handles only: no HTTP proxy actor (it binds a port and can time out on a busy machine).
            serve.start(proxy_location="Disabled")
            clients = {config: deploy(config, stack.connected_settings(), args, run_id) for config in CONFIGS}
            size = next(iter(clients.values())).input_size
            tiles = np.random.default_rng(0).integers(0, 256, (args.pairs, 3, size, size), dtype=np.uint8)
            texts = [TEXTS[i % args.texts] for i in range(args.pairs)]
            report_wire_bytes(tiles, texts, next(iter(clients.values())).input_contract)
            for client in clients.values():  # warm-up: first batches, caches filled
                client.segment(tiles, texts)
            before = {config: replica_stats(client) for config, client in clients.items()}
            elapsed = dict.fromkeys(CONFIGS, 0.0)
            for _ in range(args.rounds):
                for config, client in clients.items():
                    start = time.perf_counter()
                    client.segment(tiles, texts)
                    elapsed[config] += time.perf_counter() - start
            measured = {
                config: Measurement.of(elapsed[config], before[config], replica_stats(client))
                for config, client in clients.items()
            }
            report(args, next(iter(clients.values())).model_info, measured)
        finally:
            serve.shutdown()
            ray.shutdown()
    return 0


def request_bytes(tile: np.ndarray, text: str) -> int:
    """Bytes of one request's arguments as Ray serialises them: pickle protocol 5, the array's buffer out of
    band (its raw bytes), plus the pickle stream around it."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps((tile, text), protocol=5, buffer_callback=buffers.append)
    return len(stream) + sum(buffer.raw().nbytes for buffer in buffers)


def report_wire_bytes(tiles: np.ndarray, texts: list[str], contract: InputContract) -> None:
    """Print the bytes of one call of these pairs, as uint8 tiles and as the float32 tiles the caller
    normalised before (the same pixels)."""
    normalised = normalize_tiles(tiles, contract).numpy()
    before = sum(request_bytes(tile, text) for tile, text in zip(normalised, texts, strict=True))
    after = sum(request_bytes(tile, text) for tile, text in zip(tiles, texts, strict=True))
    pairs = len(texts)
    print(
        f"bytes per segmenter call of {pairs} pairs ({tiles.shape[2]} px tiles): before (float32, normalised "
        f"by the caller) {before:,} ({before // pairs:,} per request); after (uint8) {after:,} "
        f"({after // pairs:,} per request); {before / after:.2f}x fewer",
        flush=True,
    )


def replica_stats(client: ServeSegmenter) -> dict[str, Any]:
    """The deployment's counters (one replica per application here)."""
    return client.handle.stats.remote().result()


@dataclass(frozen=True)
class Measurement:
    """The timed rounds of one configuration: wall time at the client, and what its replica did."""

    wall_s: float
    requests: int
    busy_s: float
    text_s: float
    texts_encoded: int
    batch_sizes: dict[int, int]

    @classmethod
    def of(cls, wall_s: float, before: dict[str, Any], after: dict[str, Any]) -> Measurement:
        """The difference of the replica's counters over the timed rounds."""
        sizes = Counter(after["batch_sizes"]) - Counter(before["batch_sizes"])
        return cls(
            wall_s=wall_s,
            requests=after["requests"] - before["requests"],
            busy_s=after["busy_s"] - before["busy_s"],
            text_s=after["text_s"] - before["text_s"],
            texts_encoded=after["texts_encoded"] - before["texts_encoded"],
            batch_sizes=dict(sorted(sizes.items())),
        )

    @property
    def pairs_per_s(self) -> float:
        """Throughput seen by the client (Serve transport included)."""
        return self.requests / self.wall_s

    @property
    def replica_pairs_per_s(self) -> float:
        """Throughput of the replica's batches alone (text features + forward pass)."""
        return self.requests / self.busy_s

    @property
    def mean_batch(self) -> float:
        """Mean batch size."""
        return self.requests / sum(self.batch_sizes.values())


def report(args: argparse.Namespace, info: dict[str, Any], measured: dict[Config, Measurement]) -> None:
    """Print pairs/s per configuration, what the replicas did, and the ratios."""
    print(
        f"segmenter on Ray Serve: {info['model_name']} ({info['input_size']} px) on {info['device']}, "
        f"{os.cpu_count()} CPUs here; {args.rounds} interleaved rounds x {args.pairs} pairs, "
        f"{args.texts} distinct texts, batch wait {args.batch_wait_s} s"
    )
    header = ("config", "pairs/s", "in replica", "mean batch", "text share", "texts encoded")
    print("  {:<20} {:>8} {:>10} {:>10} {:>10}  {}".format(*header))
    for config, m in measured.items():
        print(
            f"  {config.label:<20} {m.pairs_per_s:8.1f} {m.replica_pairs_per_s:10.1f} {m.mean_batch:10.2f} "
            f"{m.text_s / m.busy_s:10.1%}  {m.texts_encoded}"
        )
    batch1, batch8, nocache = (measured[config] for config in CONFIGS)
    print("ratios, client pairs/s [in-replica pairs/s]:")
    for label, a, b in (
        ("dynamic-batching gain, batch 8 / batch 1 (cache on)", batch8, batch1),
        ("text-cache effect, on / off (batch 8)", batch8, nocache),
    ):
        ratio, replica_ratio = a.pairs_per_s / b.pairs_per_s, a.replica_pairs_per_s / b.replica_pairs_per_s
        print(f"  {label:<52} {ratio:.2f}x [{replica_ratio:.2f}x]")


if __name__ == "__main__":
    sys.exit(main())
