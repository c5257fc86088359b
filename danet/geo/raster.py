"""Image input for prediction: GeoTIFF/COG through rasterio (windowed reads) and plain PNG/JPEG
through PIL, both returned as float32 RGB in 0..1 plus a valid-data mask.

Band choice: the first three bands are RGB; a single band is replicated to three. Data that is not
uint8 is scaled with a per-band percentile stretch computed once per raster (from a decimated read,
which uses a COG's overviews), so tiles of one scene share one scaling.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, ImageOps
from pyproj import CRS, Transformer
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from danet.geo.tiling import TileWindow

PLAIN_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
# 2-98 % is the common "cumulative count cut" default of GIS viewers (QGIS) for display stretches.
STRETCH_PERCENTILES = (2.0, 98.0)
# Longest side of the decimated read used to estimate the stretch: enough pixels for stable
# percentiles, cheap on COGs because GDAL serves it from an overview.
_STRETCH_SAMPLE_SIDE = 1024


@dataclass(frozen=True)
class WindowRead:
    """Pixels of one window: `image` float32 (h, w, 3) in 0..1 (0 where invalid), `valid` bool (h, w)."""

    image: np.ndarray
    valid: np.ndarray


def stretch_limits(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-band (low, high) percentile limits over valid, finite pixels; shape (bands, 2)."""
    limits = np.zeros((bands.shape[0], 2), dtype=np.float64)
    for i, band in enumerate(bands):
        values = band[valid & np.isfinite(band)]
        if values.size == 0:
            limits[i] = (0.0, 1.0)
            continue
        low, high = np.percentile(values, STRETCH_PERCENTILES)
        # A constant band would divide by zero; give it a unit range so it maps to 0.
        limits[i] = (low, high if high > low else low + 1.0)
    return limits


def stretch_to_uint8(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(bands, H, W) values -> uint8 with the same per-band percentile stretch the model's inputs get,
    over valid pixels (0 elsewhere): for pictures of a scene (quicklooks, simulated COGs)."""
    values = bands.astype(np.float64)
    limits = stretch_limits(values, valid)
    low, high = limits[:, 0, None, None], limits[:, 1, None, None]
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    return np.where(valid[None], np.rint(scaled), 0).astype(np.uint8)


def _to_rgb01(bands: np.ndarray, valid: np.ndarray, limits: np.ndarray | None) -> WindowRead:
    """(bands, h, w) raw values -> WindowRead; `limits` None means uint8 data scaled by 1/255."""
    data = bands.astype(np.float32)
    valid = valid & np.isfinite(data).all(axis=0)
    if limits is None:
        data /= 255.0
    else:
        low = limits[:, 0, None, None].astype(np.float32)
        high = limits[:, 1, None, None].astype(np.float32)
        data = np.clip((data - low) / (high - low), 0.0, 1.0)
    if data.shape[0] == 1:
        data = np.repeat(data, 3, axis=0)
    image = np.where(valid[None], data, 0.0).transpose(1, 2, 0)
    return WindowRead(np.ascontiguousarray(image, dtype=np.float32), valid)


class PredictionImage(ABC):
    """An image of any size to predict on: shape, georeference (None for plain images), windowed reads."""

    path: str
    shape: tuple[int, int]
    crs: CRS | None
    transform: Affine | None

    @abstractmethod
    def read(self, window: TileWindow | None = None) -> WindowRead:
        """Pixels and valid-data mask of `window` (the whole image when None)."""

    def read_window(self, window: TileWindow | None = None) -> np.ndarray:
        """Float32 (h, w, 3) RGB in 0..1 of `window`; invalid pixels are 0 (see `read` for the mask)."""
        return self.read(window).image

    @abstractmethod
    def close(self) -> None:
        """Release the underlying file handle, if any."""

    def __enter__(self) -> PredictionImage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_window(self, window: TileWindow | None) -> TileWindow:
        height, width = self.shape
        if window is None:
            return TileWindow(0, 0, height, width)
        if (
            window.row_off < 0
            or window.col_off < 0
            or window.height <= 0
            or window.width <= 0
            or window.row_off + window.height > height
            or window.col_off + window.width > width
        ):
            raise ValueError(f"window: {window} is not inside image {self.path} of shape {self.shape}")
        return window


class GeoRasterImage(PredictionImage):
    """A GeoTIFF/COG (or anything GDAL opens) read window by window through rasterio.

    `indexes` are the bands used as RGB (one band is replicated); `stretch` holds the per-band
    (low, high) limits for non-uint8 data, None for uint8 (scaled by 1/255).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._ds = rasterio.open(self.path)
        try:
            if self._ds.count < 1:
                raise ValueError(f"{self.path}: raster has no bands")
            self.shape = (self._ds.height, self._ds.width)
            self.crs = CRS.from_user_input(self._ds.crs) if self._ds.crs is not None else None
            self.transform = self._ds.transform
            self.indexes = [1, 2, 3] if self._ds.count >= 3 else [1]
            dtypes = {self._ds.dtypes[i - 1] for i in self.indexes}
            self.stretch = None if dtypes == {"uint8"} else self._estimate_stretch()
        except Exception:
            self._ds.close()
            raise

    def _estimate_stretch(self) -> np.ndarray:
        scale = max(self.shape) / _STRETCH_SAMPLE_SIDE
        out_shape = (
            len(self.indexes),
            max(1, math.ceil(self.shape[0] / scale)) if scale > 1 else self.shape[0],
            max(1, math.ceil(self.shape[1] / scale)) if scale > 1 else self.shape[1],
        )
        sample = self._ds.read(self.indexes, out_shape=out_shape, masked=True)
        valid = ~np.ma.getmaskarray(sample).any(axis=0)
        return stretch_limits(np.ma.getdata(sample).astype(np.float64), valid)

    def read(self, window: TileWindow | None = None) -> WindowRead:
        window = self._check_window(window)
        rio_window = window.to_rasterio()
        bands = self._ds.read(self.indexes, window=rio_window)
        # GDAL's mask bands fold nodata values, alpha bands and internal masks into one answer.
        valid = (self._ds.read_masks(self.indexes, window=rio_window) > 0).all(axis=0)
        return _to_rgb01(bands, valid, self.stretch)

    def footprint(self) -> Polygon:
        """The raster's footprint polygon in CRS84 (lon/lat, counter-clockwise)."""
        if self.crs is None:
            raise ValueError(f"{self.path}: raster has no CRS, so it has no footprint on the Earth")
        return raster_footprint_crs84(self.crs, self.transform, self.shape)

    def close(self) -> None:
        self._ds.close()


class PlainImage(PredictionImage):
    """A PNG/JPEG/... image decoded once with PIL (no georeference; alpha, if any, is the valid mask)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.crs = None
        self.transform = None
        with Image.open(self.path) as img:
            img = ImageOps.exif_transpose(img)
            alpha = np.asarray(img.getchannel("A")) > 0 if "A" in img.getbands() else None
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                bands = np.asarray(img, dtype=np.float64)[None]
                valid = np.ones(bands.shape[1:], dtype=bool) if alpha is None else alpha
                self.stretch = stretch_limits(bands, valid)
            else:
                bands = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
                self.stretch = None
        self._bands = bands
        self._valid = np.ones(bands.shape[1:], dtype=bool) if alpha is None else alpha
        self.shape = (int(bands.shape[1]), int(bands.shape[2]))

    def read(self, window: TileWindow | None = None) -> WindowRead:
        rows, cols = self._check_window(window).slices
        return _to_rgb01(self._bands[:, rows, cols], self._valid[rows, cols], self.stretch)

    def close(self) -> None:
        """Nothing to release: the decoded pixels live in memory until the object is dropped."""


def open_image(path: str | Path) -> PredictionImage:
    """Open `path` for prediction: PIL for plain image suffixes, rasterio for everything else
    (GeoTIFF, COG, remote `https://` or `s3://` hrefs GDAL can range-read)."""
    if Path(str(path)).suffix.lower() in PLAIN_IMAGE_SUFFIXES:
        return PlainImage(path)
    return GeoRasterImage(path)


def raster_footprint_crs84(
    crs: CRS | object, transform: Affine, shape: tuple[int, int], points_per_edge: int = 16
) -> Polygon:
    """Footprint of a raster grid in CRS84: its outline densified (edges curve after reprojection),
    reprojected with `always_xy=True`, wound counter-clockwise (RFC 7946)."""
    height, width = shape
    t = np.linspace(0.0, 1.0, points_per_edge, endpoint=False)
    cols = np.concatenate([t * width, np.full_like(t, width), (1 - t) * width, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * height, np.full_like(t, height), (1 - t) * height])
    xs, ys = transform @ (cols, rows)
    to_lonlat = Transformer.from_crs(CRS.from_user_input(crs), "OGC:CRS84", always_xy=True)
    lon, lat = to_lonlat.transform(np.asarray(xs), np.asarray(ys))
    return orient(Polygon(np.column_stack([lon, lat])), sign=1.0)
