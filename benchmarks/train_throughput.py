"""Training throughput of DANet-lite, the shipped v2 recipe against v1's, in one run (samples/s with data).

- **v1 recipe** (how `danet-lite-v1.pt` was trained): `danet train` on the written benchmark files
  (JPEG decode + resize in the training thread), one thread (``OMP_NUM_THREADS=1``), the whole visual tower
  trainable, no coordinate features, the text tower run on every batch.
- **v2 recipe** (`danet train-stream`): scenes drawn on the fly in a DataLoader worker process, all cores
  for the step, channels-last, stem + stage 0 frozen, text features cached, coordinate features on.

Each recipe runs twice, for ``--short`` and ``--long`` steps; the difference of the wall times divided by
the difference of steps is the steady per-step time (model building, first batches and validation-free
start-up cancel out). Prints samples/s of each and the ratio. Run from the repository root:

    .venv/bin/python -m benchmarks.train_throughput [--short 5 --long 25]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from danet.config import load_preset
from danet.datagen.benchmark import build_benchmark
from danet.stream_training import StreamTrainOptions, train_stream
from danet.training import TrainOptions, run_training

V1_OVERRIDES = ("backbone.frozen_stages=0", "fusion.coords=false", "decoder.coords=false")


def time_v1(data: Path, steps: int, out: Path, batch: int) -> float:
    """Wall seconds of `run_training` (v1 recipe) for ``steps`` steps."""
    torch.set_num_threads(1)
    cfg = load_preset("lite", V1_OVERRIDES)
    opts = TrainOptions(
        data=data, out_dir=out, max_steps=steps, batch_size=batch, val_split=None, progress=False,
        checkpoint_kind="trainable",
    )  # fmt: skip
    started = time.perf_counter()
    run_training(cfg, opts)
    return time.perf_counter() - started


def time_v2(steps: int, out: Path, batch: int, threads: int) -> float:
    """Wall seconds of `train_stream` (v2 recipe) for ``steps`` steps."""
    torch.set_num_threads(threads)
    cfg = load_preset("lite")
    opts = StreamTrainOptions(
        out_dir=out, max_steps=steps, batch_size=batch, threads=threads, loader_workers=1,
        checkpoint_every=10**9, progress=False, warmup_steps=0,
    )  # fmt: skip
    started = time.perf_counter()
    train_stream(cfg, opts)
    return time.perf_counter() - started


def main() -> None:
    """Run both recipes and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", type=int, default=5)
    parser.add_argument("--long", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "benchmark"
        # One epoch covers the long run: v1 writes a checkpoint per epoch, which should not count.
        build_benchmark(data, synthetic_images=(args.long + 1) * args.batch_size, sources=(), progress=False)
        times = {}
        for steps in (args.short, args.long):
            times[("v1", steps)] = time_v1(data, steps, root / f"v1-{steps}", args.batch_size)
            times[("v2", steps)] = time_v2(steps, root / f"v2-{steps}", args.batch_size, args.threads)
    delta = args.long - args.short
    rates = {}
    for recipe in ("v1", "v2"):
        per_step = (times[(recipe, args.long)] - times[(recipe, args.short)]) / delta
        rates[recipe] = args.batch_size / per_step
        print(f"{recipe}: {per_step:.2f} s/step, {rates[recipe]:.2f} samples/s (batch {args.batch_size})")
    print(f"v2 / v1 training throughput: {rates['v2'] / rates['v1']:.2f}x")


if __name__ == "__main__":
    main()
