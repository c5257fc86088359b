"""Small GeoTIFFs written on the fly, and the real sample rasters shipped by data packages."""

import importlib.util
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

UTM_CRS = "EPSG:32616"
UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)  # 0.5 m pixels, Atlanta (SpaceNet AOI)


def package_data(package: str, folder: str = "data") -> Path:
    """A data folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed: run deploy/bootstrap.sh")
    return Path(next(iter(spec.submodule_search_locations))) / folder


def write_geotiff(
    path: Path, array: np.ndarray, crs: str = UTM_CRS, transform: Affine = UTM, **profile: object
) -> Path:
    """Write a (H, W) or (bands, H, W) array as a GeoTIFF; extra profile keys (nodata, driver...) pass on."""
    bands = array[None] if array.ndim == 2 else array
    options = {
        "driver": "GTiff",
        "height": bands.shape[1],
        "width": bands.shape[2],
        "count": bands.shape[0],
        "dtype": bands.dtype.name,
        "crs": crs,
        "transform": transform,
    } | profile
    with rasterio.open(path, "w", **options) as dataset:
        dataset.write(bands)
    return path
