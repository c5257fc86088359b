"""Scene quicklooks: reduced-resolution reads (overviews), the stretch, the Web Mercator placement, and
which images have none. Rasters are written on the fly or are the solaris SpaceNet sample. Which hrefs
are read at all and which asset is the image: tests/services/test_scene_*.py."""

import io
import re

import numpy as np
import pytest
import rasterio
from PIL import Image
from pyproj import Transformer
from rasterio.enums import Resampling

from danet.geo.raster import raster_footprint_crs84
from danet.packages import package_path
from services.api import quicklook as quicklook_module
from services.api.quicklook import (
    QuicklookUnavailableError,
    SceneReadError,
    reduced_shape,
)
from services.scenes import AssetPolicy
from tests.support.rasters import UTM, UTM_CRS, write_geotiff

SAMPLE = package_path("solaris", "data") / "sample_geotiff.tif"
LOCAL_FILES = AssetPolicy.allowing(["file"])


def render_quicklook(href: str, max_side: int) -> quicklook_module.Quicklook:
    """The quicklook of a local image (the timeout only bounds HTTP requests)."""
    return quicklook_module.render_quicklook(href, max_side, timeout_s=5, policy=LOCAL_FILES)


def decode(png: bytes) -> np.ndarray:
    """(H, W, 4) uint8 pixels of a PNG."""
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)


def to_pixel(quicklook, lon: float, lat: float) -> tuple[float, float]:
    """(col, row) of a lon/lat inside a quicklook, placed as a Web Mercator map places an image: linear in
    Mercator between its corners."""
    to_mercator = Transformer.from_crs("OGC:CRS84", "EPSG:3857", always_xy=True)
    west, south, east, north = quicklook.bounds
    (x0, x1), (y0, y1) = to_mercator.transform([west, east], [north, south])
    x, y = to_mercator.transform(lon, lat)
    return (x - x0) / (x1 - x0) * quicklook.width, (y - y0) / (y1 - y0) * quicklook.height


def test_the_spacenet_sample_becomes_a_small_gray_png_covering_its_footprint():
    quicklook = render_quicklook(str(SAMPLE), max_side=256)
    pixels = decode(quicklook.png)

    assert pixels.shape == (quicklook.height, quicklook.width, 4)
    assert 240 <= max(quicklook.width, quicklook.height) <= 270
    # Panchromatic uint16 is stretched to gray: equal channels, using the whole 0..255 range.
    opaque = pixels[..., 3] == 255
    assert (pixels[..., 0] == pixels[..., 1]).all()
    assert (pixels[..., 1] == pixels[..., 2]).all()
    assert pixels[..., 0][opaque].min() < 10
    assert pixels[..., 0][opaque].max() > 245
    # The UTM grid is turned about 1.4° in Mercator: the corners of the PNG lie outside the image.
    assert opaque.mean() > 0.95
    assert pixels[0, 0, 3] == 0
    assert pixels[-1, -1, 3] == 0
    # The extent is the footprint's, to within a pixel of the quicklook.
    with rasterio.open(SAMPLE) as src:
        footprint = raster_footprint_crs84(src.crs, src.transform, (src.height, src.width)).bounds
    pixel_deg = (quicklook.bounds[2] - quicklook.bounds[0]) / quicklook.width
    assert np.allclose(quicklook.bounds, footprint, atol=pixel_deg)
    west, south, east, north = quicklook.bounds
    assert quicklook.corners == [[west, north], [east, north], [east, south], [west, south]]


def test_a_bright_square_lands_where_it_is_on_the_earth(tmp_path):
    image = np.zeros((3, 1000, 1000), dtype=np.uint8)
    image[:, 600:700, 200:300] = 255  # rows 600-700, cols 200-300 of a 0.5 m UTM grid
    path = write_geotiff(tmp_path / "square.tif", image)
    centre = UTM @ (250, 650)
    lon, lat = Transformer.from_crs(UTM_CRS, "OGC:CRS84", always_xy=True).transform(*centre)

    quicklook = render_quicklook(str(path), max_side=250)
    bright = decode(quicklook.png)[..., 0] > 127
    rows, cols = np.nonzero(bright)

    col, row = to_pixel(quicklook, lon, lat)
    assert abs(cols.mean() + 0.5 - col) < 1.0
    assert abs(rows.mean() + 0.5 - row) < 1.0


def test_only_the_overview_is_read_not_the_full_resolution(tmp_path):
    # Overviews say 200, full resolution says 50: the quicklook shows which one was read.
    path = write_geotiff(
        tmp_path / "stale-overviews.tif",
        np.full((3, 1024, 1024), 200, dtype=np.uint8),
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with rasterio.open(path, "r+") as dataset:
        dataset.build_overviews([2, 4], Resampling.average)
    with rasterio.open(path, "r+") as dataset:
        dataset.write(np.full((3, 1024, 1024), 50, dtype=np.uint8))

    small = decode(render_quicklook(str(path), max_side=256).png)
    full = decode(render_quicklook(str(path), max_side=1024).png)

    assert np.median(small[..., 0][small[..., 3] == 255]) == 200
    assert np.median(full[..., 0][full[..., 3] == 255]) == 50


def test_nodata_is_transparent(tmp_path):
    band = np.full((200, 200), 1000, dtype=np.uint16)
    band[:, :100] = 0
    path = write_geotiff(tmp_path / "half.tif", band, nodata=0)
    pixels = decode(render_quicklook(str(path), max_side=200).png)
    middle = pixels.shape[0] // 2
    assert pixels[middle, 10, 3] == 0
    assert pixels[middle, -10, 3] == 255


def test_an_image_without_crs_has_no_quicklook(tmp_path):
    path = write_geotiff(tmp_path / "no-crs.tif", np.zeros((8, 8), dtype=np.uint8), crs=None)
    with pytest.raises(QuicklookUnavailableError, match="has no CRS"):
        render_quicklook(str(path), max_side=64)


def test_an_image_whose_bands_are_not_segmented_has_no_quicklook(tmp_path):
    path = write_geotiff(tmp_path / "vv-vh.tif", np.ones((2, 8, 8), dtype=np.float32))
    with pytest.raises(QuicklookUnavailableError, match=r"vv-vh.tif has 2 band\(s\)"):
        render_quicklook(str(path), max_side=64)


def test_an_unreadable_image_is_a_read_error(tmp_path):
    with pytest.raises(SceneReadError, match=re.escape("missing.tif")):
        render_quicklook(str(tmp_path / "missing.tif"), max_side=64)
    not_a_raster = tmp_path / "text.tif"
    not_a_raster.write_text("no raster here")
    with pytest.raises(SceneReadError, match="not a raster"):
        render_quicklook(str(not_a_raster), max_side=64)


def test_a_file_url_is_read_as_its_path(tmp_path):
    path = write_geotiff(tmp_path / "a b.tif", np.full((3, 64, 64), 99, dtype=np.uint8))
    by_url = render_quicklook(path.as_uri(), max_side=64)
    assert by_url == render_quicklook(str(path), max_side=64)


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [((900, 900), 256, (256, 256)), ((1000, 250), 100, (100, 25)), ((120, 80), 256, (120, 80))],
)
def test_reduced_shape_keeps_the_aspect(shape, max_side, expected):
    assert reduced_shape(*shape, max_side) == expected
