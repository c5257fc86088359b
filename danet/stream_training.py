"""Step-based, resumable training on the on-the-fly referring stream (`danet.datagen.stream`).

What makes it fast on a CPU (measured by ``benchmarks/train_throughput.py``):

- the frozen text tower runs once per distinct sentence: features are cached (`TextFeatureCache`);
- frozen early backbone stages (``backbone.frozen_stages``) skip their backward pass;
- channels-last memory layout for the convolutions, all cores for the step, and the scene generation in
  DataLoader worker processes, off the training thread.

Resumable: ``state.pt`` (model, optimiser, step, wall time used) is written every
``checkpoint_every`` steps next to ``last.pt`` (a `danet.checkpoint` file); starting again with the same
``out_dir`` continues from it. ``history.jsonl`` holds one line per logged step and per validation, and
``curves.png`` plots them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from danet.checkpoint import read_checkpoint, save_checkpoint, trainable_state_dict
from danet.config import DANetConfig
from danet.data.dataset import open_dataset
from danet.datagen.stream import ReferringStream
from danet.evaluation import evaluate
from danet.losses import DANetLoss
from danet.model.danet import DANet, build_model
from danet.model.text import TextFeatures
from danet.optim import build_optimizer
from danet.training import pick_device, seed_everything

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"
HISTORY_FILE = "history.jsonl"


@dataclass
class StreamTrainOptions:
    """One streamed training run. ``max_minutes`` stops early (and saves) when the wall budget is spent."""

    out_dir: Path
    max_steps: int
    batch_size: int = 8
    lr: float | None = None
    warmup_steps: int = 100
    seed: int = 0
    threads: int | None = None
    loader_workers: int = 1
    channels_last: bool = True
    cache_text: bool = True
    checkpoint_every: int = 200
    log_every: int = 20
    init: Path | None = None  # start from this checkpoint's trained tensors (a new schedule, e.g. v2 -> v3)
    val_data: Path | None = None
    val_split: str = "val"
    val_every: int = 500
    val_limit: int = 128
    max_minutes: float | None = None
    device: str = "auto"
    progress: bool = True


class TextFeatureCache:
    """Frozen-text-tower features per sentence (LRU), so each distinct sentence is encoded once."""

    def __init__(self, model: DANet, capacity: int = 50_000) -> None:
        if not model.cfg.text.freeze:
            raise ValueError("text.freeze: the text feature cache needs a frozen text encoder")
        self.model, self.capacity = model, capacity
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = OrderedDict()
        self.hits = self.misses = 0

    @torch.no_grad()
    def __call__(self, texts: list[str], device: torch.device) -> TextFeatures:
        """Features of ``texts`` (one row each), encoding only the sentences not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if missing:
            ids, mask = self.model.tokenize(missing)
            features = self.model.encode_text(ids.to(device), mask.to(device))
            for i, text in enumerate(missing):
                self._cache[text] = (features.words[i], features.mask[i], features.sentence[i])
                if len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        rows = [self._cache[t] for t in texts]
        for t in texts:
            self._cache.move_to_end(t)
        return TextFeatures(
            words=torch.stack([r[0] for r in rows]),
            mask=torch.stack([r[1] for r in rows]),
            sentence=torch.stack([r[2] for r in rows]),
        )


def lr_factor(step: int, progress: float, warmup: int, power: float) -> float:
    """Linear warm-up over ``warmup`` steps, then LAVT's poly decay ``(1 - progress) ** power``.

    ``progress`` in [0, 1] is the larger of the share of steps and the share of the wall budget used, so
    a run stopped by its time budget still ends with a decayed learning rate.
    """
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    return ramp * max(0.0, 1.0 - min(progress, 1.0)) ** power


def train_stream(cfg: DANetConfig, opts: StreamTrainOptions) -> dict[str, Any]:
    """Train (or resume) on the referring stream; returns a summary with the final checkpoint path."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    seed_everything(opts.seed)
    device = pick_device(opts.device)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg, pretrained=True).to(device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optim_cfg = cfg.optim.model_copy(update={"lr": opts.lr}) if opts.lr else cfg.optim
    optimizer = build_optimizer(model, optim_cfg)
    base_lr = optim_cfg.lr
    step, best, spent = 0, -math.inf, 0.0
    state_path = out / STATE_FILE
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step, best, spent = state["step"], state.get("best", -math.inf), state.get("seconds", 0.0)
        log.info("resumed %s at step %d", out, step)
    elif opts.init is not None:
        _, tensors = read_checkpoint(opts.init)
        unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"init: {opts.init} holds tensors this config does not have: {unexpected[:5]}")
        log.info("initialised from %s", opts.init)

    criterion = DANetLoss(cfg)
    cache = TextFeatureCache(model) if opts.cache_text and cfg.text.freeze else None
    # A resumed run draws new samples: the stream's offset is the number of samples already used.
    stream = ReferringStream(cfg.input_size, seed=opts.seed, offset=step * opts.batch_size)
    loader = DataLoader(
        stream,
        batch_size=opts.batch_size,
        num_workers=opts.loader_workers,
        persistent_workers=opts.loader_workers > 0,
        prefetch_factor=4 if opts.loader_workers > 0 else None,
    )
    val_loader = _val_loader(cfg, opts)
    run_started = time.perf_counter() - spent  # the wall budget counts earlier sessions too
    started = time.perf_counter()

    def progress() -> float:
        shares = [step / opts.max_steps]
        if opts.max_minutes is not None:
            minutes = (time.perf_counter() - run_started) / 60
            shares.append(minutes / opts.max_minutes if opts.max_minutes > 0 else math.inf)
        return max(shares)

    history = (out / HISTORY_FILE).open("a", encoding="utf-8")
    model.train()
    running: dict[str, float] = {}
    seen = 0
    bar = tqdm(total=opts.max_steps, initial=step, desc="train", disable=not opts.progress)
    try:
        for batch in loader:
            if progress() >= 1.0:  # the step budget or the wall budget is spent
                break
            images = batch["image"].to(device, non_blocking=True)
            if opts.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            masks = batch["mask"].to(device, non_blocking=True)
            texts = list(batch["text"])
            if cache is not None:
                output = model.forward_with_text(images, cache(texts, device))
            else:
                ids, attention = model.tokenize(texts)
                output = model(images, ids.to(device), attention.to(device))
            loss, parts = criterion(output, masks)
            lr = base_lr * lr_factor(step, progress(), opts.warmup_steps, optim_cfg.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            seen += 1
            bar.update(1)
            for key, value in parts.items():
                running[key] = running.get(key, 0.0) + value
            if step % opts.log_every == 0:
                record = {k: v / seen for k, v in running.items()}
                record |= {"step": step, "lr": lr, "seconds": time.perf_counter() - started}
                record["samples_per_s"] = seen * opts.batch_size / max(record["seconds"], 1e-9)
                history.write(json.dumps({"train": record}) + "\n")
                history.flush()
                bar.set_postfix(loss=f"{record['total']:.3f}")
                running, seen, started = {}, 0, time.perf_counter()
            if val_loader is not None and step % opts.val_every == 0:
                best = _validate(model, val_loader, device, step, best, cfg, out, history)
            if step % opts.checkpoint_every == 0:
                _save(model, optimizer, cfg, out, step, best, opts, time.perf_counter() - run_started)
    finally:
        bar.close()
    if val_loader is not None and step % opts.val_every:
        best = _validate(model, val_loader, device, step, best, cfg, out, history)
    _save(model, optimizer, cfg, out, step, best, opts, time.perf_counter() - run_started)
    history.close()
    plot_history(out / HISTORY_FILE, out / "curves.png")
    summary = {"steps": step, "best_val_mIoU": None if best == -math.inf else best}
    if cache is not None:
        summary["text_cache_hit_rate"] = cache.hits / max(cache.hits + cache.misses, 1)
    return summary


def _val_loader(cfg: DANetConfig, opts: StreamTrainOptions) -> DataLoader | None:
    if opts.val_data is None:
        return None
    dataset = open_dataset(opts.val_data, opts.val_split, cfg.input_size)
    indices = torch.linspace(0, len(dataset) - 1, min(opts.val_limit, len(dataset))).long().tolist()
    subset = torch.utils.data.Subset(dataset, sorted(set(indices)))
    return DataLoader(subset, batch_size=16)


def _validate(
    model: DANet,
    loader: DataLoader,
    device: torch.device,
    step: int,
    best: float,
    cfg: DANetConfig,
    out: Path,
    history: Any,
) -> float:
    summary = evaluate(model, loader, device=device, progress=False).summary()
    history.write(json.dumps({"val": {"step": step, **summary}}) + "\n")
    history.flush()
    log.info("step %d validation: %s", step, summary)
    if summary["mIoU"] > best:
        best = summary["mIoU"]
        save_checkpoint(out / "best.pt", model, cfg, kind="trainable", step=step, metrics=summary)
    return best


def _save(
    model: DANet,
    optimizer: torch.optim.Optimizer,
    cfg: DANetConfig,
    out: Path,
    step: int,
    best: float,
    opts: StreamTrainOptions,
    seconds: float,
) -> None:
    extra = {"options": {k: str(v) for k, v in asdict(opts).items()}, "data": "danet.datagen.stream"}
    save_checkpoint(out / "last.pt", model, cfg, kind="trainable", step=step, extra=extra)
    state = {
        "model": trainable_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "seconds": seconds,
        "best": best,
    }
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / STATE_FILE)


def plot_history(history: Path, image: Path) -> Path | None:
    """Training loss and validation mIoU / Pr@0.5 against step, as a PNG (matplotlib if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no training curves written")
        return None
    train, val = [], []
    for line in history.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        (train if "train" in entry else val).append(entry.get("train") or entry.get("val"))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    if train:
        left.plot([r["step"] for r in train], [r["total"] for r in train], label="total loss")
        for key in ("ce", "dice", "affinity", "agent"):
            if key in train[0]:
                left.plot([r["step"] for r in train], [r[key] for r in train], label=key, alpha=0.6)
    left.set(xlabel="step", title="training loss (running mean)")
    if train:
        left.legend()
    if val:
        for key in ("mIoU", "oIoU", "Pr@0.5"):
            right.plot([r["step"] for r in val], [r[key] for r in val], marker="o", label=key)
        right.legend()
    right.set(xlabel="step", title="validation", ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(image, dpi=110)
    plt.close(figure)
    return image
