"""Quicklooks through the real Redis cache and the API routes; the item and COG read from disk and over
HTTP (Starlette's static files serve Range requests, as GDAL needs)."""

import io
import json
import re
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from PIL import Image

from services.api import create_app
from services.api.quicklook import QuicklookCache, QuicklookUnavailableError, SceneReadError
from services.api.server import ApiServer
from services.contracts import QueryCreate, RedisKeys
from services.scenes import AssetPolicy, SceneInputs
from services.settings import QuicklookSettings
from tests.browser.scenes import COLLECTION, MODEL, scene_detections, scene_footprint, write_scene

pytestmark = pytest.mark.integration

ACQUIRED = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
SETTINGS = QuicklookSettings(max_side_px=256, cache_ttl_s=120)
SCENES = SceneInputs(("visual",), AssetPolicy.allowing(["file", "http", "https"]), timeout_s=10)


def test_a_cached_quicklook_is_served_without_reading_the_scene_again(tmp_path, redis_client, keys):
    item_href = write_scene(tmp_path, "atl-0001", ACQUIRED)
    cache = QuicklookCache(redis_client, keys, SETTINGS, SCENES)

    first = cache.get(item_href)
    ttl = redis_client.ttl(cache.key(item_href))
    for written in tmp_path.iterdir():  # the scene is gone: only the cache can answer now
        written.unlink()
    again = cache.get(item_href)

    assert again == first
    assert 0 < ttl <= SETTINGS.cache_ttl_s
    assert max(first.width, first.height) <= 270
    with pytest.raises(SceneReadError, match=re.escape("atl-0001.json")):
        QuicklookCache(redis_client, keys, SETTINGS.model_copy(update={"max_side_px": 128}), SCENES).get(
            item_href
        )


def test_an_item_and_its_cog_are_read_over_http(tmp_path, redis_client, keys):
    write_scene(tmp_path, "atl-0001", ACQUIRED)
    # As a STAC API serves it: the item at a URL, its asset relative to the item.
    item = json.loads((tmp_path / "atl-0001.json").read_text())
    item["assets"]["visual"]["href"] = "./atl-0001.tif"
    item["links"] = []
    (tmp_path / "atl-0001.json").write_text(json.dumps(item))
    files = FastAPI()
    files.mount("/scenes", StaticFiles(directory=tmp_path))

    with ApiServer(files) as server:
        quicklook = QuicklookCache(redis_client, keys, SETTINGS, SCENES).get(
            f"{server.url}/scenes/atl-0001.json"
        )

    local = QuicklookCache(redis_client, RedisKeys(prefix=keys.prefix + "local:"), SETTINGS, SCENES)
    assert quicklook == local.get(str(tmp_path / "atl-0001.json"))


@pytest.fixture
def api(stack_settings, redis_client, keys):
    app = create_app(stack_settings, redis_client=redis_client, keys=keys)
    with TestClient(app) as client:
        yield client


def stored_scene(api, tmp_path, *, tenant: str = "default", item_href: str | None = None):
    """A query and one scene of its detections, stored as the dispatcher stores them."""
    ctx = api.app.state.context
    query = ctx.queries.create(
        QueryCreate(text="all buildings", aoi=scene_footprint(), collections=[COLLECTION]), tenant=tenant
    )
    href = item_href if item_href is not None else write_scene(tmp_path, "atl-0001", ACQUIRED)
    detections = scene_detections(query, "atl-0001", href, ACQUIRED)
    if item_href == "":
        detections = [d.model_copy(update={"item_href": None}) for d in detections]
    ctx.detections.write_scene(query, COLLECTION, "atl-0001", MODEL, detections)
    return query, detections


def test_the_quicklook_route_places_the_scene_and_links_its_png(api, tmp_path):
    query, detections = stored_scene(api, tmp_path)
    base = f"/queries/{query.id}/detections/{detections[0].id}"

    described = api.get(f"{base}/quicklook")
    assert described.status_code == 200, described.text
    body = described.json()
    west, south, east, north = body["bbox"]
    assert body["coordinates"] == [[west, north], [east, north], [east, south], [west, south]]
    assert (body["collection"], body["item_id"]) == (COLLECTION, "atl-0001")
    assert body["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    (preview,) = [link for link in body["links"] if link["rel"] == "preview"]
    assert preview["href"] == f"http://testserver{base}/quicklook.png"

    png = api.get(f"{base}/quicklook.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "private, max-age=86400"
    with Image.open(io.BytesIO(png.content)) as image:
        assert image.size == (body["width"], body["height"])
    # Every detection of the scene shares the scene's quicklook.
    other = api.get(f"/queries/{query.id}/detections/{detections[-1].id}/quicklook").json()
    assert {k: v for k, v in other.items() if k != "links"} == {k: v for k, v in body.items() if k != "links"}


def test_quicklooks_are_scoped_like_their_detections(api, tmp_path):
    query, detections = stored_scene(api, tmp_path, tenant="acme")
    path = f"/queries/{query.id}/detections/{detections[0].id}/quicklook"

    assert api.get(path, headers={"X-Lookout-Tenant": "acme"}).status_code == 200
    other = api.get(path, headers={"X-Lookout-Tenant": "globex"})
    assert other.status_code == 404
    assert other.json() == {"detail": f"query {query.id} not found"}
    missing = api.get(
        f"/queries/{query.id}/detections/nope/quicklook.png", headers={"X-Lookout-Tenant": "acme"}
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"detection nope not found in query {query.id}"}


def test_a_detection_without_an_item_link_or_with_a_refused_asset_says_why(api, tmp_path):
    query, detections = stored_scene(api, tmp_path, item_href="")
    unlinked = api.get(f"/queries/{query.id}/detections/{detections[0].id}/quicklook")
    assert unlinked.status_code == 404
    assert "no STAC item link" in unlinked.json()["detail"]

    item = tmp_path / "s3-item.json"
    item.write_text(
        json.dumps({"type": "Feature", "assets": {"visual": {"href": "s3://bucket/atl-0001.tif"}}})
    )
    query, detections = stored_scene(api, tmp_path, item_href=str(item))
    refused = api.get(f"/queries/{query.id}/detections/{detections[0].id}/quicklook.png")
    assert refused.status_code == 404
    assert refused.json()["detail"] == (
        f"no quicklook for {COLLECTION}/atl-0001: assets.visual.href 's3://bucket/atl-0001.tif': scheme "
        "'s3' is not in dispatcher.asset_schemes ['file', 'http', 'https']"
    )

    query, detections = stored_scene(api, tmp_path, item_href=str(tmp_path / "gone.json"))
    unreadable = api.get(f"/queries/{query.id}/detections/{detections[0].id}/quicklook")
    assert unreadable.status_code == 502
    assert "gone.json" in unreadable.json()["detail"]


def test_the_page_and_its_libraries_are_served(api):
    redirect = api.get("/dashboard", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (307, "dashboard/")
    page = api.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "<title>Lookout" in page.text

    for path, media_type in [
        ("/dashboard/js/main.js", "text/javascript"),
        ("/dashboard/css/dashboard.css", "text/css"),
        ("/dashboard/vendor/maplibre-gl/maplibre-gl.mjs", "text/javascript"),
        ("/dashboard/vendor/maplibre-gl/maplibre-gl-worker.mjs", "text/javascript"),
        ("/dashboard/vendor/eventsource/index.js", "text/javascript"),
        ("/dashboard/vendor/world-atlas/countries-50m.json", "application/json"),
    ]:
        response = api.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type), path

    assert api.get("/dashboard/vendor/left-pad/index.js").status_code == 404
    assert api.get("/dashboard/vendor/maplibre-gl/../package.json").status_code == 404
    assert api.get("/dashboard/../package.json").status_code == 404
    assert api.get("/dashboard/%2e%2e/package.json").status_code == 404


def test_hrefs_outside_the_dispatchers_allow_list_are_not_read(tmp_path, redis_client, keys):
    item_href = write_scene(tmp_path, "atl-0001", ACQUIRED)
    https_only = QuicklookCache(
        redis_client, keys, SETTINGS, SceneInputs(("visual",), AssetPolicy.allowing(["https"]), timeout_s=10)
    )
    with pytest.raises(QuicklookUnavailableError, match="local files are not allowed"):
        https_only.get(item_href)
    assert redis_client.keys(f"{keys.prefix}*") == []
