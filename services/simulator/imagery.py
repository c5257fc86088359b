"""The real imagery behind simulated scenes and its geometry.

The SpaceNet sample tile shipped in the ``solaris`` wheel (Atlanta, 900x900 px, 0.5 m WorldView
panchromatic, EPSG:32616, CC BY-SA 4.0) becomes 3-band uint8 RGB after a percentile stretch, the form
of a "visual" asset. Each simulated scene varies its radiometry slightly, as two real acquisitions of
one place differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.transform import array_bounds
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient

from danet.geo import stretch_to_uint8
from danet.packages import package_path

SPACENET_PACKAGE = "solaris"
SPACENET_TILE = Path("data") / "sample_geotiff.tif"
CRS84 = "OGC:CRS84"
Bounds = tuple[float, float, float, float]
# RFC 7946 advises at most 7 decimals (about 1 cm): more only adds bytes.
COORDINATE_DECIMALS = 7


def spacenet_tile() -> Path:
    """Path of the SpaceNet Atlanta sample GeoTIFF."""
    return package_path(SPACENET_PACKAGE, SPACENET_TILE)


@dataclass(frozen=True)
class BaseScene:
    """RGB pixels (3, H, W) uint8 with their georeference."""

    rgb: np.ndarray
    crs: CRS
    transform: Affine

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.rgb.shape[2])

    @property
    def bounds(self) -> Bounds:
        """(left, bottom, right, top) in the scene's CRS."""
        return array_bounds(self.height, self.width, self.transform)


def load_scene(path: Path) -> BaseScene:
    """Read a georeferenced raster as RGB uint8: bands 1-3, or one band replicated three times;
    non-uint8 data is percentile-stretched."""
    with rasterio.open(path) as dataset:
        if dataset.crs is None:
            raise ValueError(f"{path}: has no CRS; simulated scenes must be georeferenced")
        indexes = [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]
        bands = dataset.read(indexes)
        valid = dataset.dataset_mask() > 0
        crs, transform = CRS.from_user_input(dataset.crs.to_wkt()), dataset.transform
    rgb = bands if bands.dtype == np.uint8 else stretch_to_uint8(bands, valid)
    return BaseScene(np.ascontiguousarray(rgb), crs, transform)


def vary_radiometry(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The same pixels with a small seeded gain (±8 %) and offset (±6 levels), as between acquisitions."""
    rng = np.random.default_rng(seed)
    gain, offset = rng.uniform(0.92, 1.08), rng.uniform(-6.0, 6.0)
    return np.clip(np.rint(rgb.astype(np.float32) * gain + offset), 0, 255).astype(np.uint8)


def to_crs84(geometry: Polygon, crs: CRS) -> Polygon:
    """A polygon's vertices reprojected to CRS84 lon/lat, counter-clockwise, rounded to 7 decimals."""
    transformer = Transformer.from_crs(crs, CRS84, always_xy=True)
    xs, ys = transformer.transform(*geometry.exterior.xy)
    ring = [
        (round(x, COORDINATE_DECIMALS), round(y, COORDINATE_DECIMALS)) for x, y in zip(xs, ys, strict=True)
    ]
    return orient(Polygon(ring), sign=1.0)


def geojson_polygon(polygon: Polygon) -> dict[str, Any]:
    """A shapely polygon without holes as a GeoJSON Polygon dict with list coordinates."""
    return {"type": "Polygon", "coordinates": [[[x, y] for x, y in polygon.exterior.coords]]}


def footprint_crs84(bounds: Bounds, crs: CRS) -> Polygon:
    """Raster bounds as a CRS84 polygon (the four corners reprojected; edges stay straight enough over
    a tile this small)."""
    return to_crs84(box(*bounds), crs)


def inner_aoi_crs84(bounds: Bounds, crs: CRS, margin: float) -> Polygon:
    """A box inside the bounds, ``margin`` (a share of width/height) in from each edge, in CRS84."""
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin: {margin} must be in [0, 0.5)")
    left, bottom, right, top = bounds
    dx, dy = (right - left) * margin, (top - bottom) * margin
    return to_crs84(box(left + dx, bottom + dy, right - dx, top - dy), crs)


def raster_georeference(path: Path) -> tuple[Bounds, CRS]:
    """Bounds and CRS of a raster, read from its header only."""
    with rasterio.open(path) as dataset:
        if dataset.crs is None:
            raise ValueError(f"{path}: has no CRS; simulated scenes must be georeferenced")
        return tuple(dataset.bounds), CRS.from_user_input(dataset.crs.to_wkt())
