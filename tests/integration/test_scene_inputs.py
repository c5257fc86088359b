"""Real catalog items through the whole pipeline: stac-fastapi-pgstac → watcher → Tansu → dispatcher →
Ray Serve → Redis and the ``detections`` topic, with the API showing what was refused.

The items are the ones recorded from public catalogs (tests/data/stac-items). NAIP (four uint8 bands at
0.6 m, red/green/blue chosen by name) and Maxar (visual RGB uint8 at 0.61 m) get local COGs of the same
band layout, data type and GSD, made from the SpaceNet sample (0.5 m) resampled to those GSDs, and are
segmented on the model's 0.5 m grid. Sentinel-2 (10 m), Landsat (30 m), the Copernicus DEM (float32
elevation) and Sentinel-1 (SAR) keep their remote hrefs: their refusal needs no read. The model is the
``tiny`` preset (random weights, threshold 0: every covered pixel is foreground) with the ``lite``
input contract (0.5 m, 0.1-1.2 m).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.enums import Resampling
from ray import serve
from shapely.geometry import mapping, shape

from danet.checkpoint import save_checkpoint
from danet.config import load_preset
from danet.geo import raster_footprint_crs84
from danet.model import build_model
from services.adapters.kafka_client import ensure_topics
from services.adapters.stac_client import StacPublisher
from services.composition import ComponentThreads, Composition
from services.contracts import Topics
from services.settings import DispatcherSettings, NamespaceSettings, SegmenterSettings
from services.store import SkippedSceneStore
from tests.support.http_files import serve_folder
from tests.support.kafka import topic_records
from tests.support.rasters import aoi_for_pixels, write_geotiff, write_rgb_cog
from tests.support.stac import make_collection

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ITEMS = Path(__file__).resolve().parents[1] / "data" / "stac-items"
AOI_ROWS, AOI_COLS = (200.5, 400.5), (200.5, 450.5)  # of the 0.5 m sample: 100 m x 125 m
DEADLINE_S = 240.0
# file prefix -> (asset key, GSD of the local COG, bands) for the accepted items
ACCEPTED = {"planetary-computer__naip": ("image", 0.6, 4), "eoapi-maxar-open-data": ("visual", 0.61, 3)}
REFUSED = {
    "earth-search__sentinel-2-l2a": ("gsd_out_of_range", "10 m is outside the model's range 0.1-1.2 m"),
    "earth-search__landsat-c2-l2": ("gsd_out_of_range", "30 m is outside the model's range 0.1-1.2 m"),
    "earth-search__cop-dem-glo-30": ("not_optical", "floating-point data without band names"),
    "earth-search__sentinel-1-grd": ("not_optical", "SAR backscatter (IW) is not optical imagery"),
}


def recorded(prefix: str) -> dict:
    (path,) = ITEMS.glob(f"{prefix}*.json")
    return json.loads(path.read_text())


def resampled_cog(sample: Path, path: Path, gsd: float, bands: int) -> Path:
    """The 0.5 m sample resampled to `gsd` (same origin and CRS) as a uint8 COG of `bands` bands (the
    fourth, a stand-in for near infrared, is the first band inverted: never to be read as RGB)."""
    with rasterio.open(sample) as src:
        factor = src.res[0] / gsd
        height, width = round(src.height * factor), round(src.width * factor)
        rgb = src.read(out_shape=(3, height, width), resampling=Resampling.average)
        transform = src.transform @ Affine.scale(src.width / width, src.height / height)
        crs = src.crs
    data = rgb if bands == 3 else np.concatenate([rgb, 255 - rgb[:1]])
    # Min-is-black: GDAL's default for four uint8 bands would tag the fourth as alpha (a mask).
    write_geotiff(
        path, data, crs, transform, tiled=True, blockxsize=256, blockysize=256, photometric="MINISBLACK"
    )
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.average)
    return path


def test_recorded_catalog_items_are_segmented_or_refused_with_their_reasons(
    ray_local, local_stack, stack_settings, tmp_path
):
    tag = uuid.uuid4().hex[:8]
    cfg = load_preset("tiny")
    cfg = cfg.model_copy(
        update={"input": cfg.input.model_copy(update={"gsd_m": 0.5, "gsd_range_m": (0.1, 1.2)})}
    )
    torch.manual_seed(3)
    checkpoint = save_checkpoint(tmp_path / "tiny-gsd.pt", build_model(cfg, pretrained=False), cfg)
    app_name = f"inputs-{tag}"
    settings = stack_settings.model_copy(
        update={
            "namespace": NamespaceSettings(topic_prefix=f"in{tag}-", redis_prefix=f"in-{tag}:"),
            "segmenter": SegmenterSettings(app_name=app_name, checkpoint=checkpoint, device="cpu"),
            "dispatcher": DispatcherSettings(group_id=f"inputs-{tag}"),
            "api": stack_settings.api.model_copy(update={"collections": None, "port": 0}),
            "watcher": stack_settings.watcher.model_copy(
                update={"sources": [stack_settings.stac.api_url], "poll_interval_s": 1.0}
            ),
        }
    )
    composition = Composition(settings)
    topics = composition.topics
    ensure_topics(settings.kafka, topics.all())

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    sample = write_rgb_cog(tmp_path / "sample.tif")
    aoi = aoi_for_pixels(sample, AOI_ROWS, AOI_COLS)
    with rasterio.open(sample) as ds:
        footprint = mapping(raster_footprint_crs84(ds.crs, ds.transform, (ds.height, ds.width)))
    collection = f"inputs-{tag}"
    publisher = StacPublisher(settings.stac.api_url)
    publisher.put_collection(
        make_collection(collection, [-180, -90, 180, 90], datetime(2015, 1, 1, tzinfo=UTC))
    )

    serve.start(proxy_location="Disabled")
    composition.deploy_segmenter()
    threads = ComponentThreads()
    api = composition.api_server(composition.api_app()).start()
    stores = composition.stores()
    items: dict[str, dict] = {}
    try:
        with serve_folder(scenes) as (base_url, _served):
            for prefix in [*ACCEPTED, *REFUSED]:
                item = recorded(prefix)
                item |= {
                    "collection": collection,
                    "geometry": footprint,
                    "bbox": list(shape(footprint).bounds),
                }
                if prefix in ACCEPTED:
                    key, gsd, bands = ACCEPTED[prefix]
                    resampled_cog(sample, scenes / f"{prefix}.tif", gsd, bands)
                    item["assets"][key]["href"] = f"{base_url}/{prefix}.tif"
                items[prefix] = item
            created = httpx.post(
                f"{api.url}/queries",
                timeout=60,
                json={"text": "all buildings", "aoi": aoi, "collections": [collection], "threshold": 0.0,
                      "start": "2015-01-01T00:00:00Z"},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            query_id = created.json()["id"]
            # All published before the first poll: acquired years apart, the older ones would otherwise
            # be late items older than the watcher's high-water mark.
            for item in items.values():
                publisher.add_item(item)
            threads.start("watcher", composition.watcher())
            threads.start("dispatcher", composition.dispatcher())

            skipped_scenes = SkippedSceneStore(stores.redis, composition.keys)

            def done() -> bool:
                detected = {d.item_id for d in stores.detections.list(query_id)}
                return len(detected) == len(ACCEPTED) and skipped_scenes.summary(query_id).total == len(
                    REFUSED
                )

            end = time.monotonic() + DEADLINE_S
            while not done():
                assert time.monotonic() < end, "not every item was segmented or refused in time"
                time.sleep(0.5)
            time.sleep(2.0)  # anything processed twice would arrive now
            detail = httpx.get(f"{api.url}/queries/{query_id}", timeout=60).json()
            metrics = httpx.get(f"{api.url}/metrics", timeout=60).text
    finally:
        threads.stop()
        api.stop()
        serve.delete(app_name)
        publisher.close()

    ids = {prefix: item["id"] for prefix, item in items.items()}
    stored = stores.detections.list(query_id)
    assert {d.item_id for d in stored} == {ids[p] for p in ACCEPTED}
    area = shape(aoi)
    for prefix in ACCEPTED:
        found = [shape(d.geometry) for d in stored if d.item_id == ids[prefix]]
        # Threshold 0: the detections cover the AOI (the model grid is placed on the Earth right).
        assert sum(g.area for g in found) == pytest.approx(area.area, rel=0.03), prefix

    skipped = detail["skipped"]
    assert skipped["counts"] == {"gsd_out_of_range": 2, "not_optical": 2}
    reasons = {s["item_id"]: (s["code"], s["reason"]) for s in skipped["recent"]}
    for prefix, (code, words) in REFUSED.items():
        assert reasons[ids[prefix]][0] == code
        assert words in reasons[ids[prefix]][1]

    letters = topic_records(settings.kafka.bootstrap_servers, Topics.dead_letter(topics.scenes))
    headers = [{k: v.decode() for k, v in r.headers} for r in letters]
    by_item = {json.loads(r.value)["item_id"]: h for r, h in zip(letters, headers, strict=True)}
    assert len(by_item) == len(letters) == len(REFUSED), "each refused scene dead-lettered exactly once"
    for prefix, (code, words) in REFUSED.items():
        assert by_item[ids[prefix]]["error"] == code
        assert words in by_item[ids[prefix]]["reason"]
        assert by_item[ids[prefix]]["attempt"] == "1"  # refused at once, never retried
    assert 'lookout_dispatcher_dead_letters_total{code="gsd_out_of_range"} 2.0' in metrics
    assert 'lookout_dispatcher_dead_letters_total{code="not_optical"} 2.0' in metrics

    produced = [
        json.loads(r.value)["id"] for r in topic_records(settings.kafka.bootstrap_servers, topics.detections)
    ]
    assert sorted(produced) == sorted(d.id for d in stored), "every detection produced exactly once"
    stores.close()
