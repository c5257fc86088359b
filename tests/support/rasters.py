"""Small GeoTIFFs written on the fly, and the real sample rasters shipped by data packages."""

from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box, mapping

from danet.packages import package_path

UTM_CRS = "EPSG:32616"
UTM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)  # 0.5 m pixels, Atlanta (SpaceNet AOI)


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


def write_rgb_cog(path: Path, blocksize: int = 256) -> Path:
    """The SpaceNet pan tile (uint16) as a 3-band RGB uint8 COG (2-98 % stretch, like GIS viewers)."""
    with rasterio.open(package_path("solaris", "data") / "sample_geotiff.tif") as src:
        band = src.read(1).astype(np.float64)
        low, high = np.percentile(band[band > 0], (2, 98))
        rgb = np.clip((band - low) / (high - low) * 255, 0, 255).astype(np.uint8)
        crs, transform = src.crs, src.transform
    return write_geotiff(
        path, np.stack([rgb] * 3), crs, transform, driver="COG", compress="DEFLATE", blocksize=blocksize
    )


def aoi_for_pixels(cog: Path, rows: tuple[float, float], cols: tuple[float, float]) -> dict:
    """The pixel rectangle rows x cols of a raster as a lon/lat (CRS84) GeoJSON polygon."""
    with rasterio.open(cog) as ds:
        (x0, y0), (x1, y1) = ds.transform @ (cols[0], rows[0]), ds.transform @ (cols[1], rows[1])
        to_lonlat = Transformer.from_crs(ds.crs, "OGC:CRS84", always_xy=True)
    in_crs = shapely.segmentize(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), 5.0)
    return mapping(
        shapely.transform(in_crs, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1])))
    )
