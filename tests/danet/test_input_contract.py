"""The model's input contract (`DANetConfig.input`, as timm's PretrainedCfg): defaults that reproduce the
ImageNet normalisation of every earlier config and checkpoint, the lite preset's GSD, refusals that name
the field, uint8 tiles normalised exactly as the datasets normalise, and the shipped lite checkpoint
predicting from uint8 tiles what it predicted from the float tiles callers used to send."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from danet.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from danet.config import DANetConfig, InputContract, PresetError, load_preset
from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, to_unit_tensor
from danet.geo import GeoRasterImage, PixelRegion, ProbabilityStitcher, TilePlanner, polygonize_components
from danet.geo.tiling import pad_tile
from danet.model import build_model, normalize_tiles
from danet.model_item import model_item
from danet.predict import Predictor

CHECKPOINTS = Path(__file__).resolve().parents[2] / "danet" / "checkpoints"
SPACENET = Path(importlib.util.find_spec("solaris").submodule_search_locations[0]) / "data"


def test_defaults_are_imagenet_without_a_gsd_and_the_size_follows_input_size():
    cfg = load_preset("tiny")
    assert (cfg.input.mean, cfg.input.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert cfg.input.size == cfg.input_size == 64
    assert (cfg.input.gsd_m, cfg.input.gsd_range_m) == (None, None)
    assert cfg.input.fill_uint8 == (124, 116, 104)
    assert load_preset("tiny", ["input_size=128"]).input.size == 128
    wider = load_preset("tiny", ["input.size=96"])
    assert (wider.input_size, wider.input.size) == (64, 96)


def test_the_lite_preset_states_the_gsd_of_its_real_imagery():
    contract = load_preset("lite").input
    assert (contract.gsd_m, contract.size, contract.mean) == (0.5, 256, IMAGENET_MEAN)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("input.size=100", r"input\.size: Value error, must be a multiple of 32"),
        ("input.std=[0.2, 0.0, 0.2]", r"input\.std\.1: Input should be greater than 0"),
        ("input.gsd_range_m=[1.0, 0.5]", r"input: Value error, gsd_range_m: the smallest GSD 1.0 exceeds"),
        ("input={gsd_m: 2.0, gsd_range_m: [0.3, 1.0]}", r"input: Value error, gsd_m 2.0 lies outside"),
        ("input.interpolation=bilinear", r"input\.interpolation: Extra inputs are not permitted"),
    ],
)
def test_a_bad_contract_is_refused_naming_the_field(override, message):
    with pytest.raises(PresetError, match=message):
        load_preset("tiny", [override])


@pytest.mark.parametrize("name", ["danet-lite-v1.pt", "danet-lite-v2.pt"])
def test_shipped_checkpoints_without_the_section_read_with_the_default_contract(name):
    payload = torch.load(CHECKPOINTS / name, map_location="cpu", weights_only=True)
    assert "input" not in payload["meta"]["config"]  # written before the contract existed
    info, _ = read_checkpoint(CHECKPOINTS / name)
    assert info.config.input == InputContract(size=256)
    assert DANetConfig.model_validate(info.config.model_dump(mode="json")) == info.config


def test_the_shipped_v3_checkpoint_states_the_lite_contract():
    info, _ = read_checkpoint(CHECKPOINTS / "danet-lite-v3.pt")
    assert info.config.input == load_preset("lite").input
    assert (info.config.input.gsd_m, info.config.input.gsd_range_m) == (0.5, (0.1, 1.2))


def test_a_checkpoint_carries_its_contract_to_whoever_reads_it(tmp_path):
    cfg = load_preset("tiny", ["input={gsd_m: 0.3, gsd_range_m: [0.2, 0.6], mean: [0.5, 0.5, 0.5]}"])
    path = save_checkpoint(tmp_path / "tiny.pt", build_model(cfg, pretrained=False), cfg)
    contract = read_checkpoint(path)[0].config.input
    assert contract == InputContract(mean=(0.5, 0.5, 0.5), size=64, gsd_m=0.3, gsd_range_m=(0.2, 0.6))
    model, _ = load_checkpoint(path)
    assert Predictor(model).contract == contract
    item = model_item(path, item_id="tiny", description="test")["properties"]
    assert item["gsd"] == 0.3
    assert item["mlm:input"][0]["value_scaling"][0] == {
        "type": "z-score",
        "mean": 127.5,
        "stddev": 0.229 * 255,
    }
    with pytest.raises(ValueError, match=r"gsd_m: .*danet-lite-v2.pt states no input.gsd_m"):
        model_item(CHECKPOINTS / "danet-lite-v2.pt", item_id="v2", description="test")


def test_uint8_tiles_are_normalised_exactly_as_the_datasets_normalise_images():
    rgb = np.random.default_rng(2).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    dataset = torch.stack(
        [normalize(to_unit_tensor(Image.fromarray(image)), IMAGENET_MEAN, IMAGENET_STD) for image in rgb]
    )
    contract = load_preset("tiny").input
    chw = normalize_tiles(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)), contract)
    assert chw.dtype == torch.float32
    assert torch.equal(chw, dataset)
    assert torch.equal(normalize_tiles(torch.from_numpy(rgb), contract), dataset)  # HWC
    with pytest.raises(ValueError, match=r"tiles: expected uint8 RGB, got torch\.float32"):
        normalize_tiles(dataset, contract)
    with pytest.raises(ValueError, match=r"tiles: expected shape \(B, 3, H, W\) or \(B, H, W, 3\)"):
        normalize_tiles(rgb[0], contract)


def _float_path_before(
    predictor: Predictor, image: GeoRasterImage, text: str, region: PixelRegion
) -> np.ndarray:
    """What prediction did before uint8 tiles: float pixels normalised by the caller, nodata and padding
    exactly 0 after normalisation, the same tiles and blending."""
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    overlap = predictor.default_overlap
    stitcher = ProbabilityStitcher.for_region(region, ramp=overlap)
    tokens = predictor.encode_text([text])
    for tile in TilePlanner(predictor.input_size, overlap).plan(image.shape, region):
        read = image.read(tile)
        x = np.where(read.valid[..., None], (read.image - mean) / std, np.float32(0.0))
        batch = torch.from_numpy(np.ascontiguousarray(pad_tile(x, tile).transpose(2, 0, 1))[None])
        stitcher.add(tile, predictor.predict_batch(batch, tokens=tokens)[0].numpy(), valid=read.valid)
    stitched = stitcher.result()
    return np.where(stitched.covered, stitched.probability, np.float32(np.nan))


def test_lite_v2_finds_from_uint8_tiles_what_it_found_from_float_tiles():
    model, _ = load_checkpoint(CHECKPOINTS / "danet-lite-v2.pt")
    predictor = Predictor(model, batch_size=4)
    # Training columns of the SpaceNet Atlanta sample (uint16, stretched; nodata 0): 2 x 2 tiles of 256.
    region = PixelRegion(row_off=0, col_off=0, height=320, width=380)
    text = "all buildings"
    with GeoRasterImage(SPACENET / "sample_geotiff.tif") as image:
        before = _float_path_before(predictor, image, text, region)
        after = predictor.predict_image(image, text, region=region)
    assert after.tile_count == 4
    np.testing.assert_array_equal(after.valid, np.isfinite(before))
    valid = after.valid
    # Rounding the stretched pixels to 256 levels moves probabilities by a little, never by much.
    assert np.abs(after.probability[valid] - before[valid]).max() < 0.05
    found = [
        polygonize_components(probability, 0.5, valid=valid, min_pixels=20)
        for probability in (before, after.probability)
    ]
    assert len(found[0]) >= 3  # buildings were found, so the comparison means something
    masks = [(np.nan_to_num(p) >= 0.5) & valid for p in (before, after.probability)]
    iou = (masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum()
    assert iou > 0.97
    assert abs(len(found[0]) - len(found[1])) <= max(1, len(found[0]) // 10)
