"""Locating, checking and adapting pretrained weights (kept apart from the architecture code).

Weights are only ever read from local paths or installed packages, never downloaded. A source that is
configured but absent raises :class:`MissingWeightsError` naming the config field, the file and where to
put it; nothing silently falls back to random initialisation.

Foreign checkpoints are adapted to our module names by ``*_filter_fn`` functions in the timm style and then
loaded with ``strict=True``, so a mapping that misses or invents a key fails loudly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from danet.config import WEIGHTS_DIR_ENV, PackageWeights, PathWeights, TextConfig, WeightsSource, weights_dir
from danet.packages import PackageNotInstalledError, package_path

if TYPE_CHECKING:
    from transformers import BertModel

StateDict = dict[str, torch.Tensor]


class MissingWeightsError(FileNotFoundError):
    """Configured pretrained weights are not present on this machine."""


class WeightsChecksumError(ValueError):
    """Pretrained weights are present but their SHA-256 differs from the configured one."""


def resolve_weights(source: WeightsSource, field: str) -> Path:
    """Return the local path of a weights source and check its SHA-256 when one is configured.

    Args:
        source: where the weights live.
        field: the config field that named the source (used in error messages).

    Raises:
        MissingWeightsError: the file, folder or package is absent; the message says where to put it.
        WeightsChecksumError: ``source.sha256`` is set and differs from the file's.
    """
    path = _locate(source, field)
    if source.sha256 is not None:
        actual = fingerprint(path)
        if actual != source.sha256:
            raise WeightsChecksumError(
                f"{field}: {path} has sha256 {actual}, but the config expects {source.sha256}"
            )
    return path


def require_weights(sources: Mapping[str, WeightsSource | None]) -> dict[str, Path]:
    """Resolve every configured source (``{config field: source}``; ``None`` entries are skipped).

    All sources are checked before anything is loaded, so one error lists every missing file.

    Raises:
        MissingWeightsError: one or more sources are absent (one line per source).
        WeightsChecksumError: a present file does not match its configured SHA-256.
    """
    resolved, missing = {}, []
    for field, source in sources.items():
        if source is None:
            continue
        try:
            resolved[field] = resolve_weights(source, field)
        except MissingWeightsError as exc:
            missing.append(str(exc))
    if missing:
        raise MissingWeightsError("missing pretrained weights:\n- " + "\n- ".join(missing))
    return resolved


def _locate(source: WeightsSource, field: str) -> Path:
    hint = f" {source.hint}" if source.hint else ""
    if isinstance(source, PathWeights):
        path = Path(source.path).expanduser()
        if not path.is_absolute():
            path = weights_dir() / path
        if not path.exists():
            raise MissingWeightsError(
                f"{field}: pretrained weights '{Path(source.path).name}' not found at {path}. Put the "
                f"file or folder there (relative paths resolve against ${WEIGHTS_DIR_ENV}, now "
                f"{weights_dir()}), or set {field} to null for random initialisation.{hint}"
            )
        return path
    assert isinstance(source, PackageWeights)
    try:
        return package_path(source.package, source.file)
    except PackageNotInstalledError:
        raise MissingWeightsError(
            f"{field}: package '{source.package}' that ships '{source.file}' is not installed.{hint}"
        ) from None
    except FileNotFoundError as exc:
        raise MissingWeightsError(f"{field}: {exc}.{hint}") from None


def fingerprint(path: Path) -> str:
    """SHA-256 of a file, or of a folder (over each file's relative path and SHA-256, in sorted order)."""
    if path.is_file():
        return _file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> StateDict:
    """Read a ``.pth``/``.bin`` (tensors only, ``weights_only=True``) or ``.safetensors`` state dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


# --- EfficientNet-Lite0: lukemelas-style names -> timm names -------------------------------------------

_EFFNET_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# The first block is depthwise-separable (no expansion conv), the others are inverted residuals; the
# lukemelas names are the same for both but timm's differ.
_EFFNET_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_EFFNET_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def efficientnet_lite0_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> StateDict:
    """Rename a lukemelas-style EfficientNet state dict (flat ``_blocks.N``) to timm's nested names.

    timm groups the blocks by stage (``blocks.<stage>.<index>``); the stage lengths are read from
    ``model.blocks`` so the flat block number maps to its (stage, index) pair.
    """
    positions = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    out: StateDict = {}
    for key, value in state_dict.items():
        match = _EFFNET_BLOCK_KEY.match(key)
        if match is None:
            module, param = key.split(".", 1)
            out[f"{_EFFNET_TOP[module]}.{param}"] = value
            continue
        number, module, param = int(match[1]), match[2], match[3]
        stage, index = positions[number]
        names = _EFFNET_DS_BLOCK if stage == 0 else _EFFNET_IR_BLOCK
        out[f"blocks.{stage}.{index}.{names[module]}.{param}"] = value
    return out


def load_efficientnet_lite0_weights(model: nn.Module, path: Path) -> None:
    """Load lukemelas-style EfficientNet-Lite0 ImageNet weights into a full timm classifier (strict)."""
    model.load_state_dict(efficientnet_lite0_filter_fn(read_state_dict(path), model), strict=True)


# --- Swin: official Microsoft checkpoints -> timm ------------------------------------------------------


def swin_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> StateDict:
    """Adapt an official Swin checkpoint (e.g. ``swin_base_patch4_window12_384_22k.pth``) to timm.

    timm's own ``checkpoint_filter_fn`` moves each PatchMerging from the end of stage i (official layout)
    to the start of stage i+1 (timm layout), drops non-persistent buffers and resizes relative-position
    tables to the model's window. The classifier head (21k ImageNet classes) is dropped: DANet has none.
    """
    from timm.models.swin_transformer import checkpoint_filter_fn

    adapted = checkpoint_filter_fn(dict(state_dict), model)
    return {k: v for k, v in adapted.items() if not k.startswith("head.")}


def load_swin_weights(model: nn.Module, path: Path) -> None:
    """Load an official Swin checkpoint into a headless timm ``SwinTransformer`` (strict)."""
    model.load_state_dict(swin_filter_fn(read_state_dict(path), model), strict=True)


# --- BERT ----------------------------------------------------------------------------------------------

_BERT_FIELDS = {
    "hidden": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_position_embeddings",
}


def load_bert(folder: Path, cfg: TextConfig, field: str) -> BertModel:
    """Load a pretrained ``BertModel`` (no pooler) from a local folder, checking it matches ``cfg``.

    Raises:
        ValueError: the folder's architecture differs from the configured one (names the field).
        RuntimeError: the checkpoint lacks weights the model needs.
    """
    # Imported here: transformers takes seconds to import and only the text encoder needs it.
    from transformers import BertConfig, BertModel

    folder_cfg = BertConfig.from_pretrained(folder, local_files_only=True)
    for ours, theirs in _BERT_FIELDS.items():
        if getattr(cfg, ours) != getattr(folder_cfg, theirs):
            raise ValueError(
                f"text.{ours}={getattr(cfg, ours)} but {field} ({folder}) has {theirs}="
                f"{getattr(folder_cfg, theirs)}"
            )
    # Loaded with the pooler so checkpoints that have one load without "unexpected key" noise; DANet
    # uses the word features only, so the pooler is dropped afterwards.
    model, info = BertModel.from_pretrained(
        folder, local_files_only=True, output_loading_info=True, dtype=torch.float32
    )
    missing = [k for k in info["missing_keys"] if not k.startswith("pooler.")]
    if missing:
        raise RuntimeError(f"{field}: {folder} lacks BERT weights: {', '.join(sorted(missing))}")
    model.pooler = None
    return model
