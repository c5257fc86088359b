"""Overlap blending: exact reconstruction of fields, weight windows, coverage, invalid pixels."""

import numpy as np
import pytest

from danet.geo.blending import ProbabilityStitcher
from danet.geo.tiling import PixelRegion, TilePlanner, TileWindow, pad_tile


def smooth_field(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return 0.5 + 0.4 * np.sin(rows / 37.0) * np.cos(cols / 53.0)


def stitch(field: np.ndarray, planner: TilePlanner, region: PixelRegion | None = None):
    stitcher = ProbabilityStitcher(field.shape, ramp=planner.overlap)
    for tile in planner.plan(field.shape, region):
        stitcher.add(tile, field[tile.slices])
    return stitcher.result()


def test_constant_field_stays_constant():
    field = np.full((700, 530), 0.7, dtype=np.float32)
    out = stitch(field, TilePlanner(128, 32))
    assert out.covered.all()
    np.testing.assert_allclose(out.probability, 0.7, rtol=0, atol=1e-6)


def test_smooth_field_is_reproduced():
    field = smooth_field((611, 487))
    out = stitch(field, TilePlanner(160, 48))
    assert out.covered.all()
    np.testing.assert_allclose(out.probability, field, rtol=0, atol=1e-5)


def test_blend_is_smooth_between_disagreeing_tiles():
    # Two tiles that disagree (0 vs 1) meet in a 64-px overlap: the result ramps from 0 to 1
    # monotonically inside the overlap instead of jumping at a tile border.
    stitcher = ProbabilityStitcher((64, 192), ramp=64)
    left, right = TileWindow(0, 0, 64, 128), TileWindow(0, 64, 64, 128)
    stitcher.add(left, np.zeros((64, 128)))
    stitcher.add(right, np.ones((64, 128)))
    row = stitcher.result().probability[0]
    assert (row[:64] == 0).all()
    assert (row[128:] == 1).all()
    overlap = row[64:128]
    assert (np.diff(overlap) > 0).all()
    assert np.abs(np.diff(row)).max() < 0.05


def test_weights_ramp_inside_canvas_but_not_at_canvas_edges():
    stitcher = ProbabilityStitcher((300, 300), ramp=20)
    corner = stitcher.tile_weights(TileWindow(0, 0, 100, 100))
    assert corner[0, 0] == 1.0  # raster corner: nobody else covers it, full weight
    assert 0 < corner[99, 99] < 0.01  # interior corner: lowest weight, never zero
    inner = stitcher.tile_weights(TileWindow(100, 100, 100, 100))
    assert inner.min() > 0
    assert inner[50, 50] == 1.0
    np.testing.assert_allclose(inner, inner[::-1, ::-1])  # symmetric window


def test_uncovered_pixels_are_nan_and_marked():
    shape = (1000, 1000)
    planner = TilePlanner(128, 16)
    region = PixelRegion(300, 400, 100, 150)
    out = stitch(smooth_field(shape), planner, region)
    assert out.covered[300:400, 400:550].all()
    assert not out.covered.all()
    assert np.isnan(out.probability[~out.covered]).all()
    assert np.isfinite(out.probability[out.covered]).all()


def test_region_canvas_matches_full_canvas():
    shape = (900, 900)
    field = smooth_field(shape)
    planner = TilePlanner(128, 32)
    region = PixelRegion(250, 100, 300, 420)
    stitcher = ProbabilityStitcher.for_region(region, ramp=32)
    for tile in planner.plan(shape, region):
        stitcher.add(tile, field[tile.slices])
    out = stitcher.result()
    assert (out.row_off, out.col_off) == (250, 100)
    assert out.probability.shape == (300, 420)
    assert out.covered.all()
    np.testing.assert_allclose(out.probability, field[250:550, 100:520], atol=1e-5)


def test_invalid_pixels_do_not_contribute():
    stitcher = ProbabilityStitcher((10, 30), ramp=4)
    a, b = TileWindow(0, 0, 10, 20), TileWindow(0, 10, 10, 20)
    valid_a = np.ones((10, 20), dtype=bool)
    valid_a[:, 12:] = False  # tile a has no data right of col 12
    stitcher.add(a, np.full((10, 20), 0.2), valid_a)
    stitcher.add(b, np.full((10, 20), 0.9))
    out = stitcher.result()
    np.testing.assert_allclose(out.probability[:, 12:], 0.9, atol=1e-6)
    # A pixel that is invalid in every tile stays uncovered.
    only = ProbabilityStitcher((4, 4), ramp=0)
    valid = np.ones((4, 4), dtype=bool)
    valid[1, 2] = False
    only.add(TileWindow(0, 0, 4, 4), np.full((4, 4), np.nan), None)
    only.add(TileWindow(0, 0, 4, 4), np.full((4, 4), 0.5), valid)
    assert not only.result().covered[1, 2]
    assert np.isnan(only.result().probability[1, 2])
    assert only.result().covered.sum() == 15


def test_padded_tile_output_is_cropped_and_wrong_shapes_rejected():
    planner = TilePlanner(256, 32)
    (tile,) = planner.plan((100, 120))
    stitcher = ProbabilityStitcher((100, 120), ramp=32)
    stitcher.add(tile, pad_tile(np.full((100, 120), 0.3, dtype=np.float32), tile))
    np.testing.assert_allclose(stitcher.result().probability, 0.3, atol=1e-6)
    with pytest.raises(ValueError, match=r"probability: expected a 2-D array of shape \(100, 120\)"):
        stitcher.add(tile, np.zeros((50, 50)))
