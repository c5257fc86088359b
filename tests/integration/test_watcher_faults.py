"""The watcher while its STAC API fails: refused connections, HTTP 5xx, invalid or non-STAC JSON, answers
slower than the timeout, and failures on the second page of a search.

Each fault sits in a real HTTP proxy (tests.support.faulty_proxy) in front of the real pgstac API; the
watcher publishes to the real Tansu broker and keeps its state in the real Redis. Every test states the
fault and asserts the exact sequence of scene messages on the ``scenes`` topic: nothing skipped, nothing
published twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shapely.geometry import box, mapping

from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.adapters.stac_client import StacPublisher
from services.backoff import Backoff
from services.contracts import QueryCreate, RedisKeys, Topics
from services.settings import WatcherSettings
from services.store import QueryStore
from services.watcher import StacApiSource, Watcher
from services.watcher.highwater import WatchState
from tests.support.clock import Clock
from tests.support.faulty_proxy import FaultMode, FaultyProxy
from tests.support.kafka import topic_records
from tests.support.stac import make_collection, make_item

AOI = box(-84.45, 33.60, -84.40, 33.65)
INSIDE = box(-84.43, 33.61, -84.42, 33.62)
BACKOFF_S = 30.0
# The STAC client's timeout per request in these tests; a slow answer comes after SLOW_S.
TIMEOUT_S = 1.0
SLOW_S = 10.0


def _noon(day: int) -> datetime:
    return datetime(2026, 6, day, 12, tzinfo=UTC)


def _second_page(method: str, path: str, body: bytes) -> bool:
    """pgstac's next link POSTs the search again with a paging token."""
    return method == "POST" and b'"token"' in body


def _search(method: str, path: str, body: bytes) -> bool:
    return method == "POST" and path.startswith("/search")


class Feed:
    """One test's collection in pgstac, a query watching it, and a watcher that sees the API only
    through the faulty proxy."""

    def __init__(self, stack_settings, proxy: FaultyProxy, **watcher_settings: Any) -> None:
        tag = uuid.uuid4().hex[:8]
        self.collection = f"faults-{tag}"
        self.publisher = StacPublisher(stack_settings.stac.api_url)
        self.publisher.put_collection(make_collection(self.collection, [-180, -90, 180, 90], _noon(1)))
        self.topics = Topics(prefix=f"wf{tag}-")
        ensure_topics(stack_settings.kafka, [self.topics.scenes])
        self.kafka = stack_settings.kafka
        keys = RedisKeys(prefix=f"test-{tag}:")
        client = make_redis(stack_settings.redis)
        QueryStore(client, keys).create(
            QueryCreate(text="buildings", aoi=mapping(AOI), collections=[self.collection], start=_noon(1))
        )
        stac = stack_settings.stac.model_copy(update={"timeout_s": TIMEOUT_S})
        # No jitter: the test asserts exact retry times.
        backoff = Backoff(initial_s=BACKOFF_S, max_s=300, jitter_s=0)
        settings = WatcherSettings(
            **({"overlap_s": 86_400.0, "backoff": backoff, "page_size": 2} | watcher_settings)
        )
        self.source = StacApiSource(proxy.url, stac, page_size=settings.page_size)
        self.clock = Clock()
        self.watcher = Watcher(
            queries=QueryStore(client, keys),
            state=WatchState(client, keys),
            producer=make_producer(stack_settings.kafka),
            settings=settings,
            stac_settings=stac,
            default_sources=[self.source],
            topics=self.topics,
            clock=self.clock,
        )

    def add(self, *items: tuple[str, int]) -> None:
        """Publish items (id, day of June at noon) straight to pgstac, not through the proxy."""
        for item_id, day in items:
            self.publisher.add_item(make_item(item_id, self.collection, _noon(day), INSIDE))

    def keys(self, *item_ids: str) -> list[str]:
        return [f"{self.collection}/{item_id}" for item_id in item_ids]

    def status(self) -> dict[str, Any]:
        return self.watcher.status()["sources"][self.source.name]

    def topic_keys(self) -> list[str]:
        """Keys of every scene message on the scenes topic, in order."""
        records = topic_records(self.kafka.bootstrap_servers, self.topics.scenes)
        return [record.key.decode() for record in records]

    def close(self) -> None:
        self.watcher.close()
        self.publisher.close()


@pytest.fixture
def proxy(stack_settings) -> Iterator[FaultyProxy]:
    with FaultyProxy(stack_settings.stac.api_url) as proxy:
        yield proxy


@pytest.fixture
def make_feed(stack_settings, proxy):
    made: list[Feed] = []

    def make(**watcher_settings: Any) -> Feed:
        made.append(Feed(stack_settings, proxy, **watcher_settings))
        return made[-1]

    yield make
    for feed in made:
        feed.close()


FAULTS = {
    "connection refused": ({"mode": FaultMode.refuse}, "Failed to establish a new connection"),
    "HTTP 500": ({"mode": FaultMode.error, "status": 500}, "APIError"),
    "HTTP 503": ({"mode": FaultMode.error, "status": 503}, "APIError"),
    "invalid JSON": ({"mode": FaultMode.invalid_json}, "JSONDecodeError"),
    "JSON that is no STAC landing page": ({"mode": FaultMode.not_stac}, "ClientTypeError"),
    "JSON that is no search page": ({"mode": FaultMode.not_stac, "match": _search}, "StacResponseError"),
    "slower than the timeout": ({"mode": FaultMode.slow, "delay_s": SLOW_S}, "Read timed out"),
    "HTTP 503 on the second page": ({"mode": FaultMode.error, "match": _second_page}, "APIError"),
    "invalid JSON on the second page": (
        {"mode": FaultMode.invalid_json, "match": _second_page},
        "JSONDecodeError",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_watcher_backs_off_while_the_api_fails_then_catches_up_exactly(fault, make_feed, proxy):
    switch, error = FAULTS[fault]
    feed = make_feed()
    feed.add(("a1", 1), ("a2", 2))
    assert feed.watcher.poll_once().published == feed.keys("a1", "a2")

    # The fault starts; three items are published meanwhile. The window (high-water mark minus a day)
    # holds five items: three pages of two, so the second-page faults bite too.
    proxy.fail(**switch)
    feed.add(("b1", 3), ("b2", 4), ("b3", 5))
    first = feed.watcher.poll_once()
    assert first.published == []
    assert error in first.failed[feed.source.name]
    status = feed.status()
    assert (status["failing"], status["consecutive_failures"]) == (True, 1)
    assert error in status["last_error"]
    assert status["retry_at"] == (feed.clock.now + timedelta(seconds=BACKOFF_S)).isoformat()

    # Inside the backoff the API is not asked at all; past it, it is, fails again, and the wait doubles.
    asked = proxy.count()
    feed.clock.advance(BACKOFF_S / 2)
    assert feed.watcher.poll_once().backing_off == [feed.source.name]
    assert proxy.count() == asked
    feed.clock.advance(BACKOFF_S / 2)
    assert feed.source.name in feed.watcher.poll_once().failed
    status = feed.status()
    assert (status["failing"], status["consecutive_failures"]) == (True, 2)
    assert status["retry_at"] == (feed.clock.now + timedelta(seconds=2 * BACKOFF_S)).isoformat()
    if switch["mode"] is not FaultMode.refuse:  # refused connections never reach the proxy
        assert proxy.faulted()

    # The API recovers; one more item arrives. The next poll after the backoff catches up.
    proxy.heal()
    feed.add(("c1", 6))
    feed.clock.advance(2 * BACKOFF_S)
    assert feed.watcher.poll_once().published == feed.keys("b1", "b2", "b3", "c1")
    status = feed.status()
    assert (status["failing"], status["consecutive_failures"], status["last_error"]) == (False, 0, None)
    assert feed.watcher.poll_once().published == []
    assert feed.topic_keys() == feed.keys("a1", "a2", "b1", "b2", "b3", "c1")


def test_a_backlog_larger_than_one_poll_is_caught_up_in_order_over_several_polls(make_feed, proxy):
    # Fault: the API refuses connections while seven items are published; each poll takes at most
    # three. Catching up relies on sorted searches (oldest first) and the cursor of capped polls.
    feed = make_feed(max_items_per_poll=3)
    feed.add(("a1", 1))
    assert feed.watcher.poll_once().published == feed.keys("a1")
    proxy.fail(FaultMode.refuse)
    backlog = [(f"b{day}", day) for day in range(2, 9)]
    feed.add(*backlog)
    assert feed.watcher.poll_once().failed
    proxy.heal()
    feed.clock.advance(BACKOFF_S)

    polls = []
    while published := feed.watcher.poll_once().published:
        polls.append(published)
    # Each capped poll continues from its last item, which comes back once and is dropped as seen (as
    # a1 is from the first window).
    assert polls == [
        feed.keys("b2", "b3"),
        feed.keys("b4", "b5"),
        feed.keys("b6", "b7"),
        feed.keys("b8"),
    ]
    assert feed.topic_keys() == feed.keys("a1", *(item_id for item_id, _ in backlog))


def _by_publication_time(method: str, path: str, body: bytes) -> bool:
    """The search by publication time (a CQL2 filter on ``created``), not the one by acquisition time."""
    return method == "POST" and path.startswith("/search") and b'"filter"' in body


def _stamped(item_id: str, collection: str, acquired: datetime, created: datetime) -> dict[str, Any]:
    body = make_item(item_id, collection, acquired, INSIDE).to_dict()
    body["properties"]["created"] = created.isoformat().replace("+00:00", "Z")
    return body


def test_a_failing_search_by_publication_time_leaves_the_acquisition_search_working(make_feed, proxy):
    # Fault: HTTP 500 on the search by publication time only (as an API that refuses the filter, or
    # times out on it, answers); the search by acquisition time works.
    feed = make_feed()
    hour = timedelta(hours=1)
    feed.clock.now = _noon(10)
    feed.publisher.add_item(_stamped("a1", feed.collection, _noon(10) - 2 * hour, _noon(10) - hour))
    assert feed.watcher.poll_once().published == feed.keys("a1")
    state = feed.watcher.state
    assert state.publication_mark(feed.source.name, feed.collection) == _noon(10)

    proxy.fail(FaultMode.error, status=500, match=_by_publication_time)
    feed.publisher.add_item(_stamped("a2", feed.collection, _noon(11) - 2 * hour, _noon(11) - hour))
    # Acquired nine days earlier: only the search by publication time can find it.
    feed.publisher.add_item(_stamped("late", feed.collection, _noon(2), _noon(11) - hour / 2))
    feed.clock.now = _noon(11)
    summary = feed.watcher.poll_once()
    assert (summary.published, summary.failed) == (feed.keys("a2"), {})
    assert proxy.faulted()
    assert feed.status()["consecutive_failures"] == 0
    assert state.publication_mark(feed.source.name, feed.collection) == _noon(10)  # not moved

    proxy.heal()
    feed.clock.advance(60)
    assert feed.watcher.poll_once().published == feed.keys("late")
    assert feed.watcher.poll_once().published == []
    assert feed.topic_keys() == feed.keys("a1", "a2", "late")
