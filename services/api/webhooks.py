"""Webhook delivery: each query's detection stream, consumed by a Redis consumer group, POSTed signed.

For every query with ``delivery.webhook_url`` the dispatcher reads the query's Redis Stream through the
consumer group ``webhook`` and POSTs each detection's GeoJSON Feature, signed per Standard Webhooks
(https://www.standardwebhooks.com, with the ``standardwebhooks`` reference library) with the headers

- ``webhook-id: <query id>:<stream entry id>`` (the same on every attempt: receivers deduplicate on it),
- ``webhook-timestamp: <Unix seconds of this attempt>``,
- ``webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">``, keyed
  with :meth:`services.contracts.Delivery.webhook_key`,
- ``X-Lookout-Query: <query id>`` (not signed; the Feature's ``properties.query_id`` is).

Each attempt is signed afresh, so a receiver that refuses timestamps outside a tolerance window (the
reference verifiers: 5 minutes) accepts late retries and refuses a captured delivery replayed later.

Before every attempt the URL is checked again (services.api.webhook_urls: http(s) only; a host not on
``allow_hosts`` must resolve to public addresses only) and the POST goes to the address just checked, so
a DNS answer changed since registration cannot point a delivery at an internal service; a refused URL
is not retried within the pass. 5xx/408/425/429 answers, timeouts and connection errors are retried
after ``backoff`` waits (services.backoff: doubling, capped, jittered) up to ``max_attempts``. An entry
is XACKed only after a 2xx, so nothing is lost: after a restart the consumer first re-reads its own
pending entries (XREADGROUP ``0``), and entries that failed every attempt -- or that a crashed consumer
held -- are claimed again (XAUTOCLAIM) once idle for ``redeliver_after_s``.
Each failed delivery is recorded in ``RedisKeys.webhook_failures(query_id)`` and counted in metrics.
Delivery is at-least-once; ``webhook-id`` makes it idempotent for the receiver.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pydantic
import redis
from standardwebhooks import Webhook

from services.adapters.redis_client import make_redis
from services.api.geojson import GEOJSON
from services.api.metrics import ApiMetrics
from services.api.webhook_urls import WebhookUrlPolicy, WebhookUrlRefusedError
from services.contracts import Detection, Query, RedisKeys
from services.settings import LookoutSettings, WebhookSettings
from services.store import QueryStore

log = logging.getLogger(__name__)

WEBHOOK_GROUP = "webhook"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
QUERY_HEADER = "X-Lookout-Query"
READ_COUNT = 100
FAILURES_MAXLEN = 10_000
_RETRYABLE_STATUS = frozenset({408, 425, 429})

Entry = tuple[bytes, dict[bytes, bytes] | None]


def _stream_order(entry_id: bytes) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.split(b"-"))


def delivery_id(query_id: str, entry_id: str) -> str:
    """The ``webhook-id`` of one detection: unique across queries (stream entry ids are per stream)."""
    return f"{query_id}:{entry_id}"


def signed_headers(key: bytes, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: ``msg_id`` and ``body`` signed at ``now``."""
    timestamp = now.astimezone(UTC)  # the library reads the datetime as UTC
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(math.floor(timestamp.timestamp())),
        SIGNATURE_HEADER: Webhook(key).sign(msg_id, timestamp, body.decode()),
    }


def is_retryable_status(status: int) -> bool:
    """Server errors and "try later" answers are retried; other non-2xx answers are not."""
    return status >= 500 or status in _RETRYABLE_STATUS


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one POST."""

    delivered: bool
    retryable: bool
    reason: str  # metric label: "status", "timeout", "connection" or "refused"
    detail: str


@dataclass(frozen=True)
class PassReport:
    """What one :meth:`WebhookDispatcher.run_once` pass did."""

    delivered: int = 0
    failed: int = 0


class WebhookDispatcher:
    """Delivers every webhook query's detections, once acknowledged by a 2xx, with retries."""

    def __init__(
        self,
        client: redis.Redis,
        settings: WebhookSettings,
        *,
        keys: RedisKeys | None = None,
        metrics: ApiMetrics | None = None,
        http: httpx.Client | None = None,
        consumer: str | None = None,
        group: str = WEBHOOK_GROUP,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.redis = client
        self.settings = settings
        self.keys = keys or RedisKeys()
        self.queries = QueryStore(client, self.keys)
        self.metrics = metrics or ApiMetrics()
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=settings.timeout_s)
        self.urls = WebhookUrlPolicy(settings.allow_hosts)
        # A stable name (the host) lets a restarted dispatcher find its own pending entries at once.
        self.consumer = consumer or socket.gethostname()
        self.group = group
        self.clock = clock or (lambda: datetime.now(UTC))
        self._recovered: set[str] = set()
        self._owns_redis = False

    @classmethod
    def from_settings(
        cls, settings: LookoutSettings, *, keys: RedisKeys | None = None, metrics: ApiMetrics | None = None
    ) -> WebhookDispatcher:
        """A dispatcher over its own client of ``settings.redis`` (closed by :meth:`close`); ``metrics``
        can be shared with the API's app."""
        layout = keys or settings.redis_keys()
        dispatcher = cls(make_redis(settings.redis), settings.api.webhook, keys=layout, metrics=metrics)
        dispatcher._owns_redis = True
        return dispatcher

    def run(self, stop_event: threading.Event) -> None:
        """Deliver until ``stop_event`` is set; Redis outages are logged and waited out."""
        log.info("webhook dispatcher %s (group %s) started", self.consumer, self.group)
        while not stop_event.is_set():
            try:
                self.run_once(block_s=self.settings.poll_interval_s, stop_event=stop_event)
            except redis.RedisError as exc:
                log.warning(
                    "webhook dispatcher: Redis error, retrying in %ss: %s", self.settings.poll_interval_s, exc
                )
                stop_event.wait(self.settings.poll_interval_s)
        log.info("webhook dispatcher %s stopped", self.consumer)

    def run_once(
        self, *, block_s: float | None = None, stop_event: threading.Event | None = None
    ) -> PassReport:
        """One pass: pending entries due again, then new ones (waiting up to ``block_s`` for them)."""
        stop = stop_event or threading.Event()
        # Only webhook queries; the Delivery contract guarantees a secret with every webhook URL.
        streams = {self.keys.detection_stream(q.id): q for q in self.queries.list() if q.delivery.webhook_url}
        if not streams:
            if block_s:
                stop.wait(block_s)
            return PassReport()
        for stream in streams:
            self._ensure_group(stream)
        work: list[tuple[str, Entry]] = []
        for stream in streams:
            work += [(stream, entry) for entry in self._pending(stream)]
        block_ms = int(block_s * 1000) if block_s and not work else None
        answer = self.redis.xreadgroup(
            self.group, self.consumer, dict.fromkeys(streams, ">"), count=READ_COUNT, block=block_ms
        )
        for raw_stream, entries in answer or []:
            work += [(raw_stream.decode(), entry) for entry in entries]
        delivered = failed = 0
        for stream, (raw_id, fields) in work:
            if stop.is_set():
                break  # what is left stays pending and is redelivered
            if self._deliver(streams[stream], stream, raw_id.decode(), fields, stop):
                delivered += 1
            else:
                failed += 1
        return PassReport(delivered, failed)

    def close(self) -> None:
        """Close the HTTP and Redis clients this dispatcher made."""
        if self._owns_http:
            self.http.close()
        if self._owns_redis:
            self.redis.close()

    def _ensure_group(self, stream: str) -> None:
        # Checked every pass (not cached): a stream key that was deleted takes its group with it.
        try:
            # From the start of the stream: a query's detections written before the dispatcher first saw
            # its webhook are delivered too.
            self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _pending(self, stream: str) -> list[Entry]:
        """Entries to deliver again: on first sight of a stream this consumer's own pending ones (it
        restarted), and any consumer's entries idle for ``redeliver_after_s`` (failed deliveries,
        crashed consumers)."""
        entries: dict[bytes, Entry] = {}
        if stream not in self._recovered:
            after = "0"
            while page := self._own_pending(stream, after):
                entries |= {entry[0]: entry for entry in page}
                after = page[-1][0].decode()
            self._recovered.add(stream)
        cursor = "0-0"
        while True:
            cursor_raw, page, *_deleted = self.redis.xautoclaim(
                stream,
                self.group,
                self.consumer,
                min_idle_time=int(self.settings.redeliver_after_s * 1000),
                start_id=cursor,
                count=READ_COUNT,
            )
            entries |= {entry[0]: entry for entry in page}
            cursor = cursor_raw.decode()
            if cursor == "0-0":
                return sorted(entries.values(), key=lambda entry: _stream_order(entry[0]))

    def _own_pending(self, stream: str, after: str) -> list[Entry]:
        answer = self.redis.xreadgroup(self.group, self.consumer, {stream: after}, count=READ_COUNT)
        return answer[0][1] if answer else []

    def _deliver(
        self,
        query: Query,
        stream: str,
        entry_id: str,
        fields: dict[bytes, bytes] | None,
        stop: threading.Event,
    ) -> bool:
        """POST one entry with retries; True (and XACK) on a 2xx."""
        try:
            detection = Detection.model_validate_json((fields or {})[b"feature"])
        except (KeyError, pydantic.ValidationError) as exc:
            # Trimmed from the stream or not a detection: it can never be delivered, so do not retry it.
            detail = "trimmed from the stream" if not fields else f"not a detection: {exc}"
            self._record_failure(query, entry_id, 0, "invalid", detail)
            self.redis.xack(stream, self.group, entry_id)
            return False
        url = str(query.delivery.webhook_url)
        key = query.delivery.webhook_key()
        body = detection.feature_json()
        msg_id = delivery_id(query.id, entry_id)
        headers = {"Content-Type": GEOJSON, QUERY_HEADER: query.id}
        attempt = 0
        while True:
            attempt += 1
            result = self._post(url, body, headers | signed_headers(key, msg_id, body, self.clock()))
            if result.delivered:
                self.redis.xack(stream, self.group, entry_id)
                self.metrics.webhook_deliveries.inc()
                log.info("query %s: delivered %s to %s (attempt %d)", query.id, entry_id, url, attempt)
                return True
            if not result.retryable or attempt >= self.settings.max_attempts:
                break
            delay = self.settings.backoff.delay(attempt)
            self.metrics.webhook_retries.labels(result.reason).inc()
            log.info(
                "query %s: delivery %s to %s failed (%s); retry in %.2fs",
                query.id,
                entry_id,
                url,
                result.detail,
                delay,
            )
            if stop.wait(delay):
                break  # stopping: the entry stays pending
        self._record_failure(query, entry_id, attempt, result.reason, result.detail)
        return False

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        """One attempt: check the URL, then POST to its checked addresses in turn until one connects."""
        try:
            target = self.urls.check(url)
        except WebhookUrlRefusedError as exc:
            reason = "connection" if exc.transient else "refused"
            return AttemptResult(False, exc.transient, reason, str(exc))
        result = AttemptResult(False, True, "connection", f"{target.host} has no address")
        for address in target.addresses:
            pinned_url, host_header, extensions = target.pinned(address)
            try:
                response = self.http.post(
                    pinned_url, content=body, headers=headers | host_header, extensions=extensions
                )
            except httpx.ConnectError as exc:
                result = AttemptResult(False, True, "connection", f"{address}: {type(exc).__name__}: {exc}")
                continue  # the host's next address
            except httpx.TimeoutException as exc:
                return AttemptResult(False, True, "timeout", f"timeout: {exc}")
            except httpx.TransportError as exc:
                return AttemptResult(False, True, "connection", f"{type(exc).__name__}: {exc}")
            if response.is_success:
                return AttemptResult(True, False, "status", f"HTTP {response.status_code}")
            status = response.status_code
            return AttemptResult(False, is_retryable_status(status), "status", f"HTTP {status}")
        return result

    def _record_failure(self, query: Query, entry_id: str, attempts: int, reason: str, detail: str) -> None:
        record: dict[str, Any] = {"entry": entry_id, "attempts": attempts, "reason": reason, "detail": detail}
        self.redis.xadd(
            self.keys.webhook_failures(query.id), record, maxlen=FAILURES_MAXLEN, approximate=True
        )
        self.metrics.webhook_failures.labels(reason).inc()
        log.warning(
            "query %s: delivery %s failed after %d attempt(s): %s", query.id, entry_id, attempts, detail
        )
