"""Detections in Redis: idempotent per-scene results, a hash per query, and a Stream per query.

A scene's detections for one query are written in one MULTI/EXEC transaction together with the scene's
result marker, so a dispatcher that crashes and reprocesses the scene finds the marker and writes nothing
twice; the Stream entries (what SSE subscribers read) therefore appear exactly once.

With a retention (``store.detection_retention_days``) the same transaction removes the query's
detections stored longer ago than that (from the hash, by the time index; from the Stream, by entry id)
and gives every key of the query a TTL of the retention, so a query that gets no new scene loses them
all once the retention has passed since its last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    """Writes and reads a query's detections; ``retention`` (None: for ever) bounds how long they stay.
    ``clock`` (Unix seconds) must agree with the Redis server's, whose clock numbers the Stream entries."""

    def __init__(
        self,
        client: redis.Redis,
        keys: RedisKeys | None = None,
        *,
        retention: timedelta | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention is not None and retention <= timedelta(0):
            raise ValueError(f"retention: must be positive or None, got {retention}")
        self.redis = client
        self.keys = keys or RedisKeys()
        self.retention = retention
        self.clock = clock

    def result_key(self, query: Query, collection: str, item_id: str, model: str) -> str:
        """Marker key of one processed (query version, scene, model)."""
        return self.keys.result(query.id, query.version, collection, item_id, model)

    def write_scene(
        self, query: Query, collection: str, item_id: str, model: str, detections: Sequence[Detection]
    ) -> SceneResult:
        """Store a scene's detections (possibly none) once; a repeated call changes nothing."""
        marker = self.result_key(query, collection, item_id, model)
        ids = [d.id for d in detections]
        hash_key, times_key = self.keys.detections(query.id), self.keys.detection_times(query.id)
        stream_key, last_scene_key = self.keys.detection_stream(query.id), self.keys.last_scene(query.id)
        ttl_ms = None if self.retention is None else int(self.retention.total_seconds() * 1000)

        def transaction(pipe: redis.client.Pipeline) -> bool:
            if pipe.exists(marker):
                return False
            now = self.clock()
            cutoff = None if ttl_ms is None else now - ttl_ms / 1000
            expired = []
            if cutoff is not None:
                stale = (m.decode() for m in pipe.zrangebyscore(times_key, "-inf", f"({cutoff}"))
                # A detection stored again (its scene processed again after its marker expired) stays.
                expired = [i for i in stale if i not in ids]
            pipe.multi()
            if detections:
                pipe.hset(hash_key, mapping={d.id: d.model_dump_json() for d in detections})
                pipe.zadd(times_key, dict.fromkeys(ids, now))
                for detection in detections:
                    pipe.xadd(
                        stream_key,
                        {"id": detection.id, "feature": detection.model_dump_json()},
                        maxlen=STREAM_MAXLEN,
                        approximate=True,
                    )
            pipe.set(marker, ",".join(ids), px=ttl_ms)
            pipe.set(
                last_scene_key,
                json.dumps([d.geometry.model_dump(mode="json") for d in detections]),
                px=ttl_ms,
            )
            if ttl_ms is not None and cutoff is not None:
                if expired:
                    pipe.hdel(hash_key, *expired)
                    pipe.zrem(times_key, *expired)
                # Stream entry ids are the milliseconds Redis added them at.
                pipe.xtrim(stream_key, minid=int(cutoff * 1000), approximate=False)
                for key in (hash_key, times_key, stream_key):
                    pipe.pexpire(key, ttl_ms)
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
