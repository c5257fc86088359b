"""Prediction on images of any size with the tiny preset (random weights, so the masks mean nothing):
tiling and blending against direct model calls, padding and nodata, text pairing in batches, regions,
and `predict_file` outputs on the real SpaceNet GeoTIFF (EPSG:32616), an EPSG:4326 crop and a PNG."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.windows
import shapely
import torch
from affine import Affine
from PIL import Image
from shapely.geometry import shape

from danet.config import load_preset
from danet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from danet.geo.raster import GeoRasterImage, open_image
from danet.geo.tiling import PixelRegion, TilePlanner
from danet.geo.vectorize import geodesic_area_m2, polygonize_components
from danet.model import build_model
from danet.packages import package_path
from danet.predict import Predictor, predict_file
from danet.predict import overlay as overlay_module
from danet.predict.overlay import TINT_ALPHA, TINT_RGB, display_shape, read_display_image

SIZE = 96
OVERLAP = 16
TEXT = "the small storage tank on the right"
# GeoJSON coordinates are rounded to 7 decimals: a vertex on the footprint edge may move out by 5e-8.
ROUNDING = 1e-7
SOLARIS_DATA = package_path("solaris", "data")


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    return Predictor(build_model(load_preset("tiny"), pretrained=False), input_size=SIZE, batch_size=16)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb).save(path)
    return path


def random_rgb(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def direct_probability(predictor: Predictor, rgb01: np.ndarray, text: str, valid=None) -> np.ndarray:
    """The model run once on one (h, w) <= S input, normalized with ImageNet mean/std after padding and
    nodata got the contract's mean colour in uint8: the reference."""
    fill = torch.tensor(predictor.contract.fill_uint8, dtype=torch.uint8).view(3, 1, 1)
    pixels = torch.from_numpy(np.rint(rgb01 * 255).astype(np.uint8)).permute(2, 0, 1)
    if valid is not None:
        pixels = torch.where(torch.from_numpy(valid), pixels, fill)
    h, w = rgb01.shape[:2]
    padded = fill.expand(3, SIZE, SIZE).clone()
    padded[:, :h, :w] = pixels
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = ((padded.float() / 255 - mean) / std)[None]
    ids, mask = predictor.model.tokenize([text])
    with torch.inference_mode():
        logits = predictor.model(x, ids, mask).logits
    return logits.softmax(dim=1)[0, 1, :h, :w].numpy()


def test_one_tile_image_equals_a_direct_model_call(predictor, tmp_path):
    rgb = random_rgb((SIZE, SIZE))
    with open_image(write_png(tmp_path / "one.png", rgb)) as image:
        result = predictor.predict_image(image, TEXT, overlap=OVERLAP)
    assert result.tile_count == 1
    assert (result.row_off, result.col_off) == (0, 0)
    assert result.valid.all()
    expected = direct_probability(predictor, rgb.astype(np.float32) / 255, TEXT)
    np.testing.assert_allclose(result.probability, expected, atol=1e-5)


def test_two_tiles_blend_only_where_they_overlap(predictor, tmp_path):
    width = 150
    rgb = random_rgb((SIZE, width), seed=1)
    with open_image(write_png(tmp_path / "two.png", rgb)) as image:
        result = predictor.predict_image(image, TEXT, overlap=OVERLAP)
    starts = [t.col_off for t in TilePlanner(SIZE, OVERLAP).plan((SIZE, width))]
    assert starts == [0, width - SIZE]
    rgb01 = rgb.astype(np.float32) / 255
    left = direct_probability(predictor, rgb01[:, :SIZE], TEXT)
    right = direct_probability(predictor, rgb01[:, starts[1] :], TEXT)
    second = starts[1]
    np.testing.assert_allclose(result.probability[:, :second], left[:, :second], atol=1e-5)
    np.testing.assert_allclose(result.probability[:, SIZE:], right[:, SIZE - second :], atol=1e-5)
    both = result.probability[:, second:SIZE]
    from_left, from_right = left[:, second:], right[:, : SIZE - second]
    assert (both >= np.minimum(from_left, from_right) - 1e-6).all()
    assert (both <= np.maximum(from_left, from_right) + 1e-6).all()
    # Away from both tiles' ramps (OVERLAP pixels from their inner edges) the weights are equal.
    flat = slice(OVERLAP, SIZE - second - OVERLAP)
    np.testing.assert_allclose(both[:, flat], (from_left[:, flat] + from_right[:, flat]) / 2, atol=1e-5)


def test_image_smaller_than_a_tile_is_padded_not_resized(predictor, tmp_path):
    rgb = random_rgb((40, 70), seed=2)
    with open_image(write_png(tmp_path / "small.png", rgb)) as image:
        result = predictor.predict_image(image, TEXT)
    assert result.probability.shape == (40, 70)
    expected = direct_probability(predictor, rgb.astype(np.float32) / 255, TEXT)
    np.testing.assert_allclose(result.probability, expected, atol=1e-5)


def test_nodata_is_fed_as_the_mean_colour_and_left_out(predictor, tmp_path):
    rng = np.random.default_rng(3)
    bands = rng.integers(1, 256, size=(3, SIZE, SIZE), dtype=np.uint8)
    bands[:, 10:30, 50:90] = 0
    profile = {"driver": "GTiff", "height": SIZE, "width": SIZE, "count": 3, "dtype": "uint8"}
    profile |= {"crs": "EPSG:32616", "transform": Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)}
    with rasterio.open(tmp_path / "nodata.tif", "w", nodata=0, **profile) as ds:
        ds.write(bands)
    with open_image(tmp_path / "nodata.tif") as image:
        result = predictor.predict_image(image, TEXT)
    valid = np.ones((SIZE, SIZE), dtype=bool)
    valid[10:30, 50:90] = False
    np.testing.assert_array_equal(result.valid, valid)
    assert np.isnan(result.probability[~valid]).all()
    rgb01 = bands.transpose(1, 2, 0).astype(np.float32) / 255
    expected = direct_probability(predictor, rgb01, TEXT, valid=valid)
    np.testing.assert_allclose(result.probability[valid], expected[valid], atol=1e-5)


def test_predict_batch_pairs_each_tile_with_its_own_text(predictor):
    tiles = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    texts = ["all airplanes", "the small ship on the left"]
    paired = predictor.predict_batch(tiles, texts)
    assert paired.shape == (2, 64, 64)
    assert paired.dtype == torch.float32
    for i in range(2):
        alone = predictor.predict_batch(tiles[i : i + 1], [texts[i]])
        torch.testing.assert_close(paired[i], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(predictor.predict_batch(tiles, tokens=predictor.encode_text(texts)), paired)
    shared = predictor.predict_batch(tiles, tokens=predictor.encode_text(texts[:1]))
    torch.testing.assert_close(shared, predictor.predict_batch(tiles, texts[:1] * 2))
    # The text reaches the output (else the pairing checks above would prove nothing).
    assert (shared[1] - paired[1]).abs().max() > 1e-4


def test_predict_batch_rejects_bad_inputs(predictor):
    tiles = torch.zeros(2, 3, 64, 64)
    with pytest.raises(ValueError, match="one expression per tile"):
        predictor.predict_batch(tiles, ["only one"])
    with pytest.raises(ValueError, match="exactly one of texts or tokens"):
        predictor.predict_batch(tiles, ["a", "b"], tokens=predictor.encode_text(["a", "b"]))
    with pytest.raises(ValueError, match="multiples of 32"):
        predictor.predict_batch(torch.zeros(1, 3, 64, 70), ["a"])
    with pytest.raises(ValueError, match="1 or 2 rows"):
        predictor.predict_batch(tiles, tokens=predictor.encode_text(["a", "b", "c"]))


def test_region_prediction_covers_only_the_region(predictor, tmp_path):
    rows, cols = np.mgrid[0:50, 0:60]
    ellipse = ((rows - 25) / 25) ** 2 + ((cols - 30) / 30) ** 2 <= 1
    region = PixelRegion(row_off=30, col_off=140, height=50, width=60, mask=ellipse)
    with open_image(write_png(tmp_path / "wide.png", random_rgb((200, 250), seed=5))) as image:
        result = predictor.predict_image(image, TEXT, region=region, overlap=OVERLAP)
        full_tiles = len(TilePlanner(SIZE, OVERLAP).plan(image.shape))
    assert (result.row_off, result.col_off) == (30, 140)
    assert result.probability.shape == (50, 60)
    np.testing.assert_array_equal(result.valid, ellipse)
    assert np.isnan(result.probability[~ellipse]).all()
    assert np.isfinite(result.probability[ellipse]).all()
    assert result.tile_count < full_tiles


def assert_inside(collection: dict, footprint) -> None:
    grown = footprint.buffer(ROUNDING)
    for feature in collection["features"]:
        assert grown.contains(shape(feature["geometry"])), feature["properties"]


def test_spacenet_geotiff_writes_geojson_inside_its_footprint(predictor, tmp_path):
    source = SOLARIS_DATA / "sample_geotiff.tif"
    # With random weights, threshold 0 makes every valid pixel foreground: the areas are then known.
    result = predict_file(predictor, source, TEXT, tmp_path, threshold=0.0, overlap=OVERLAP, progress=True)
    collection = json.loads(result.geojson_path.read_text())
    assert result.geojson_path == tmp_path / "sample_geotiff.geojson"
    assert collection["type"] == "FeatureCollection"
    assert (collection["expression"], collection["model"], collection["threshold"]) == (TEXT, "tiny", 0.0)
    assert "crs" not in collection
    assert collection["features"]
    assert result.feature_count == len(collection["features"])
    assert result.tile_count == len(TilePlanner(SIZE, OVERLAP).plan((900, 900)))
    with GeoRasterImage(source) as image:
        footprint = image.footprint()
        valid_pixels = int(image.read().valid.sum())
    assert_inside(collection, footprint)
    pixels = sum(f["properties"]["pixel_count"] for f in collection["features"])
    assert pixels == valid_pixels == result.foreground_pixels
    area = sum(f["properties"]["area_m2"] for f in collection["features"])
    # 0.5 m pixels; UTM's scale error near the zone edge stays well under 0.5 % in area.
    assert area == pytest.approx(pixels * 0.25, rel=5e-3)
    for feature in collection["features"]:
        props = feature["properties"]
        assert 0.0 <= props["score"] <= props["score_max"] <= 1.0
    with Image.open(result.overlay_path) as overlay:
        assert overlay.width == 900
        assert 900 < overlay.height < 1100  # the image plus a caption strip


def crop_road_mask(tmp_path: Path) -> Path:
    """A 300 x 400 crop of solaris' EPSG:4326 raster, written with its own georeference."""
    window = rasterio.windows.Window(col_off=300, row_off=400, width=400, height=300)
    with rasterio.open(SOLARIS_DATA / "road_mask_input.tif") as src:
        # Not src.window_transform: it multiplies affines with `*`, deprecated (and an error here).
        transform = src.transform @ Affine.translation(window.col_off, window.row_off)
        profile = src.profile | {"height": 300, "width": 400, "transform": transform}
        data = src.read(window=window)
    path = tmp_path / "road_crop.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_epsg4326_geotiff_writes_geojson_inside_its_footprint(predictor, tmp_path):
    source = crop_road_mask(tmp_path)
    with GeoRasterImage(source) as image:
        assert image.crs.to_epsg() == 4326
        footprint = image.footprint()
        probability = predictor.predict_image(image, TEXT, overlap=OVERLAP)
    # The median splits the map into many components whatever the random weights are.
    threshold = float(np.nanmedian(probability.probability))
    all_components = polygonize_components(probability.probability, threshold, valid=probability.valid)
    min_area = 1.0  # ~14 pixels of ~0.30 m x 0.24 m
    result = predict_file(
        predictor, source, TEXT, tmp_path / "out", threshold=threshold, min_area_m2=min_area, overlap=OVERLAP
    )
    collection = json.loads(result.geojson_path.read_text())
    features = collection["features"]
    assert len(features) > 1
    assert len(features) == result.feature_count == result.component_count < len(all_components)
    assert all(f["properties"]["area_m2"] >= min_area for f in features)
    assert_inside(collection, footprint)
    assert footprint.buffer(ROUNDING).contains(shapely.box(*collection["bbox"]))
    with Image.open(result.overlay_path) as overlay:
        assert overlay.width == 400
        assert overlay.height > 300


def test_aoi_limits_prediction_and_clips_polygons(predictor, tmp_path):
    source = SOLARIS_DATA / "sample_geotiff.tif"
    with GeoRasterImage(source) as image:
        footprint = image.footprint()
    minx, miny, maxx, maxy = footprint.bounds
    aoi = shapely.box(
        minx + 0.3 * (maxx - minx), miny + 0.4 * (maxy - miny), maxx - 0.4 * (maxx - minx), maxy
    )
    result = predict_file(predictor, source, TEXT, tmp_path, threshold=0.0, overlap=OVERLAP, aoi=aoi)
    collection = json.loads(result.geojson_path.read_text())
    assert collection["features"]
    assert_inside(collection, aoi)
    assert result.tile_count < len(TilePlanner(SIZE, OVERLAP).plan((900, 900)))
    # Every pixel the AOI touches is predicted and (threshold 0) foreground, so the clipped polygons
    # tile the part of the AOI inside the image (the UTM footprint is not aligned with lon/lat).
    area = sum(f["properties"]["area_m2"] for f in collection["features"])
    assert area == pytest.approx(geodesic_area_m2(aoi.intersection(footprint)), rel=1e-3)


def test_plain_png_writes_an_overlay_and_no_geojson(predictor, tmp_path):
    rgb = random_rgb((130, 160), seed=6)
    source = write_png(tmp_path / "scene.png", rgb)
    out = tmp_path / "out"
    result = predict_file(predictor, source, TEXT, out, threshold=0.0, write_probability=True)
    assert result.geojson_path is None
    assert result.feature_count is None
    assert sorted(p.name for p in out.iterdir()) == ["scene.overlay.png", "scene.probability.png"]
    with Image.open(result.probability_path) as probability:
        assert probability.size == (160, 130)
    with Image.open(result.overlay_path) as overlay:
        assert overlay.width == 160
        assert overlay.height > 130
        # Threshold 0: everything is foreground, so an inner pixel is the image tinted.
        tinted = rgb[60, 80] * (1 - TINT_ALPHA) + np.asarray(TINT_RGB) * TINT_ALPHA
        np.testing.assert_allclose(np.asarray(overlay.convert("RGB"))[60, 80], tinted, atol=1)
    with pytest.raises(ValueError, match="georeferenced"):
        predict_file(predictor, source, TEXT, out, min_area_m2=1.0)


def test_large_images_are_downscaled_for_the_overlay(predictor, tmp_path):
    source = write_png(tmp_path / "scene.png", random_rgb((130, 160), seed=7))
    result = predict_file(predictor, source, TEXT, tmp_path, max_overlay_side=64)
    assert display_shape((130, 160), 64) == (52, 64)
    with Image.open(result.overlay_path) as overlay:
        assert overlay.width == 64
        assert overlay.height > 52


def test_display_image_read_in_strips_matches_one_resize(tmp_path, monkeypatch):
    rgb = random_rgb((300, 200), seed=8)
    # A small strip budget forces many strips with fractional source boundaries.
    monkeypatch.setattr(overlay_module, "_STRIP_SOURCE_PIXELS", 200 * 23)
    with open_image(write_png(tmp_path / "big.png", rgb)) as image:
        shown = np.asarray(read_display_image(image, (90, 60)), dtype=np.int16)
    expected = np.asarray(Image.fromarray(rgb).resize((60, 90), Image.Resampling.BOX), dtype=np.int16)
    assert np.abs(shown - expected).max() <= 1
