"""A real scene for the dashboard tests: the SpaceNet Atlanta sample (solaris, 0.5 m, EPSG:32616) as a
COG with its STAC item on disk, and its 43 labelled building footprints as the scene's detections."""

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient

from danet.geo.raster import raster_footprint_crs84
from danet.packages import package_path
from services.contracts import Detection, Query
from tests.support.detections import make_detection
from tests.support.rasters import write_geotiff
from tests.support.stac import make_item

COLLECTION = "lookout-sim"  # the collection the embedded default (and its config) allows
MODEL = "danet-lite@browser-test"
_GEOD = Geod(ellps="WGS84")


def sample_path() -> Path:
    """The SpaceNet sample GeoTIFF shipped by solaris."""
    return package_path("solaris", "data") / "sample_geotiff.tif"


def write_scene(folder: Path, item_id: str, acquired: datetime) -> str:
    """Write the sample as a COG (with overviews) and a STAC item naming it; returns the item's href."""
    with rasterio.open(sample_path()) as src:
        pixels, crs, grid = src.read(1), src.crs, src.transform
    cog = write_geotiff(
        folder / f"{item_id}.tif", pixels, crs=crs.to_wkt(), transform=grid, driver="COG", nodata=0
    )
    footprint = raster_footprint_crs84(crs, grid, pixels.shape)
    item = make_item(item_id, COLLECTION, acquired, footprint)
    item.assets["visual"].href = str(cog)
    item_href = str(folder / f"{item_id}.json")
    item.set_self_href(item_href)
    Path(item_href).write_text(json.dumps(item.to_dict(include_self_link=True)))
    return item_href


def scene_footprint() -> dict:
    """The sample's footprint as a CRS84 GeoJSON Polygon (an AOI that covers the whole scene)."""
    with rasterio.open(sample_path()) as src:
        return mapping(raster_footprint_crs84(src.crs, src.transform, (src.height, src.width)))


def building_footprints() -> list[dict]:
    """The sample's labelled buildings as CRS84 GeoJSON Polygons (7 decimals, counter-clockwise)."""
    labels = json.loads((package_path("solaris", "data") / "geotiff_labels.geojson").read_text())
    to_lonlat = Transformer.from_crs("EPSG:32616", "OGC:CRS84", always_xy=True)

    def reproject(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))

    polygons = []
    for label in labels["features"]:
        polygon = orient(shapely.transform(shape(label["geometry"]), reproject), sign=1.0)
        ring = [[round(x, 7), round(y, 7)] for x, y in polygon.exterior.coords]
        polygons.append({"type": "Polygon", "coordinates": [ring]})
    return polygons


def scene_detections(query: Query, item_id: str, item_href: str, acquired: datetime) -> list[Detection]:
    """The buildings as detections of `query` in the scene, as the dispatcher builds them (seeded scores)."""
    scores = np.random.default_rng(7).uniform(0.55, 0.97, size=len(building_footprints()))
    detections = []
    for geometry, score in zip(building_footprints(), scores, strict=True):
        area = abs(_GEOD.geometry_area_perimeter(shape(geometry))[0])
        detections.append(
            make_detection(
                query,
                COLLECTION,
                item_id,
                geometry,
                model=MODEL,
                acquired=acquired,
                score=round(float(score), 3),
                score_max=round(min(1.0, float(score) + 0.02), 3),
                area_m2=round(area, 1),
                pixel_count=round(area / 0.25),
                item_href=item_href,
            )
        )
    return detections
