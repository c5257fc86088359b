"""The segmenter's model from settings: presets seeded alike everywhere, checkpoints named by digest."""

import pytest
import torch

from danet.checkpoint import CheckpointError, save_checkpoint
from danet.config import PresetError, load_preset
from danet.model import build_model
from danet.weights import fingerprint
from services.segmenter import build_local_segmenter, load_model
from services.segmenter.model_loading import select_device
from services.settings import SegmenterSettings


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_preset_builds_the_same_weights_and_names_every_time():
    torch.manual_seed(123)  # the caller's random state must not matter
    first = load_model(SegmenterSettings(preset="tiny"))
    second = load_model(SegmenterSettings(preset="tiny"))
    assert _same_weights(first.model, second.model)
    assert first.model_name == second.model_name
    assert first.model_name.startswith("danet-tiny@")
    assert first.text_encoder_id == "bert-2x32-20tok"
    assert first.text_encoder_version.startswith("tiny@")
    assert not first.model.training


def test_checkpoint_wins_and_is_named_by_its_digest(tmp_path):
    cfg = load_preset("tiny")
    torch.manual_seed(7)
    trained = build_model(cfg, pretrained=False)
    path = save_checkpoint(tmp_path / "tiny.pt", trained, cfg)
    loaded = load_model(SegmenterSettings(checkpoint=path, preset="lite"))
    digest = fingerprint(path)[:12]
    assert loaded.model_name == f"danet-tiny@{digest}"
    assert loaded.text_encoder_version == f"tiny@{digest}"
    assert _same_weights(loaded.model, trained)
    assert loaded.text_encoder_version != load_model(SegmenterSettings(preset="tiny")).text_encoder_version
    local = build_local_segmenter(SegmenterSettings(checkpoint=path, device="cpu"))
    assert (local.model_name, local.input_size) == (loaded.model_name, 64)


def test_missing_model_sources_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt does not exist"):
        load_model(SegmenterSettings(checkpoint=tmp_path / "nope.pt"))
    with pytest.raises(PresetError, match="no-such-preset"):
        load_model(SegmenterSettings(preset="no-such-preset"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_device_falls_back_to_cpu_and_a_missing_gpu_is_an_error():
    assert select_device(SegmenterSettings(device="auto", num_gpus=1)).type == "cpu"
    assert select_device(SegmenterSettings(device="cpu", num_gpus=1)).type == "cpu"
    with pytest.raises(RuntimeError, match=r"segmenter\.device: 'cuda'"):
        select_device(SegmenterSettings(device="cuda"))
