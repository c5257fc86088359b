"""Scenes the dispatcher gave up on, per query that matched them, and dead letters counted by code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import redis

from services.contracts import RedisKeys, SkippedScene, SkippedScenes

RECENT_SKIPPED = 20  # scenes listed on a query; the counts cover all of them


class SkippedSceneStore:
    """Records a dead-lettered scene on each query it concerned, and counts dead letters by code."""

    def __init__(self, client: redis.Redis, keys: RedisKeys | None = None) -> None:
        self.redis = client
        self.keys = keys or RedisKeys()

    def record(self, query_ids: Sequence[str], scene: SkippedScene) -> None:
        """Note `scene` on each query (once per scene: a redelivered scene replaces its entry)."""
        if not query_ids:
            return
        pipe = self.redis.pipeline(transaction=True)
        for query_id in query_ids:
            pipe.hset(
                self.keys.skipped_scenes(query_id),
                f"{scene.collection}/{scene.item_id}",
                scene.model_dump_json(),
            )
        pipe.execute()

    def count_dead_letter(self, code: str) -> None:
        """Count one dead-lettered scene under its code (what ``/metrics`` reports)."""
        self.redis.hincrby(self.keys.dead_letter_counts(), code, 1)

    def dead_letter_counts(self) -> dict[str, int]:
        """Dead-lettered scenes by code, since the store began."""
        raw = self.redis.hgetall(self.keys.dead_letter_counts())
        return {_text(code): int(count) for code, count in raw.items()}

    def summary(self, query_id: str) -> SkippedScenes:
        """The query's skipped scenes: counts by code and the latest `RECENT_SKIPPED`."""
        scenes = [
            SkippedScene.model_validate_json(v) for v in self.redis.hvals(self.keys.skipped_scenes(query_id))
        ]
        scenes.sort(key=lambda s: s.at, reverse=True)
        counts = Counter(s.code for s in scenes)
        return SkippedScenes(
            total=len(scenes), counts=dict(sorted(counts.items())), recent=scenes[:RECENT_SKIPPED]
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
