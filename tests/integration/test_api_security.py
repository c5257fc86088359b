"""Security and bad inputs at the HTTP API, against the real API over a real Redis (issue 8).

Each test names the bad input or attack it tries and asserts exactly what was refused (status, the field
and the message) and what is stored afterwards: a refused request leaves every key already stored under
the test's prefix untouched (rate-limit windows aside: counting requests is their job).
docs/hardening.md ("API: bad inputs, API keys, tenant isolation, limits") tabulates the answers observed
here.
"""

import argparse
import json
import math
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from fastapi.testclient import TestClient

from services.api import WebhookDispatcher, create_app
from services.api.api_keys import ApiKeyStore
from services.api.server import ApiServer
from services.api.webhooks import WEBHOOK_GROUP
from services.backoff import Backoff
from services.cli_tenants import add_tenant_commands
from services.contracts import Detection, QueryCreate
from services.settings import ApiSettings, WebhookSettings
from services.store import QueryStore
from tests.support.detections import make_detection, write_detections
from tests.support.http_server import BackgroundHttpServer

PEPPER = "tests-only-pepper-0123456789abcdefghij"
KNOWN = ["lookout-sim", "sentinel-2-l2a"]
SECRET = "whsec-0123456789"
SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50.1], [10.1, 50], [10, 50.1], [10, 50]]]}


def _box(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _circle(vertices: int, radius: float = 0.01) -> dict:
    ring = [
        [
            10 + radius * math.cos(2 * math.pi * i / vertices),
            50 + radius * math.sin(2 * math.pi * i / vertices),
        ]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _body(**changes: object) -> dict:
    return {
        "text": "small airplanes at the airport",
        "aoi": SQUARE,
        "collections": ["lookout-sim"],
        **changes,
    }


def _webhook(url: str) -> dict:
    return {"delivery": {"webhook_url": url, "webhook_secret": SECRET}}


def _fields(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {item["field"]: item["message"] for item in response.json()["detail"]}


def _stored(redis_client, keys) -> dict[str, object]:
    """Every key under the test's prefix with its value, except the rate-limit windows."""
    readers = {
        "string": redis_client.get,
        "set": redis_client.smembers,
        "hash": redis_client.hgetall,
        "stream": redis_client.xrange,
        "zset": lambda key: redis_client.zrange(key, 0, -1, withscores=True),
        "list": lambda key: redis_client.lrange(key, 0, -1),
    }
    snapshot = {}
    for raw in redis_client.scan_iter(match=f"{keys.prefix}*"):
        key = raw.decode()
        if not key.startswith(keys.rate_limits()):
            snapshot[key] = readers[redis_client.type(raw).decode()](raw)
    return snapshot


def _write_detection(redis_client, keys, query_id: str, item_id: str) -> Detection:
    """One stored detection of a query, written the way the dispatcher writes them."""
    query = QueryStore(redis_client, keys).get(query_id)
    geometry = _box(10.01, 50.01, 10.015, 50.015)
    (detection,) = write_detections(
        redis_client,
        keys,
        query,
        "lookout-sim",
        item_id,
        [make_detection(query, "lookout-sim", item_id, geometry)],
    )
    return detection


@pytest.fixture
def make_app(stack_settings, redis_client, keys):
    """An app over the test's key prefix; keyword arguments are ``api`` settings (collections: KNOWN)."""

    def make(**api: object):
        settings = stack_settings.model_copy(update={"api": ApiSettings(**({"collections": KNOWN} | api))})
        return create_app(settings, redis_client=redis_client, keys=keys)

    return make


@pytest.fixture
def api(make_app) -> Iterator[TestClient]:
    """Open mode (tenant header), no webhook host allow-listed, the known collections KNOWN."""
    with TestClient(make_app()) as client:
        yield client


@pytest.fixture
def key_store(redis_client, keys) -> ApiKeyStore:
    return ApiKeyStore(redis_client, keys, PEPPER)


# --- bad query bodies: (case, changes to a valid body, field, message) --------------------------------
BAD_QUERIES = [
    ("empty text", {"text": ""}, "text", "String should have at least 1 character"),
    ("whitespace-only text", {"text": " \t\n "}, "text", "must contain words, not only whitespace"),
    ("10,000-character text", {"text": "a" * 10_000}, "text", "String should have at most 500 characters"),
    ("text not a string", {"text": 5}, "text", "Input should be a valid string"),
    ("AOI not an object", {"aoi": "Atlanta"}, "aoi", "Input should be a valid dictionary"),
    (
        "AOI a Point",
        {"aoi": {"type": "Point", "coordinates": [10, 50]}},
        "aoi",
        "Input tag 'Point' found using 'type' does not match any of the expected tags: 'Polygon', "
        "'MultiPolygon'",
    ),
    ("AOI without coordinates", {"aoi": {"type": "Polygon"}}, "aoi.Polygon.coordinates", "Field required"),
    (
        "AOI ring not closed",
        {"aoi": {"type": "Polygon", "coordinates": [SQUARE["coordinates"][0][:-1]]}},
        "aoi.Polygon.coordinates",
        "All linear rings MUST have the same start and end coordinates",
    ),
    (
        "AOI ring of 3 positions",
        {"aoi": {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10, 50]]]}},
        "aoi.Polygon.coordinates.0",
        "List should have at least 4 items after validation, not 3",
    ),
    ("self-intersecting AOI (bow-tie)", {"aoi": BOWTIE}, "aoi", "is not a valid polygon: Self-intersection"),
    (
        "self-intersecting MultiPolygon",
        {"aoi": {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"], BOWTIE["coordinates"]]}},
        "aoi",
        "is not a valid polygon: Self-intersection",
    ),
    (
        "zero-area AOI (one point repeated)",
        {"aoi": {"type": "Polygon", "coordinates": [[[10, 50]] * 4]}},
        "aoi",
        "is not a valid polygon: Too few points",
    ),
    (
        "huge AOI (10° x 10°)",
        {"aoi": _box(0, 0, 10, 10)},
        "aoi",
        "covers 1,224,832 km²; at most 50,000 km² are allowed",
    ),
    ("AOI of the whole world", {"aoi": _box(-180, -90, 180, 90)}, "aoi", "at most 50,000 km² are allowed"),
    (
        "AOI with 10,001 vertices",
        {"aoi": _circle(10_001)},
        "aoi",
        "has 10002 vertices; at most 10000 are allowed",
    ),
    (
        "longitude 200",
        {"aoi": _box(200, 50, 200.1, 50.1)},
        "aoi",
        "coordinate (200.0, 50.0) is outside lon [-180, 180] / lat [-90, 90]",
    ),
    ("latitude -95", {"aoi": _box(10, -95, 10.1, -94.9)}, "aoi", "coordinate (10.0, -95.0) is outside"),
    ("threshold -0.1", {"threshold": -0.1}, "threshold", "Input should be greater than or equal to 0"),
    ("threshold 1.5", {"threshold": 1.5}, "threshold", "Input should be less than or equal to 1"),
    ("threshold as text", {"threshold": "high"}, "threshold", "Input should be a valid number"),
    (
        "negative min_area_m2",
        {"min_area_m2": -1},
        "min_area_m2",
        "Input should be greater than or equal to 0",
    ),
    (
        "cloud cover 101 %",
        {"filters": {"max_cloud_cover": 101}},
        "filters.max_cloud_cover",
        "Input should be less than or equal to 100",
    ),
    ("no collections", {"collections": []}, "collections", "List should have at least 1 item"),
    (
        "21 collections",
        {"collections": [f"c{i}" for i in range(21)]},
        "collections",
        "List should have at most 20 items",
    ),
    (
        "invalid collection id",
        {"collections": ["no spaces"]},
        "collections",
        "'no spaces' is not a valid STAC collection id",
    ),
    (
        "unknown collection",
        {"collections": ["lookout-sim", "landsat-c2-l2"]},
        "collections",
        "unknown collection(s) landsat-c2-l2: this service watches lookout-sim, sentinel-2-l2a "
        "(api.collections)",
    ),
    (
        "end before start",
        {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        "body",
        "end must be after start",
    ),
    (
        "10,000-character model_version",
        {"model_version": "v" * 10_000},
        "model_version",
        "at most 128 characters",
    ),
    ("unknown field", {"colour": "red"}, "colour", "Extra inputs are not permitted"),
    (
        "webhook URL without a secret",
        {"delivery": {"webhook_url": "https://1.1.1.1/hook"}},
        "delivery",
        "webhook_secret is required with webhook_url",
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "field", "message"), BAD_QUERIES, ids=[c[0] for c in BAD_QUERIES]
)
def test_a_bad_query_is_refused_naming_the_field_and_nothing_stored_changes(
    api, redis_client, keys, case, changes, field, message
):
    assert api.post("/queries", json=_body()).status_code == 201  # something stored already
    before = _stored(redis_client, keys)
    fields = _fields(api.post("/queries", json=_body(**changes)))
    assert list(fields) == [field], case
    assert message in fields[field], case
    assert _stored(redis_client, keys) == before


# --- bodies that are not (strict) JSON: Python's parser accepts NaN and Infinity ----------------------
_AOI = json.dumps(SQUARE)
BAD_RAW_BODIES = [
    (
        "NaN threshold",
        f'{{"text": "ships", "aoi": {_AOI}, "collections": ["lookout-sim"], "threshold": NaN}}',
        "threshold",
        "Input should be a finite number",
    ),
    (
        "infinite min_area_m2",
        f'{{"text": "ships", "aoi": {_AOI}, "collections": ["lookout-sim"], "min_area_m2": Infinity}}',
        "min_area_m2",
        "Input should be a finite number",
    ),
    (
        "NaN coordinate",
        '{"text": "ships", "collections": ["lookout-sim"], "aoi": {"type": "Polygon", "coordinates": '
        "[[[10, 50], [NaN, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}}",
        "aoi",
        "coordinate (nan, 50.0) is outside lon [-180, 180] / lat [-90, 90]",
    ),
    ("truncated JSON", '{"text": ', "body", "invalid JSON at character 9: Expecting value"),
    ("JSON array instead of an object", "[1, 2]", "body", "Input should be a valid dictionary"),
    ("empty body", "", "body", "Field required"),
]


@pytest.mark.parametrize(
    ("case", "raw", "field", "message"), BAD_RAW_BODIES, ids=[c[0] for c in BAD_RAW_BODIES]
)
def test_a_body_that_is_not_strict_json_is_refused(api, redis_client, keys, case, raw, field, message):
    assert api.post("/queries", json=_body()).status_code == 201
    before = _stored(redis_client, keys)
    response = api.post("/queries", content=raw.encode(), headers={"content-type": "application/json"})
    fields = _fields(response)
    assert list(fields) == [field], case
    assert message in fields[field], case
    assert _stored(redis_client, keys) == before


# --- webhook URLs that would let the service call into its own network (SSRF) ------------------------
_INTERNAL = "webhooks may only reach public addresses unless the host is listed in api.webhook.allow_hosts"
BAD_WEBHOOKS = [
    ("ftp scheme", "ftp://example.com/hook", "URL scheme should be 'http' or 'https'"),
    ("file scheme", "file:///etc/passwd", "URL scheme should be 'http' or 'https'"),
    ("javascript scheme", "javascript:alert(1)", "URL scheme should be 'http' or 'https'"),
    ("IPv4 loopback", "http://127.0.0.1:8080/hook", f"127.0.0.1 is a loopback address; {_INTERNAL}"),
    ("loopback as a decimal number", "http://2130706433/hook", "127.0.0.1 is a loopback address"),
    ("loopback in short hex form", "http://0x7f.1/hook", "127.0.0.1 is a loopback address"),
    ("a name resolving to loopback", "http://localhost:8080/hook", "localhost resolves to "),
    ("private 10/8", "http://10.0.0.5/hook", "10.0.0.5 is a private address"),
    ("private 172.16/12", "http://172.16.0.1/hook", "172.16.0.1 is a private address"),
    ("private 192.168/16", "http://192.168.1.1/hook", "192.168.1.1 is a private address"),
    (
        "cloud metadata (link-local)",
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is a link-local address",
    ),
    ("shared address space (CGNAT)", "http://100.64.0.1/hook", "100.64.0.1 is a non-global address"),
    ("unspecified 0.0.0.0", "http://0.0.0.0:8080/hook", "0.0.0.0 is an unspecified address"),
    ("multicast", "http://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ("IPv6 loopback", "http://[::1]:8080/hook", "::1 is a loopback address"),
    ("IPv6 link-local", "http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("IPv6 unique local", "http://[fd12:3456::1]/hook", "fd12:3456::1 is a private address"),
    ("IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1 is a loopback address"),
    ("NAT64 of a private address", "http://[64:ff9b::a00:1]/hook", "64:ff9b::a00:1 is a private address"),
    ("6to4 of a private address", "http://[2002:c0a8:101::]/hook", "2002:c0a8:101:: is a private address"),
    ("unresolvable host", "https://hooks.invalid/lookout", "host hooks.invalid does not resolve"),
]


@pytest.mark.parametrize(("case", "url", "message"), BAD_WEBHOOKS, ids=[c[0] for c in BAD_WEBHOOKS])
def test_a_webhook_url_into_internal_networks_is_refused(api, redis_client, keys, case, url, message):
    assert api.post("/queries", json=_body()).status_code == 201
    before = _stored(redis_client, keys)
    fields = _fields(api.post("/queries", json=_body(**_webhook(url))))
    assert list(fields) == ["delivery.webhook_url"], case
    assert message in fields["delivery.webhook_url"], case
    assert _stored(redis_client, keys) == before


def test_public_and_allow_listed_webhook_hosts_are_accepted(make_app):
    with TestClient(make_app()) as api:
        assert api.post("/queries", json=_body(**_webhook("https://1.1.1.1/hook"))).status_code == 201
    allowing = make_app(webhook=WebhookSettings(allow_hosts=["127.0.0.1", "LOCALHOST"]))
    with TestClient(allowing) as api:
        for url in ("http://127.0.0.1:8080/hook", "http://localhost:8080/hook"):
            created = api.post("/queries", json=_body(**_webhook(url)))
            assert created.status_code == 201, created.text
            assert created.json()["delivery"] == {
                "webhook_url": url,
                "webhook_secret": "**********",
                "kafka": True,
            }
        # The allow-list names hosts: another loopback address is still refused.
        fields = _fields(api.post("/queries", json=_body(**_webhook("http://127.0.0.2/hook"))))
        assert fields["delivery.webhook_url"].startswith("127.0.0.2 is a loopback address")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8081/stac", "127.0.0.1 is a loopback address; the watcher may only reach public"),
        ("http://169.254.169.254/stac", "169.254.169.254 is a link-local address"),
        ("ftp://stac.example.com/", "URL scheme should be 'http' or 'https'"),
    ],
)
def test_a_query_stac_api_into_internal_networks_is_refused(api, redis_client, keys, url, message):
    before = _stored(redis_client, keys)
    fields = _fields(api.post("/queries", json=_body(stac_api=url)))
    assert list(fields) == ["stac_api"]
    assert message in fields["stac_api"]
    assert _stored(redis_client, keys) == before


def test_a_bad_update_is_refused_and_the_query_is_unchanged(api, redis_client, keys):
    query = api.post("/queries", json=_body(**_webhook("https://1.1.1.1/hook"))).json()
    path = f"/queries/{query['id']}"
    before = _stored(redis_client, keys)
    refused = {
        "threshold": {"threshold": 2},
        "text": {"text": ""},
        "aoi": {"aoi": BOWTIE},
        "collections": {"collections": ["landsat-c2-l2"]},
        "delivery.webhook_url": _webhook("http://169.254.169.254/latest/meta-data/"),
        "status": {"status": "deleted"},
    }
    for field, update in refused.items():
        assert list(_fields(api.patch(path, json=update))) == [field]
    assert _stored(redis_client, keys) == before
    detail = api.get(path).json()
    assert detail.pop("skipped")["total"] == 0  # GET /queries/{id} adds the scenes skipped for it
    assert detail == query


# --- request size -------------------------------------------------------------------------------------
def test_an_oversized_body_is_refused_with_413_declared_or_streamed(make_app, redis_client, keys):
    small = json.dumps(_body(aoi=_circle(40))).encode()
    big = json.dumps(_body(aoi=_circle(400))).encode()
    assert len(small) < 4096 < len(big)
    with ApiServer(make_app(max_body_bytes=4096)) as server, httpx.Client(base_url=server.url) as http:
        assert (
            http.post("/queries", content=small, headers={"content-type": "application/json"}).status_code
            == 201
        )
        before = _stored(redis_client, keys)
        declared = http.post("/queries", content=big, headers={"content-type": "application/json"})

        def chunks() -> Iterator[bytes]:  # no Content-Length: the body arrives chunked
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        streamed = http.post("/queries", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in streamed.request.headers
    expected = {"detail": "request body larger than api.max_body_bytes (4096 bytes)"}
    assert (declared.status_code, declared.json()) == (413, expected)
    assert (streamed.status_code, streamed.json()) == (413, expected)
    assert _stored(redis_client, keys) == before


# --- rate limits ----------------------------------------------------------------------------------------
def test_each_tenant_is_rate_limited_on_its_own_with_retry_after(make_app, redis_client, keys):
    acme, globex = {"X-Lookout-Tenant": "acme"}, {"X-Lookout-Tenant": "globex"}
    with TestClient(make_app(rate_limit="3/minute")) as api:
        assert [api.get("/queries", headers=acme).status_code for _ in range(3)] == [200, 200, 200]
        before = _stored(redis_client, keys)
        limited = api.post("/queries", json=_body(), headers=acme)
        retry_after = int(limited.headers["retry-after"])
        assert (limited.status_code, limited.json()) == (
            429,
            {"detail": f"rate limit 3 per 1 minute of tenant acme exceeded; retry in {retry_after} s"},
        )
        assert 1 <= retry_after <= 60
        assert _stored(redis_client, keys) == before
        assert api.get("/queries", headers=globex).status_code == 200  # another tenant's own window
        assert api.get("/healthz").status_code == 200  # not tenant-scoped, not limited
    windows = list(redis_client.scan_iter(match=f"{keys.rate_limits()}*"))
    assert sorted(w.decode().split("/")[1] for w in windows) == ["acme", "globex"]


# --- API keys -----------------------------------------------------------------------------------------
def test_api_keys_are_required_checked_and_revocable(make_app, key_store, redis_client, keys):
    acme = key_store.issue("acme")
    key_id = acme.record.key_id
    with TestClient(make_app(auth_mode="api_key", key_pepper=PEPPER)) as api:

        def answer(headers: dict[str, str]) -> tuple[int, str]:
            response = api.get("/queries", headers=headers)
            return response.status_code, response.json()["detail"] if response.status_code != 200 else ""

        missing = api.get("/queries", headers={"X-Lookout-Tenant": "acme"})  # the open-mode header alone
        assert (missing.status_code, missing.json()) == (
            401,
            {"detail": "missing API key: send it in the X-API-Key header"},
        )
        assert missing.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
        assert answer({"X-API-Key": "hunter2"}) == (
            401,
            "malformed API key: expected lk_<12 hex digits>_<43 characters>",
        )
        forged = f"lk_{key_id}_{'A' * 43}"  # a real key id with a guessed secret
        assert answer({"X-API-Key": forged}) == (401, f"unknown API key lk_{key_id}_...")
        assert answer({"X-API-Key": acme.key}) == (200, "")

        created = api.post("/queries", json=_body(), headers={"X-API-Key": acme.key})
        assert created.json()["tenant"] == "acme"
        before = _stored(redis_client, keys)
        claimed = api.post(
            "/queries", json=_body(), headers={"X-API-Key": acme.key, "X-Lookout-Tenant": "globex"}
        )
        assert (claimed.status_code, claimed.json()) == (
            403,
            {"detail": "X-Lookout-Tenant 'globex' does not match the tenant of the API key ('acme')"},
        )
        assert _stored(redis_client, keys) == before
        assert (
            api.get("/queries", headers={"X-API-Key": acme.key, "X-Lookout-Tenant": "acme"}).status_code
            == 200
        )

        for path in ("/healthz", "/metrics", "/", "/conformance"):  # probes and discovery stay open
            assert api.get(path).status_code == 200, path
        schemes = api.get("/openapi.json").json()["components"]["securitySchemes"]
        assert schemes["APIKeyHeader"] == {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "a key from `lookout tenant add NAME`",
        }

        revoked_at = key_store.revoke(key_id).revoked
        status, detail = answer({"X-API-Key": acme.key})
        assert (status, detail) == (401, f"API key lk_{key_id}_... was revoked at {revoked_at.isoformat()}")

    # Only an HMAC of the key is stored; an API with another pepper cannot check it at all.
    record = redis_client.hgetall(keys.api_key(key_id))
    assert set(record) == {b"tenant", b"digest", b"created", b"revoked"}
    assert acme.key.split("_", 2)[2].encode() not in b"".join(record.values())
    other = ApiKeyStore(redis_client, keys, PEPPER[::-1]).issue("initech")
    with TestClient(make_app(auth_mode="api_key", key_pepper=PEPPER)) as api:
        assert api.get("/queries", headers={"X-API-Key": other.key}).status_code == 401


# --- tenant isolation, every route family, with API keys ----------------------------------------------
def test_a_tenant_cannot_reach_another_tenants_data_through_any_route(
    make_app, key_store, redis_client, keys
):
    acme, globex = ({"X-API-Key": key_store.issue(t).key} for t in ("acme", "globex"))
    app = make_app(auth_mode="api_key", key_pepper=PEPPER, webhook=WebhookSettings(allow_hosts=["127.0.0.1"]))
    with ApiServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        mine = http.post("/queries", json=_body(**_webhook("http://127.0.0.1:9/acme")), headers=acme).json()
        theirs = http.post("/queries", json=_body(), headers=globex).json()
        a, b = mine["id"], theirs["id"]
        detection = _write_detection(redis_client, keys, a, "item-a")
        their_detection = _write_detection(redis_client, keys, b, "item-b")
        before = _stored(redis_client, keys)

        attempts = {
            "read the query": ("GET", f"/queries/{a}", None),
            "pause the query": ("PATCH", f"/queries/{a}", {"status": "paused"}),
            "redirect its webhook": ("PATCH", f"/queries/{a}", _webhook("http://127.0.0.1:9/globex")),
            "delete the query": ("DELETE", f"/queries/{a}", None),
            "list its detections": ("GET", f"/queries/{a}/detections", None),
            "subscribe to its stream": ("GET", f"/queries/{a}/stream?from=0", None),
            "read its collection": ("GET", f"/collections/{a}", None),
            "page its items": ("GET", f"/collections/{a}/items", None),
            "read one of its items": ("GET", f"/collections/{a}/items/{detection.id}", None),
        }
        for attack, (method, path, body) in attempts.items():
            response = http.request(method, path, json=body, headers=globex)
            assert (response.status_code, response.json()) == (404, {"detail": f"query {a} not found"}), (
                attack
            )
        # Its detection id through the attacker's own collection: that collection has no such item.
        smuggled = http.get(f"/collections/{b}/items/{detection.id}", headers=globex)
        assert (smuggled.status_code, smuggled.json()) == (
            404,
            {"detail": f"detection {detection.id} not found in query {b}"},
        )
        assert _stored(redis_client, keys) == before

        # Each tenant's lists hold only its own.
        assert [q["id"] for q in http.get("/queries", headers=globex).json()["queries"]] == [b]
        assert [c["id"] for c in http.get("/collections", headers=globex).json()["collections"]] == [b]
        assert [q["id"] for q in http.get("/queries", headers=acme).json()["queries"]] == [a]
        assert [c["id"] for c in http.get("/collections", headers=acme).json()["collections"]] == [a]
        # The owner still reads everything, webhook configuration included (secret masked).
        owned = http.get(f"/queries/{a}", headers=acme).json()
        assert owned.pop("skipped")["total"] == 0  # the detail view adds the scenes skipped for it
        assert owned == mine
        assert mine["delivery"]["webhook_url"] == "http://127.0.0.1:9/acme"
        for path in (f"/queries/{a}/detections", f"/collections/{a}/items"):
            assert [f["id"] for f in http.get(path, headers=acme).json()["features"]] == [detection.id]
        assert http.get(f"/collections/{a}/items/{detection.id}", headers=acme).json()["id"] == detection.id
        for key, query_id, expected in ((acme, a, detection), (globex, b, their_detection)):
            with http.stream(
                "GET", f"/queries/{query_id}/stream", params={"from": "0"}, headers=key
            ) as stream:
                assert stream.status_code == 200
                data = next(line for line in stream.iter_lines() if line.startswith("data:"))
            assert json.loads(data[5:])["id"] == expected.id


# --- webhook delivery re-checks the URL (DNS rebinding) and connects to the address it checked --------
class HookReceiver(BackgroundHttpServer):
    """An HTTP endpoint on 127.0.0.1 that records (Host header, feature id) of every POST it answers."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                feature = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((self.headers["Host"], feature["id"]))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
                pass

        super().__init__(Handler)


def test_delivery_rechecks_the_webhook_host_and_posts_to_the_checked_address(redis_client, keys):
    fast = WebhookSettings(
        max_attempts=2, backoff=Backoff(initial_s=0.01, max_s=0.01, jitter_s=0), timeout_s=5
    )
    with HookReceiver() as receiver:
        # A query whose host resolved to a public address when it was registered, and now resolves to
        # loopback (DNS rebinding): stored directly, as the API accepted it then.
        url = f"http://localhost:{receiver.port}/hook"
        query = QueryStore(redis_client, keys).create(QueryCreate(**_body(**_webhook(url))))
        detection = _write_detection(redis_client, keys, query.id, "item-1")
        stream = keys.detection_stream(query.id)

        guarded = WebhookDispatcher(redis_client, fast, keys=keys, consumer="api-1")
        try:
            report = guarded.run_once()
        finally:
            guarded.close()
        assert (report.delivered, report.failed) == (0, 1)
        assert receiver.received == []  # not one request reached the internal address
        failure = redis_client.xrange(keys.webhook_failures(query.id))[0][1]
        assert (failure[b"reason"], failure[b"attempts"]) == (b"refused", b"1")  # refused at once, no retry
        assert failure[b"detail"].decode().startswith("delivery.webhook_url: localhost resolves to ")
        assert _INTERNAL in failure[b"detail"].decode()
        assert redis_client.xpending(stream, WEBHOOK_GROUP)["pending"] == 1  # kept for a later pass

        # The operator allow-lists the host: the entry is delivered, to the address that was checked,
        # with the registered host name in the Host header.
        trusting = WebhookDispatcher(
            redis_client,
            fast.model_copy(update={"allow_hosts": ["localhost"], "redeliver_after_s": 0.001}),
            keys=keys,
            consumer="api-2",
        )
        try:
            report = trusting.run_once()
        finally:
            trusting.close()
    assert (report.delivered, report.failed) == (1, 0)
    assert receiver.received == [(f"localhost:{receiver.port}", detection.id)]
    assert redis_client.xpending(stream, WEBHOOK_GROUP)["pending"] == 0


# --- tenant administration: `lookout tenant add|list|revoke` --------------------------------------------
def test_tenant_commands_issue_list_and_revoke_keys(monkeypatch, capsys, stack_settings, make_app, keys):
    monkeypatch.setenv("LOOKOUT_REDIS__URL", stack_settings.redis.url)
    monkeypatch.setenv("LOOKOUT_NAMESPACE__REDIS_PREFIX", keys.prefix)
    parser = argparse.ArgumentParser(prog="lookout")
    add_tenant_commands(parser.add_subparsers(dest="command", required=True))

    def lookout(*argv: str) -> tuple[str, str]:
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        captured = capsys.readouterr()
        return captured.out, captured.err

    with pytest.raises(SystemExit, match=r"api\.key_pepper is not set: export LOOKOUT_API__KEY_PEPPER"):
        lookout("tenant", "list")
    monkeypatch.setenv("LOOKOUT_API__KEY_PEPPER", PEPPER)

    out, err = lookout("tenant", "add", "acme")
    key = out.strip()
    key_id = key.split("_")[1]
    assert out == f"{key}\n"  # the key alone on stdout, once
    assert err.startswith(f"key id {key_id} for tenant acme: store the key above now, it is not shown again")
    with TestClient(make_app(auth_mode="api_key", key_pepper=PEPPER)) as api:
        assert api.get("/queries", headers={"X-API-Key": key}).status_code == 200

        (line,) = lookout("tenant", "list")[0].splitlines()
        assert line.split()[:2] == [key_id, "acme"]
        assert line.endswith("active")
        assert key not in line

        assert lookout("tenant", "revoke", key_id)[0] == f"revoked key {key_id} of tenant acme\n"
        assert "revoked" in lookout("tenant", "list")[0]
        assert api.get("/queries", headers={"X-API-Key": key}).status_code == 401

    with pytest.raises(SystemExit, match="no API key with id 'ffffffffffff'"):
        lookout("tenant", "revoke", "ffffffffffff")
    with pytest.raises(SystemExit, match="tenant 'a b': 1-64 letters"):
        lookout("tenant", "add", "a b")
