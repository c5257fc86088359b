"""The dispatcher against real Redis, the Tansu broker and a LocalSegmenter over the `tiny` preset.

The imagery is the real SpaceNet tile shipped by solaris (sample_geotiff.tif, EPSG:32616, 0.5 m),
stretched to 3-band RGB uint8 and written as a COG. The model has random weights, so queries use
threshold 0.0: every covered pixel is foreground, and each detection is the AOI itself (clipped), which
makes "inside the AOI" a sharp check.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pystac
import pytest
import rasterio
from shapely.geometry import mapping, shape

from danet.geo import raster_footprint_crs84
from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.backoff import Backoff
from services.contracts import ChangeStatus, QueryCreate, RedisKeys, SceneMessage, Topics
from services.dispatcher import SceneProcessor
from services.dispatcher.attempts import AttemptLedger
from services.segmenter import LocalSegmenter
from services.settings import DispatcherSettings
from services.store import DetectionStore, QueryStore
from tests.support.dispatching import dispatcher_of, running, wait_scenes_committed
from tests.support.http_files import serve_folder
from tests.support.kafka import topic_records as read_topic
from tests.support.rasters import aoi_for_pixels, write_rgb_cog
from tests.support.segmenters import tiny_segmenter

SIZE = 64
COLLECTION = "spacenet-atlanta"
MODEL = "danet-tiny@test"
# GeoJSON coordinates are rounded to 7 decimals after clipping: a vertex may move out by 5e-8.
TOLERANCE = 1e-7
AOI_ROWS, AOI_COLS = (300.5, 400.5), (500.5, 620.5)  # 50 m x 60 m of the 450 m x 450 m scene


def stac_item(cog_href: str, cog: Path, item_id: str, when: datetime, **assets: str) -> dict:
    """A STAC item of the COG (footprint from its grid) with the image under `visual` (or `assets`)."""
    with rasterio.open(cog) as ds:
        footprint = raster_footprint_crs84(ds.crs, ds.transform, (ds.height, ds.width))
    item = pystac.Item(
        id=item_id,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=when,
        properties={"eo:cloud_cover": 3.0},
        collection=COLLECTION,
    )
    for key, href in (assets or {"visual": cog_href}).items():
        item.add_asset(key, pystac.Asset(href=href, media_type=pystac.MediaType.COG, roles=["data"]))
    item.set_self_href(f"{cog.parent}/items/{item_id}.json")
    return item.to_dict()


@pytest.fixture(scope="module")
def segmenter() -> LocalSegmenter:
    return tiny_segmenter(MODEL)


@pytest.fixture(scope="module")
def cog(tmp_path_factory) -> Path:
    return write_rgb_cog(tmp_path_factory.mktemp("scenes") / "atlanta.tif")


@pytest.fixture
def env(stack_settings):
    """Unique Redis prefix, topics and consumer group; a producer and a Redis client."""
    tag = uuid.uuid4().hex[:8]
    settings = stack_settings.model_copy(
        update={
            "dispatcher": DispatcherSettings(
                group_id=f"dispatch-{tag}",
                max_retries=1,
                backoff=Backoff(initial_s=0.1, max_s=0.1, jitter_s=0),
                max_pairs_per_call=4,
                asset_schemes=["file", "http"],  # local COGs, and the Range server of the HTTP test
            )
        }
    )
    topics = Topics(prefix=f"t{tag}-")
    # Created here with one partition each: a producer that got there first would let the broker
    # auto-create the scenes topic with its default partition count.
    ensure_topics(settings.kafka, topics.all())
    client = make_redis(settings.redis)
    producer = make_producer(settings.kafka)
    keys = RedisKeys(prefix=f"test-{tag}:")
    yield SimpleNamespace(
        settings=settings,
        keys=keys,
        topics=topics,
        redis=client,
        producer=producer,
        queries=QueryStore(client, keys),
        detections=DetectionStore(client, keys),
    )
    producer.close(timeout=10)
    client.close()


def produce(env, value: bytes, key: bytes) -> None:
    env.producer.send(env.topics.scenes, key=key, value=value).get(timeout=30)


def scene_message(item: dict) -> tuple[bytes, bytes]:
    scene = SceneMessage(collection=COLLECTION, item_id=item["id"], item=item, observed_at=datetime.now(UTC))
    return scene.to_bytes(), scene.key.encode()


def topic_records(env, topic: str) -> list:
    return read_topic(env.settings.kafka.bootstrap_servers, topic)


def stream_ids(env, query_id: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in env.redis.xrange(env.keys.detection_stream(query_id))]


def test_scene_to_detections_exactly_once_then_persisting(env, segmenter, cog):
    aoi = aoi_for_pixels(cog, AOI_ROWS, AOI_COLS)
    query = env.queries.create(
        QueryCreate(text="the buildings", aoi=aoi, collections=[COLLECTION], threshold=0.0)
    )
    other = env.queries.create(
        QueryCreate(text="the buildings", aoi=aoi, collections=["elsewhere"], threshold=0.0)
    )
    first = stac_item(str(cog), cog, "atlanta-1", datetime(2024, 6, 1, 10, tzinfo=UTC))
    second = stac_item(str(cog), cog, "atlanta-2", datetime(2024, 6, 8, 10, tzinfo=UTC))

    with running(dispatcher_of(env, segmenter)) as errors:
        produce(env, *scene_message(first))
        wait_scenes_committed(env, errors, 1)
        stored = env.detections.list(query.id)
        assert stored, "threshold 0 on random weights: the whole AOI is foreground"
        area = shape(aoi).buffer(TOLERANCE)
        for detection in stored:
            assert area.contains(shape(detection.geometry))
            assert detection.change == ChangeStatus.new
            assert (detection.item_id, detection.model, detection.query_version) == ("atlanta-1", MODEL, 1)
            assert detection.acquired == datetime(2024, 6, 1, 10, tzinfo=UTC)
            assert detection.item_href == f"{cog.parent}/items/atlanta-1.json"
        ids = sorted(d.id for d in stored)
        assert sorted(stream_ids(env, query.id)) == ids
        produced = topic_records(env, env.topics.detections)
        assert {r.key for r in produced} == {query.id.encode()}
        assert sorted(json.loads(r.value)["id"] for r in produced) == ids
        assert json.loads(produced[0].value)["type"] == "Feature"
        assert env.detections.list(other.id) == []

        # Redelivery of the same scene: nothing stored, streamed or produced twice.
        produce(env, *scene_message(first))
        wait_scenes_committed(env, errors, 2)
        assert sorted(stream_ids(env, query.id)) == ids
        assert len(topic_records(env, env.topics.detections)) == len(ids)

        # The next scene of the same place: the same polygons persist.
        produce(env, *scene_message(second))
        wait_scenes_committed(env, errors, 3)
    later = [d for d in env.detections.list(query.id) if d.item_id == "atlanta-2"]
    assert later
    assert {d.change for d in later} == {ChangeStatus.persisting}
    assert sorted(stream_ids(env, query.id)) == sorted(ids + [d.id for d in later])
    assert len(topic_records(env, env.topics.detections)) == len(ids) + len(later)
    assert env.redis.keys(f"{env.keys.prefix}attempts:*") == []


def test_bad_scenes_go_to_the_dead_letter_topic_and_the_consumer_moves_on(env, segmenter, cog):
    aoi = aoi_for_pixels(cog, AOI_ROWS, AOI_COLS)
    query = env.queries.create(
        QueryCreate(text="the roads", aoi=aoi, collections=[COLLECTION], threshold=0.0)
    )
    when = datetime(2024, 6, 1, 10, tzinfo=UTC)
    no_asset = stac_item(str(cog), cog, "no-asset", when, thumbnail=str(cog))
    missing = stac_item(str(cog), cog, "missing-file", when, visual=str(cog.parent / "gone.tif"))
    good = stac_item(str(cog), cog, "good", when)

    with running(dispatcher_of(env, segmenter)) as errors:
        produce(env, b"{not json", b"garbage")
        produce(env, *scene_message(no_asset))
        produce(env, *scene_message(missing))
        produce(env, *scene_message(good))
        wait_scenes_committed(env, errors, 4)

    letters = topic_records(env, Topics.dead_letter(env.topics.scenes))
    headers = [{k: v.decode() for k, v in r.headers} for r in letters]
    assert [h["error"] for h in headers] == ["malformed_message", "no_image_asset", "asset_not_found"]
    assert [h["source_offset"] for h in headers] == ["0", "1", "2"]
    assert {h["source_topic"] for h in headers} == {env.topics.scenes}
    assert [h["attempt"] for h in headers] == ["1", "1", "1"]  # all permanent: no retry
    assert "not a SceneMessage" in headers[0]["reason"]
    assert "none of the configured asset keys without band metadata" in headers[1]["reason"]
    assert "gone.tif: No such file or directory" in headers[2]["reason"]
    assert letters[0].value == b"{not json"  # the original bytes, replayable
    assert [d.item_id for d in env.detections.list(query.id)] == ["good"]
    assert env.redis.keys(f"{env.keys.prefix}attempts:*") == []


def test_recovery_after_crashes_in_the_middle_of_a_scene(env, segmenter, cog):
    aoi = aoi_for_pixels(cog, AOI_ROWS, AOI_COLS)
    query = env.queries.create(QueryCreate(text="the cars", aoi=aoi, collections=[COLLECTION], threshold=0.0))
    when = datetime(2024, 6, 1, 10, tzinfo=UTC)
    killer, stored = stac_item(str(cog), cog, "killer", when), stac_item(str(cog), cog, "stored", when)
    # Offset 0 killed the dispatcher in each of its allowed attempts (counted when they started).
    ledger = AttemptLedger(env.redis, env.keys, env.settings.dispatcher.group_id)
    position = SimpleNamespace(topic=env.topics.scenes, partition=0, offset=0)
    for _ in range(1 + env.settings.dispatcher.max_retries):
        ledger.begin(position)
    # Offset 1 was stored by a dispatcher that died before producing it to the detections topic.
    processor = SceneProcessor.from_settings(segmenter, env.detections, env.settings.dispatcher)
    (result,) = processor.process(SceneMessage.from_bytes(scene_message(stored)[0]), stored, [query]).results
    assert result.written

    with running(dispatcher_of(env, segmenter)) as errors:
        produce(env, *scene_message(killer))
        produce(env, *scene_message(stored))
        wait_scenes_committed(env, errors, 2)

    (letter,) = topic_records(env, Topics.dead_letter(env.topics.scenes))
    headers = {k: v.decode() for k, v in letter.headers}
    assert (headers["error"], headers["attempt"]) == ("retries_exhausted", "2")
    assert "the dispatcher stopped during the attempt" in headers["reason"]
    produced = [json.loads(r.value)["id"] for r in topic_records(env, env.topics.detections)]
    assert produced == [d.id for d in result.detections]
    assert stream_ids(env, query.id) == produced
    assert [d.item_id for d in env.detections.list(query.id)] == ["stored"]


def test_small_aoi_over_http_reads_a_small_share_of_the_cog(env, segmenter, cog, tmp_path):
    # Each measurement reads its own copy: GDAL caches ranges per URL for the whole process.
    for name in ("one.tif", "two.tif"):
        shutil.copy(cog, tmp_path / name)
    size = cog.stat().st_size
    aoi = aoi_for_pixels(cog, AOI_ROWS, AOI_COLS)
    shifted = aoi_for_pixels(cog, AOI_ROWS, (AOI_COLS[0] + 40, AOI_COLS[1] + 40))
    query = env.queries.create(
        QueryCreate(text="the buildings", aoi=aoi, collections=[COLLECTION], threshold=0.0)
    )
    neighbour = env.queries.create(
        QueryCreate(text="the trees", aoi=shifted, collections=[COLLECTION], threshold=0.0)
    )
    processor = SceneProcessor.from_settings(segmenter, env.detections, env.settings.dispatcher)
    when = datetime(2024, 6, 1, 10, tzinfo=UTC)

    with serve_folder(tmp_path) as (base, served):
        item = stac_item(f"{base}/one.tif", cog, "http-one", when)
        report = processor.process(SceneMessage.from_bytes(scene_message(item)[0]), item, [query])
        one_query = served["bytes"]
        item = stac_item(f"{base}/two.tif", cog, "http-two", when)
        both = processor.process(SceneMessage.from_bytes(scene_message(item)[0]), item, [query, neighbour])
        two_queries = served["bytes"] - one_query

    (result,) = report.results
    assert result.written
    assert result.detections
    for detection in result.detections:
        assert shape(aoi).buffer(TOLERANCE).contains(shape(detection.geometry))
    print(
        f"\nCOG {size} B (900x900x3 uint8, 256 px blocks, DEFLATE); AOI {AOI_ROWS[1] - AOI_ROWS[0]:.0f}x"
        f"{AOI_COLS[1] - AOI_COLS[0]:.0f} px = {100 * 12_000 / 810_000:.1f} % of the scene\n"
        f"one query: {report.windows_read} windows, {report.pixels_read} px read "
        f"({100 * report.pixels_read / 810_000:.1f} % of the pixels), {report.pairs} pairs in "
        f"{report.segment_calls} calls; HTTP bytes {one_query} = {100 * one_query / size:.1f} % of the file\n"
        f"two overlapping queries: {both.windows_read} windows, {both.pairs} pairs; "
        f"HTTP bytes {two_queries} = {100 * two_queries / size:.1f} % of the file"
    )
    assert report.pixels_read * 3 < 0.05 * 810_000 * 3
    assert one_query < 0.3 * size
    # The neighbour's windows overlap the first query's: their blocks come from GDAL's cache.
    assert both.windows_read > report.windows_read
    assert two_queries < 1.25 * one_query
