"""Tile planning: coverage, overlap, region skipping, small rasters, AOI -> pixel region."""

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box

from danet.geo.tiling import PixelRegion, TilePlanner, TileWindow, aoi_pixel_region, pad_tile


def coverage(tiles: list[TileWindow], shape: tuple[int, int]) -> np.ndarray:
    counts = np.zeros(shape, dtype=np.int32)
    for t in tiles:
        counts[t.slices] += 1
    return counts


def assert_neighbour_overlap(tiles: list[TileWindow], overlap: int) -> None:
    """Consecutive distinct row (col) starts are at most tile - overlap apart: neighbours overlap enough."""
    for starts, size in (
        (sorted({t.row_off for t in tiles}), tiles[0].height),
        (sorted({t.col_off for t in tiles}), tiles[0].width),
    ):
        gaps = np.diff(starts)
        assert (size - gaps >= overlap).all(), (starts, size, overlap)


@pytest.mark.parametrize(
    ("shape", "tile", "overlap"),
    [((900, 900), 256, 32), ((1000, 513), 128, 16), ((257, 256), 256, 0), ((4000, 3000), 480, 64)],
)
def test_full_raster_is_covered_with_overlap(shape, tile, overlap):
    tiles = TilePlanner(tile, overlap).plan(shape)
    assert (coverage(tiles, shape) >= 1).all()
    for t in tiles:
        assert (t.height, t.width) == (tile, tile)
        assert 0 <= t.row_off <= shape[0] - t.height
        assert 0 <= t.col_off <= shape[1] - t.width
    assert_neighbour_overlap(tiles, overlap)
    # The plan is a row-major grid without duplicates.
    keys = [(t.row_off, t.col_off) for t in tiles]
    assert keys == sorted(set(keys))


def test_tile_count_is_minimal_for_the_stride():
    # 900 px, tile 256, stride 224: 1 + ceil((900 - 256) / 224) = 4 tiles per axis.
    tiles = TilePlanner(256, 32).plan((900, 900))
    assert len(tiles) == 16


def test_plan_is_deterministic():
    planner = TilePlanner(200, 40)
    assert planner.plan((777, 1234)) == planner.plan((777, 1234))


def test_raster_smaller_than_a_tile_gets_padding_info():
    tiles = TilePlanner(256, 32).plan((100, 300))
    assert {(t.row_off, t.height, t.pad_bottom) for t in tiles} == {(0, 100, 156)}
    assert all(t.width == 256 and t.pad_right == 0 for t in tiles)
    assert (coverage(tiles, (100, 300)) >= 1).all()
    padded = pad_tile(np.ones((100, 256, 3), dtype=np.float32), tiles[0])
    assert padded.shape == (256, 256, 3)
    assert padded[:100].min() == 1.0
    assert padded[100:].max() == 0.0


def test_region_window_is_covered_and_far_tiles_are_skipped():
    shape = (2000, 2000)
    region = PixelRegion(row_off=700, col_off=900, height=300, width=500)
    tiles = TilePlanner(256, 32).plan(shape, region)
    counts = coverage(tiles, shape)
    assert (counts[700:1000, 900:1400] >= 1).all()
    region_mask = region.full_mask(shape)
    for t in tiles:
        assert region_mask[t.slices].any(), f"{t} does not touch the region"
    assert len(tiles) < len(TilePlanner(256, 32).plan(shape))
    assert_neighbour_overlap(tiles, 32)


def test_region_mask_skips_tiles_that_touch_only_its_bounding_box():
    shape = (1200, 1200)
    # A diagonal band: its bounding box is the whole raster, but most grid tiles miss the band.
    rows, cols = np.mgrid[0:1200, 0:1200]
    band = np.abs(rows - cols) < 40
    region = PixelRegion(0, 0, 1200, 1200, band)
    planner = TilePlanner(200, 20)
    tiles = planner.plan(shape, region)
    counts = coverage(tiles, shape)
    assert (counts[band] >= 1).all()
    for t in tiles:
        assert band[t.slices].any()
    assert len(tiles) < len(planner.plan(shape)) / 2


def test_thin_region_gets_one_tile_centred_on_it_inside_the_raster():
    region = PixelRegion(row_off=10, col_off=980, height=5, width=15)
    (tile,) = TilePlanner(256, 32).plan((1000, 1000), region)
    assert (tile.row_off, tile.col_off) == (0, 1000 - 256)
    assert (coverage([tile], (1000, 1000))[10:15, 980:995] == 1).all()


def test_region_outside_raster_plans_nothing():
    assert TilePlanner(256, 32).plan((500, 500), PixelRegion(600, 0, 50, 50)) == []


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (256, 256), (256, -1)])
def test_invalid_planner_arguments_are_rejected(tile, overlap):
    with pytest.raises(ValueError, match=r"tile_size|overlap"):
        TilePlanner(tile, overlap)


def test_region_mask_shape_is_checked():
    with pytest.raises(ValueError, match=r"PixelRegion\.mask"):
        PixelRegion(0, 0, 10, 10, np.ones((5, 5), dtype=bool))


UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)  # 0.5 m pixels in EPSG:32616


def lonlat_polygon_of_pixel_box(col0, row0, col1, row1, crs="EPSG:32616", transform=UTM):
    to_lonlat = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
    corners = [(col0, row0), (col1, row0), (col1, row1), (col0, row1)]
    return Polygon([to_lonlat.transform(*(transform @ c)) for c in corners])


def test_aoi_pixel_region_in_projected_raster():
    aoi = lonlat_polygon_of_pixel_box(100, 50, 300, 170)
    region = aoi_pixel_region(aoi, "EPSG:32616", UTM, (900, 900))
    assert region is not None
    assert (region.row_off, region.col_off) == pytest.approx((50, 100), abs=1)
    assert (region.height, region.width) == pytest.approx((120, 200), abs=2)
    # all_touched keeps the boundary pixels: the mask is the box, give or take its outline.
    assert 200 * 120 <= region.mask.sum() <= 202 * 122


def test_aoi_pixel_region_is_clipped_to_the_scene():
    aoi = lonlat_polygon_of_pixel_box(-500, 800, 50, 2000)  # overlaps the bottom-left corner only
    region = aoi_pixel_region(aoi, "EPSG:32616", UTM, (900, 900))
    assert region is not None
    assert region.col_off == 0
    assert region.row_off in (799, 800)
    assert region.row_off + region.height == 900
    assert region.width in (50, 51)


def test_aoi_pixel_region_none_when_disjoint():
    aoi = lonlat_polygon_of_pixel_box(2000, 2000, 2100, 2100)
    assert aoi_pixel_region(aoi, "EPSG:32616", UTM, (900, 900)) is None


def test_aoi_pixel_region_in_geographic_raster():
    transform = Affine(1e-4, 0.0, -115.3, 0.0, -1e-4, 36.2)
    aoi = box(-115.29, 36.17, -115.28, 36.19)  # cols 100..200, rows 100..300
    region = aoi_pixel_region(aoi, "EPSG:4326", transform, (1000, 1000))
    assert region is not None
    assert (region.row_off, region.col_off) in {(r, c) for r in (99, 100) for c in (99, 100)}
    assert (region.height, region.width) == pytest.approx((201, 101), abs=1)
