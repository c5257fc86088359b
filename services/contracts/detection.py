"""Georeferenced detections: what subscribers receive."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

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


class Detection(BaseModel):
    """One detected object (a polygon) for one query in one scene."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = DETECTION_SCHEMA_VERSION
    id: str
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
    geometry: dict[str, Any] = Field(description="RFC 7946 Polygon/MultiPolygon, CRS84, <= 7 decimals")
    change: ChangeStatus = ChangeStatus.new
    item_href: str | None = None

    def to_feature(self) -> dict[str, Any]:
        """An RFC 7946 Feature (``id`` = detection id, everything else in ``properties``)."""
        properties = self.model_dump(mode="json", exclude={"id", "geometry"})
        return {"type": "Feature", "id": self.id, "geometry": self.geometry, "properties": properties}

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> Detection:
        """Inverse of :meth:`to_feature`."""
        return cls.model_validate(
            {**feature["properties"], "id": feature["id"], "geometry": feature["geometry"]}
        )
