"""Detections built and stored the way the dispatcher does, for tests of what reads them."""

from datetime import UTC, datetime
from typing import Any

import redis

from services.contracts import Detection, Query, RedisKeys, detection_id
from services.store import DetectionStore

MODEL = "m"


def make_detection(
    query: Query,
    collection: str,
    item_id: str,
    geometry: dict[str, Any],
    *,
    model: str = MODEL,
    **fields: Any,
) -> Detection:
    """A detection of ``query`` in one scene with its deterministic id; ``fields`` override the defaults
    (acquired 2026-01-01, detected now, score 0.8 / max 0.9, 100 m², 4 px)."""
    values: dict[str, Any] = {
        "acquired": datetime(2026, 1, 1, tzinfo=UTC),
        "detected_at": datetime.now(UTC),
        "score": 0.8,
        "score_max": 0.9,
        "area_m2": 100.0,
        "pixel_count": 4,
    } | fields
    return Detection(
        id=detection_id(query.id, query.version, collection, item_id, model, geometry),
        query_id=query.id,
        query_version=query.version,
        query_text=query.text,
        tenant=query.tenant,
        collection=collection,
        item_id=item_id,
        model=model,
        geometry=geometry,
        **values,
    )


def write_detections(
    client: redis.Redis,
    keys: RedisKeys,
    query: Query,
    collection: str,
    item_id: str,
    detections: list[Detection],
) -> list[Detection]:
    """Store one scene's detections with the dispatcher's call (asserting they were new); returns them."""
    model = detections[0].model if detections else MODEL
    assert DetectionStore(client, keys).write_scene(query, collection, item_id, model, detections).written
    return detections
