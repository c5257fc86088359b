"""Overlap blending: stitch per-tile foreground probabilities into one map.

Each tile contributes with a separable weight window that ramps up smoothly (a Hann half-window)
over `ramp` pixels from every tile edge that lies inside the canvas, so the less reliable borders of
a tile count little where a neighbour also covers them. Edges on the canvas boundary are not ramped:
no neighbour exists there, and a pixel must never end up with zero total weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from danet.geo.tiling import PixelRegion, TileWindow


@dataclass(frozen=True)
class StitchedProbability:
    """The blended map of a canvas whose top-left pixel is (`row_off`, `col_off`) of the raster.

    `probability` is float32 with NaN where no tile contributed; `covered` is the matching bool mask.
    """

    probability: np.ndarray
    covered: np.ndarray
    row_off: int = 0
    col_off: int = 0


@lru_cache(maxsize=64)
def _edge_profile(length: int, ramp: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D weights of one tile axis: sin² ramp from each ramped edge, 1 in the interior.

    The ramp samples pixel centres ((i + 0.5) / ramp), so even the outermost pixel gets a small
    positive weight and nothing divides by zero if only one tile covers it.
    """
    weights = np.ones(length, dtype=np.float32)
    if ramp == 0:
        return weights
    pos = np.arange(length, dtype=np.float32)
    rise = np.sin(0.5 * np.pi * np.minimum((pos + 0.5) / ramp, 1.0)) ** 2
    if ramp_start:
        weights *= rise
    if ramp_end:
        weights *= rise[::-1]
    weights.setflags(write=False)
    return weights


class ProbabilityStitcher:
    """Accumulates tile probabilities into a canvas and returns the weight-normalized blend.

    The canvas covers `shape` (rows, cols) starting at raster pixel `origin` (row, col): the whole
    raster, or only a region's bounding window (`for_region`). Tile windows are in raster pixels;
    the parts of a tile outside the canvas are ignored.
    """

    def __init__(self, shape: tuple[int, int], ramp: int, origin: tuple[int, int] = (0, 0)) -> None:
        if shape[0] <= 0 or shape[1] <= 0:
            raise ValueError(f"shape: canvas must be non-empty, got {shape}")
        if ramp < 0:
            raise ValueError(f"ramp: must be >= 0 pixels, got {ramp}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.origin = (int(origin[0]), int(origin[1]))
        self.ramp = int(ramp)
        self._weighted = np.zeros(self.shape, dtype=np.float32)
        self._weight = np.zeros(self.shape, dtype=np.float32)

    @classmethod
    def for_region(cls, region: PixelRegion, ramp: int) -> ProbabilityStitcher:
        """A stitcher whose canvas is the bounding window of `region`."""
        return cls((region.height, region.width), ramp, origin=(region.row_off, region.col_off))

    def tile_weights(self, tile: TileWindow) -> np.ndarray:
        """The (height, width) weight window this stitcher gives `tile`."""
        top, left = tile.row_off - self.origin[0], tile.col_off - self.origin[1]
        bottom, right = top + tile.height, left + tile.width
        rows = _edge_profile(tile.height, self.ramp, top > 0, bottom < self.shape[0])
        cols = _edge_profile(tile.width, self.ramp, left > 0, right < self.shape[1])
        return np.outer(rows, cols)

    def add(self, tile: TileWindow, probability: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one tile's foreground probability (height x width, or padded to the tile size).

        `valid` (same shape, bool) marks pixels with real data; the others contribute nothing.
        """
        probability = _crop_to_tile(np.asarray(probability), tile, "probability")
        weights = self.tile_weights(tile)
        if valid is not None:
            weights = weights * _crop_to_tile(np.asarray(valid, dtype=bool), tile, "valid")
        top, left = tile.row_off - self.origin[0], tile.col_off - self.origin[1]
        r0, c0 = max(top, 0), max(left, 0)
        r1 = min(top + tile.height, self.shape[0])
        c1 = min(left + tile.width, self.shape[1])
        if r0 >= r1 or c0 >= c1:
            return
        inner = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
        w = weights[inner]
        # NaN probabilities (e.g. from invalid input) must not poison the sum; their weight is dropped.
        p = probability[inner].astype(np.float32, copy=False)
        finite = np.isfinite(p)
        w = np.where(finite, w, np.float32(0.0))
        self._weighted[r0:r1, c0:c1] += w * np.where(finite, p, np.float32(0.0))
        self._weight[r0:r1, c0:c1] += w

    def result(self) -> StitchedProbability:
        """The blended probabilities so far (NaN where nothing was added)."""
        covered = self._weight > 0
        prob = np.full(self.shape, np.nan, dtype=np.float32)
        np.divide(self._weighted, self._weight, out=prob, where=covered)
        return StitchedProbability(prob, covered, *self.origin)


def _crop_to_tile(array: np.ndarray, tile: TileWindow, name: str) -> np.ndarray:
    """Accept an array of the read size or of the padded tile size; return the read-size part."""
    read = (tile.height, tile.width)
    padded = (tile.height + tile.pad_bottom, tile.width + tile.pad_right)
    if array.shape[:2] not in (read, padded) or array.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array of shape {read} (or padded {padded}) for tile "
            f"at row {tile.row_off}, col {tile.col_off}; got {array.shape}"
        )
    return array[: tile.height, : tile.width]
