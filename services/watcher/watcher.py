"""The watcher's polling loop: search every watched (source, collection), publish new items to the
``scenes`` topic, then remember them.

Order matters for delivery: messages are flushed and acknowledged by the broker *before* the items
are marked as seen and the high-water mark moves. A crash in between re-publishes those items on the
next poll (at-least-once); the dispatcher's writes are idempotent, so subscribers see them once.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.contracts import RedisKeys, SceneMessage, Topics
from services.settings import LookoutSettings, StacSettings, WatcherSettings
from services.store import QueryStore
from services.watcher.health import SourceHealth
from services.watcher.highwater import WatchState
from services.watcher.planning import (
    DatedItem,
    WatchTarget,
    advance_high_water,
    capped_cursor,
    collection_overlap,
    merge_found,
    parse_items,
    plan_targets,
    publication_window_start,
    window_start,
)
from services.watcher.sources import SOURCE_ERRORS, SceneSource, StacApiSource, open_source

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PollSummary:
    """What one poll did: published Kafka keys (``collection/item_id``), failed and backing-off sources."""

    published: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    backing_off: list[str] = field(default_factory=list)


def default_source_locations(settings: LookoutSettings) -> list[str]:
    """``watcher.sources``, or the STAC API of ``stac.api_url`` when that list is empty."""
    if settings.watcher.sources:
        return list(settings.watcher.sources)
    return [settings.stac.api_url] if settings.stac.api_url else []


class Watcher:
    """Polls scene sources for the active queries and publishes one SceneMessage per new item.

    Queries with ``stac_api`` watch that API; the others watch ``default_sources``. The watcher owns
    (and closes) the producer and the Redis client it is given.
    """

    def __init__(
        self,
        *,
        queries: QueryStore,
        state: WatchState,
        producer: KafkaProducer,
        settings: WatcherSettings,
        stac_settings: StacSettings,
        default_sources: Sequence[SceneSource],
        topics: Topics | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.queries = queries
        self.state = state
        self.producer = producer
        self.settings = settings
        self.stac_settings = stac_settings
        self.default_sources = list(default_sources)
        self.topics = topics or Topics()
        self.clock = clock
        self.overlap = timedelta(seconds=settings.overlap_s)
        self.overlaps = {name: timedelta(seconds=s) for name, s in settings.collection_overlap_s.items()}
        self.publication_overlap = timedelta(seconds=settings.publication_overlap_s)
        self.stale_after = timedelta(seconds=settings.stale_after_s)
        self._sources: dict[str, SceneSource] = {source.name: source for source in self.default_sources}
        self._health: dict[str, SourceHealth] = {}
        self._collections: dict[str, list[str]] = {}
        # (source, collection) -> datetime of the last item of a poll that hit max_items_per_poll, and
        # publication time of the last item of a search by publication time that hit it.
        self._cursors: dict[tuple[str, str], datetime] = {}
        self._publication_cursors: dict[tuple[str, str], datetime] = {}
        # (source, collection) -> whether the latest items found by acquisition time carry
        # publication_field; unknown before the first items. Without it a search by publication time
        # finds nothing and, unbounded in acquisition time, can be the API's most expensive query.
        self._stamped: dict[tuple[str, str], bool] = {}
        self._last_poll: datetime | None = None
        self._lock = threading.Lock()
        if not self.default_sources:
            log.warning("watcher: no default sources configured; only queries with stac_api are watched")

    @classmethod
    def from_settings(
        cls, settings: LookoutSettings, *, keys: RedisKeys | None = None, topics: Topics | None = None
    ) -> Watcher:
        """A watcher wired to the configured Redis, Kafka and sources; creates the scenes topic if needed."""
        topics = topics or settings.topics()
        ensure_topics(settings.kafka, [topics.scenes])
        client = make_redis(settings.redis)
        keys = keys or settings.redis_keys()
        sources = [
            open_source(location, settings.stac, page_size=settings.watcher.page_size)
            for location in default_source_locations(settings)
        ]
        return cls(
            queries=QueryStore(client, keys),
            state=WatchState(client, keys),
            producer=make_producer(settings.kafka),
            settings=settings.watcher,
            stac_settings=settings.stac,
            default_sources=sources,
            topics=topics,
        )

    def poll_once(self) -> PollSummary:
        """Search every watched (source, collection) once and publish what is new."""
        now = self.clock()
        targets = plan_targets(
            self.queries.active(),
            [s.name for s in self.default_sources],
            now=now,
            overlap=self.overlap,
            by_collection=self.overlaps,
        )
        by_source: dict[str, list[WatchTarget]] = defaultdict(list)
        for target in targets:
            by_source[target.source].append(target)
        summary = PollSummary()
        for name, source_targets in by_source.items():
            self._poll_source(name, source_targets, now, summary)
        with self._lock:
            self._forget_unwatched(set(by_source))
            self._collections = {name: [t.collection for t in ts] for name, ts in by_source.items()}
            for name, health in self._health.items():
                if health.check_stale(now, self.stale_after):
                    quiet_since = health.last_new_item or health.watching_since
                    log.warning(
                        "source %s is STALE: no new item since %s (stale_after_s=%s, collections %s, "
                        "consecutive failures %d, last error: %s)",
                        name,
                        quiet_since.isoformat(),
                        self.settings.stale_after_s,
                        self._collections[name],
                        health.consecutive_failures,
                        health.last_error,
                    )
            self._last_poll = now
        return summary

    def _poll_source(
        self, name: str, targets: list[WatchTarget], now: datetime, summary: PollSummary
    ) -> None:
        """Poll one source's collections; on the first failure back off (a down API fails them all)."""
        with self._lock:
            health = self._health.setdefault(name, SourceHealth(watching_since=now))
        if not health.due(now):
            summary.backing_off.append(name)
            return
        source = self._source(name)
        new_items = 0
        try:
            for target in targets:
                new_items += len(self._poll_target(source, target, now, summary))
        except SOURCE_ERRORS as error:
            message = f"{type(error).__name__}: {error}"
            with self._lock:
                health.record_new_items(now, new_items)
                delay = health.record_failure(now, message, self.settings.backoff)
            summary.failed[name] = message
            log.warning(
                "source %s: search failed (%d in a row), next attempt in %.1f s: %s",
                name,
                health.consecutive_failures,
                delay,
                message,
            )
            return
        with self._lock:
            health.record_success(now)
            if health.record_new_items(now, new_items):
                log.info("source %s: new items again, no longer stale", name)

    def _poll_target(
        self, source: SceneSource, target: WatchTarget, now: datetime, summary: PollSummary
    ) -> list[DatedItem]:
        """Search one (source, collection) by acquisition time and, where that can find more, by
        publication time; publish the new items, then mark them and move the marks (the rules:
        services.watcher.planning)."""
        pair = (source.name, target.collection)
        overlap = collection_overlap(target.collection, self.overlap, self.overlaps)
        limit = self.settings.max_items_per_poll
        field = self.settings.publication_field
        high_water = self.state.high_water_mark(*pair)
        start = window_start(high_water, target.backfill_start, overlap, self._cursors.get(pair))
        found = source.search(target.collection, target.intersects(), start, limit)
        by_acquisition, problems = parse_items(found, field)
        if by_acquisition:
            self._stamped[pair] = any(item.published is not None for item in by_acquisition)
        stored_mark = self.state.publication_mark(*pair)
        since = publication_window_start(
            stored_mark, now, self.publication_overlap, self._publication_cursors.get(pair)
        )
        searching_late = field is not None and self._stamped.get(pair, True)
        found_late, late_failed = (
            self._search_late(source, target, since) if searching_late else (None, False)
        )
        by_publication, late_problems = parse_items(found_late or [], field)
        for problem in dict.fromkeys(problems + late_problems):
            log.warning("source %s collection %s: %s", source.name, target.collection, problem)
        items = merge_found(by_acquisition, by_publication)
        unseen = self.state.unseen(*pair, [i.item_id for i in items])
        new = [item for item in items if item.item_id in unseen]
        self._publish(source.name, target.collection, new, now)
        summary.published.extend(f"{target.collection}/{item.item_id}" for item in new)

        mark = advance_high_water(high_water, (item.acquired for item in by_acquisition), now)
        cursor = capped_cursor([item.acquired for item in by_acquisition], len(found) >= limit)
        # Dedup entries before every window the next poll searches can go: no search returns them again.
        forget_before = window_start(mark, target.backfill_start, overlap, cursor)
        published_mark, late_cursor = None, None
        if found_late is not None:
            times = [item.published for item in by_publication if item.published is not None]
            # The first search by publication time marks now: later ones go on from there.
            published_mark = advance_high_water(stored_mark or now, times, now)
            late_cursor = capped_cursor(times, len(found_late) >= limit)
            forget_before = min(
                forget_before,
                publication_window_start(published_mark, now, self.publication_overlap, late_cursor),
            )
        elif late_failed:
            # The next search by publication time starts where this one would have: keep what it finds.
            late_cursor = self._publication_cursors.get(pair)
            forget_before = min(forget_before, since)
        elif stored_mark is not None:
            # Not searched by publication time (items without one, publication_field off, an API that
            # cannot filter): should such searches come back, they start afresh, not from a mark whose
            # window the dedup set no longer covers.
            self.state.forget_publication_mark(*pair)
        recorded = self.state.mark_published(
            *pair, {item.item_id: item.last_found for item in new}, mark, forget_before, published_mark
        )
        if recorded < len(new):
            log.info(
                "source %s collection %s: %d of %d items were published concurrently elsewhere",
                source.name,
                target.collection,
                len(new) - recorded,
                len(new),
            )
        for cursors, value in ((self._cursors, cursor), (self._publication_cursors, late_cursor)):
            if value is None:
                cursors.pop(pair, None)
            else:
                cursors[pair] = value
        log.log(
            logging.INFO if new else logging.DEBUG,
            "source %s collection %s: %d acquired from %s, %s, %d new, high-water mark %s (queries %s)",
            source.name,
            target.collection,
            len(by_acquisition),
            start.isoformat(),
            "none searched by publication time"
            if found_late is None
            else f"{len(by_publication)} published from {since.isoformat()}",
            len(new),
            None if mark is None else mark.isoformat(),
            ",".join(target.query_ids),
        )
        return new

    def _search_late(
        self, source: SceneSource, target: WatchTarget, since: datetime
    ) -> tuple[list[dict] | None, bool]:
        """Items published at or after ``since`` (None when the source cannot search so), and whether
        that search failed though the acquisition-time one just worked (a filter or sort the API refuses,
        or one too slow for it): this poll then goes on by acquisition time alone and the next retries."""
        field = self.settings.publication_field
        if field is None:
            return None, False
        try:
            found = source.search_published(
                target.collection, target.intersects(), field, since, self.settings.max_items_per_poll
            )
        except SOURCE_ERRORS as error:
            log.warning(
                "source %s collection %s: search by %s failed, acquisition time only this poll: %s: %s",
                source.name,
                target.collection,
                field,
                type(error).__name__,
                error,
            )
            return None, True
        return found, False

    def _publish(self, source: str, collection: str, items: list[DatedItem], now: datetime) -> None:
        """Send one SceneMessage per item and wait until the broker acknowledged every one."""
        sent = []
        for item in items:
            message = SceneMessage(
                collection=collection, item_id=item.item_id, item=item.item, source=source, observed_at=now
            )
            future = self.producer.send(
                self.topics.scenes, key=message.key.encode(), value=message.to_bytes()
            )
            sent.append((message.key, future))
        if not sent:
            return
        self.producer.flush(timeout=self.settings.publish_timeout_s)
        for key, future in sent:
            metadata = future.get(timeout=self.settings.publish_timeout_s)
            log.info(
                "published scene %s to %s at offset %s (source %s)",
                key,
                metadata.topic,
                metadata.offset,
                source,
            )

    def _source(self, name: str) -> SceneSource:
        """The source object of a name: a default source, or the STAC API a query names."""
        source = self._sources.get(name)
        if source is None:
            source = StacApiSource(name, self.stac_settings, page_size=self.settings.page_size)
            self._sources[name] = source
        return source

    def _forget_unwatched(self, watched: set[str]) -> None:
        """Drop health and cursors of sources no active query watches any more (staleness restarts)."""
        for name in set(self._health) - watched:
            del self._health[name]
        for name in set(self._sources) - watched - {s.name for s in self.default_sources}:
            del self._sources[name]
        for memory in (self._cursors, self._publication_cursors, self._stamped):
            for pair in [pair for pair in memory if pair[0] not in watched]:
                del memory[pair]

    def status(self) -> dict[str, Any]:
        """Health per watched source (for ``/healthz``): last success, last new item, stale, failures."""
        with self._lock:
            return {
                "last_poll": None if self._last_poll is None else self._last_poll.isoformat(),
                "sources": {
                    name: health.as_dict() | {"collections": list(self._collections.get(name, []))}
                    for name, health in self._health.items()
                },
            }

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll_interval_s`` until ``stop`` is set; broker or Redis outages are logged and
        the poll is tried again (nothing was marked, so nothing is lost)."""
        log.info(
            "watcher: polling every %s s, scenes topic %s", self.settings.poll_interval_s, self.topics.scenes
        )
        while not stop.is_set():
            try:
                self.poll_once()
            except (KafkaError, redis.RedisError) as error:
                log.error("watcher: poll aborted, retrying in %s s: %r", self.settings.poll_interval_s, error)
            stop.wait(self.settings.poll_interval_s)

    def close(self) -> None:
        """Flush and close the producer and the Redis client."""
        self.producer.close(timeout=self.settings.publish_timeout_s)
        self.state.redis.close()
