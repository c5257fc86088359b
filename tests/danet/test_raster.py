"""Image input: windowed GeoTIFF/COG reads, band selection, stretch, nodata, PIL images, footprints."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.enums import ColorInterp
from shapely.geometry import Point

from danet.geo.raster import GeoRasterImage, PlainImage, open_image, raster_footprint_crs84
from danet.geo.tiling import TilePlanner, TileWindow
from danet.geo.vectorize import geodesic_area_m2
from danet.packages import package_path
from tests.support.rasters import write_geotiff

UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)


def test_uint8_rgb_window_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 256, size=(4, 90, 120), dtype=np.uint8)  # a 4th (NIR-like) band is ignored
    path = write_geotiff(tmp_path / "rgbn.tif", bands)
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
    with open_image(path) as image:
        assert isinstance(image, GeoRasterImage)
        assert image.shape == (90, 120)
        assert image.crs.to_epsg() == 32616
        assert image.transform == UTM
        window = TileWindow(row_off=10, col_off=30, height=40, width=50)
        pixels = image.read_window(window)
        assert pixels.dtype == np.float32
        assert pixels.shape == (40, 50, 3)
        expected = bands[:3, 10:50, 30:80].transpose(1, 2, 0) / 255.0
        np.testing.assert_allclose(pixels, expected, atol=1e-7)
        assert image.read(window).valid.all()


def test_alpha_band_marks_invalid_pixels(tmp_path):
    rng = np.random.default_rng(5)
    bands = rng.integers(0, 256, size=(4, 40, 50), dtype=np.uint8)
    bands[3] = 255
    bands[3, :, :7] = 0  # GDAL reads a 4-band uint8 GeoTIFF as RGBA by default
    with open_image(write_geotiff(tmp_path / "rgba.tif", bands)) as image:
        read = image.read()
        assert not read.valid[:, :7].any()
        assert read.valid[:, 7:].all()
        assert (read.image[:, :7] == 0).all()
        np.testing.assert_allclose(read.image[:, 7:], bands[:3, :, 7:].transpose(1, 2, 0) / 255.0, atol=1e-7)


def test_uint16_single_band_stretch_and_nodata(tmp_path):
    rng = np.random.default_rng(1)
    band = rng.integers(100, 5000, size=(1, 64, 80), dtype=np.uint16)
    band[0, :5, :] = 0  # nodata strip
    with open_image(write_geotiff(tmp_path / "pan.tif", band, nodata=0)) as image:
        data = band[0][band[0] > 0].astype(np.float64)
        np.testing.assert_allclose(image.stretch[0], np.percentile(data, [2, 98]))
        read = image.read()
        assert not read.valid[:5].any()
        assert read.valid[5:].all()
        assert (read.image[:5] == 0).all()
        # One band replicated to RGB, stretched into 0..1 with the raster-wide limits.
        np.testing.assert_array_equal(read.image[..., 0], read.image[..., 2])
        low, high = image.stretch[0]
        expected = np.clip((band[0, 5:].astype(np.float64) - low) / (high - low), 0, 1)
        np.testing.assert_allclose(read.image[5:, :, 1], expected, atol=1e-6)
        # A window uses the same raster-wide stretch, not its own.
        window = TileWindow(20, 10, 8, 8)
        np.testing.assert_allclose(image.read_window(window), read.image[20:28, 10:18], atol=1e-7)


def test_float_nan_is_invalid(tmp_path):
    band = np.linspace(0, 1, 30 * 40, dtype=np.float32).reshape(1, 30, 40)
    band[0, 3, 4] = np.nan
    with open_image(write_geotiff(tmp_path / "float.tif", band)) as image:
        read = image.read()
        assert not read.valid[3, 4]
        assert read.valid.sum() == 30 * 40 - 1
        assert np.isfinite(read.image).all()


def test_large_raster_stretch_comes_from_a_decimated_read(tmp_path):
    rng = np.random.default_rng(2)
    band = rng.normal(1000, 100, size=(1, 2048, 256)).astype(np.uint16)
    with open_image(write_geotiff(tmp_path / "tall.tif", band)) as image:
        full = np.percentile(band[0], [2, 98])
        np.testing.assert_allclose(image.stretch[0], full, rtol=0.01)


def test_cog_windows_match_the_source(tmp_path):
    rng = np.random.default_rng(3)
    bands = rng.integers(0, 256, size=(3, 600, 700), dtype=np.uint8)
    cog = write_geotiff(tmp_path / "scene_cog.tif", bands, driver="COG", blocksize=256)
    planner = TilePlanner(256, 32)
    with rasterio.open(cog) as ds:
        assert ds.driver == "GTiff"
        assert ds.block_shapes[0] == (256, 256)
    with open_image(cog) as image:
        for tile in planner.plan(image.shape):
            expected = bands[:, tile.slices[0], tile.slices[1]].transpose(1, 2, 0) / 255.0
            np.testing.assert_allclose(image.read_window(tile), expected, atol=1e-7)


def test_window_outside_the_image_is_rejected(tmp_path):
    path = write_geotiff(tmp_path / "small.tif", np.zeros((3, 20, 20), np.uint8))
    with open_image(path) as image, pytest.raises(ValueError, match=r"window: .* is not inside image"):
        image.read(TileWindow(10, 10, 20, 20))


def test_plain_images_through_pil(tmp_path):
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    with open_image(tmp_path / "photo.png") as image:
        assert isinstance(image, PlainImage)
        assert image.crs is None
        assert image.transform is None
        np.testing.assert_allclose(
            image.read_window(TileWindow(5, 6, 10, 12)), rgb[5:15, 6:18] / 255.0, atol=1e-7
        )

    gray = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.jpg", quality=100)
    with open_image(tmp_path / "gray.jpg") as image:
        pixels = image.read_window()
        np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])

    rgba = np.dstack([rgb, np.where(np.arange(40) < 10, 0, 255).astype(np.uint8)[None].repeat(30, 0)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    with open_image(tmp_path / "alpha.png") as image:
        read = image.read()
        assert not read.valid[:, :10].any()
        assert read.valid[:, 10:].all()

    deep = rng.integers(1000, 3000, size=(30, 40), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with open_image(tmp_path / "deep.png") as image:
        np.testing.assert_allclose(image.stretch[0], np.percentile(deep, [2, 98]))
        assert 0.0 <= image.read_window().min() < image.read_window().max() <= 1.0


def test_footprint_of_a_projected_raster():
    footprint = raster_footprint_crs84("EPSG:32616", UTM, (900, 900))
    assert footprint.exterior.is_ccw
    to_lonlat = Transformer.from_crs("EPSG:32616", "OGC:CRS84", always_xy=True)
    for col, row in [(0.5, 0.5), (899.5, 0.5), (450, 450), (0.5, 899.5), (899.5, 899.5)]:
        assert footprint.contains(Point(to_lonlat.transform(*(UTM @ (col, row)))))
    assert not footprint.contains(Point(to_lonlat.transform(*(UTM @ (-2, 450)))))
    # 450 m x 450 m, up to the UTM scale factor.
    assert geodesic_area_m2(footprint) == pytest.approx(450.0 * 450.0, rel=0.005)


def test_spacenet_sample_geotiff():
    with open_image(package_path("solaris", "data") / "sample_geotiff.tif") as image:
        assert image.shape == (900, 900)
        assert image.crs.to_epsg() == 32616
        # uint16 panchromatic: stretched once, replicated to RGB, spans 0..1.
        pixels = image.read_window(TileWindow(100, 200, 256, 256))
        assert pixels.shape == (256, 256, 3)
        assert pixels.min() == 0.0
        assert pixels.max() == 1.0
        np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])
        assert geodesic_area_m2(image.footprint()) == pytest.approx(450.0 * 450.0, rel=0.005)
