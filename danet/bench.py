"""Model cost figures: parameter counts, FLOPs (torch's flop counter) and forward throughput.

FLOP convention: ``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add. Papers in
this field (LAVT/DiCoR tables, fvcore) count one fused multiply-add as one FLOP, so their "GFLOPs" are
our ``macs`` (= flops / 2). Both are reported, labelled.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from danet.model.danet import DANet

# Module groups of a DANet, by attribute path.
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "text_encoder": ("text",),
    "backbone": ("encoder.visual",),
    "fusion": ("encoder.fusions",),
    "alignment": ("affinity", "agent"),
    "decoder": ("decoder",),
}


@dataclass(frozen=True)
class ParamCount:
    """Number of parameters, all and trainable (``requires_grad``)."""

    total: int
    trainable: int


@dataclass(frozen=True)
class ParamReport:
    """Parameters of the whole model and of each module group."""

    total: int
    trainable: int
    groups: dict[str, ParamCount]

    def as_dict(self) -> dict:
        """Plain-data form (for JSON)."""
        return asdict(self)


def _group_modules(model: DANet, paths: tuple[str, ...]) -> list[nn.Module]:
    modules = []
    for path in paths:
        module = model
        for part in path.split("."):
            module = getattr(module, part)
        if module is not None:
            modules.append(module)
    return modules


def _count(modules: list[nn.Module]) -> ParamCount:
    params = [p for m in modules for p in m.parameters()]
    return ParamCount(sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))


def count_params(model: DANet) -> ParamReport:
    """Parameter counts, total and per group (text_encoder, backbone, fusion, alignment, decoder)."""
    whole = _count([model])
    groups = {name: _count(_group_modules(model, paths)) for name, paths in MODULE_GROUPS.items()}
    return ParamReport(whole.total, whole.trainable, groups)


@dataclass(frozen=True)
class FlopReport:
    """Forward FLOPs for one batch, as torch counts them (2 per multiply-add), total and per group."""

    batch_size: int
    height: int
    width: int
    text_tokens: int
    flops: int
    groups: dict[str, int]

    @property
    def macs(self) -> int:
        """Multiply-adds: the "FLOPs" of fvcore and of the LAVT/DiCoR tables."""
        return self.flops // 2

    def as_dict(self) -> dict:
        """Plain-data form (for JSON), with ``macs`` and the per-image giga figures."""
        return {
            **asdict(self),
            "macs": self.macs,
            "gflops_torch_per_image": self.flops / self.batch_size / 1e9,
            "gmacs_per_image": self.macs / self.batch_size / 1e9,
        }


def dummy_inputs(
    model: DANet, batch_size: int, height: int, width: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """Random images and full-length token ids (every position real, the costliest text case)."""
    generator = torch.Generator().manual_seed(0)
    tokens = model.cfg.text.max_tokens
    vocab = model.text.bert.config.vocab_size
    images = torch.randn(batch_size, 3, height, width, generator=generator)
    input_ids = torch.randint(0, vocab, (batch_size, tokens), generator=generator)
    attention_mask = torch.ones(batch_size, tokens, dtype=torch.long)
    return images.to(device), input_ids.to(device), attention_mask.to(device)


def _flops_under(counts: dict[str, int], prefix: str) -> int:
    """FLOPs of the modules at or below ``prefix``.

    The counter only records modules that were *called*; containers driven child by child (the encoder's
    stage list) never appear, so the outermost recorded modules under the prefix are summed.
    """
    names = [n for n in counts if n == prefix or n.startswith(f"{prefix}.")]
    outermost = [n for n in names if not any(n.startswith(f"{other}.") for other in names)]
    return sum(counts[n] for n in outermost)


def count_flops(model: DANet, height: int, width: int | None = None, batch_size: int = 1) -> FlopReport:
    """Count forward FLOPs at ``height`` x ``width`` (default square) with ``max_tokens`` text tokens."""
    width = height if width is None else width
    device = next(model.parameters()).device
    inputs = dummy_inputs(model, batch_size, height, width, device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*inputs)
    finally:
        model.train(was_training)
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    groups = {
        name: sum(_flops_under(counts, f"{root}.{path}") for path in paths)
        for name, paths in MODULE_GROUPS.items()
    }
    return FlopReport(batch_size, height, width, model.cfg.text.max_tokens, counter.get_total_flops(), groups)


@dataclass(frozen=True)
class ThroughputReport:
    """Forward-pass speed for one batch size (inference mode)."""

    device: str
    batch_size: int
    height: int
    width: int
    bf16: bool
    warmup: int
    iterations: int
    seconds: float
    images_per_s: float
    ms_per_batch: float

    def as_dict(self) -> dict:
        """Plain-data form (for JSON)."""
        return asdict(self)


def device_name(device: torch.device) -> str:
    """Human-readable device name, e.g. the GPU model."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(
    model: DANet,
    batch_size: int,
    height: int,
    width: int | None = None,
    *,
    bf16: bool = False,
    warmup: int = 3,
    iterations: int = 10,
) -> ThroughputReport:
    """Time ``iterations`` forward passes after ``warmup`` ones, on the model's device.

    ``bf16`` runs under ``torch.autocast(dtype=bfloat16)`` (meant for CUDA).
    """
    if iterations <= 0 or warmup < 0:
        raise ValueError(f"iterations must be positive and warmup non-negative, got {iterations}, {warmup}")
    width = height if width is None else width
    device = next(model.parameters()).device
    inputs = dummy_inputs(model, batch_size, height, width, device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for _ in range(warmup):
                model(*inputs)
            _synchronize(device)
            start = time.perf_counter()
            for _ in range(iterations):
                model(*inputs)
            _synchronize(device)
            seconds = time.perf_counter() - start
    finally:
        model.train(was_training)
    return ThroughputReport(
        device=device_name(device),
        batch_size=batch_size,
        height=height,
        width=width,
        bf16=bf16,
        warmup=warmup,
        iterations=iterations,
        seconds=seconds,
        images_per_s=batch_size * iterations / seconds,
        ms_per_batch=1000.0 * seconds / iterations,
    )
