"""The watcher against the real pgstac STAC API, the Tansu broker and Redis (and a static catalog)."""

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pystac
import pytest
import rasterio
from kafka.errors import KafkaError
from shapely.geometry import box, mapping

from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.adapters.stac_client import StacPublisher
from services.backoff import Backoff
from services.contracts import QueryCreate, RedisKeys, SceneMessage, Topics
from services.settings import WatcherSettings
from services.simulator import SIM_COLLECTION, SceneSimulator, sample_query_aoi
from services.store import QueryStore
from services.watcher import StacApiSource, StaticCatalogSource, Watcher
from services.watcher.highwater import WatchState
from tests.support.clock import Clock
from tests.support.faulty_proxy import FaultyProxy
from tests.support.kafka import topic_records
from tests.support.stac import make_collection, make_item

AOI = box(-84.45, 33.60, -84.40, 33.65)
INSIDE = box(-84.43, 33.61, -84.42, 33.62)
OUTSIDE = box(10.0, 50.0, 10.01, 50.01)
DAY = timedelta(days=1)
NO_JITTER_30S = Backoff(initial_s=30.0, max_s=300.0, jitter_s=0)  # exact retry times to assert on


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys(prefix=f"test-{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def topics(stack_settings) -> Topics:
    topics = Topics(prefix=f"test-{uuid.uuid4().hex[:8]}-")
    ensure_topics(stack_settings.kafka, [topics.scenes])
    return topics


@pytest.fixture
def queries(stack_settings, keys) -> Iterator[QueryStore]:
    client = make_redis(stack_settings.redis)
    yield QueryStore(client, keys)
    client.close()


@pytest.fixture
def collection(stack_settings) -> Iterator[tuple[str, StacPublisher]]:
    collection_id = f"scenes-{uuid.uuid4().hex[:8]}"
    publisher = StacPublisher(stack_settings.stac.api_url)
    publisher.put_collection(
        make_collection(collection_id, [-180, -90, 180, 90], _utc(2020, 1, 1), "watcher test scenes")
    )
    yield collection_id, publisher
    publisher.close()


def _item(item_id: str, collection_id: str, when: datetime, footprint=INSIDE) -> pystac.Item:
    return make_item(item_id, collection_id, when, footprint)


@pytest.fixture
def make_watcher(stack_settings, keys, topics):
    made: list[Watcher] = []

    def make(sources=None, clock=None, producer=None, **overrides) -> Watcher:
        defaults = {"overlap_s": DAY.total_seconds(), "backoff": NO_JITTER_30S}
        settings = WatcherSettings(**(defaults | overrides))
        client = make_redis(stack_settings.redis)
        if sources is None:
            sources = [StacApiSource(stack_settings.stac.api_url, stack_settings.stac)]
        watcher = Watcher(
            queries=QueryStore(client, keys),
            state=WatchState(client, keys),
            producer=producer or make_producer(stack_settings.kafka),
            settings=settings,
            stac_settings=stack_settings.stac,
            default_sources=sources,
            topics=topics,
            **({} if clock is None else {"clock": clock}),
        )
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.close()


def _read_topic(stack_settings, topic: str) -> list[tuple[str, SceneMessage]]:
    records = topic_records(stack_settings.kafka.bootstrap_servers, topic)
    return [(r.key.decode(), SceneMessage.from_bytes(r.value)) for r in records]


def _register(queries: QueryStore, collection_id: str, aoi=AOI, **fields):
    return queries.create(
        QueryCreate(text="buildings", aoi=mapping(aoi), collections=[collection_id], **fields)
    )


def test_a_new_item_in_the_aoi_is_published_once_and_one_outside_never(
    stack_settings, queries, collection, make_watcher, topics
):
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    publisher.add_item(_item("inside-1", collection_id, _utc(2026, 6, 1)))
    publisher.add_item(_item("outside-1", collection_id, _utc(2026, 6, 2), footprint=OUTSIDE))
    watcher = make_watcher()

    first = watcher.poll_once()
    second = watcher.poll_once()

    assert first.published == [f"{collection_id}/inside-1"]
    assert second.published == []  # dedup
    ((key, message),) = _read_topic(stack_settings, topics.scenes)
    assert key == f"{collection_id}/inside-1" == message.key
    assert (message.collection, message.item_id, message.source) == (
        collection_id,
        "inside-1",
        stack_settings.stac.api_url.rstrip("/"),
    )
    assert message.item["assets"]["visual"]["href"] == "http://127.0.0.1/scene.tif"
    assert message.item["properties"]["datetime"].startswith("2026-06-01")


def test_the_window_overlaps_the_high_water_mark_and_older_items_are_not_republished(
    stack_settings, queries, collection, make_watcher, keys
):
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    watcher = make_watcher()
    source = stack_settings.stac.api_url.rstrip("/")
    state = WatchState(watcher.state.redis, keys)

    publisher.add_item(_item("a", collection_id, _utc(2026, 6, 10)))
    assert watcher.poll_once().published == [f"{collection_id}/a"]
    assert state.high_water_mark(source, collection_id) == _utc(2026, 6, 10)

    # Published late: one inside the overlap (found), one older than hwm - overlap (out of the window).
    publisher.add_item(_item("late", collection_id, _utc(2026, 6, 9, 12)))
    publisher.add_item(_item("too-old", collection_id, _utc(2026, 6, 8)))
    assert watcher.poll_once().published == [f"{collection_id}/late"]

    # The mark moves on; "a" falls out of the window and out of the dedup set, and is not re-published.
    publisher.add_item(_item("b", collection_id, _utc(2026, 6, 20)))
    assert watcher.poll_once().published == [f"{collection_id}/b"]
    assert state.high_water_mark(source, collection_id) == _utc(2026, 6, 20)
    assert state.unseen(source, collection_id, ["a", "b"]) == {"a"}  # pruned, not forgotten by search
    assert watcher.poll_once().published == []


def test_backfill_from_a_query_start_picks_items_from_before_now(queries, collection, make_watcher):
    collection_id, publisher = collection
    now = datetime.now(UTC)
    publisher.add_item(_item("last-month", collection_id, now - 30 * DAY))
    watcher = make_watcher()

    _register(queries, collection_id)  # no start: scenes from now on (minus the overlap)
    assert watcher.poll_once().published == []

    _register(queries, collection_id, start=now - 60 * DAY)
    assert watcher.poll_once().published == [f"{collection_id}/last-month"]


def test_items_are_marked_seen_only_after_the_broker_took_them(
    stack_settings, queries, collection, make_watcher, keys, topics
):
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    publisher.add_item(_item("x", collection_id, _utc(2026, 6, 1)))
    # A real refusal: the producer rejects a record larger than its max_request_size.
    refusing = make_watcher(producer=make_producer(stack_settings.kafka, max_request_size=256))

    with pytest.raises(KafkaError):
        refusing.poll_once()
    source = stack_settings.stac.api_url.rstrip("/")
    assert refusing.state.high_water_mark(source, collection_id) is None
    assert refusing.state.unseen(source, collection_id, ["x"]) == {"x"}

    assert make_watcher().poll_once().published == [f"{collection_id}/x"]  # nothing was lost
    assert [key for key, _ in _read_topic(stack_settings, topics.scenes)] == [f"{collection_id}/x"]


def _refused_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refusing_stac_api_is_retried_with_backoff_and_reported_without_stopping_others(
    stack_settings, queries, collection, make_watcher, caplog
):
    collection_id, publisher = collection
    dead = _refused_url()
    _register(queries, collection_id, stac_api=dead)
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    publisher.add_item(_item("healthy-1", collection_id, _utc(2026, 6, 1)))
    clock = Clock()
    watcher = make_watcher(clock=clock, stale_after_s=300.0)
    healthy = stack_settings.stac.api_url.rstrip("/")

    first = watcher.poll_once()
    assert first.published == [f"{collection_id}/healthy-1"]
    assert "APIError" in first.failed[dead]
    status = watcher.status()["sources"]
    assert status[dead]["consecutive_failures"] == 1
    assert "APIError" in status[dead]["last_error"]
    assert status[dead]["collections"] == [collection_id]
    assert status[healthy]["consecutive_failures"] == 0
    assert status[healthy]["last_new_item"] == clock.now.isoformat()

    clock.advance(10)  # inside the 30 s backoff: not tried
    assert watcher.poll_once().backing_off == [dead]
    clock.advance(25)  # past it: tried again, fails again, the next wait doubles
    assert dead in watcher.poll_once().failed
    status = watcher.status()["sources"]
    assert status[dead]["consecutive_failures"] == 2
    assert status[dead]["retry_at"] == (clock.now + timedelta(seconds=60)).isoformat()

    # Past stale_after: the dead source is stale, the healthy one got a new item and is not.
    publisher.add_item(_item("healthy-2", collection_id, _utc(2026, 6, 2)))
    clock.advance(300)
    assert watcher.poll_once().published == [f"{collection_id}/healthy-2"]
    status = watcher.status()["sources"]
    assert (status[dead]["stale"], status[healthy]["stale"]) == (True, False)
    assert status[dead]["consecutive_failures"] == 3
    clock.advance(300)
    watcher.poll_once()
    stale_warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "STALE" in r.getMessage()]
    assert [dead in r.getMessage() for r in stale_warnings] == [True]  # once per episode


def test_simulated_scenes_in_the_static_catalog_are_published_with_readable_cog_assets(
    stack_settings, queries, make_watcher, topics, tmp_path: Path
):
    simulator = SceneSimulator(tmp_path / "catalog")
    queries.create(QueryCreate(text="all buildings", aoi=sample_query_aoi(), collections=[SIM_COLLECTION]))
    watcher = make_watcher(sources=[StaticCatalogSource(simulator.catalog_path)])

    assert watcher.poll_once().published == []  # the catalog exists but holds no scene yet
    simulator.publish_next()
    assert watcher.poll_once().published == [f"{SIM_COLLECTION}/spacenet-atlanta-1"]
    simulator.publish_next()
    assert watcher.poll_once().published == [f"{SIM_COLLECTION}/spacenet-atlanta-2"]

    messages = _read_topic(stack_settings, topics.scenes)
    assert [m.item_id for _, m in messages] == ["spacenet-atlanta-1", "spacenet-atlanta-2"]
    assert messages[0][1].source == simulator.catalog_path.as_uri()
    with rasterio.open(messages[-1][1].item["assets"]["visual"]["href"]) as dataset:
        assert (dataset.count, dataset.width, dataset.height) == (3, 900, 900)


def test_simulator_and_watcher_loops_feed_the_scenes_topic_until_stopped(
    stack_settings, queries, keys, topics, tmp_path: Path
):
    simulator = SceneSimulator(tmp_path / "catalog")
    queries.create(QueryCreate(text="all buildings", aoi=sample_query_aoi(), collections=[SIM_COLLECTION]))
    watcher_settings = WatcherSettings(sources=[str(simulator.catalog_path)], poll_interval_s=0.2)
    settings = stack_settings.model_copy(update={"watcher": watcher_settings})
    watcher = Watcher.from_settings(settings, keys=keys, topics=topics)
    stop = threading.Event()
    loops = [
        threading.Thread(target=simulator.run, args=(0.3, stop)),
        threading.Thread(target=watcher.run, args=(stop,)),
    ]
    for loop in loops:
        loop.start()
    deadline = time.monotonic() + 60
    messages = []
    while len(messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        messages = _read_topic(stack_settings, topics.scenes)
    stop.set()
    for loop in loops:
        loop.join(timeout=30)
    status = watcher.status()
    watcher.close()

    assert not any(loop.is_alive() for loop in loops)
    keys_seen = [key for key, _ in messages]
    assert keys_seen[:2] == [f"{SIM_COLLECTION}/spacenet-atlanta-1", f"{SIM_COLLECTION}/spacenet-atlanta-2"]
    assert len(set(keys_seen)) == len(keys_seen)
    source = status["sources"][simulator.catalog_path.as_uri()]
    assert (source["stale"], source["consecutive_failures"]) == (False, 0)


def _stamped(item_id: str, collection_id: str, acquired: datetime, created: datetime | None = None) -> dict:
    """An item as Earth Search serves them: with ``created``, when the catalog published it."""
    body = _item(item_id, collection_id, acquired).to_dict()
    if created is not None:
        body["properties"]["created"] = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body


def test_items_with_a_datetime_range_are_published_once_while_the_range_overlaps_the_window(
    stack_settings, queries, collection, make_watcher, topics
):
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    # A month-long range: no datetime (pgstac serves it without one), start and end instead.
    month = _stamped("june", collection_id, _utc(2026, 6, 1))
    month["properties"] |= {
        "datetime": None,
        "start_datetime": "2026-06-01T00:00:00Z",
        "end_datetime": "2026-06-30T00:00:00Z",
    }
    publisher.add_item(month)
    publisher.add_item(_item("june-10", collection_id, _utc(2026, 6, 10)))
    watcher = make_watcher()
    source = stack_settings.stac.api_url.rstrip("/")

    assert watcher.poll_once().published == [f"{collection_id}/june", f"{collection_id}/june-10"]
    assert watcher.state.high_water_mark(source, collection_id) == _utc(2026, 6, 10)

    # The window now starts on 19 June: the range still overlaps it and comes back on every poll, and
    # its dedup entry lives until its end, so it is not published again.
    publisher.add_item(_item("june-20", collection_id, _utc(2026, 6, 20)))
    assert watcher.poll_once().published == [f"{collection_id}/june-20"]
    assert watcher.poll_once().published == []
    assert watcher.state.unseen(source, collection_id, ["june"]) == set()

    # Past its end the range is neither found nor remembered.
    publisher.add_item(_item("july-5", collection_id, _utc(2026, 7, 5)))
    assert watcher.poll_once().published == [f"{collection_id}/july-5"]
    assert watcher.state.unseen(source, collection_id, ["june", "july-5"]) == {"june"}
    assert watcher.poll_once().published == []
    messages = _read_topic(stack_settings, topics.scenes)
    assert [m.item_id for _, m in messages] == ["june", "june-10", "june-20", "july-5"]
    assert messages[0][1].item["properties"]["end_datetime"] == "2026-06-30T00:00:00Z"


def test_an_item_published_late_after_newer_ones_were_seen_is_published_exactly_once(
    stack_settings, queries, collection, make_watcher, topics
):
    # Landsat on Earth Search: acquired 8 Oct, `created` 18 Oct. The acquisition window (high-water mark
    # minus a day) has long passed such an item; the search by publication time finds it.
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 6, 1))
    clock = Clock()
    clock.now = _utc(2026, 6, 20, 13)
    publisher.add_item(_stamped("fresh", collection_id, _utc(2026, 6, 20, 10), created=_utc(2026, 6, 20, 12)))
    watcher = make_watcher(clock=clock)
    source = stack_settings.stac.api_url.rstrip("/")

    assert watcher.poll_once().published == [f"{collection_id}/fresh"]
    assert watcher.state.high_water_mark(source, collection_id) == _utc(2026, 6, 20, 10)
    assert watcher.state.publication_mark(source, collection_id) == _utc(
        2026, 6, 20, 13
    )  # the first search: now

    # Published at 09:00 on 21 June, acquired ten days before; a newer item comes with it.
    late_created = _utc(2026, 6, 21, 9, 0, 0, 123_000)
    publisher.add_item(_stamped("late", collection_id, _utc(2026, 6, 10, 10), created=late_created))
    publisher.add_item(
        _stamped("newer", collection_id, _utc(2026, 6, 21, 8), created=_utc(2026, 6, 21, 9, 30))
    )
    clock.now = _utc(2026, 6, 21, 10)
    assert watcher.poll_once().published == [f"{collection_id}/late", f"{collection_id}/newer"]
    assert watcher.state.publication_mark(source, collection_id) == _utc(2026, 6, 21, 9, 30)

    # The next polls find both again (inside both windows) and drop them as seen; so does a restarted
    # watcher, which reads the marks and the dedup set from Redis.
    clock.advance(600)
    assert watcher.poll_once().published == []
    assert make_watcher(clock=clock).poll_once().published == []

    # An item published without `created` that late is not found: the acquisition window is its only
    # chance (collection_overlap_s is for such collections).
    publisher.add_item(_stamped("late-unstamped", collection_id, _utc(2026, 6, 11)))
    clock.advance(600)
    assert watcher.poll_once().published == []
    keys_seen = [key for key, _ in _read_topic(stack_settings, topics.scenes)]
    assert keys_seen == [f"{collection_id}/{item_id}" for item_id in ("fresh", "late", "newer")]


def test_a_collection_overlap_catches_late_items_that_carry_no_publication_time(
    stack_settings, queries, collection, make_watcher
):
    # Planetary Computer's NAIP: no `created`, published months after the flight.
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    publisher.add_item(_item("flown-june", collection_id, _utc(2026, 6, 20)))
    watcher = make_watcher(collection_overlap_s={collection_id: 90 * DAY.total_seconds()})
    assert watcher.poll_once().published == [f"{collection_id}/flown-june"]

    publisher.add_item(_item("flown-april", collection_id, _utc(2026, 4, 1)))  # 80 days before: found
    publisher.add_item(_item("flown-march", collection_id, _utc(2026, 3, 1)))  # 111 days before: too late
    assert watcher.poll_once().published == [f"{collection_id}/flown-april"]
    assert watcher.poll_once().published == []


def test_a_collection_without_publication_times_is_searched_by_them_only_until_its_items_show_it(
    stack_settings, queries, collection, make_watcher
):
    # Planetary Computer's items carry no `created`: once the items a poll finds by acquisition time show
    # it, the search by publication time, which would find nothing and costs the API a scan of the whole
    # collection over the AOIs (no acquisition bound, an unindexed sort), is left out.
    collection_id, publisher = collection
    _register(queries, collection_id, start=_utc(2026, 1, 1))
    with FaultyProxy(stack_settings.stac.api_url) as proxy:
        source = StacApiSource(proxy.url, stack_settings.stac)
        watcher = make_watcher(sources=[source])

        def searches_by_publication_time() -> int:
            return sum(b'"filter"' in r.body for r in proxy.requests if r.path.startswith("/search"))

        assert watcher.poll_once().published == []
        assert searches_by_publication_time() == 1  # no item yet, nothing known: searched
        assert watcher.state.publication_mark(source.name, collection_id) is not None

        publisher.add_item(_item("unstamped", collection_id, _utc(2026, 6, 1)))
        assert watcher.poll_once().published == [f"{collection_id}/unstamped"]
        assert watcher.poll_once().published == []
        assert searches_by_publication_time() == 1
        assert watcher.state.publication_mark(source.name, collection_id) is None  # starts afresh if needed

        # Items with `created` again: searched by it again.
        publisher.add_item(_stamped("stamped", collection_id, _utc(2026, 6, 2), created=datetime.now(UTC)))
        assert watcher.poll_once().published == [f"{collection_id}/stamped"]
        assert searches_by_publication_time() == 2
        assert watcher.poll_once().published == []
        assert searches_by_publication_time() == 3
