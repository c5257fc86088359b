"""Many expressions over one image in one pass, the one inference path of DANet on large images.

Each query (an expression, optionally restricted to a pixel region) gets the tiles `TilePlanner` fits
over its region; windows that several queries need are read once. The (window, query) pairs run in
bounded batches, each batch one call of a `TileSegment` (one forward pass for many pairs), and every
query's tile probabilities are blended into its own map with overlap blending. `Predictor` runs it with
the model in process (`danet predict` is the one-query case); the dispatcher runs it with the segmenter
service as the model.

Tiles travel as uint8 RGB (3, S, S), one byte per channel: the model normalises them with its own input
contract (`danet.model.inputs`). Padding and nodata pixels get the contract's mean colour and never count
in the blended result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from danet.geo.blending import ProbabilityStitcher
from danet.geo.raster import WindowRead
from danet.geo.tiling import PixelRegion, TilePlanner, TileWindow

TileSegment = Callable[[np.ndarray, Sequence[int]], np.ndarray]
"""uint8 tiles (B, 3, S, S) and, per tile, the index of its query -> foreground probabilities (B, S, S)."""

ReadWindow = Callable[[TileWindow], WindowRead]
"""The pixels and valid mask of one window of the image."""


@dataclass(frozen=True)
class PredictionMap:
    """Blended foreground probability of a canvas whose top-left pixel is (`row_off`, `col_off`) of the
    image: the whole image, or the bounding window of the region that was predicted.

    `probability` is float32 (h, w) with NaN wherever `valid` is False (nodata, outside the region).
    """

    probability: np.ndarray
    valid: np.ndarray
    row_off: int
    col_off: int
    tile_count: int

    def canvas_transform(self, image_transform: Affine) -> Affine:
        """The pixel-to-CRS transform of this canvas, given the transform of the whole image."""
        return image_transform @ Affine.translation(self.col_off, self.row_off)


def tile_uint8(read: WindowRead, tile: TileWindow, fill: Sequence[int]) -> np.ndarray:
    """One model input (3, S, S) uint8 from the pixels read for `tile`; nodata and padding are `fill`.

    The pixels of uint8 rasters come back exactly; stretched (non-uint8) rasters are rounded to the
    nearest of 256 levels, the precision the model was trained at.
    """
    height, width = tile.height + tile.pad_bottom, tile.width + tile.pad_right
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[...] = np.asarray(fill, dtype=np.uint8)
    pixels = np.clip(np.rint(read.image * np.float32(255.0)), 0, 255).astype(np.uint8)
    out[: tile.height, : tile.width] = np.where(
        read.valid[..., None], pixels, out[: tile.height, : tile.width]
    )
    return np.ascontiguousarray(out.transpose(2, 0, 1))


@dataclass(frozen=True)
class TilePair:
    """One unit of model work: window `window` of the plan segmented for query `query`."""

    window: int
    query: int


@dataclass(frozen=True)
class QueryTilePlan:
    """Tiles to read once (`windows`) and, per query, its region (None: the whole image) and tiles."""

    shape: tuple[int, int]
    tile_size: int
    overlap: int
    regions: tuple[PixelRegion | None, ...]
    tiles: tuple[tuple[TileWindow, ...], ...]
    windows: tuple[TileWindow, ...]

    @property
    def read_pixels(self) -> int:
        """Image pixels read (each window once, padding excluded)."""
        return sum(w.height * w.width for w in self.windows)

    def pairs(self) -> list[TilePair]:
        """Every (window, query) pair, window-major: the pairs of one window are adjacent."""
        index = {window: i for i, window in enumerate(self.windows)}
        by_window: list[list[int]] = [[] for _ in self.windows]
        for q, tiles in enumerate(self.tiles):
            for tile in tiles:
                by_window[index[tile]].append(q)
        return [TilePair(w, q) for w, queries in enumerate(by_window) for q in queries]


def plan_query_tiles(
    shape: tuple[int, int], regions: Sequence[PixelRegion | None], tile_size: int, overlap: int
) -> QueryTilePlan:
    """Plan the tiles of an image of `shape` (rows, cols) for queries over `regions` (None: everywhere).

    Queries keep their own fitted grids, even where regions overlap: the windows they share are read once.
    A region that misses the image gets no tiles.
    """
    planner = TilePlanner(tile_size, overlap)
    tiles = tuple(tuple(planner.plan(shape, region)) for region in regions)
    windows = dict.fromkeys(tile for query_tiles in tiles for tile in query_tiles)  # insertion-ordered set
    return QueryTilePlan(
        (int(shape[0]), int(shape[1])), tile_size, overlap, tuple(regions), tiles, tuple(windows)
    )


def batch_pairs(pairs: Sequence[TilePair], max_pairs: int) -> list[list[TilePair]]:
    """Consecutive batches of at most `max_pairs` pairs (one model call each)."""
    if max_pairs <= 0:
        raise ValueError(f"max_pairs: must be positive, got {max_pairs}")
    return [list(pairs[i : i + max_pairs]) for i in range(0, len(pairs), max_pairs)]


@dataclass(frozen=True)
class MultiQueryPrediction:
    """One blended map per query, in plan order, and the work it took.

    Windows without any valid pixel are read but never segmented (`nodata_windows`); `pairs` counts the
    (window, query) pairs segmented, `calls` the model calls they took.
    """

    maps: tuple[PredictionMap, ...]
    windows_read: int
    nodata_windows: int
    pairs: int
    calls: int


def predict_queries(
    plan: QueryTilePlan,
    read: ReadWindow,
    segment: TileSegment,
    *,
    fill: Sequence[int],
    max_pairs: int,
    on_pairs: Callable[[int], None] | None = None,
) -> MultiQueryPrediction:
    """Segment every (window, query) pair of `plan` with valid pixels, each window read once, and blend.

    `segment` gets at most `max_pairs` tiles a call; `fill` is the uint8 colour of padding and nodata
    (the model's `InputContract.fill_uint8`); `on_pairs` hears how many pairs each call covered.

    Raises:
        RuntimeError: `segment` returned another shape than one (S, S) map per tile.
    """
    size = plan.tile_size
    stitchers = [
        ProbabilityStitcher(plan.shape, ramp=plan.overlap)
        if region is None
        else ProbabilityStitcher.for_region(region, ramp=plan.overlap)
        for region in plan.regions
    ]
    # Per window: its pixels, and its model input (None: no valid pixel, nothing to segment).
    reads: dict[int, tuple[WindowRead, np.ndarray | None]] = {}
    nodata_windows = pairs_done = calls = 0
    for batch in batch_pairs(plan.pairs(), max_pairs):
        for pair in batch:
            if pair.window not in reads:
                window = plan.windows[pair.window]
                pixels = read(window)
                has_data = bool(pixels.valid.any())
                nodata_windows += not has_data
                reads[pair.window] = (pixels, tile_uint8(pixels, window, fill) if has_data else None)
        live = [pair for pair in batch if reads[pair.window][1] is not None]
        if live:
            tiles = np.stack([reads[pair.window][1] for pair in live])
            probabilities = np.asarray(segment(tiles, [pair.query for pair in live]))
            if probabilities.shape != (len(live), size, size):
                raise RuntimeError(
                    f"segment: returned shape {probabilities.shape} for {len(live)} tiles of {size}x{size}"
                )
            for pair, probability in zip(live, probabilities, strict=True):
                stitchers[pair.query].add(
                    plan.windows[pair.window], probability, valid=reads[pair.window][0].valid
                )
            calls += 1
            pairs_done += len(live)
        if on_pairs is not None:
            on_pairs(len(batch))
        # Pairs are window-major: only the last window of a batch can have pairs in the next one.
        last = batch[-1].window
        reads = {last: reads[last]}
    maps = tuple(
        _prediction_map(stitcher, region, len(tiles))
        for stitcher, region, tiles in zip(stitchers, plan.regions, plan.tiles, strict=True)
    )
    return MultiQueryPrediction(maps, len(plan.windows), nodata_windows, pairs_done, calls)


def _prediction_map(
    stitcher: ProbabilityStitcher, region: PixelRegion | None, tile_count: int
) -> PredictionMap:
    """The stitched canvas as a map: valid where a tile covered a pixel inside the region's mask."""
    stitched = stitcher.result()
    valid = stitched.covered
    if region is not None and region.mask is not None:
        valid = valid & region.mask
    probability = np.where(valid, stitched.probability, np.float32(np.nan))
    return PredictionMap(probability, valid, stitched.row_off, stitched.col_off, tile_count)
