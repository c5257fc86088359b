"""The HTTP API against a real Redis: CRUD and validation, tenants, detections, SSE, OGC API, health."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from services.adapters.redis_client import make_redis
from services.api import create_app
from services.api.server import ApiServer
from services.contracts import ChangeStatus
from services.settings import ApiSettings, RedisSettings, WebhookSettings
from services.store import QueryStore
from tests.support.detections import make_detection, write_detections

# A 0.1° square near Frankfurt; detections lie in its west (lon < 10.05) or east half.
SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50.1], [10.1, 50], [10, 50.1], [10, 50]]]}
GEOJSON = "application/geo+json"


def _square(lon: float, lat: float, size: float = 0.005) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def settings(stack_settings):
    # Webhook receivers in these tests live on loopback, which only an allow-listed host may reach.
    api = ApiSettings(sse_keepalive_s=0.2, webhook=WebhookSettings(allow_hosts=["127.0.0.1"]))
    return stack_settings.model_copy(update={"api": api})


@pytest.fixture
def app(settings, redis_client, keys):
    return create_app(
        settings,
        redis_client=redis_client,
        keys=keys,
        components={
            "watcher": lambda: {"ok": True, "feeds": 2, "last_poll": datetime(2026, 1, 1, tzinfo=UTC)}
        },
    )


@pytest.fixture
def api(app):
    with TestClient(app) as client:
        yield client


def _body(text="small airplanes at the airport", **extra) -> dict:
    return {"text": text, "aoi": SQUARE, "collections": ["sentinel-2-l2a"], **extra}


def _create(api, tenant="acme", **extra) -> dict:
    response = api.post("/queries", json=_body(**extra), headers={"X-Lookout-Tenant": tenant})
    assert response.status_code == 201, response.text
    return response.json()


def _fields(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["field"]: item["message"] for item in response.json()["detail"]}


def _write(
    redis_client, keys, query: dict, item_id: str, acquired: datetime, geometries, change=ChangeStatus.new
):
    """Store one scene's detections the way the dispatcher does; returns them in write order."""
    stored = QueryStore(redis_client, keys).get(query["id"])
    detections = [
        make_detection(
            stored,
            "sentinel-2-l2a",
            item_id,
            geometry,
            acquired=acquired,
            score_max=0.95,
            area_m2=1200.0,
            pixel_count=12,
            change=change,
        )
        for geometry in geometries
    ]
    return write_detections(redis_client, keys, stored, "sentinel-2-l2a", item_id, detections)


def test_crud_round_trip(api):
    created = api.post(
        "/queries",
        json=_body(delivery={"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "s3cret"}),
    )
    assert created.status_code == 201
    query = created.json()
    assert created.headers["location"].endswith(f"/queries/{query['id']}")
    assert (query["tenant"], query["version"], query["status"]) == ("default", 1, "active")
    assert query["delivery"]["webhook_secret"] == "**********"

    assert [q["id"] for q in api.get("/queries").json()["queries"]] == [query["id"]]
    # One query reads as created, with the scenes it matched that were not segmented (none yet).
    no_skips = {"total": 0, "counts": {}, "recent": []}
    assert api.get(f"/queries/{query['id']}").json() == query | {"skipped": no_skips}

    paused = api.patch(f"/queries/{query['id']}", json={"status": "paused"}).json()
    assert (paused["status"], paused["version"]) == ("paused", 1)
    assert api.get("/queries", params={"status": "active"}).json()["queries"] == []
    resumed = api.patch(f"/queries/{query['id']}", json={"status": "active", "threshold": 0.7}).json()
    assert (resumed["status"], resumed["threshold"], resumed["version"]) == ("active", 0.7, 2)

    deleted = api.delete(f"/queries/{query['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    missing = api.get(f"/queries/{query['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"query {query['id']} not found"}


def test_validation_errors_name_each_field(api):
    fields = _fields(api.post("/queries", json={**_body(text=""), "aoi": BOWTIE, "threshold": 2}))
    assert set(fields) == {"text", "aoi", "threshold"}
    assert "Self-intersection" in fields["aoi"]
    assert fields["aoi"].startswith("is not a valid polygon")
    assert fields["threshold"] == "Input should be less than or equal to 1"
    assert "at least 1 character" in fields["text"]

    assert _fields(api.post("/queries", json=_body(text="   "))) == {
        "text": "must contain words, not only whitespace"
    }
    no_secret = _fields(api.post("/queries", json=_body(delivery={"webhook_url": "http://127.0.0.1:9/h"})))
    assert "webhook_secret is required" in no_secret["delivery"]
    assert set(_fields(api.post("/queries", json={"text": "ships"}))) == {"aoi", "collections"}
    assert "Extra inputs" in _fields(api.post("/queries", json=_body(colour="red")))["colour"]
    assert "body" in _fields(
        api.post("/queries", content=b"{not json", headers={"content-type": "application/json"})
    )

    query = _create(api, tenant="default")
    assert set(_fields(api.patch(f"/queries/{query['id']}", json={"threshold": 2}))) == {"threshold"}
    assert (
        "not a valid STAC collection id"
        in _fields(api.patch(f"/queries/{query['id']}", json={"collections": ["no spaces"]}))["collections"]
    )

    assert "X-Lookout-Tenant" in _fields(api.get("/queries", headers={"X-Lookout-Tenant": "a b"}))
    detections = f"/queries/{query['id']}/detections"
    assert "expected 4 numbers" in _fields(api.get(detections, params={"bbox": "1,2,3"}))["bbox"]
    assert (
        "no time zone" in _fields(api.get(detections, params={"datetime": "2026-01-01T00:00:00"}))["datetime"]
    )
    assert set(_fields(api.get(detections, params={"change": "gone", "limit": 0}))) == {"change", "limit"}


def test_tenants_cannot_reach_each_others_queries(api, redis_client, keys):
    query = _create(api, tenant="acme")
    detection = _write(
        redis_client, keys, query, "item-1", datetime(2026, 1, 1, tzinfo=UTC), [_square(10.01, 50.01)]
    )[0]
    acme, globex = {"X-Lookout-Tenant": "acme"}, {"X-Lookout-Tenant": "globex"}
    qid = query["id"]
    readable = [
        f"/queries/{qid}",
        f"/queries/{qid}/detections",
        f"/collections/{qid}",
        f"/collections/{qid}/items",
        f"/collections/{qid}/items/{detection.id}",
    ]
    for path in readable:
        assert api.get(path, headers=acme).status_code == 200, path
    for path in [*readable, f"/queries/{qid}/stream"]:  # the owner's stream is read in the SSE test
        assert api.get(path, headers=globex).status_code == 404, path
    assert api.patch(f"/queries/{qid}", json={"status": "paused"}, headers=globex).status_code == 404
    assert api.delete(f"/queries/{qid}", headers=globex).status_code == 404
    assert api.get("/queries", headers=globex).json() == {"queries": []}
    assert api.get("/collections", headers=globex).json()["collections"] == []
    assert api.get(f"/queries/{qid}", headers=acme).json()["status"] == "active"
    assert [c["id"] for c in api.get("/collections", headers=acme).json()["collections"]] == [qid]


@pytest.fixture
def three_scenes(api, redis_client, keys):
    """A query with three detections: west in January (new), east in February (persisting), west in
    March (new); returned newest first, as the API lists them."""
    query = _create(api, tenant="default")
    jan = _write(redis_client, keys, query, "jan", datetime(2026, 1, 1, tzinfo=UTC), [_square(10.01, 50.01)])
    feb = _write(
        redis_client, keys, query, "feb", datetime(2026, 2, 1, tzinfo=UTC), [_square(10.07, 50.07)],
        change=ChangeStatus.persisting,
    )  # fmt: skip
    mar = _write(redis_client, keys, query, "mar", datetime(2026, 3, 1, tzinfo=UTC), [_square(10.02, 50.02)])
    return query, [mar[0].id, feb[0].id, jan[0].id]


def test_detections_listing_and_filters(api, three_scenes):
    query, (mar, feb, jan) = three_scenes
    path = f"/queries/{query['id']}/detections"

    def ids(**params):
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == GEOJSON
        body = response.json()
        assert body["type"] == "FeatureCollection"
        return [f["id"] for f in body["features"]]

    assert ids() == [mar, feb, jan]
    feature = api.get(path).json()["features"][0]
    assert feature["geometry"]["type"] == "Polygon"
    assert (feature["properties"]["query_id"], feature["properties"]["item_id"]) == (query["id"], "mar")
    assert ids(datetime="2026-01-15T00:00:00Z/..") == [mar, feb]
    assert ids(datetime="../2026-01-15T00:00:00Z") == [jan]
    assert ids(datetime="2026-02-01T00:00:00Z") == [feb]
    assert ids(bbox="10,50,10.05,50.1") == [mar, jan]
    assert ids(bbox="170,49,10.05,51") == [mar, jan]  # across the antimeridian: 170..180 and -180..10.05
    assert ids(change="persisting") == [feb]
    assert ids(change="new", bbox="10.05,50,10.1,50.1") == []
    limited = api.get(path, params={"limit": 1}).json()
    assert ([f["id"] for f in limited["features"]], limited["numberMatched"], limited["numberReturned"]) == (
        [mar],
        3,
        1,
    )


def test_ogc_api_features(api, three_scenes):
    query, (mar, feb, jan) = three_scenes
    landing = api.get("/").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["data"]["href"] == "http://testserver/collections"
    assert rels["alternate"]["href"] == "http://testserver/dashboard/"
    browser = api.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert (browser.status_code, browser.headers["location"]) == (303, "http://testserver/dashboard/")
    assert api.get("/conformance").json()["conformsTo"] == [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    ]

    collection = api.get(f"/collections/{query['id']}").json()
    assert api.get("/collections").json()["collections"] == [collection]
    assert (collection["id"], collection["title"], collection["itemType"]) == (
        query["id"],
        query["text"],
        "feature",
    )
    assert collection["extent"]["spatial"]["bbox"] == [[10.0, 50.0, 10.1, 50.1]]
    assert collection["extent"]["temporal"]["interval"] == [[None, None]]
    items_link = next(link for link in collection["links"] if link["rel"] == "items")
    assert (items_link["type"], items_link["href"]) == (
        GEOJSON,
        f"http://testserver/collections/{query['id']}/items",
    )

    first = api.get(items_link["href"], params={"limit": 2})
    assert first.headers["content-type"] == GEOJSON
    page = first.json()
    assert [f["id"] for f in page["features"]] == [mar, feb]
    assert (page["numberMatched"], page["numberReturned"]) == (3, 2)
    links = {link["rel"]: link["href"] for link in page["links"]}
    assert {"self", "collection", "next"} == set(links)
    second = api.get(links["next"]).json()
    assert [f["id"] for f in second["features"]] == [jan]
    assert {link["rel"] for link in second["links"]} == {"self", "collection", "prev"}

    filtered = api.get(items_link["href"], params={"limit": 1, "bbox": "10,50,10.05,50.1"}).json()
    assert [f["id"] for f in filtered["features"]] == [mar]
    next_href = next(link["href"] for link in filtered["links"] if link["rel"] == "next")
    assert "bbox=10%2C50%2C10.05%2C50.1" in next_href
    assert [f["id"] for f in api.get(next_href).json()["features"]] == [jan]
    dated = api.get(items_link["href"], params={"datetime": "2026-02-01T00:00:00Z/.."}).json()
    assert [f["id"] for f in dated["features"]] == [mar, feb]

    item = api.get(f"/collections/{query['id']}/items/{feb}")
    assert item.headers["content-type"] == GEOJSON
    assert (item.json()["id"], item.json()["properties"]["change"]) == (feb, "persisting")
    missing = api.get(f"/collections/{query['id']}/items/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"detection nope not found in query {query['id']}"}


def test_healthz_reports_redis_and_components(api, settings, keys):
    health = api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "components": {
            "redis": {"ok": True},
            "watcher": {"ok": True, "feeds": 2, "last_poll": "2026-01-01T00:00:00+00:00"},
        },
    }

    def broken() -> dict:
        raise RuntimeError("feed registry gone")

    unreachable = make_redis(RedisSettings(url="redis://127.0.0.1:1/0", socket_timeout_s=1))
    sick = create_app(
        settings,
        redis_client=unreachable,
        keys=keys,
        components={"watcher": lambda: {"ok": False, "stale": ["s2"]}, "segmenter": broken},
    )
    with TestClient(sick) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["components"]["redis"]["ok"] is False
        assert body["components"]["watcher"] == {"ok": False, "stale": ["s2"]}
        assert body["components"]["segmenter"] == {"ok": False, "error": "RuntimeError: feed registry gone"}
        assert client.get("/queries").status_code == 503
    unreachable.close()


def test_metrics_count_requests_by_route_and_detections_served(api, three_scenes):
    query, _ = three_scenes
    api.get(f"/queries/{query['id']}/detections", params={"limit": 2})
    api.get(f"/queries/{query['id']}")
    api.get("/queries/unknown")
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lookout_api_requests_total{method="POST",route="/queries",status="201"} 1.0' in text
    assert 'lookout_api_requests_total{method="GET",route="/queries/{query_id}",status="200"} 1.0' in text
    assert 'lookout_api_requests_total{method="GET",route="/queries/{query_id}",status="404"} 1.0' in text
    assert 'lookout_api_detections_served_total{channel="detections"} 2.0' in text
    assert 'lookout_api_request_duration_seconds_count{method="GET",route="/queries/{query_id}"} 2.0' in text
    assert "lookout_api_sse_clients 0.0" in text


def _events(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    """Read ``count`` SSE events from the lines of a streaming response (comments are skipped).

    Takes the response's one line iterator: a fresh ``iter_lines()`` per call would close the stream
    when the previous one is dropped."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
        elif current:
            events.append(current)
            current = {}
            if len(events) == count:
                break
    return events


def _sse_clients(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("lookout_api_sse_clients "):
            return float(line.split()[1])
    raise AssertionError("lookout_api_sse_clients is not exported")


def test_sse_stream_delivers_new_detections_and_resumes(app, redis_client, keys):
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with ApiServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        query = http.post("/queries", json=_body()).raise_for_status().json()
        stream = f"/queries/{query['id']}/stream"
        before = _write(redis_client, keys, query, "before", when, [_square(10.01, 50.01)])

        with http.stream("GET", stream) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            written = _write(
                redis_client, keys, query, "after", when, [_square(10.02, 50.02), _square(10.03, 50.03)]
            )
            lines = response.iter_lines()
            events = _events(lines, 2)
            assert _sse_clients(http) == 1
        assert [e["event"] for e in events] == ["detection", "detection"]
        assert [json.loads(e["data"])["id"] for e in events] == [d.id for d in written]  # not `before`
        assert json.loads(events[0]["data"]) == written[0].to_feature()
        entry_ids = [e["id"] for e in events]
        stored_ids = [i.decode() for i, _ in redis_client.xrange(keys.detection_stream(query["id"]))]
        assert entry_ids == stored_ids[1:]

        # A reconnecting EventSource sends Last-Event-ID (and its original ?from=0, which it overrides).
        resume = {"Last-Event-ID": entry_ids[0]}
        with http.stream("GET", stream, params={"from": "0"}, headers=resume) as response:
            lines = response.iter_lines()
            resumed = _events(lines, 1)
            later = _write(redis_client, keys, query, "later", when, [_square(10.04, 50.04)])
            resumed += _events(lines, 1)
        assert resumed[0]["id"] == entry_ids[1]
        assert [json.loads(e["data"])["id"] for e in resumed] == [written[1].id, later[0].id]

        with http.stream("GET", stream, params={"from": "0"}) as response:
            lines = response.iter_lines()
            replayed = _events(lines, 4)
            # Nothing new is written: the connection is kept alive by comments.
            ping = next(line for line in lines if line.startswith(":"))
        assert [json.loads(e["data"])["id"] for e in replayed] == [d.id for d in [*before, *written, *later]]
        assert ping.startswith(": ping")

        # Every client has gone: each stream's reader stopped (the gauge falls back to zero).
        deadline = time.monotonic() + 60
        while _sse_clients(http) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sse_clients(http) == 0
        assert http.get(stream, params={"from": "x"}).status_code == 422

        # Stopping the server ends an open stream with a complete response (no protocol error).
        with http.stream("GET", stream) as response:
            lines = response.iter_lines()
            server.stop()
            assert all(line.startswith(":") for line in lines if line)


def test_links_use_the_configured_public_base_url(settings, redis_client, keys):
    public = settings.model_copy(update={"api": ApiSettings(base_url="https://lookout.example/api/")})
    with TestClient(create_app(public, redis_client=redis_client, keys=keys)) as api:
        rels = {link["rel"]: link["href"] for link in api.get("/").json()["links"]}
        assert rels["data"] == "https://lookout.example/api/collections"
        query = api.post("/queries", json=_body())
        assert query.headers["location"] == f"https://lookout.example/api/queries/{query.json()['id']}"
        items = api.get(f"/collections/{query.json()['id']}/items").json()
        assert items["links"][0]["href"] == (
            f"https://lookout.example/api/collections/{query.json()['id']}/items?limit=10&offset=0"
        )
