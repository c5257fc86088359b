"""Cloud-Optimized GeoTIFF writing (GDAL's COG driver: tiled, with overviews, header first)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import ColorInterp

# 256 px internal tiles: what range readers of COGs expect; overviews are added down to one tile.
BLOCK_SIZE = 256


def write_rgb_cog(path: Path, rgb: np.ndarray, crs: CRS, transform: Affine) -> Path:
    """Write (3, H, W) uint8 RGB as a DEFLATE-compressed COG; the file appears complete or not at all
    (written beside it, then renamed), since a watcher may read the catalog at any moment."""
    if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb: expected a (3, H, W) uint8 array, got {rgb.shape} {rgb.dtype}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    profile = {
        "driver": "COG",
        "width": rgb.shape[2],
        "height": rgb.shape[1],
        "count": 3,
        "dtype": "uint8",
        "crs": crs.to_wkt(),
        "transform": transform,
        "compress": "DEFLATE",
        "predictor": 2,
        "blocksize": BLOCK_SIZE,
        "overview_resampling": "average",
    }
    with rasterio.open(partial, "w", **profile) as dataset:
        dataset.write(rgb)
        dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    os.replace(partial, path)
    return path
