"""Bad inputs and unreadable assets through the dispatcher, against real Redis, the Tansu broker, COGs
served over HTTP (with a fault-injecting proxy in front where a fault is needed) and a LocalSegmenter
over the `tiny` preset.

Each test produces a run of scenes to its own scenes topic, lets a running dispatcher commit them all,
then asserts exactly which offsets went to the dead-letter topic (error code, attempt, reason) and
exactly which scenes produced detections. Queries use threshold 0.0 on the random model, so every valid
pixel inside the AOI is foreground: a detection is the AOI's valid part, which makes "nothing from a
masked pixel" a sharp check.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import shapely
from shapely.geometry import mapping, shape

from danet.geo import raster_footprint_crs84
from services.adapters.kafka_client import ensure_topics, make_producer
from services.adapters.redis_client import make_redis
from services.backoff import Backoff
from services.contracts import QueryCreate, RedisKeys, SceneMessage, Topics
from services.dispatcher import SceneProcessor
from services.segmenter import LocalSegmenter
from services.settings import DispatcherSettings
from services.store import DetectionStore, QueryStore
from tests.support.dispatching import dispatcher_of, running, wait_scenes_committed
from tests.support.faulty_proxy import FaultMode, FaultyProxy
from tests.support.http_files import serve_folder
from tests.support.kafka import topic_records
from tests.support.rasters import aoi_for_pixels, write_geotiff, write_rgb_cog
from tests.support.segmenters import tiny_segmenter

SIZE = 64
MODEL = "danet-tiny@bad-inputs"
COLLECTION = "spacenet-atlanta"
WIDE = "spacenet-atlanta-wide"  # watched by a query whose AOI is the whole scene
AOI_ROWS, AOI_COLS = (300.0, 350.0), (500.0, 620.0)  # 50 x 120 px of the 900 x 900 px scene
NODATA_FROM_COL = 560.0  # masked variants: columns left of this are nodata / NaN
TOLERANCE = 1e-7  # GeoJSON coordinates are rounded to 7 decimals
WHEN = datetime(2024, 6, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def segmenter() -> LocalSegmenter:
    return tiny_segmenter(MODEL)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> SimpleNamespace:
    """The SpaceNet scene as an RGB COG and as the broken and unusual variants the tests feed in."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    cog = write_rgb_cog(folder / "good.tif", blocksize=128)
    with rasterio.open(cog) as ds:
        rgb, crs, transform = ds.read(), ds.crs, ds.transform
    cols = np.arange(rgb.shape[2])[None, None, :]
    masked = np.broadcast_to(cols < NODATA_FROM_COL, rgb.shape)
    as_uint16 = rgb.astype(np.uint16) * 100 + 1  # never 0: only the masked part is nodata
    as_float = rgb.astype(np.float32)
    data = cog.read_bytes()
    (folder / "truncated.tif").write_bytes(data[: len(data) // 2])
    (folder / "garbage.tif").write_bytes(b"<html><body>503 Service Unavailable</body></html>" * 40)

    def variant(name: str, bands: np.ndarray, **profile: Any) -> Path:
        options = {"crs": crs, "transform": transform} | profile
        return write_geotiff(folder / name, bands, options.pop("crs"), options.pop("transform"), **options)

    return SimpleNamespace(
        folder=folder,
        good=cog,
        truncated=folder / "truncated.tif",
        garbage=folder / "garbage.tif",
        no_crs=variant("no-crs.tif", rgb, crs=None),
        one_band=variant("one-band.tif", rgb[:1]),
        two_bands=variant("two-bands.tif", rgb[:2]),
        # Multispectral GeoTIFFs are stored "min-is-black": a 4th band is data, not alpha.
        rgbn=variant("rgbn.tif", np.concatenate([rgb, rgb[:1]]), photometric="MINISBLACK"),
        nodata=variant("nodata.tif", np.where(masked, 0, as_uint16).astype(np.uint16), nodata=0),
        nan=variant("nan.tif", np.where(masked, np.float32(np.nan), as_float)),
        all_nodata=variant("all-nodata.tif", np.zeros_like(as_uint16), nodata=0),
    )


@pytest.fixture
def env(stack_settings):
    """Unique topics, Redis prefix and consumer group; settings made per test with `configure`."""
    tag = uuid.uuid4().hex[:8]
    topics = Topics(prefix=f"bad{tag}-")
    ensure_topics(stack_settings.kafka, topics.all())
    client = make_redis(stack_settings.redis)
    keys = RedisKeys(prefix=f"test-{tag}:")
    producer = make_producer(stack_settings.kafka)
    env = SimpleNamespace(
        tag=tag,
        topics=topics,
        keys=keys,
        redis=client,
        producer=producer,
        queries=QueryStore(client, keys),
        detections=DetectionStore(client, keys),
        settings=None,
    )

    def configure(**dispatcher: Any) -> None:
        defaults = {
            "group_id": f"bad-{tag}",
            "max_retries": 1,
            "backoff": Backoff(initial_s=0.1, max_s=0.1, jitter_s=0),
            "max_pairs_per_call": 4,
        }
        env.settings = stack_settings.model_copy(
            update={"dispatcher": DispatcherSettings(**(defaults | dispatcher))}
        )

    env.configure = configure
    yield env
    producer.close(timeout=10)
    client.close()


def stac_item(item_id: str, footprint_of: Path, collection: str = COLLECTION, **assets: str) -> dict:
    """A STAC item whose footprint is the good scene's, with the given assets (key -> href)."""
    with rasterio.open(footprint_of) as ds:
        footprint = raster_footprint_crs84(ds.crs, ds.transform, (ds.height, ds.width))
    item = pystac.Item(
        id=item_id, geometry=mapping(footprint), bbox=list(footprint.bounds), datetime=WHEN, properties={}
    )
    item.collection_id = collection
    for key, href in assets.items():
        item.add_asset(key, pystac.Asset(href=href, media_type=pystac.MediaType.COG))
    return item.to_dict()


def scene_bytes(item: dict, collection: str = COLLECTION) -> bytes:
    return SceneMessage(collection=collection, item_id=item["id"], item=item, observed_at=WHEN).to_bytes()


def produce_all(env, values: list[bytes | None]) -> None:
    """Produce the values in order (offsets 0, 1, ...), each acknowledged before the next."""
    for value in values:
        env.producer.send(env.topics.scenes, key=b"k", value=value).get(timeout=30)


def dead_letters(env) -> dict[int, dict[str, str]]:
    """Dead letters by source offset: their headers, plus the original value under ``value``."""
    records = topic_records(env.settings.kafka.bootstrap_servers, Topics.dead_letter(env.topics.scenes))
    letters = {}
    for record in records:
        headers = {key: value.decode() for key, value in record.headers}
        letters[int(headers["source_offset"])] = headers | {"value": record.value}
    assert len(letters) == len(records), "a record was dead-lettered twice"
    return letters


def outcomes(letters: dict[int, dict[str, str]]) -> dict[int, tuple[str, str]]:
    return {offset: (h["error"], h["attempt"]) for offset, h in letters.items()}


def standing_query(env, scenes, text: str):
    """A query over the test AOI of the scene at threshold 0: every covered valid pixel is foreground."""
    aoi = aoi_for_pixels(scenes.good, AOI_ROWS, AOI_COLS)
    return env.queries.create(QueryCreate(text=text, aoi=aoi, collections=[COLLECTION], threshold=0.0))


def detected_items(env, query) -> set[str]:
    return {d.item_id for d in env.detections.list(query.id)}


def test_malformed_kafka_messages_are_dead_lettered_and_the_next_scene_is_processed(env, segmenter, scenes):
    env.configure(asset_schemes=["file"])
    query = standing_query(env, scenes, "the buildings")
    good = stac_item("good", scenes.good, visual=str(scenes.good))
    valid = json.loads(scene_bytes(good))
    values = [
        b"\x00\x01 not JSON",
        None,  # a tombstone (no value)
        b"[1, 2, 3]",
        json.dumps({k: v for k, v in valid.items() if k != "item_id"}).encode(),
        json.dumps(valid | {"schema_version": 2}).encode(),
        json.dumps(valid | {"item_id": "other"}).encode(),
        json.dumps(valid | {"item": None, "href": None}).encode(),
        scene_bytes(good),
    ]
    with running(dispatcher_of(env, segmenter)) as errors:
        produce_all(env, values)
        wait_scenes_committed(env, errors, len(values))

    letters = dead_letters(env)
    assert outcomes(letters) == {offset: ("malformed_message", "1") for offset in range(7)}
    reasons = {offset: letters[offset]["reason"] for offset in letters}
    assert reasons[0].startswith("not a SceneMessage: 1 error(s); value: Invalid JSON")
    assert reasons[1].startswith("not a SceneMessage: 1 error(s); value: Invalid JSON: EOF")
    assert "value: Input should be an object" in reasons[2]
    assert "item_id: Field required" in reasons[3]
    assert "schema_version: Input should be 1" in reasons[4]
    assert "item.id 'good' differs from item_id 'other'" in reasons[5]
    assert "needs the STAC item or an href" in reasons[6]
    assert letters[0]["value"] == values[0]  # the original bytes, replayable
    assert letters[1]["value"] is None
    assert detected_items(env, query) == {"good"}
    assert env.redis.keys(f"{env.keys.prefix}attempts:*") == []


def test_unreadable_assets_go_to_the_dead_letter_topic_permanent_at_once_transient_after_retries(
    env, segmenter, scenes
):
    env.configure(asset_schemes=["file", "http"], asset_timeout_s=1.0)
    query = standing_query(env, scenes, "the roads")
    flaky_attempts = env.keys.dispatch_attempts(env.settings.dispatcher.group_id, env.topics.scenes, 0, 8)

    def during_the_first_attempt(method: str, path: str, body: bytes) -> bool:
        # The dispatcher counts an attempt in Redis when it starts one.
        return int(env.redis.hget(flaky_attempts, "count") or 0) <= 1

    with (
        serve_folder(scenes.folder) as (base, _),
        FaultyProxy(base) as gone,
        FaultyProxy(base) as failing,
        FaultyProxy(base) as slow,
        FaultyProxy(base) as flaky,
    ):
        gone.fail(FaultMode.error, status=404)
        failing.fail(FaultMode.error, status=503)
        slow.fail(FaultMode.slow, delay_s=10.0)
        flaky.fail(FaultMode.error, status=503, match=during_the_first_attempt)
        items = [
            stac_item("http-404", scenes.good, visual=f"{gone.url}/good.tif"),
            stac_item("local-missing", scenes.good, visual=str(scenes.folder / "missing.tif")),
            stac_item("local-not-a-raster", scenes.good, visual=str(scenes.garbage)),
            stac_item("http-not-a-raster", scenes.good, visual=f"{base}/garbage.tif"),
            stac_item("local-truncated", scenes.good, visual=str(scenes.truncated)),
            stac_item("http-truncated", scenes.good, visual=f"{base}/truncated.tif"),
            stac_item("http-503-always", scenes.good, visual=f"{failing.url}/good.tif"),
            stac_item("http-slow", scenes.good, visual=f"{slow.url}/good.tif"),
            stac_item("http-503-once", scenes.good, visual=f"{flaky.url}/good.tif"),  # offset 8
            stac_item("good", scenes.good, visual=f"{base}/good.tif"),
        ]
        with running(dispatcher_of(env, segmenter)) as errors:
            produce_all(env, [scene_bytes(item) for item in items])
            wait_scenes_committed(env, errors, len(items))
        # The first attempt met 503s; the retry asked the server again (GDAL does not remember the
        # failure) and read the COG.
        assert flaky.faulted()
        assert any(request.fault is FaultMode.none for request in flaky.requests)

    letters = dead_letters(env)
    assert outcomes(letters) == {
        0: ("asset_not_found", "1"),
        1: ("asset_not_found", "1"),
        2: ("corrupt_asset", "1"),
        3: ("corrupt_asset", "1"),
        4: ("corrupt_asset", "1"),
        5: ("retries_exhausted", "2"),  # max_retries=1: two attempts
        6: ("retries_exhausted", "2"),
        7: ("retries_exhausted", "2"),
    }
    reasons = {offset: letters[offset]["reason"] for offset in letters}
    assert reasons[0] == f"scene {COLLECTION}/http-404: asset {gone.url}/good.tif: HTTP 404"
    assert "missing.tif: No such file or directory" in reasons[1]
    assert "not a raster GDAL can read" in reasons[2]
    assert "not a raster GDAL can read" in reasons[3]
    assert "truncated or corrupt" in reasons[4]
    assert "a failed range request and a truncated file look the same" in reasons[5]
    assert "HTTP 503 (retried)" in reasons[6]
    assert "timed out" in reasons[7]
    assert detected_items(env, query) == {"http-503-once", "good"}
    assert env.redis.keys(f"{env.keys.prefix}attempts:*") == []


def test_items_and_rasters_the_segmenter_cannot_use_are_refused_and_masked_pixels_never_detected(
    env, segmenter, scenes
):
    env.configure(asset_schemes=["file"], max_read_pixels=200_000)
    aoi = aoi_for_pixels(scenes.good, AOI_ROWS, AOI_COLS)
    query = env.queries.create(
        QueryCreate(text="the buildings", aoi=aoi, collections=[COLLECTION], threshold=0.0)
    )
    whole_scene = aoi_for_pixels(scenes.good, (0.5, 899.5), (0.5, 899.5))
    wide = env.queries.create(
        QueryCreate(text="all buildings", aoi=whole_scene, collections=[WIDE], threshold=0.0)
    )
    items = [
        stac_item("no-asset", scenes.good, thumbnail=str(scenes.good)),
        stac_item("no-crs", scenes.good, visual=str(scenes.no_crs)),
        stac_item("two-bands", scenes.good, visual=str(scenes.two_bands)),
        stac_item("one-band", scenes.good, visual=str(scenes.one_band)),
        stac_item("rgbn", scenes.good, visual=str(scenes.rgbn)),
        stac_item("nodata", scenes.good, visual=str(scenes.nodata)),
        stac_item("nan", scenes.good, visual=str(scenes.nan)),
        stac_item("all-nodata", scenes.good, visual=str(scenes.all_nodata)),
        stac_item("over-budget", scenes.good, WIDE, visual=str(scenes.good)),
        stac_item("good", scenes.good, visual=str(scenes.good)),
    ]
    with running(dispatcher_of(env, segmenter)) as errors:
        produce_all(env, [scene_bytes(item, item["collection"]) for item in items])
        wait_scenes_committed(env, errors, len(items))

    letters = dead_letters(env)
    assert outcomes(letters) == {
        0: ("no_image_asset", "1"),
        1: ("not_georeferenced", "1"),
        2: ("unsupported_bands", "1"),
        8: ("over_pixel_budget", "1"),
    }
    reasons = {offset: letters[offset]["reason"] for offset in letters}
    assert "none of the configured asset keys without band metadata (image assets: thumbnail)" in reasons[0]
    assert f"asset {scenes.no_crs} has no CRS (projection)" in reasons[1]
    assert "has 2 band(s) (gray, undefined)" in reasons[2]
    needed = re.search(r"needs ([\d,]+) pixels, over dispatcher.max_read_pixels=200,000", reasons[8])
    assert needed is not None
    assert int(needed.group(1).replace(",", "")) >= 900 * 900  # every pixel, overlapping windows more
    assert detected_items(env, query) == {"one-band", "rgbn", "nodata", "nan", "good"}
    assert detected_items(env, wide) == set()
    # Processed, not dead-lettered, and nothing detected: the AOI holds no valid pixel.
    assert env.detections.scene_detections(query, COLLECTION, "all-nodata", MODEL) == []

    # Masked pixels: the detections cover the AOI's valid part and nothing of its masked part.
    valid_part = shape(aoi_for_pixels(scenes.good, AOI_ROWS, (NODATA_FROM_COL, AOI_COLS[1])))
    masked_part = shape(aoi_for_pixels(scenes.good, AOI_ROWS, (AOI_COLS[0], NODATA_FROM_COL)))
    for item_id in ("nodata", "nan"):
        found = shapely.union_all(
            [shape(d.geometry) for d in env.detections.list(query.id) if d.item_id == item_id]
        )
        assert valid_part.buffer(TOLERANCE).contains(found), item_id
        assert found.intersection(masked_part).area <= TOLERANCE * masked_part.length, item_id
        assert found.area > 0.98 * valid_part.area, item_id


class CountingSegmenter:
    """The test segmenter, counting the tiles it is sent."""

    def __init__(self, inner: LocalSegmenter) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.input_size = inner.input_size
        self.input_contract = inner.input_contract
        self.tiles = 0

    def segment(self, tiles: np.ndarray, texts: list[str]) -> np.ndarray:
        self.tiles += len(tiles)
        return self.inner.segment(tiles, texts)


def test_band_use_is_reported_and_windows_without_valid_pixels_cost_no_model_time(env, segmenter, scenes):
    env.configure(asset_schemes=["file"])
    query = standing_query(env, scenes, "the cars")
    counting = CountingSegmenter(segmenter)
    processor = SceneProcessor.from_settings(counting, env.detections, env.settings.dispatcher)

    def process(item_id: str, path: Path):
        item = stac_item(item_id, scenes.good, visual=str(path))
        return processor.process(SceneMessage.from_bytes(scene_bytes(item)), item, [query])

    rgbn = process("rgbn", scenes.rgbn)
    assert rgbn.bands == "bands 1-3 of 4 as RGB (band 4 ignored)"
    assert (rgbn.nodata_windows, rgbn.pairs, counting.tiles) == (0, rgbn.windows_read, rgbn.windows_read)
    assert process("one-band", scenes.one_band).bands == "grey (band 1) replicated to RGB"

    counting.tiles = 0
    empty = process("all-nodata", scenes.all_nodata)
    assert empty.windows_read > 0
    assert (empty.nodata_windows, empty.pairs, empty.segment_calls, counting.tiles) == (
        empty.windows_read,
        0,
        0,
        0,
    )
    (result,) = empty.results
    assert (result.written, result.detections) == (True, ())


def test_asset_and_item_urls_outside_the_allow_list_are_dead_lettered(env, segmenter, scenes):
    env.configure(asset_schemes=["http"], asset_hosts=["127.0.0.1"])
    query = standing_query(env, scenes, "the buildings")
    with serve_folder(scenes.folder) as (base, _), FaultyProxy(base) as gone:
        gone.fail(FaultMode.error, status=404)
        port = base.rsplit(":", 1)[1]
        by_href = stac_item("by-href", scenes.good, visual=f"{base}/good.tif")
        (scenes.folder / "by-href.json").write_text(json.dumps(by_href))
        items = [
            stac_item("local-path", scenes.good, visual=str(scenes.good)),
            stac_item("file-url", scenes.good, visual=scenes.good.as_uri()),
            stac_item("vsicurl", scenes.good, visual=f"/vsicurl/{base}/good.tif"),
            stac_item("https", scenes.good, visual="https://cdn.example.com/good.tif"),
            stac_item("other-host", scenes.good, visual=f"http://localhost:{port}/good.tif"),
            stac_item("good", scenes.good, visual=f"{base}/good.tif"),
        ]
        values = [scene_bytes(item) for item in items]
        hrefs = {"item-local": str(scenes.folder / "by-href.json"), "by-href": f"{base}/by-href.json"}
        hrefs["item-missing"] = f"{gone.url}/by-href.json"
        for item_id, href in hrefs.items():
            message = SceneMessage(collection=COLLECTION, item_id=item_id, href=href, observed_at=WHEN)
            values.append(message.to_bytes())
        with running(dispatcher_of(env, segmenter)) as errors:
            produce_all(env, values)
            wait_scenes_committed(env, errors, len(values))

    letters = dead_letters(env)
    assert outcomes(letters) == {
        0: ("url_not_allowed", "1"),
        1: ("url_not_allowed", "1"),
        2: ("url_not_allowed", "1"),
        3: ("url_not_allowed", "1"),
        4: ("url_not_allowed", "1"),
        6: ("url_not_allowed", "1"),
        8: ("item_not_found", "1"),
    }
    reasons = {offset: letters[offset]["reason"] for offset in letters}
    assert f"assets.visual.href {str(scenes.good)!r}: local files are not allowed" in reasons[0]
    assert "local files are not allowed" in reasons[1]
    assert "GDAL virtual file system paths are not accepted" in reasons[2]
    assert "scheme 'https' is not in dispatcher.asset_schemes ['http']" in reasons[3]
    assert "host 'localhost' is not in dispatcher.asset_hosts ['127.0.0.1']" in reasons[4]
    assert "href " in reasons[6]
    assert "local files are not allowed" in reasons[6]
    assert reasons[8].endswith(f"item {gone.url}/by-href.json: HTTP 404")
    assert detected_items(env, query) == {"good", "by-href"}
