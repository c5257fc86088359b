"""Checkpoints that say what they are: preset and full config, library versions, training progress,
metrics, and the SHA-256 of every external pretrained file they build on.

Two kinds: ``full`` (every parameter and buffer) and ``trainable`` (only tensors training can change;
frozen pretrained towers are referenced by package/path and checksum, not copied — small enough to ship
in a repository). Loading a ``trainable`` checkpoint rebuilds the model with its pretrained weights,
checks their checksums against the recorded ones, then overlays the saved tensors.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from danet.config import DANetConfig, WeightsSource
from danet.model.danet import DANet, build_model
from danet.weights import fingerprint, resolve_weights

FORMAT = "danet-checkpoint"
FORMAT_VERSION = 1
Kind = Literal["full", "trainable"]


class CheckpointError(ValueError):
    """A checkpoint is unreadable, of another format, or does not fit the weights on this machine."""


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything a checkpoint records besides its tensors."""

    config: DANetConfig
    kind: Kind
    step: int = 0
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    pretrained: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def preset(self) -> str:
        """Name of the preset the model was built from."""
        return self.config.name


def weight_sources(cfg: DANetConfig) -> dict[str, WeightsSource]:
    """Every external pretrained source a config uses, keyed by its config field."""
    sources: dict[str, WeightsSource | None] = {
        "backbone.weights": cfg.backbone.weights,
        "text.weights": cfg.text.weights,
        "text.tokenizer": cfg.text.tokenizer,
    }
    return {name: source for name, source in sources.items() if source is not None}


def pretrained_checksums(cfg: DANetConfig) -> dict[str, str]:
    """SHA-256 (file, or folder fingerprint) of each external pretrained source, keyed by config field."""
    return {name: fingerprint(resolve_weights(source, name)) for name, source in weight_sources(cfg).items()}


def library_versions() -> dict[str, str]:
    """Versions of the libraries that define the tensors' meaning."""
    versions = {"python": platform.python_version()}
    for dist in ("lookout", "torch", "timm", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters with ``requires_grad`` plus the buffers of modules that hold such parameters
    (e.g. BatchNorm running statistics of a trained decoder)."""
    state = model.state_dict()
    keep = {name for name, p in model.named_parameters() if p.requires_grad}
    for module_name, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            prefix = f"{module_name}." if module_name else ""
            keep |= {prefix + name for name, _ in module.named_buffers(recurse=False)}
    return {name: tensor for name, tensor in state.items() if name in keep}


def save_checkpoint(
    path: Path,
    model: nn.Module,
    cfg: DANetConfig,
    *,
    kind: Kind = "full",
    step: int = 0,
    epoch: int = 0,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its provenance to ``path`` (parent folders are created)."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    tensors = model.state_dict() if kind == "full" else trainable_state_dict(model)
    info = CheckpointInfo(
        config=cfg,
        kind=kind,
        step=step,
        epoch=epoch,
        metrics=dict(metrics or {}),
        pretrained=pretrained_checksums(cfg),
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        extra=dict(extra or {}),
    )
    meta = asdict(info) | {"config": cfg.model_dump(mode="json")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta, "state_dict": tensors}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint under the final name
    return path


def read_checkpoint(path: Path) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """Read a checkpoint's record and tensors without building a model."""
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise CheckpointError(f"checkpoint {path} is not a readable torch file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file (was it written by danet train?)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {payload.get('format_version')}; this danet reads {FORMAT_VERSION}"
        )
    meta = dict(payload["meta"])
    meta["config"] = DANetConfig.model_validate(meta["config"])
    return CheckpointInfo(**meta), payload["state_dict"]


def load_checkpoint(path: Path, *, device: str | torch.device = "cpu") -> tuple[DANet, CheckpointInfo]:
    """Build the model a checkpoint describes and load its tensors (eval mode, on ``device``).

    Raises:
        CheckpointError: unreadable file, or (``trainable`` kind) pretrained weights on this machine whose
            checksums differ from those the checkpoint was trained on.
    """
    info, tensors = read_checkpoint(path)
    if info.kind == "full":
        model = build_model(info.config, pretrained=False)
        model.load_state_dict(tensors, strict=True)
    else:
        current = pretrained_checksums(info.config)
        for name, recorded in info.pretrained.items():
            if current.get(name) != recorded:
                raise CheckpointError(
                    f"{path}: {name} on this machine has sha256 {current.get(name)}, but the checkpoint was "
                    f"trained on {recorded}; install the same pretrained weights"
                )
        model = build_model(info.config, pretrained=True)
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if unexpected:
            raise CheckpointError(f"{path}: tensors the model does not have: {unexpected[:5]}")
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        not_frozen = [name for name in missing if name not in frozen and not _is_frozen_buffer(model, name)]
        if not_frozen:
            raise CheckpointError(f"{path}: trainable tensors missing from the checkpoint: {not_frozen[:5]}")
    return model.to(device).eval(), info


def _is_frozen_buffer(model: nn.Module, name: str) -> bool:
    module_name, _, _ = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    return not any(p.requires_grad for p in module.parameters(recurse=False))
