"""Georeferenced detections: what subscribers receive, and the one GeoJSON Feature form every output
(the detections topic, webhooks, the SSE stream, the detections and OGC API routes) sends them in."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from geojson_pydantic import Feature, MultiPolygon, Polygon
from pydantic import BaseModel, ConfigDict, Field

DETECTION_SCHEMA_VERSION = 1


class ChangeStatus(StrEnum):
    """A detection compared with the previous scene of the same query."""

    new = "new"
    persisting = "persisting"


def detection_id(
    query_id: str, query_version: int, collection: str, item_id: str, model: str, geometry: dict[str, Any]
) -> str:
    """Deterministic id: the same inputs always give the same id, so reprocessing a scene after a crash
    rewrites the same records instead of adding duplicates."""
    canonical = json.dumps(
        [query_id, query_version, collection, item_id, model, geometry], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# RFC 7946: CRS84 lon/lat, right-hand rule, at most 7 decimals (danet.geo's vectorizer writes it so).
DetectionGeometry = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class DetectionProperties(BaseModel):
    """What a detection says about itself: everything but its id and geometry (a Feature's ``properties``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = DETECTION_SCHEMA_VERSION
    query_id: str
    query_version: int
    query_text: str
    tenant: str = "default"
    collection: str
    item_id: str
    acquired: datetime | None
    detected_at: datetime
    model: str
    score: float = Field(ge=0, le=1)
    score_max: float = Field(ge=0, le=1)
    area_m2: float = Field(ge=0)
    pixel_count: int = Field(ge=0)
    change: ChangeStatus = ChangeStatus.new
    item_href: str | None = None


class DetectionFeature(Feature[DetectionGeometry, DetectionProperties]):
    """A detection as an RFC 7946 Feature: ``id`` = the detection id, the rest in ``properties``."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: DetectionGeometry
    properties: DetectionProperties


class Detection(DetectionProperties):
    """One detected object (a polygon) for one query in one scene."""

    id: str
    geometry: DetectionGeometry

    def feature(self) -> DetectionFeature:
        """This detection as a GeoJSON Feature: the one wire form of a detection."""
        properties = DetectionProperties.model_validate(self, from_attributes=True)
        return DetectionFeature(id=self.id, geometry=self.geometry, properties=properties)

    def feature_json(self) -> bytes:
        """:meth:`feature` as compact JSON: the body of a webhook, a Kafka record, an SSE event."""
        return self.feature().model_dump_json().encode()

    def to_feature(self) -> dict[str, Any]:
        """:meth:`feature` as a JSON-ready dict."""
        return self.feature().model_dump(mode="json")

    @classmethod
    def from_feature(cls, feature: dict[str, Any] | DetectionFeature) -> Detection:
        """Inverse of :meth:`feature`."""
        parsed = DetectionFeature.model_validate(feature)
        return cls.model_validate(
            {**parsed.properties.model_dump(), "id": parsed.id, "geometry": parsed.geometry}
        )
