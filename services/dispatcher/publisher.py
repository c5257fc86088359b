"""Detections to the ``detections`` topic (key ``query_id``, value the GeoJSON Feature), once per scene.

A scene's detections for a query are produced when its result has not been published yet: a Redis
marker (``RedisKeys.published``), set only after the broker acknowledged every record, says it was.
So a dispatcher that crashed after storing a scene but before producing it produces it on redelivery
(nothing is lost), and one that crashed after the marker produces nothing twice. The residual window:
a crash between the broker's acknowledgement and the marker write re-produces that scene's
detections once more; they carry the same detection ids (Feature ``id``), so consumers can drop them.
The Redis Stream per query has no such window: it is written in the store's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import redis
from kafka import KafkaProducer

from services.contracts import RedisKeys
from services.dispatcher.scene_processor import QueryResult

log = logging.getLogger(__name__)


class DetectionPublisher:
    """Produces scene results that are not yet on the detections topic, then marks them published; the
    markers expire after ``retention`` (None: never), as the stored results do (see DetectionStore)."""

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        client: redis.Redis,
        keys: RedisKeys,
        *,
        timeout_s: float = 30.0,
        retention: timedelta | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.redis = client
        self.keys = keys
        self.timeout_s = timeout_s
        self.marker_ttl_ms = None if retention is None else int(retention.total_seconds() * 1000)

    def _marker(self, result: QueryResult, collection: str, item_id: str, model: str) -> str:
        query = result.query
        return self.keys.published(query.id, query.version, collection, item_id, model)

    def publish(self, collection: str, item_id: str, model: str, results: Sequence[QueryResult]) -> int:
        """Produce the unpublished results of one scene, wait for the broker, mark them; returns the
        number of detections produced."""
        wanted = [r for r in results if r.query.delivery.kafka]
        if not wanted:
            return 0
        markers = [self._marker(r, collection, item_id, model) for r in wanted]
        # One round trip per query: a scene matches few queries.
        pending = [(r, m) for r, m in zip(wanted, markers, strict=True) if not self.redis.exists(m)]
        futures = []
        for result, _ in pending:
            for detection in result.detections:
                futures.append(
                    self.producer.send(
                        self.topic, key=result.query.id.encode(), value=detection.feature_json()
                    )
                )
        if futures:
            self.producer.flush(timeout=self.timeout_s)
            for future in futures:
                future.get(timeout=self.timeout_s)  # raises if the broker refused a record
        if pending:
            pipe = self.redis.pipeline(transaction=True)
            for _, marker in pending:
                pipe.set(marker, "1", px=self.marker_ttl_ms)
            pipe.execute()
        for result, _ in pending:
            log.info(
                "scene %s/%s: query %s: produced %d detections to %s",
                collection,
                item_id,
                result.query.id,
                len(result.detections),
                self.topic,
            )
        return len(futures)
