"""Tile planning for a scene: tiles only over scene ∩ AOI, windows shared between queries read once,
and bounded batches."""

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping

from danet.geo import TilePlanner
from danet.predict import TilePair, batch_pairs
from services.contracts import Query
from services.dispatcher.planning import plan_scene
from tests.support.rasters import UTM, UTM_CRS

SHAPE = (900, 900)
SIZE, OVERLAP = 64, 16
_TO_LONLAT = Transformer.from_crs(UTM_CRS, "OGC:CRS84", always_xy=True)


def _query(rows: tuple[float, float], cols: tuple[float, float]) -> Query:
    """A query whose AOI is the pixel rectangle rows x cols of the scene grid, in lon/lat."""
    (r0, r1), (c0, c1) = rows, cols
    x0, y0 = UTM @ (c0, r0)
    x1, y1 = UTM @ (c1, r1)
    in_utm = shapely.segmentize(box(x0, y1, x1, y0), 5.0)
    lonlat = shapely.transform(in_utm, lambda xy: np.column_stack(_TO_LONLAT.transform(xy[:, 0], xy[:, 1])))
    return Query(text="storage tanks", aoi=mapping(lonlat), collections=["spacenet"])


def _plan(*queries: Query):
    return plan_scene(queries, UTM_CRS, UTM, SHAPE, SIZE, OVERLAP)


def _covers(tiles, rows, cols) -> bool:
    covered = shapely.union_all(
        [box(t.col_off, t.row_off, t.col_off + t.width, t.row_off + t.height) for t in tiles]
    )
    return covered.contains(box(cols[0] + 1, rows[0] + 1, cols[1] - 1, rows[1] - 1))


def test_tiles_cover_only_scene_intersect_aoi():
    rows, cols = (300.5, 400.5), (500.5, 620.5)
    plan = _plan(_query(rows, cols))
    (part,) = plan.queries
    assert part.tiles
    assert set(part.tiles) == set(plan.windows)
    assert _covers(part.tiles, rows, cols)
    for tile in part.tiles:
        assert (tile.height, tile.width) == (SIZE, SIZE)
        # Every tile touches the AOI's bounding window; none reaches further than one tile beyond it.
        assert tile.row_off < rows[1]
        assert tile.row_off + SIZE > rows[0]
        assert tile.col_off < cols[1]
        assert tile.col_off + SIZE > cols[0]
    whole_scene = TilePlanner(SIZE, OVERLAP).plan(SHAPE)
    assert len(plan.windows) == 6 < len(whole_scene) == 361
    assert plan.read_pixels == 6 * SIZE * SIZE  # 3 % of the scene's 810,000 pixels


def test_aoi_partly_outside_the_raster_is_clipped_and_disjoint_aoi_reads_nothing():
    edge = _query((850.5, 1000.0), (-50.0, 40.5))
    away = _query((2000.0, 2100.0), (2000.0, 2100.0))
    plan = _plan(edge, away)
    assert [p.query for p in plan.queries] == [edge]
    assert plan.outside == (away,)
    (part,) = plan.queries
    assert part.region.row_off + part.region.height == 900
    assert part.region.col_off == 0
    assert all(t.row_off + t.height <= 900 and t.col_off >= 0 for t in part.tiles)
    assert _plan(away).windows == ()


def test_queries_with_the_same_aoi_share_every_read():
    a, b = _query((100.5, 180.5), (100.5, 180.5)), _query((100.5, 180.5), (100.5, 180.5))
    plan = _plan(a, b)
    assert plan.queries[0].tiles == plan.queries[1].tiles
    assert len(plan.windows) == len(plan.queries[0].tiles)
    assert len(plan.pairs()) == 2 * len(plan.windows)


def test_overlapping_aois_keep_their_fitted_grids_and_shared_windows_are_read_once():
    a, b = _query((100.5, 260.5), (100.5, 260.5)), _query((100.5, 260.5), (164.5, 324.5))
    plan = _plan(a, b)
    alone = [_plan(a).queries[0].tiles, _plan(b).queries[0].tiles]
    assert [p.tiles for p in plan.queries] == alone
    assert len(plan.windows) == len(set(alone[0]) | set(alone[1])) < len(alone[0]) + len(alone[1])
    assert len(plan.pairs()) == len(alone[0]) + len(alone[1])
    assert _covers(plan.queries[1].tiles, (100.5, 260.5), (164.5, 324.5))


def test_far_apart_aois_read_only_their_own_tiles():
    a, b = _query((10.5, 70.5), (10.5, 70.5)), _query((800.5, 860.5), (800.5, 860.5))
    plan = _plan(a, b)
    assert len(plan.windows) == len(_plan(a).windows) + len(_plan(b).windows)
    assert plan.read_pixels < 0.05 * SHAPE[0] * SHAPE[1]


def test_pairs_are_window_major_and_batches_are_bounded():
    a, b = _query((100.5, 260.5), (100.5, 260.5)), _query((100.5, 260.5), (164.5, 324.5))
    plan = _plan(a, b)
    pairs = plan.pairs()
    assert [p.window for p in pairs] == sorted(p.window for p in pairs)
    assert len(pairs) == len(plan.queries[0].tiles) + len(plan.queries[1].tiles)
    batches = batch_pairs(pairs, 5)
    assert all(1 <= len(batch) <= 5 for batch in batches)
    assert [p for batch in batches for p in batch] == pairs
    assert len(batches) == -(-len(pairs) // 5)
    assert batch_pairs([], 5) == []
    assert batch_pairs([TilePair(0, 0)], 1) == [[TilePair(0, 0)]]
    with pytest.raises(ValueError, match="max_pairs"):
        batch_pairs(pairs, 0)
