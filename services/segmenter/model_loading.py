"""The segmenter's model from settings: a DANet checkpoint, or a preset built with its pretrained weights,
and the names that identify it — the model name recorded in detections, and the text encoder's id and
version that key the text-embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import torch

from danet.checkpoint import library_versions, load_checkpoint, pretrained_checksums
from danet.config import DANetConfig, load_preset
from danet.model import DANet, build_model
from danet.predict import Predictor
from danet.weights import fingerprint
from services.segmenter.protocol import LocalSegmenter
from services.settings import SegmenterSettings

log = logging.getLogger(__name__)

# Parts a preset leaves randomly initialised must be the same on every replica and in every process
# that compares outputs with the service, so they are drawn from a fixed seed.
RANDOM_INIT_SEED = 0
_DIGEST_CHARS = 12


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode with the names that identify its weights."""

    model: DANet
    config: DANetConfig
    model_name: str
    text_encoder_id: str
    text_encoder_version: str


def load_model(settings: SegmenterSettings) -> LoadedModel:
    """Build the model ``settings`` name, on the CPU in eval mode.

    A checkpoint is identified by its SHA-256; a preset by a digest of its config, its pretrained
    weights' checksums, the seed and the library versions (they decide its random initialisation).

    Raises:
        CheckpointError: the checkpoint is missing, unreadable, or does not fit the weights here.
        PresetError / MissingWeightsError: the preset is unknown, or its pretrained weights are absent.
    """
    if settings.checkpoint is not None:
        model, info = load_checkpoint(settings.checkpoint)
        cfg = info.config
        digest = fingerprint(settings.checkpoint)
        log.info(
            "segmenter model: checkpoint %s (preset %s, sha256 %s)", settings.checkpoint, cfg.name, digest
        )
    else:
        cfg = load_preset(settings.preset)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = build_model(cfg, pretrained=settings.pretrained)
        digest = _preset_digest(cfg, pretrained=settings.pretrained)
        log.info(
            "segmenter model: preset %s (pretrained=%s, digest %s)", cfg.name, settings.pretrained, digest
        )
    short = digest[:_DIGEST_CHARS]
    text = cfg.text
    return LoadedModel(
        model=model.eval(),
        config=cfg,
        model_name=f"danet-{cfg.name}@{short}",
        text_encoder_id=f"bert-{text.layers}x{text.hidden}-{text.max_tokens}tok",
        text_encoder_version=f"{cfg.name}@{short}",
    )


def select_device(settings: SegmenterSettings) -> torch.device:
    """``cpu``; ``cuda`` (must be visible); or ``auto``: CUDA when the replica has GPUs, else the CPU.

    Raises:
        RuntimeError: ``device: cuda`` but no CUDA device is visible to this process.
    """
    if settings.device == "cpu":
        return torch.device("cpu")
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"segmenter.device: 'cuda' was asked for, but no CUDA device is visible "
            f"(segmenter.num_gpus={settings.num_gpus})"
        )
    if settings.device == "cuda" or (settings.num_gpus > 0 and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def build_predictor(settings: SegmenterSettings) -> tuple[Predictor, LoadedModel]:
    """The loaded model on its device (bf16 autocast on CUDA), batching ``max_batch_size`` tiles."""
    loaded = load_model(settings)
    predictor = Predictor(
        loaded.model,
        device=select_device(settings),
        batch_size=settings.max_batch_size,
        model_name=loaded.model_name,
    )
    return predictor, loaded


def build_local_segmenter(settings: SegmenterSettings) -> LocalSegmenter:
    """The same model as the Serve deployment would hold, run in this process."""
    predictor, loaded = build_predictor(settings)
    return LocalSegmenter(predictor, loaded.model_name)


def _preset_digest(cfg: DANetConfig, *, pretrained: bool) -> str:
    identity = {
        "config": cfg.model_dump(mode="json"),
        "pretrained": pretrained_checksums(cfg) if pretrained else {},
        "seed": RANDOM_INIT_SEED,
        "versions": library_versions(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
