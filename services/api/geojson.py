"""GeoJSON responses (RFC 7946, media type ``application/geo+json``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from services.contracts import Detection

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """JSON with the GeoJSON media type (what QGIS and STAC clients expect for features)."""

    media_type = GEOJSON


def feature_collection(
    detections: Sequence[Detection], *, number_matched: int, **members: Any
) -> dict[str, Any]:
    """A FeatureCollection of detections with OGC's ``numberMatched``/``numberReturned`` counts."""
    return {
        "type": "FeatureCollection",
        "features": [d.to_feature() for d in detections],
        "numberMatched": number_matched,
        "numberReturned": len(detections),
        **members,
    }
