"""Tile planning: cover a raster (or only the part of it inside an area of interest) with
overlapping fixed-size tiles for prediction.

Everything here works in pixel coordinates (row, col); `aoi_pixel_region` is the one bridge from an
AOI geometry in CRS84 to those coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio.features
import rasterio.windows
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.affinity import affine_transform
from shapely.geometry.base import BaseGeometry

# Vertices per AOI edge after densification: AOI edges are straight in lon/lat (RFC 7946), so they
# must be densified before projecting into a raster CRS where they become curves.
_AOI_DENSIFY_SEGMENTS = 64


@dataclass(frozen=True)
class TileWindow:
    """One tile in pixel coordinates of the raster.

    `height`/`width` are the pixels actually read from the raster; when the raster is smaller than a
    tile, `pad_bottom`/`pad_right` say how many rows/columns the caller pads to reach the tile size.
    """

    row_off: int
    col_off: int
    height: int
    width: int
    pad_bottom: int = 0
    pad_right: int = 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Numpy slices (rows, cols) of this tile in a full-raster array."""
        return (
            slice(self.row_off, self.row_off + self.height),
            slice(self.col_off, self.col_off + self.width),
        )

    def to_rasterio(self) -> rasterio.windows.Window:
        """The same window as a `rasterio.windows.Window` (col_off, row_off, width, height)."""
        return rasterio.windows.Window(self.col_off, self.row_off, self.width, self.height)


@dataclass(frozen=True)
class PixelRegion:
    """A region of interest in pixel coordinates: its bounding window and, optionally, a boolean mask
    of shape (height, width) of that window (True = inside the region)."""

    row_off: int
    col_off: int
    height: int
    width: int
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            size = (self.height, self.width)
            raise ValueError(f"PixelRegion: height and width must be positive, got {size}")
        if self.mask is not None and self.mask.shape != (self.height, self.width):
            raise ValueError(
                f"PixelRegion.mask: shape {self.mask.shape} differs from its window "
                f"{(self.height, self.width)}"
            )

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The region as a boolean mask of a whole raster of `shape` (rows, cols)."""
        out = np.zeros(shape, dtype=bool)
        rows = slice(self.row_off, self.row_off + self.height)
        cols = slice(self.col_off, self.col_off + self.width)
        out[rows, cols] = True if self.mask is None else self.mask
        return out


def _axis_starts(lo: int, hi: int, extent: int, tile: int, overlap: int) -> tuple[np.ndarray, int]:
    """Tile start offsets covering [lo, hi) along one axis of length `extent`, and the tile length.

    Starts are spread evenly between the first and last position, so consecutive tiles overlap by at
    least `overlap` (the spacing never exceeds the stride `tile - overlap`, also after integer floor).
    """
    if extent <= tile:
        return np.zeros(1, dtype=np.int64), extent
    if hi - lo < tile:
        # A region thinner than a tile: centre it in one tile for context, kept inside the raster.
        lo = min(max(lo - (tile - (hi - lo)) // 2, 0), extent - tile)
        hi = lo + tile
    span = hi - lo
    stride = tile - overlap
    n = 1 + math.ceil((span - tile) / stride)
    if n == 1:
        return np.array([lo], dtype=np.int64), tile
    starts = lo + (np.arange(n, dtype=np.int64) * (span - tile)) // (n - 1)
    return starts, tile


class TilePlanner:
    """Plans fixed-size, overlapping tiles that cover a raster or a region of it.

    Tiles stay inside the raster (shifted, not clipped, so every tile has the full size when the
    raster is large enough); a raster smaller than a tile yields one tile with padding info. Order is
    row-major and deterministic.
    """

    def __init__(self, tile_size: int, overlap: int) -> None:
        if tile_size <= 0:
            raise ValueError(f"tile_size: must be positive, got {tile_size}")
        if not 0 <= overlap < tile_size:
            raise ValueError(f"overlap: must be in [0, tile_size={tile_size}), got {overlap}")
        self.tile_size = tile_size
        self.overlap = overlap

    def plan(self, shape: tuple[int, int], region: PixelRegion | None = None) -> list[TileWindow]:
        """Tiles covering the raster of `shape` (rows, cols), or only `region` of it.

        With a region mask, tiles that contain no region pixel are dropped. Returns [] when the region
        does not intersect the raster.
        """
        height, width = (int(v) for v in shape)
        if height <= 0 or width <= 0:
            raise ValueError(f"shape: raster must be non-empty, got {shape}")
        r0, c0, r1, c1 = 0, 0, height, width
        if region is not None:
            r0, c0 = max(region.row_off, 0), max(region.col_off, 0)
            r1 = min(region.row_off + region.height, height)
            c1 = min(region.col_off + region.width, width)
            if r0 >= r1 or c0 >= c1:
                return []
        row_starts, tile_h = _axis_starts(r0, r1, height, self.tile_size, self.overlap)
        col_starts, tile_w = _axis_starts(c0, c1, width, self.tile_size, self.overlap)
        pad_bottom, pad_right = self.tile_size - tile_h, self.tile_size - tile_w
        tiles = [
            TileWindow(int(r), int(c), tile_h, tile_w, pad_bottom, pad_right)
            for r in row_starts
            for c in col_starts
        ]
        if region is not None and region.mask is not None:
            tiles = [t for t in tiles if _touches_mask(t, region)]
        return tiles


def _touches_mask(tile: TileWindow, region: PixelRegion) -> bool:
    """Whether any pixel of `tile` is inside the region's mask."""
    r0 = max(tile.row_off - region.row_off, 0)
    c0 = max(tile.col_off - region.col_off, 0)
    r1 = min(tile.row_off + tile.height - region.row_off, region.height)
    c1 = min(tile.col_off + tile.width - region.col_off, region.width)
    if r0 >= r1 or c0 >= c1:
        return False
    return bool(region.mask[r0:r1, c0:c1].any())


def pad_tile(array: np.ndarray, tile: TileWindow) -> np.ndarray:
    """Zero-pad an array read for `tile` (H x W [x C]) at the bottom/right to the full tile size."""
    if tile.pad_bottom == 0 and tile.pad_right == 0:
        return array
    pad = [(0, tile.pad_bottom), (0, tile.pad_right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def aoi_pixel_region(
    aoi: BaseGeometry,
    crs: CRS | object,
    transform: Affine,
    shape: tuple[int, int],
    *,
    all_touched: bool = True,
) -> PixelRegion | None:
    """The pixel region of a raster covered by an AOI: the bounding window of scene ∩ AOI plus a mask.

    `aoi` is a (Multi)Polygon in CRS84 lon/lat; `crs` is the raster's CRS (pyproj, rasterio or any
    user input pyproj accepts) and `transform` its pixel-to-CRS affine. `all_touched=True` keeps every
    pixel the AOI touches, so thin AOIs still get pixels. Returns None when they do not intersect.
    """
    if aoi.is_empty:
        raise ValueError("aoi: geometry is empty")
    height, width = shape
    to_raster = Transformer.from_crs("OGC:CRS84", CRS.from_user_input(crs), always_xy=True)
    minx, miny, maxx, maxy = aoi.bounds
    step = max(maxx - minx, maxy - miny) / _AOI_DENSIFY_SEGMENTS
    dense = shapely.segmentize(aoi, step) if step > 0 else aoi
    in_crs = shapely.transform(dense, lambda xy: np.column_stack(to_raster.transform(xy[:, 0], xy[:, 1])))
    inv = ~transform
    in_pixels = affine_transform(in_crs, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
    clipped = shapely.make_valid(in_pixels).intersection(shapely.box(0, 0, width, height))
    if clipped.is_empty:
        return None
    x0, y0, x1, y1 = clipped.bounds
    col_off, row_off = max(math.floor(x0), 0), max(math.floor(y0), 0)
    win_w = min(math.ceil(x1), width) - col_off
    win_h = min(math.ceil(y1), height) - row_off
    if win_w <= 0 or win_h <= 0:
        return None
    mask = rasterio.features.rasterize(
        [clipped],
        out_shape=(win_h, win_w),
        transform=Affine.translation(col_off, row_off),
        all_touched=all_touched,
        dtype="uint8",
    ).astype(bool)
    if not mask.any():
        return None
    return PixelRegion(row_off, col_off, win_h, win_w, mask)
