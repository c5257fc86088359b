"""Predict one image file for one expression and write the results next to each other:
`<stem>.overlay.png`, optionally `<stem>.probability.png`, and for georeferenced rasters
`<stem>.geojson` (RFC 7946 FeatureCollection in CRS84)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from PIL import Image
from pyproj import CRS
from shapely.affinity import affine_transform
from shapely.geometry.base import BaseGeometry

from danet.geo.raster import PredictionImage, open_image
from danet.geo.tiling import aoi_pixel_region
from danet.geo.vectorize import (
    Component,
    components_to_feature_collection,
    geodesic_area_m2,
    pixel_geometries_to_crs84,
    polygonize_components,
)
from danet.predict.multi_query import PredictionMap
from danet.predict.overlay import (
    MAX_OVERLAY_SIDE,
    display_foreground,
    display_shape,
    read_display_image,
    render_overlay,
)
from danet.predict.predictor import Predictor


@dataclass(frozen=True)
class PredictionResult:
    """What `predict_file` wrote and found.

    `component_count` counts the connected components kept (outlined on the overlay);
    `feature_count` the GeoJSON features (None for images without georeference).
    """

    image_path: Path
    overlay_path: Path
    geojson_path: Path | None
    probability_path: Path | None
    shape: tuple[int, int]
    tile_count: int
    foreground_pixels: int
    component_count: int
    feature_count: int | None


def predict_file(
    predictor: Predictor,
    image_path: str | Path,
    text: str,
    out_dir: str | Path,
    *,
    threshold: float = 0.5,
    min_area_m2: float = 0.0,
    min_pixels: int = 1,
    simplify_px: float = 0.0,
    overlap: int | None = None,
    aoi: BaseGeometry | None = None,
    write_probability: bool = False,
    max_overlay_side: int = MAX_OVERLAY_SIDE,
    progress: bool = False,
) -> PredictionResult:
    """Segment what `text` refers to in the image at `image_path` and write the outputs to `out_dir`.

    Any size works: the image is tiled with `overlap` (default: the predictor's) and blended. Foreground
    is probability >= `threshold`; components under `min_pixels` pixels (any image) or `min_area_m2`
    m² (georeferenced images only) are dropped from the outlines and the GeoJSON. `aoi`, a
    (Multi)Polygon in CRS84, restricts prediction to the part of a georeferenced image it covers and
    clips the GeoJSON polygons to it. The GeoJSON carries the expression, model name, threshold and
    image file name as foreign members of the FeatureCollection; each feature has score (mean
    probability), score_max, area_m2 and pixel_count. The probability PNG (8-bit, 0 where not valid)
    covers the predicted canvas: the whole image, or the AOI's bounding window.
    """
    if not text.strip():
        raise ValueError("text: the expression is empty")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: must be in [0, 1], got {threshold}")
    if min_area_m2 < 0:
        raise ValueError(f"min_area_m2: must be >= 0, got {min_area_m2}")
    image_path = Path(image_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = image_path.stem
    with open_image(image_path) as image:
        georeferenced = image.crs is not None
        if not georeferenced and (aoi is not None or min_area_m2 > 0):
            raise ValueError(f"aoi/min_area_m2: need a georeferenced image, and {image_path} has no CRS")
        region = None
        if aoi is not None:
            region = aoi_pixel_region(aoi, image.crs, image.transform, image.shape)
            if region is None:
                raise ValueError(f"aoi: does not intersect the footprint of {image_path}")
        prediction = predictor.predict_image(image, text, region=region, overlap=overlap, progress=progress)
        components = polygonize_components(
            prediction.probability,
            threshold,
            valid=prediction.valid,
            min_pixels=min_pixels,
            simplify_px=simplify_px,
        )
        geojson_path = None
        feature_count = None
        if georeferenced:
            canvas_transform = prediction.canvas_transform(image.transform)
            if min_area_m2 > 0:
                components = _at_least(components, image.crs, canvas_transform, min_area_m2)
            collection = components_to_feature_collection(
                components, image.crs, canvas_transform, aoi=aoi, min_area_m2=min_area_m2
            )
            feature_count = len(collection["features"])
            geojson_path = out_dir / f"{stem}.geojson"
            metadata = {
                "expression": text,
                "model": predictor.model_name,
                "threshold": threshold,
                "image": image_path.name,
            }
            geojson_path.write_text(json.dumps(_with_foreign_members(collection, metadata)))
        overlay_path = out_dir / f"{stem}.overlay.png"
        details = (
            f"{predictor.model_name} · threshold {threshold:g} · {len(components)} component(s) · "
            f"{image.shape[1]}x{image.shape[0]} px, {prediction.tile_count} tile(s)"
        )
        _write_overlay(
            image, prediction, components, threshold, f'"{text}"', details, max_overlay_side, overlay_path
        )
    probability_path = None
    if write_probability:
        probability_path = out_dir / f"{stem}.probability.png"
        Image.fromarray(_probability_uint8(prediction)).save(probability_path)
    with np.errstate(invalid="ignore"):
        foreground = int(((prediction.probability >= threshold) & prediction.valid).sum())
    return PredictionResult(
        image_path=image_path,
        overlay_path=overlay_path,
        geojson_path=geojson_path,
        probability_path=probability_path,
        shape=image.shape,
        tile_count=prediction.tile_count,
        foreground_pixels=foreground,
        component_count=len(components),
        feature_count=feature_count,
    )


def _at_least(
    components: list[Component], crs: CRS, transform: Affine, min_area_m2: float
) -> list[Component]:
    """Components whose geodesic area is at least `min_area_m2` (so outlines match the GeoJSON)."""
    if not components:
        return components
    lonlat = pixel_geometries_to_crs84([c.geometry for c in components], crs, transform)
    return [c for c, g in zip(components, lonlat, strict=True) if geodesic_area_m2(g) >= min_area_m2]


def _with_foreign_members(collection: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    """The FeatureCollection with `members` placed after "type" (RFC 7946 §6.1 foreign members)."""
    return {"type": collection["type"], **members, **{k: v for k, v in collection.items() if k != "type"}}


def _write_overlay(
    image: PredictionImage,
    prediction: PredictionMap,
    components: list[Component],
    threshold: float,
    caption: str,
    details: str,
    max_side: int,
    path: Path,
) -> None:
    size = display_shape(image.shape, max_side)
    sy, sx = size[0] / image.shape[0], size[1] / image.shape[1]
    # Component geometries are in canvas pixels; map them to display pixels of the whole image.
    to_display = [sx, 0.0, 0.0, sy, prediction.col_off * sx, prediction.row_off * sy]
    outlines = [affine_transform(c.geometry, to_display) for c in components]
    base = read_display_image(image, size)
    foreground = display_foreground(prediction, threshold, image.shape, size)
    render_overlay(base, foreground, outlines, caption, details).save(path)


def _probability_uint8(prediction: PredictionMap) -> np.ndarray:
    values = np.where(prediction.valid, prediction.probability, np.float32(0.0))
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
