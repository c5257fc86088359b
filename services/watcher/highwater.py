"""The watcher's memory in Redis, per (source, collection): which items were published, the high-water
mark (latest acquisition seen) and the publication mark (latest publication time seen).

Seen items are a sorted set scored by the latest time a search window can start at and still return
the item (epoch seconds), so entries before every search window, which no search can return again, are
pruned instead of growing forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import redis

from services.contracts import RedisKeys


class WatchState:
    """Dedup sets and high-water marks of the watcher."""

    def __init__(self, client: redis.Redis, keys: RedisKeys | None = None) -> None:
        self.redis = client
        self.keys = keys or RedisKeys()

    def high_water_mark(self, source: str, collection: str) -> datetime | None:
        """The latest item datetime seen for (source, collection), or None before the first item."""
        return self._time(self.keys.high_water_mark(source, collection))

    def publication_mark(self, source: str, collection: str) -> datetime | None:
        """The latest publication time seen for (source, collection), or None before the first search by
        publication time."""
        return self._time(self.keys.publication_mark(source, collection))

    def forget_publication_mark(self, source: str, collection: str) -> None:
        """Drop the publication mark: the next search by publication time starts afresh."""
        self.redis.delete(self.keys.publication_mark(source, collection))

    def _time(self, key: str) -> datetime | None:
        raw = self.redis.get(key)
        return None if raw is None else datetime.fromisoformat(raw.decode()).astimezone(UTC)

    def unseen(self, source: str, collection: str, item_ids: Sequence[str]) -> set[str]:
        """The ids among ``item_ids`` that were never marked as published."""
        if not item_ids:
            return set()
        scores = self.redis.zmscore(self.keys.seen_items(source, collection), list(item_ids))
        return {item_id for item_id, score in zip(item_ids, scores, strict=True) if score is None}

    def mark_published(
        self,
        source: str,
        collection: str,
        items: Mapping[str, datetime],
        high_water: datetime | None,
        forget_before: datetime | None,
        publication_mark: datetime | None = None,
    ) -> int:
        """Record published items (id -> the latest time a search window can start at and still return
        it), the new high-water and publication marks in one transaction; drop dedup entries older than
        ``forget_before`` (the earliest time a later search can start at).

        Returns how many items were newly recorded (fewer than given means another watcher published
        some of them concurrently: duplicates the idempotent dispatcher absorbs).
        """
        seen_key = self.keys.seen_items(source, collection)
        pipe = self.redis.pipeline(transaction=True)
        if items:
            pipe.zadd(seen_key, {item_id: when.timestamp() for item_id, when in items.items()})
        if forget_before is not None:
            pipe.zremrangebyscore(seen_key, "-inf", f"({forget_before.timestamp()}")
        if high_water is not None:
            pipe.set(self.keys.high_water_mark(source, collection), high_water.astimezone(UTC).isoformat())
        if publication_mark is not None:
            pipe.set(
                self.keys.publication_mark(source, collection), publication_mark.astimezone(UTC).isoformat()
            )
        results = pipe.execute()
        return int(results[0]) if items else 0
