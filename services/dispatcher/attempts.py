"""Attempts at one scene record, counted in Redis per (consumer group, topic, partition, offset).

An attempt is counted when it starts, not when it fails, so a scene that kills the dispatcher process
(out of memory, a segfault in a native library) is counted too and ends in the dead-letter topic
instead of crashing every restarted dispatcher forever. Counting in Redis rather than re-producing the
record with an attempt header keeps the scene's place (and its key's order) in the partition.
"""

from __future__ import annotations

from typing import Protocol

import redis

from services.contracts import RedisKeys

# Counters of scenes that finished are deleted; this only bounds the life of abandoned ones.
ATTEMPTS_TTL_S = 7 * 24 * 3600


class RecordPosition(Protocol):
    """Where a record is: what kafka-python's ConsumerRecord provides."""

    topic: str
    partition: int
    offset: int


class AttemptLedger:
    """Counts attempts and remembers the last error of records being processed by one group."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, group: str) -> None:
        self.redis = client
        self.keys = keys
        self.group = group

    def _key(self, record: RecordPosition) -> str:
        return self.keys.dispatch_attempts(self.group, record.topic, record.partition, record.offset)

    def begin(self, record: RecordPosition) -> int:
        """Count a new attempt; returns its number (1 for the first)."""
        key = self._key(record)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "count", 1)
        pipe.expire(key, ATTEMPTS_TTL_S)
        count, _ = pipe.execute()
        return int(count)

    def fail(self, record: RecordPosition, error: str) -> None:
        """Remember why the current attempt failed."""
        self.redis.hset(self._key(record), "last_error", error)

    def last_error(self, record: RecordPosition) -> str | None:
        """The error of the last failed attempt, None if no attempt recorded one."""
        raw = self.redis.hget(self._key(record), "last_error")
        return raw.decode() if raw is not None else None

    def clear(self, record: RecordPosition) -> None:
        """Forget a record that is done (processed or dead-lettered)."""
        self.redis.delete(self._key(record))
