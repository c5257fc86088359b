"""The dispatcher's Kafka loop: scenes in; detections stored, produced, and only then the offset committed.

Delivery is at-least-once with idempotent effects. For each record, in partition order:

1. parse the SceneMessage; a malformed one goes to the dead-letter topic at once and is committed;
2. count the attempt in Redis (`AttemptLedger`); past ``1 + max_retries`` attempts the record goes to the
   dead-letter topic with the last error (this also catches scenes that kill the process);
3. match the active queries; decide the scene's input for the served model (`choose_scene_input`; a
   refusal is a permanent failure, see below); segment, store (`DetectionStore.write_scene`: once per
   query version, scene and model), produce the not-yet-published detections to the detections topic
   and flush;
4. commit offset + 1 of that partition.

A failure in 3 is retried: the partition is rewound to the record (``seek``) after a backoff, so later
records of that partition wait and per-item order holds; a permanent failure (an asset that 404s or is
corrupt, a URL outside the allow-list, an input the model cannot use (``not_optical``,
``gsd_out_of_range``, ``no_image_asset``), invalid item, over the pixel budget: see
`services.scenes.failures`) goes to the dead-letter topic at once. Every dead letter is counted by code
(``/metrics``), and one that had matched queries is noted on each of them with its reason
(``GET /queries/{id}``: ``skipped``). Scenes that match no query are neither read nor refused. A crash
anywhere before 4 means the scene is redelivered: stored results are found and not recomputed,
unpublished ones are produced (see `services.dispatcher.publisher` for the one residual duplicate window
on the detections topic). Redis
being unavailable (at any step) is an outage, not the scene's failure: nothing is committed or
dead-lettered, and the record is tried again after a growing pause until Redis answers. If other
bookkeeping fails (a dead-letter produce), the error ends :meth:`run` without a commit, and the record
is redelivered once a dispatcher runs again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from services.adapters.kafka_client import ensure_topics, make_consumer, make_producer
from services.adapters.redis_client import make_redis
from services.contracts import Query, RedisKeys, SceneMessage, SkippedScene, Topics
from services.dispatcher.attempts import AttemptLedger
from services.dispatcher.dlq import DeadLetterPublisher
from services.dispatcher.matching import matching_queries, scene_facts
from services.dispatcher.publisher import DetectionPublisher
from services.dispatcher.scene_processor import SceneProcessor, SceneReport
from services.scenes import PermanentSceneError, load_item
from services.segmenter import Segmenter
from services.settings import LookoutSettings
from services.store import DetectionStore, QueryStore, SkippedSceneStore

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What became of one record."""

    processed = "processed"
    dead_lettered = "dead_lettered"
    retry = "retry"


@dataclass(frozen=True)
class RecordOutcome:
    """The outcome of one record, the attempt it was, and the scene report when it was processed."""

    outcome: Outcome
    attempt: int
    report: SceneReport | None = None


def _where(record: ConsumerRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


class Dispatcher:
    """Consumes the scenes topic with a consumer group and dispatches each scene to the segmenter.

    Clients not given are made from `settings` and closed by :meth:`close`.
    """

    def __init__(
        self,
        settings: LookoutSettings,
        segmenter: Segmenter,
        *,
        redis_client: redis.Redis | None = None,
        keys: RedisKeys | None = None,
        topics: Topics | None = None,
        producer: KafkaProducer | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.dispatcher
        self.segmenter = segmenter
        self.topics = topics or settings.topics()
        self._owned_redis = redis_client is None
        self._owned_producer = producer is None
        self.redis = redis_client if redis_client is not None else make_redis(settings.redis)
        self.producer = producer if producer is not None else make_producer(settings.kafka)
        keys = keys or settings.redis_keys()
        retention = settings.store.detection_retention()
        self.queries = QueryStore(self.redis, keys)
        self.processor = SceneProcessor.from_settings(
            segmenter,
            DetectionStore(self.redis, keys, retention=retention),
            self.config,
            settings.watcher.source_list(),
        )
        self.skipped = SkippedSceneStore(self.redis, keys)
        self.publisher = DetectionPublisher(
            self.producer, self.topics.detections, self.redis, keys, retention=retention
        )
        self.dead_letters = DeadLetterPublisher(self.producer)
        self.attempts = AttemptLedger(self.redis, keys, self.config.group_id)
        self._store_outages = 0  # consecutive records that met Redis down (for the pause before the next try)

    def run(self, stop_event: threading.Event) -> None:
        """Consume until `stop_event` is set (checked between records and polls, not inside a scene)."""
        kafka = self.settings.kafka
        scenes = self.topics.scenes
        ensure_topics(kafka, [scenes, self.topics.detections, Topics.dead_letter(scenes)])
        consumer = make_consumer(kafka, scenes, group_id=self.config.group_id)
        log.info(
            "dispatcher %s consuming %s (model %s)", self.config.group_id, scenes, self.segmenter.model_name
        )
        try:
            while not stop_event.is_set():
                polled = consumer.poll(timeout_ms=self.config.poll_timeout_ms)
                for partition, records in polled.items():
                    self._consume_partition(consumer, partition, records, stop_event)
        finally:
            consumer.close(autocommit=False)
            log.info("dispatcher %s stopped", self.config.group_id)

    def _consume_partition(
        self,
        consumer: KafkaConsumer,
        partition: TopicPartition,
        records: list[ConsumerRecord],
        stop_event: threading.Event,
    ) -> None:
        for record in records:
            # After a rebalance took the partition away, its new owner processes the rest.
            if stop_event.is_set() or partition not in consumer.assignment():
                return
            try:
                result = self.process_record(record)
            except redis.RedisError as exc:
                # The store is down, not the scene at fault: no commit, no dead letter; the same record
                # is tried again after a growing pause until Redis answers.
                self._store_outages += 1
                pause = self.config.backoff.delay(self._store_outages)
                log.warning(
                    "%s: Redis unavailable (%s: %s); not committed, trying again in %.1f s",
                    _where(record), type(exc).__name__, exc, pause,
                )  # fmt: skip
                consumer.seek(partition, record.offset)
                stop_event.wait(pause)
                return
            self._store_outages = 0
            if result.outcome is Outcome.retry:
                consumer.seek(partition, record.offset)
                stop_event.wait(self.config.backoff.delay(result.attempt))
                return
            try:
                consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "", -1)})
            except CommitFailedError as exc:
                # The group rebalanced meanwhile: the new owner redelivers the record; effects are idempotent.
                log.warning("%s: commit refused (%s); the record will be redelivered", _where(record), exc)
                return

    def process_record(self, record: ConsumerRecord) -> RecordOutcome:
        """Process one scenes record to a final outcome (processed, dead-lettered) or to a retry.

        Raises:
            redis.RedisError: Redis is unavailable; the record's outcome is undecided.
        """
        where = _where(record)
        try:
            scene = SceneMessage.from_bytes(record.value or b"")
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "value"
            reason = f"not a SceneMessage: {exc.error_count()} error(s); {field}: {first['msg']}"
            self.dead_letters.send(record, error="malformed_message", reason=reason, attempt=1)
            return RecordOutcome(Outcome.dead_lettered, 1)

        attempt = self.attempts.begin(record)
        limit = 1 + self.config.max_retries
        if attempt > limit:
            last = (
                self.attempts.last_error(record)
                or "the dispatcher stopped during the attempt (crash or kill)"
            )
            reason = f"scene {scene.key}: gave up after {limit} attempts; last error: {last}"
            return self._dead_letter(record, "retries_exhausted", reason, attempt - 1)
        log.info("%s: scene %s: attempt %d", where, scene.key, attempt)
        queries: list[Query] = []
        try:
            item = self._item(scene)
            queries = self._matching(scene, item)
            report = self._process(scene, item, queries, where)
        except PermanentSceneError as exc:
            return self._dead_letter(record, exc.code, f"scene {scene.key}: {exc}", attempt, scene, queries)
        except redis.RedisError:
            raise  # an outage of the store, handled by the consumer loop; not the scene's failure
        except Exception as exc:  # one scene's failure of any kind is retried, then dead-lettered
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s: scene %s: attempt %d failed: %s", where, scene.key, attempt, error, exc_info=True
            )
            if attempt >= limit:
                reason = f"scene {scene.key}: failed {attempt} attempts; last error: {error}"
                return self._dead_letter(record, "retries_exhausted", reason, attempt, scene, queries)
            self.attempts.fail(record, error)
            return RecordOutcome(Outcome.retry, attempt)
        self.attempts.clear(record)
        return RecordOutcome(Outcome.processed, attempt, report)

    def _item(self, scene: SceneMessage) -> dict:
        """The scene's STAC item, read with its source's API headers when the message holds only its href."""
        access = self.processor.inputs.access(source=scene.source, item_href=str(scene.href or ""))
        headers = access.item_headers(str(scene.href)) if scene.href is not None else None
        return load_item(
            scene, self.processor.inputs.policy, timeout_s=self.config.asset_timeout_s, headers=headers
        )

    def _matching(self, scene: SceneMessage, item: dict) -> list[Query]:
        """The active queries the scene concerns (before any decision on its input: a scene no query
        wants is neither read nor refused)."""
        try:
            facts = scene_facts(scene.collection, item, scene.source)
        except ValueError as exc:
            raise PermanentSceneError("invalid_item", str(exc)) from exc
        return matching_queries(self.queries.active(), facts, self.segmenter.model_name)

    def _process(self, scene: SceneMessage, item: dict, queries: list[Query], where: str) -> SceneReport:
        model = self.segmenter.model_name
        if not queries:
            log.info("%s: scene %s matches no active query", where, scene.key)
            return SceneReport(())
        report = self.processor.process(scene, item, queries)
        produced = self.publisher.publish(scene.collection, scene.item_id, model, report.results)
        log.info(
            "%s: scene %s: queries %s: %s; %d windows (%d px) read, %d without valid pixels; %d pairs "
            "in %d segmenter calls, %d detections stored, %d produced",
            where,
            scene.key,
            [q.id for q in queries],
            report.bands,
            report.windows_read,
            report.pixels_read,
            report.nodata_windows,
            report.pairs,
            report.segment_calls,
            sum(len(r.detections) for r in report.results if r.written),
            produced,
        )
        return report

    def _dead_letter(
        self,
        record: ConsumerRecord,
        error: str,
        reason: str,
        attempt: int,
        scene: SceneMessage | None = None,
        queries: list[Query] | None = None,
    ) -> RecordOutcome:
        """Send the record to the dead-letter topic, count it by code, and note the scene as skipped on
        the queries it matched (`queries`; none when it failed before matching)."""
        self.dead_letters.send(record, error=error, reason=reason, attempt=attempt)
        self.skipped.count_dead_letter(error)
        if scene is not None and queries:
            skipped = SkippedScene(
                collection=scene.collection,
                item_id=scene.item_id,
                code=error,
                reason=reason,
                at=datetime.now(UTC),
            )
            self.skipped.record([q.id for q in queries], skipped)
        self.attempts.clear(record)
        return RecordOutcome(Outcome.dead_lettered, attempt)

    def close(self) -> None:
        """Close the clients this dispatcher made."""
        if self._owned_producer:
            self.producer.close(timeout=10)
        if self._owned_redis:
            self.redis.close()
