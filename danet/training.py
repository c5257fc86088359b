"""Training: one loop, run in a single process or data-parallel on Ray Train workers.

The loop follows the LAVT family's recipe (docs/danet.md): AdamW without weight decay on norms and position
tables, poly-0.9 decay per iteration, weighted CE (+ optional Dice) plus the alignment losses, bf16
autocast on CUDA. It evaluates on the validation split after each epoch and keeps ``last.pt`` and
``best.pt`` (by mIoU) in the output folder.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from danet.checkpoint import Kind, save_checkpoint
from danet.config import DANetConfig
from danet.data.dataset import open_dataset
from danet.evaluation import evaluate
from danet.losses import DANetLoss
from danet.model.danet import build_model
from danet.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """What to train on and for how long; unset values come from the preset's ``optim`` section."""

    data: Path
    out_dir: Path
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0
    augment: bool = True
    checkpoint_kind: Kind = "full"
    progress: bool = True
    log_every: int = 10


@dataclass
class TrainSummary:
    """What a training run did."""

    steps: int
    epochs: int
    seconds: float
    final_loss: float
    best_miou: float | None
    checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)


def pick_device(device: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_for(device: torch.device) -> Any:
    """bf16 autocast on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def make_loaders(
    cfg: DANetConfig, opts: TrainOptions, batch_size: int
) -> tuple[DataLoader, DataLoader | None]:
    """Train (shuffled, augmented) and validation loaders at the preset's input size (ImageNet
    normalization: backbones that want another one convert internally)."""
    train_set = open_dataset(opts.data, opts.train_split, cfg.input_size, augment=opts.augment)
    if len(train_set) == 0:
        raise ValueError(f"data: split {opts.train_split!r} of {opts.data} has no samples")
    generator = torch.Generator().manual_seed(opts.seed)
    train = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(train_set) >= batch_size,
        num_workers=opts.num_workers,
        generator=generator,
    )
    val = None
    if opts.val_split:
        val_set = open_dataset(opts.data, opts.val_split, cfg.input_size)
        if len(val_set):
            val = DataLoader(val_set, batch_size=batch_size, num_workers=opts.num_workers)
    return train, val


Reporter = Callable[[dict[str, float], Path | None], None]


def run_training(
    cfg: DANetConfig,
    opts: TrainOptions,
    *,
    wrap_model: Callable[[nn.Module], nn.Module] = lambda m: m,
    wrap_loader: Callable[[DataLoader], DataLoader] = lambda d: d,
    is_main: bool = True,
    report: Reporter | None = None,
    device: torch.device | None = None,
) -> TrainSummary:
    """The training loop shared by single-process and Ray Train runs.

    ``wrap_model``/``wrap_loader`` are identity for one process; under Ray Train they add DDP and a
    distributed sampler. Only the main worker writes checkpoints; ``report`` is called by every worker
    once per epoch (Ray Train requires it) with the epoch metrics and the checkpoint path (main only).
    """
    seed_everything(opts.seed)
    device = device or pick_device(opts.device)
    batch_size = opts.batch_size or cfg.optim.batch_size
    model = build_model(cfg, pretrained=True).to(device)
    train_loader, val_loader = make_loaders(cfg, opts, batch_size)
    train_loader = wrap_loader(train_loader)
    net = wrap_model(model)
    epochs = opts.epochs or cfg.optim.epochs
    steps_per_epoch = len(train_loader)
    total_steps = opts.max_steps or epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    optim_cfg = cfg.optim.model_copy(update={"lr": opts.lr}) if opts.lr else cfg.optim
    optimizer = build_optimizer(model, optim_cfg)
    scheduler = build_scheduler(optimizer, total_steps, optim_cfg.poly_power)
    criterion = DANetLoss(cfg)
    opts.out_dir.mkdir(parents=True, exist_ok=True)

    step, best_miou, last_loss = 0, None, math.nan
    best_path: Path | None = None
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        net.train()
        running: dict[str, float] = {}
        seen = 0
        bar = tqdm(
            train_loader, desc=f"epoch {epoch}/{epochs}", disable=not (opts.progress and is_main), leave=False
        )
        for batch in bar:
            if step >= total_steps:
                break
            images = batch["image"].to(device, non_blocking=True)
            masks = batch["mask"].to(device, non_blocking=True)
            input_ids, attention_mask = model.tokenize(list(batch["text"]))
            with autocast_for(device):
                out = net(images, input_ids.to(device), attention_mask.to(device))
                loss, parts = criterion(out, masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            seen += 1
            last_loss = float(loss.detach())
            for key, value in parts.items():
                running[key] = running.get(key, 0.0) + float(value)
            if step % opts.log_every == 0:
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        record = {f"train/{k}": v / max(seen, 1) for k, v in running.items()}
        record |= {"epoch": float(epoch), "step": float(step), "lr": scheduler.get_last_lr()[0]}
        if val_loader is not None and is_main:
            summary = evaluate(model, val_loader, device=device, progress=False).summary()
            record |= {f"val/{k}": v for k, v in summary.items()}
        checkpoint_path = None
        if is_main:
            checkpoint_path = save_checkpoint(
                opts.out_dir / "last.pt", model, cfg, kind=opts.checkpoint_kind, step=step, epoch=epoch,
                metrics=record, extra={"options": _jsonable(asdict(opts))},
            )  # fmt: skip
            miou = record.get("val/mIoU")
            if miou is not None and (best_miou is None or miou > best_miou):
                best_miou = miou
                best_path = opts.out_dir / "best.pt"
                best_path.write_bytes(checkpoint_path.read_bytes())
            log.info("epoch %d: %s", epoch, json.dumps(record))
        history.append(record)
        if report is not None:
            report(record, checkpoint_path)
        if step >= total_steps:
            break
    if is_main:
        (opts.out_dir / "history.json").write_text(json.dumps(history, indent=2))
    return TrainSummary(
        steps=step,
        epochs=len(history),
        seconds=time.perf_counter() - started,
        final_loss=last_loss,
        best_miou=best_miou,
        checkpoint=best_path or (opts.out_dir / "last.pt" if is_main else None),
        history=history,
    )


def train(cfg: DANetConfig, opts: TrainOptions) -> TrainSummary:
    """Train in this process."""
    return run_training(cfg, opts)


def train_distributed(
    cfg: DANetConfig, opts: TrainOptions, *, num_workers: int, use_gpu: bool = False
) -> TrainSummary:
    """Data-parallel training on ``num_workers`` Ray Train workers (DDP; gloo on CPU, NCCL on GPU).

    Connects to a running Ray cluster if ``RAY_ADDRESS`` is set, else starts a local one. The batch size
    is per worker, as in DDP. Returns the main worker's summary.
    """
    import ray
    from ray.train import Checkpoint, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    def loop(config: dict[str, Any]) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        is_main = context.get_world_rank() == 0

        def report(metrics: dict[str, float], path: Path | None) -> None:
            if path is None:
                ray.train.report(metrics)
                return
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / path.name).write_bytes(path.read_bytes())
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))

        summary = run_training(
            config["cfg"],
            config["opts"],
            wrap_model=ray.train.torch.prepare_model,
            wrap_loader=ray.train.torch.prepare_data_loader,
            is_main=is_main,
            report=report,
            device=ray.train.torch.get_device(),
        )
        if is_main:
            (config["opts"].out_dir / "summary.json").write_text(json.dumps(_jsonable(asdict(summary))))

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(include_dashboard=False, log_to_driver=False)
    try:
        trainer = TorchTrainer(
            loop,
            train_loop_config={"cfg": cfg, "opts": opts},
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
            run_config=RunConfig(name="danet-train", storage_path=str(opts.out_dir.resolve() / "ray")),
        )
        result = trainer.fit()
    finally:
        if started_ray:
            ray.shutdown()
    if result.error is not None:
        raise RuntimeError(f"distributed training failed: {result.error}") from result.error
    data = json.loads((opts.out_dir / "summary.json").read_text())
    data["checkpoint"] = Path(data["checkpoint"]) if data["checkpoint"] else None
    return TrainSummary(**data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
