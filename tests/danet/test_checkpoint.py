"""Checkpoints record their provenance and rebuild the same model."""

from pathlib import Path

import pytest
import torch

from danet.checkpoint import (
    CheckpointError,
    load_checkpoint,
    pretrained_checksums,
    read_checkpoint,
    save_checkpoint,
    trainable_state_dict,
)
from danet.config import load_preset
from danet.model.danet import build_model
from danet.weights import fingerprint, resolve_weights


def _same_outputs(a, b, cfg) -> None:
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 64)
    ids, mask = a.tokenize(["the small ship on the left"])
    a.eval()
    b.eval()
    with torch.inference_mode():
        torch.testing.assert_close(a(images, ids, mask).logits, b(images, ids, mask).logits)


def test_full_checkpoint_round_trip_records_provenance(tmp_path):
    cfg = load_preset("tiny")
    model = build_model(cfg)
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, step=7, epoch=2, metrics={"val/mIoU": 0.25})
    loaded, info = load_checkpoint(path)
    assert info.preset == "tiny"
    assert info.kind == "full"
    assert (info.step, info.epoch, info.metrics) == (7, 2, {"val/mIoU": 0.25})
    assert info.versions["torch"] == torch.__version__.split("+")[0] or info.versions["torch"].startswith(
        torch.__version__.split("+")[0]
    )
    assert info.pretrained == {}  # tiny builds on no external weights
    _same_outputs(model, loaded, cfg)


def test_lite_records_checksums_of_the_pretrained_towers():
    cfg = load_preset("lite")
    checksums = pretrained_checksums(cfg)
    assert set(checksums) >= {"backbone.weights", "text.weights"}
    expected = fingerprint(resolve_weights(cfg.backbone.weights, "backbone.weights"))
    assert checksums["backbone.weights"] == expected
    assert all(len(value) == 64 for value in checksums.values())


def test_trainable_checkpoint_omits_frozen_tensors_and_restores_the_model(tmp_path):
    cfg = load_preset("tiny")
    model = build_model(cfg)
    for p in model.text.parameters():
        p.requires_grad_(False)
    saved = trainable_state_dict(model)
    assert saved
    assert not any(name.startswith("text.") for name in saved)
    assert any(name.endswith("running_mean") for name in saved)  # decoder BatchNorm statistics travel
    path = save_checkpoint(tmp_path / "t.pt", model, cfg, kind="trainable")
    info, tensors = read_checkpoint(path)
    assert info.kind == "trainable"
    assert set(tensors) == set(saved)


def test_unreadable_or_foreign_files_are_refused_with_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="danet train"):
        load_checkpoint(foreign)


@pytest.mark.parametrize("name", ["danet-lite-v1.pt", "danet-lite-v2.pt", "danet-lite-v3.pt"])
def test_the_shipped_lite_checkpoint_loads_over_the_installed_towers_and_segments(name):
    path = Path(__file__).resolve().parents[2] / "danet" / "checkpoints" / name
    assert path.stat().st_size <= 20 * 2**20  # small enough to ship: frozen towers are referenced, not copied
    info, tensors = read_checkpoint(path)
    assert (info.preset, info.kind) == ("lite", "trainable")
    assert set(info.pretrained) == {"backbone.weights", "text.weights"}
    assert not any(name.startswith("text.") for name in tensors)
    model, _ = load_checkpoint(path)  # verifies the installed towers' checksums against the recorded ones
    images = torch.zeros(1, 3, 256, 256)
    ids, mask = model.tokenize(["all trees"])
    with torch.inference_mode():
        logits = model(images, ids, mask).logits
    assert logits.shape == (1, 2, 256, 256)
    assert torch.isfinite(logits).all()
