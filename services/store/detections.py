"""Detections in Redis: idempotent per-scene results, a hash per query, and a Stream per query.

A scene's detections for one query are written in one MULTI/EXEC transaction together with the scene's
result marker, so a dispatcher that crashes and reprocesses the scene finds the marker and writes nothing
twice; the Stream entries (what SSE subscribers read) therefore appear exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import redis
from shapely.geometry import box, shape

from services.contracts import Detection, Query, RedisKeys

STREAM_MAXLEN = 100_000


@dataclass(frozen=True)
class SceneResult:
    """What one (query version, scene, model) produced."""

    detection_ids: list[str]
    written: bool  # False: the scene had already been processed; nothing was written this time


class DetectionStore:
    """Writes and reads a query's detections."""

    def __init__(self, client: redis.Redis, keys: RedisKeys | None = None) -> None:
        self.redis = client
        self.keys = keys or RedisKeys()

    def result_key(self, query: Query, collection: str, item_id: str, model: str) -> str:
        """Marker key of one processed (query version, scene, model)."""
        return self.keys.result(query.id, query.version, collection, item_id, model)

    def write_scene(
        self, query: Query, collection: str, item_id: str, model: str, detections: Sequence[Detection]
    ) -> SceneResult:
        """Store a scene's detections (possibly none) once; a repeated call changes nothing."""
        marker = self.result_key(query, collection, item_id, model)
        ids = [d.id for d in detections]

        def transaction(pipe: redis.client.Pipeline) -> bool:
            if pipe.exists(marker):
                return False
            pipe.multi()
            if detections:
                pipe.hset(
                    self.keys.detections(query.id), mapping={d.id: d.model_dump_json() for d in detections}
                )
                for detection in detections:
                    pipe.xadd(
                        self.keys.detection_stream(query.id),
                        {"id": detection.id, "feature": detection.model_dump_json()},
                        maxlen=STREAM_MAXLEN,
                        approximate=True,
                    )
            pipe.set(marker, ",".join(ids))
            pipe.set(
                self.keys.last_scene(query.id),
                json.dumps([d.geometry.model_dump(mode="json") for d in detections]),
            )
            return True

        written = self.redis.transaction(transaction, marker, value_from_callable=True)
        return SceneResult(detection_ids=ids, written=bool(written))

    def scene_detections(
        self, query: Query, collection: str, item_id: str, model: str
    ) -> list[Detection] | None:
        """The detections stored for a processed scene (in write order), or None if it is not processed."""
        raw = self.redis.get(self.result_key(query, collection, item_id, model))
        if raw is None:
            return None
        ids = [i for i in raw.decode().split(",") if i]
        if not ids:
            return []
        values = self.redis.hmget(self.keys.detections(query.id), ids)
        return [Detection.model_validate_json(v) for v in values if v is not None]

    def get(self, query_id: str, detection_id: str) -> Detection | None:
        """One detection of a query by id, or None."""
        raw = self.redis.hget(self.keys.detections(query_id), detection_id)
        return None if raw is None else Detection.model_validate_json(raw)

    def previous_geometries(self, query_id: str) -> list[dict]:
        """Geometries of the last scene processed for a query (for new/persisting change status)."""
        raw = self.redis.get(self.keys.last_scene(query_id))
        return json.loads(raw) if raw else []

    def list(
        self,
        query_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        change: str | None = None,
    ) -> list[Detection]:
        """A query's detections, newest acquisition first, filtered by acquisition time, bbox and change."""
        detections = [
            Detection.model_validate_json(v) for v in self.redis.hvals(self.keys.detections(query_id))
        ]
        area = box(*bbox) if bbox else None
        kept = []
        for d in detections:
            when = d.acquired or d.detected_at
            if since and when < since:
                continue
            if until and when > until:
                continue
            if change and d.change != change:
                continue
            if area is not None and not area.intersects(shape(d.geometry)):
                continue
            kept.append(d)
        return sorted(kept, key=lambda d: (d.acquired or d.detected_at, d.id), reverse=True)
