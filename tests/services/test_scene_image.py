"""A scene's image on the model's grid (`services.scenes.scene_image`): chosen bands of one asset, RGB
composed from single-band assets, grey, 16-bit data scaled and stretched, resampling to the model's GSD
through overviews, a GSD derived from the grid, and refusals. Local COGs written here; no servers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling

from danet.geo import TileWindow
from services.scenes import AssetPolicy, PermanentSceneError, SourceAccess
from services.scenes.scene_image import open_scene_image, raster_gsd_m
from services.scenes.selection import Channel, ModelInput, SceneInputDecision

LITE = ModelInput(gsd_m=0.5, gsd_min_m=0.1, gsd_max_m=1.2)
POLICY = AssetPolicy(schemes=frozenset({"file"}))
SIDE = 300


def _write(
    path: Path, data: np.ndarray, gsd: float, *, crs: str = "EPSG:32616", overviews: bool = True
) -> str:
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "count": count,
        "height": height,
        "width": width,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": Affine(gsd, 0, 500_000, 0, -gsd, 4_000_000),
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        if overviews:
            ds.build_overviews([2, 4], Resampling.average)
    return str(path)


def _gradient(count: int, dtype: str, high: int) -> np.ndarray:
    rows = np.linspace(0, high, SIDE, dtype=np.float64)[:, None] * np.ones((1, SIDE))
    return np.stack([rows * (i + 1) / count for i in range(count)]).astype(dtype)


def _accept(
    channels: tuple[Channel, ...], gsd: float | None, *, from_raster: bool = False
) -> SceneInputDecision:
    assets = tuple(dict.fromkeys(c.asset for c in channels)) if channels else ("image",)
    resample = None if gsd is None else gsd / LITE.gsd_m
    return SceneInputDecision(
        "accept",
        "test",
        channels=channels,
        from_raster=from_raster,
        gsd_m=gsd,
        resample=resample,
        assets=assets,
    )


def _open(decision: SceneInputDecision, hrefs: dict[str, str], model: ModelInput = LITE):
    return open_scene_image(decision, hrefs, model, policy=POLICY, access=SourceAccess(), timeout_s=5)


def test_chosen_bands_of_a_four_band_asset_are_resampled_to_the_model_gsd(tmp_path):
    data = _gradient(4, "uint8", 200)
    data[3] = 255  # NIR: must not be read as any channel
    href = _write(tmp_path / "naip.tif", data, 0.6)
    decision = _accept(tuple(Channel("image", i, n) for i, n in ((1, "red"), (2, "green"), (3, "blue"))), 0.6)
    with _open(decision, {"image": href}) as opened:
        image = opened.image
        assert image.shape == (360, 360)  # 300 px at 0.6 m -> 360 px at 0.5 m
        assert image.transform.a == pytest.approx(0.5)
        assert "resampled x1.2 to 0.5 m" in opened.bands
        read = image.read(TileWindow(0, 0, 360, 64))
    assert read.image.shape == (360, 64, 3)
    assert read.valid.all()
    # Rows keep their gradient (values /255), and the NIR band is nowhere.
    column = read.image[:, 10, 0]
    assert np.all(np.diff(column) >= -1e-6)
    assert column.max() < 0.81
    assert read.image[:, :, 2].max() == pytest.approx(150 / 255, abs=0.01)


def test_rgb_composed_from_three_16_bit_assets_is_scaled_then_stretched(tmp_path):
    hrefs = {}
    for i, name in enumerate(("red", "green", "blue")):
        band = _gradient(1, "uint16", 20_000 + 1000 * i)
        hrefs[name] = _write(tmp_path / f"{name}.tif", band, 0.5)
    channels = tuple(
        Channel(n, 1, n, "uint16", scale=2.75e-05, offset=-0.2) for n in ("red", "green", "blue")
    )
    with _open(_accept(channels, 0.5), hrefs) as opened:
        image = opened.image
        assert image.shape == (SIDE, SIDE)
        assert image.resample == 1.0
        assert image.stretch is not None
        # Limits are in reflectance (scale and offset applied), the 2-98 % percentiles.
        assert image.stretch[0, 0] == pytest.approx(0.02 * 20_000 * 2.75e-05 - 0.2, abs=2e-3)
        read = image.read(TileWindow(0, 0, SIDE, SIDE))
    assert read.image.min() == 0.0
    assert read.image.max() == 1.0


def test_a_grey_band_is_replicated_and_a_gsd_is_derived_from_a_metric_grid(tmp_path):
    href = _write(tmp_path / "pan.tif", _gradient(1, "uint8", 250), 0.25)
    decision = _accept((Channel("pan", 1, "pan"),), None)
    with _open(decision, {"pan": href}) as opened:
        assert opened.gsd_m == pytest.approx(0.25)
        assert opened.image.shape == (150, 150)  # 0.25 m -> 0.5 m: half the pixels, from the overview
        read = opened.image.read(TileWindow(0, 0, 150, 150))
    assert np.array_equal(read.image[..., 0], read.image[..., 2])
    assert raster_gsd_m("EPSG:4326", Affine(1e-5, 0, 0, 0, -1e-5, 0)) is None


def test_a_grid_too_coarse_for_the_model_is_refused_and_so_are_assets_on_different_grids(tmp_path):
    coarse = _write(tmp_path / "coarse.tif", _gradient(1, "uint8", 250), 10.0, overviews=False)
    with (
        pytest.raises(PermanentSceneError) as err,
        _open(_accept((Channel("b", 1, "pan"),), None), {"b": coarse}),
    ):
        pass
    assert err.value.code == "gsd_out_of_range"
    assert "10 m" in str(err.value)

    red = _write(tmp_path / "r.tif", _gradient(1, "uint8", 250), 0.5)
    green = _write(tmp_path / "g.tif", _gradient(1, "uint8", 250)[:, :200], 0.5)
    blue = _write(tmp_path / "b.tif", _gradient(1, "uint8", 250), 0.5)
    channels = tuple(Channel(n, 1, n) for n in ("r", "g", "b"))
    with (
        pytest.raises(PermanentSceneError) as err,
        _open(_accept(channels, 0.5), {"r": red, "g": green, "b": blue}),
    ):
        pass
    assert err.value.code == "grid_mismatch"


def test_an_asset_without_band_metadata_uses_the_rasters_own_bands(tmp_path):
    href = _write(tmp_path / "rgb.tif", _gradient(3, "uint8", 240), 0.5)
    with _open(_accept((), 0.5, from_raster=True), {"image": href}) as opened:
        assert opened.bands == "RGB"
        assert opened.image.shape == (SIDE, SIDE)
