"""Vectorize a probability map: threshold -> connected components -> polygons -> RFC 7946 GeoJSON.

Components are traced by GDAL's polygonizer (`rasterio.features.shapes`, 4-connectivity, so every
component is one valid polygon, holes included) and burned back with `rasterio.features.rasterize`
to label pixels, which gives per-component statistics without a Python loop over pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

_GEOD = Geod(ellps="WGS84")
# RFC 7946 §11.2: 7 decimals of a degree is ~1 cm, finer than any imagery we segment.
GEOJSON_DECIMALS = 7


@dataclass(frozen=True)
class Component:
    """One connected foreground component in pixel space (x = column, y = row; pixel edges at integers).

    `score` is the mean and `score_max` the max probability over its `pixel_count` pixels.
    """

    geometry: Polygon | MultiPolygon
    pixel_count: int
    score: float
    score_max: float


def polygonize_components(
    probability: np.ndarray,
    threshold: float = 0.5,
    *,
    valid: np.ndarray | None = None,
    min_pixels: int = 1,
    simplify_px: float = 0.0,
) -> list[Component]:
    """Pixel-space polygons of the connected components of `probability >= threshold`.

    This is also the plain-image mode (no georeference). NaN pixels and pixels where `valid` is False
    are background. Components smaller than `min_pixels` are dropped; `simplify_px > 0` simplifies
    outlines with that tolerance in pixels (topology preserved). Order: GDAL's scan order (top-down).
    """
    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability: expected a 2-D array, got shape {prob.shape}")
    if valid is not None and np.shape(valid) != prob.shape:
        raise ValueError(f"valid: shape {np.shape(valid)} does not match probability {prob.shape}")
    if min_pixels < 1:
        raise ValueError(f"min_pixels: must be >= 1, got {min_pixels}")
    with np.errstate(invalid="ignore"):
        foreground = prob >= threshold
    if valid is not None:
        foreground &= np.asarray(valid, dtype=bool)
    if not foreground.any():
        return []
    # GeoJSON-like dicts go back into rasterize as they are: converting them to shapely first and
    # back again costs more than polygonizing. Shapely objects are built only for kept components.
    outlines = [
        geom
        for geom, _ in rasterio.features.shapes(
            foreground.view(np.uint8), mask=foreground, connectivity=4, transform=Affine.identity()
        )
    ]
    labels = rasterio.features.rasterize(
        zip(outlines, range(1, len(outlines) + 1), strict=True),
        out_shape=prob.shape,
        dtype="int32",
    )
    n = len(outlines) + 1
    # Statistics over foreground pixels only (a small share of a scene): counts and sums by bincount,
    # maxima by a segmented reduce over the pixels sorted by label.
    fg_labels = labels[foreground]
    fg_values = prob[foreground].astype(np.float64)
    counts = np.bincount(fg_labels, minlength=n)
    sums = np.bincount(fg_labels, weights=fg_values, minlength=n)
    order = np.argsort(fg_labels, kind="stable")
    sorted_labels, sorted_values = fg_labels[order], fg_values[order]
    starts = np.flatnonzero(np.diff(sorted_labels, prepend=-1))
    maxima = np.zeros(n, dtype=np.float64)
    maxima[sorted_labels[starts]] = np.maximum.reduceat(sorted_values, starts)
    keep = [i for i in range(1, n) if counts[i] >= min_pixels]
    geoms = [shape(outlines[i - 1]) for i in keep]
    if simplify_px > 0:
        geoms = list(shapely.simplify(geoms, simplify_px, preserve_topology=True))
    return [
        Component(geom, int(counts[i]), float(sums[i] / counts[i]), float(maxima[i]))
        for geom, i in zip(geoms, keep, strict=True)
    ]


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    """Keep only the polygonal part of a geometry (intersections may add lines/points)."""
    if geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]
    parts += [p for g in getattr(geom, "geoms", []) if isinstance(g, MultiPolygon) for p in g.geoms]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _right_hand(geom: Polygon | MultiPolygon) -> Polygon | MultiPolygon:
    """RFC 7946 winding: exterior rings counter-clockwise, holes clockwise."""
    if isinstance(geom, Polygon):
        return orient(geom, sign=1.0)
    return MultiPolygon([orient(p, sign=1.0) for p in geom.geoms])


def pixel_geometries_to_crs84(
    geometries: Sequence[BaseGeometry], crs: CRS | object, transform: Affine
) -> np.ndarray:
    """Map pixel-space geometries through the raster's affine transform and reproject them to CRS84.

    One vectorized `shapely.transform` call over all coordinates; pyproj with `always_xy=True`, so
    the output is lon/lat whatever the axis order of the raster CRS definition.
    """
    to_lonlat = Transformer.from_crs(CRS.from_user_input(crs), "OGC:CRS84", always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = transform @ (xy[:, 0], xy[:, 1])
        lon, lat = to_lonlat.transform(x, y)
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geometries, dtype=object), project)


def geodesic_area_m2(geometry: BaseGeometry) -> float:
    """Area in m² of a lon/lat (CRS84) geometry on the WGS84 ellipsoid."""
    area, _ = _GEOD.geometry_area_perimeter(geometry)
    return abs(float(area))


def components_to_feature_collection(
    components: Sequence[Component],
    crs: CRS | object,
    transform: Affine,
    *,
    aoi: BaseGeometry | None = None,
    min_area_m2: float = 0.0,
) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection (CRS84, right-hand rule, ≤ 7 decimals, no `crs` member).

    `aoi` (CRS84) clips the polygons after reprojection; `score`, `score_max` and `pixel_count`
    describe the whole component, `area_m2` the delivered (clipped) geometry. Features below
    `min_area_m2` are dropped.
    """
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    if not components:
        return collection
    lonlat = pixel_geometries_to_crs84([c.geometry for c in components], crs, transform)
    rounded = shapely.transform(lonlat, lambda xy: np.round(xy, GEOJSON_DECIMALS))
    features = []
    for comp, geom in zip(components, rounded, strict=True):
        geom = shapely.make_valid(geom) if not geom.is_valid else geom
        if aoi is not None:
            geom = geom.intersection(aoi)
        poly = _polygonal(geom)
        if poly is None:
            continue
        poly = _right_hand(poly)
        area = geodesic_area_m2(poly)
        if area < min_area_m2:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": _rounded_mapping(poly),
                "properties": {
                    "score": comp.score,
                    "score_max": comp.score_max,
                    "area_m2": area,
                    "pixel_count": comp.pixel_count,
                },
            }
        )
    collection["features"] = features
    if features:
        bounds = shapely.total_bounds([shape(f["geometry"]) for f in features])
        collection["bbox"] = [round(float(v), GEOJSON_DECIMALS) for v in bounds]
    return collection


def _rounded_mapping(geom: Polygon | MultiPolygon) -> dict[str, Any]:
    """GeoJSON geometry dict with coordinates re-rounded: intersection with an AOI adds new vertices."""
    geom = shapely.transform(geom, lambda xy: np.round(xy, GEOJSON_DECIMALS))
    return mapping(geom)


def vectorize_probability(
    probability: np.ndarray,
    crs: CRS | object,
    transform: Affine,
    *,
    threshold: float = 0.5,
    valid: np.ndarray | None = None,
    min_pixels: int = 1,
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    aoi: BaseGeometry | None = None,
) -> dict[str, Any]:
    """Threshold, polygonize and reproject a georeferenced probability map to a CRS84 FeatureCollection.

    `transform` maps pixel (col, row) of `probability` to `crs`; for a stitched canvas that starts
    at raster pixel (row_off, col_off) pass `raster_transform @ Affine.translation(col_off, row_off)`.
    """
    components = polygonize_components(
        probability, threshold, valid=valid, min_pixels=min_pixels, simplify_px=simplify_px
    )
    return components_to_feature_collection(components, crs, transform, aoi=aoi, min_area_m2=min_area_m2)
