"""GeoJSON responses (RFC 7946, media type ``application/geo+json``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from services.api.responses import DetectionCollection, DetectionPage, Link
from services.contracts import Detection

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """JSON with the GeoJSON media type (what QGIS and STAC clients expect for features)."""

    media_type = GEOJSON


def feature_collection(detections: Sequence[Detection], *, number_matched: int) -> DetectionCollection:
    """A FeatureCollection of detections with OGC's ``numberMatched``/``numberReturned`` counts."""
    return DetectionCollection(**_counted(detections, number_matched))


def feature_page(detections: Sequence[Detection], *, number_matched: int, links: list[Link]) -> DetectionPage:
    """:func:`feature_collection` as one page of an OGC API - Features collection, with its links."""
    return DetectionPage(**_counted(detections, number_matched), links=links)


def _counted(detections: Sequence[Detection], number_matched: int) -> dict[str, Any]:
    features = [d.feature() for d in detections]
    return {"features": features, "numberMatched": number_matched, "numberReturned": len(features)}
