"""Webhook delivery against a real Redis and a real HTTP receiver on 127.0.0.1, which verifies every
delivery with the Standard Webhooks reference library, as a receiver would (not with Lookout's code)."""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.api import WebhookDispatcher, create_app
from services.api.metrics import ApiMetrics
from services.api.webhooks import WEBHOOK_GROUP
from services.backoff import Backoff
from services.contracts import QueryCreate
from services.settings import WebhookSettings
from services.store import QueryStore
from tests.support.detections import make_detection, write_detections
from tests.support.http_server import BackgroundHttpServer

# A secret in the Standard Webhooks form (the spec's example), so the receiver passes it as it is.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}
# The receivers listen on loopback, which only an allow-listed host may reach.
FAST = WebhookSettings(
    max_attempts=3,
    backoff=Backoff(initial_s=0.01, max_s=0.02, jitter_s=0.01),
    timeout_s=30,  # generous: the receivers answer at once, but a loaded 2-core machine is slow
    allow_hosts=["127.0.0.1"],
)


class Receiver(BackgroundHttpServer):
    """A webhook endpoint that verifies signatures; it can fail the first attempt of each delivery."""

    def __init__(self, *, fail_first: bool = False, always_fail: bool = False) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.attempts: Counter[str] = Counter()
        self.delivered: list[tuple[str, str, dict]] = []  # (webhook-id, query id, feature)
        self.refused: list[str] = []  # why the verifier refused a request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    feature = Webhook(SECRET).verify(body, dict(self.headers))
                except WebhookVerificationError as exc:
                    receiver.refused.append(str(exc))
                    self.send_response(401)
                else:
                    delivery = self.headers["webhook-id"]
                    receiver.attempts[delivery] += 1
                    failing = receiver.always_fail or (
                        receiver.fail_first and receiver.attempts[delivery] == 1
                    )
                    if not failing:
                        receiver.delivered.append((delivery, self.headers["X-Lookout-Query"], feature))
                    self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/lookout"


def _square(lon: float, lat: float, size: float = 0.005) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _query_with_detections(redis_client, keys, url: str, count: int = 2):
    query = QueryStore(redis_client, keys).create(
        QueryCreate(
            text="ships in the harbour",
            aoi=SQUARE,
            collections=["s2"],
            delivery={"webhook_url": url, "webhook_secret": SECRET},
        )
    )
    geometries = [_square(10.01 + i / 100, 50.01) for i in range(count)]
    detections = [
        make_detection(
            query,
            "s2",
            "item-1",
            g,
            acquired=datetime(2026, 5, 1, tzinfo=UTC),
            score=0.9,
            score_max=0.99,
            area_m2=50.0,
            pixel_count=3,
        )
        for g in geometries
    ]
    write_detections(redis_client, keys, query, "s2", "item-1", detections)
    return query, detections


def _pending(redis_client, keys, query) -> int:
    return redis_client.xpending(keys.detection_stream(query.id), WEBHOOK_GROUP)["pending"]


def test_each_detection_is_delivered_once_after_a_retry(stack_settings, redis_client, keys):
    metrics = ApiMetrics()
    with Receiver(fail_first=True) as receiver:
        query, detections = _query_with_detections(redis_client, keys, receiver.url)
        dispatcher = WebhookDispatcher(redis_client, FAST, keys=keys, metrics=metrics, consumer="api-1")
        try:
            report = dispatcher.run_once()
            again = dispatcher.run_once()
        finally:
            dispatcher.close()

    assert (report.delivered, report.failed) == (2, 0)
    assert (again.delivered, again.failed) == (0, 0)
    assert receiver.refused == []
    entry_ids = [f"{query.id}:{i.decode()}" for i, _ in redis_client.xrange(keys.detection_stream(query.id))]
    assert [d for d, _, _ in receiver.delivered] == entry_ids
    assert [f["id"] for _, _, f in receiver.delivered] == [d.id for d in detections]
    assert {q for _, q, _ in receiver.delivered} == {query.id}
    assert receiver.delivered[0][2] == detections[0].to_feature()
    assert dict(receiver.attempts) == dict.fromkeys(entry_ids, 2)
    assert _pending(redis_client, keys, query) == 0

    with TestClient(create_app(stack_settings, redis_client=redis_client, keys=keys, metrics=metrics)) as api:
        text = api.get("/metrics").text
    assert "lookout_webhook_deliveries_total 2.0" in text
    assert 'lookout_webhook_retries_total{reason="status"} 2.0' in text


def test_a_delivery_replayed_after_the_tolerance_window_is_refused_by_the_verifier(redis_client, keys):
    # A dispatcher whose clock is 6 minutes behind sends what a delivery captured 6 minutes ago and
    # replayed now looks like: a valid signature over an old timestamp.
    captured_at = datetime.now(UTC) - timedelta(minutes=6)
    with Receiver() as receiver:
        query, _ = _query_with_detections(redis_client, keys, receiver.url, count=1)
        replayer = WebhookDispatcher(
            redis_client, FAST, keys=keys, consumer="api-1", clock=lambda: captured_at
        )
        try:
            report = replayer.run_once()
        finally:
            replayer.close()
    assert (report.delivered, report.failed) == (0, 1)
    assert receiver.refused == ["Message timestamp too old"]  # a 401 is final: one attempt
    assert receiver.delivered == []
    failures = [f for _, f in redis_client.xrange(keys.webhook_failures(query.id))]
    assert [(f[b"reason"], f[b"detail"]) for f in failures] == [(b"status", b"HTTP 401")]
    assert _pending(redis_client, keys, query) == 1


def test_failed_deliveries_stay_pending_and_are_redelivered_after_a_restart(redis_client, keys):
    with Receiver(always_fail=True) as receiver:
        query, detections = _query_with_detections(redis_client, keys, receiver.url)
        failing = WebhookDispatcher(redis_client, FAST, keys=keys, consumer="api-1")
        try:
            report = failing.run_once()
        finally:
            failing.close()
        assert (report.delivered, report.failed) == (0, 2)
        assert receiver.delivered == []
        assert sum(receiver.attempts.values()) == 2 * FAST.max_attempts
        assert _pending(redis_client, keys, query) == 2
        failures = [f for _, f in redis_client.xrange(keys.webhook_failures(query.id))]
        assert [(f[b"attempts"], f[b"reason"], f[b"detail"]) for f in failures] == [
            (b"3", b"status", b"HTTP 500")
        ] * 2

        receiver.always_fail = False
        restarted = WebhookDispatcher(redis_client, FAST, keys=keys, consumer="api-1")  # the same consumer
        try:
            report = restarted.run_once()
        finally:
            restarted.close()
    assert (report.delivered, report.failed) == (2, 0)
    assert [f["id"] for _, _, f in receiver.delivered] == [d.id for d in detections]
    assert _pending(redis_client, keys, query) == 0


def test_another_consumer_claims_what_a_crashed_one_held(redis_client, keys):
    with Receiver() as receiver:
        query, detections = _query_with_detections(redis_client, keys, receiver.url)
        stream = keys.detection_stream(query.id)
        redis_client.xgroup_create(stream, WEBHOOK_GROUP, id="0")
        # A consumer reads both entries and dies before delivering them.
        assert len(redis_client.xreadgroup(WEBHOOK_GROUP, "crashed", {stream: ">"})[0][1]) == 2
        survivor_settings = FAST.model_copy(update={"redeliver_after_s": 0.001})
        survivor = WebhookDispatcher(redis_client, survivor_settings, keys=keys, consumer="api-2")
        try:
            report = survivor.run_once()
        finally:
            survivor.close()
    assert (report.delivered, report.failed) == (2, 0)
    assert [f["id"] for _, _, f in receiver.delivered] == [d.id for d in detections]
    assert _pending(redis_client, keys, query) == 0


def test_run_delivers_until_stopped(redis_client, keys):
    stop = threading.Event()
    with Receiver() as receiver:
        settings = FAST.model_copy(update={"poll_interval_s": 0.05})
        dispatcher = WebhookDispatcher(redis_client, settings, keys=keys, consumer="api-1")
        worker = threading.Thread(target=dispatcher.run, args=(stop,))
        worker.start()
        try:
            query, detections = _query_with_detections(redis_client, keys, receiver.url, count=3)
            deadline = time.monotonic() + 60
            while len(receiver.delivered) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            worker.join()
            dispatcher.close()
    assert [f["id"] for _, _, f in receiver.delivered] == [d.id for d in detections]
    assert _pending(redis_client, keys, query) == 0
