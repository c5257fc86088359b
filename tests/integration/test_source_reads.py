"""Sources read as their watcher.sources entries say, against local servers on 127.0.0.1:

- Planetary Computer signing by the real `planetary-computer` package, against a local SAS token endpoint
  (PC_SDK_SAS_URL); GDAL reaches the "blob storage" host through a local HTTP proxy that checks the token.
- s3:// hrefs through GDAL's /vsis3/ with a source's S3 options, against a local S3-compatible endpoint
  (path-style GETs; it records the signature and the requester-pays header, it does not verify them).
- API headers from the environment on STAC API searches and item reads, asset headers on image reads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from planetary_computer import sas
from planetary_computer.settings import Settings as PlanetaryComputerSettings

from services.api.quicklook import render_quicklook
from services.scenes import (
    AssetPolicy,
    PermanentSceneError,
    SceneInputs,
    SourceAccess,
    TransientSceneError,
    open_image,
)
from services.settings import S3Settings, SettingsError, SourceSettings, StacSettings
from services.watcher import open_source
from tests.support.http_server import BackgroundHttpServer
from tests.support.rasters import write_rgb_cog

pytestmark = pytest.mark.integration

PC = "https://planetarycomputer.microsoft.com/api/stac/v1"
BLOB_HREF = "http://naipeuwest.blob.core.windows.net/naip/v002/mt/2023/scene.tif"
SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZQ"  # what the token endpoint signs with, and the store expects


class Recorded:
    """Requests a test server saw: (method, URL or path, headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def headers(self, name: str) -> list[str | None]:
        return [headers.get(name) for _, _, headers in self.requests]


def _serving(body: bytes, recorded: Recorded, allow: Callable[[str, dict[str, str]], int]) -> type:
    """A handler serving `body` (HEAD, GET with one Range) at any path, after `allow(path, headers)`
    answers 200 (else that status)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet."""

        def _answer(self, with_body: bool) -> None:
            headers = dict(self.headers)
            recorded.requests.append((self.command, self.path, headers))
            status = allow(self.path, headers)
            if status != 200:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = 0, len(body) - 1
            if "Range" in self.headers:
                first, last = self.headers["Range"].removeprefix("bytes=").split("-")
                start, end = int(first), min(int(last), len(body) - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if with_body:
                self.wfile.write(body[start : end + 1])

        def do_HEAD(self) -> None:
            self._answer(False)

        def do_GET(self) -> None:
            self._answer(True)

    return Handler


@pytest.fixture(scope="module")
def cog(tmp_path_factory) -> bytes:
    return write_rgb_cog(tmp_path_factory.mktemp("cog") / "scene.tif").read_bytes()


class TokenEndpoint:
    """A local Planetary Computer SAS endpoint: GET /token/{account}/{container}."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.mode = "ok"  # ok | wrong | refuse | hang
        self.release = threading.Event()


@pytest.fixture
def token_endpoint(monkeypatch) -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            endpoint.asked.append(self.path)
            if endpoint.mode == "hang":
                endpoint.release.wait(30)
            if endpoint.mode in ("refuse", "hang"):
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            signature = SIGNATURE if endpoint.mode == "ok" else "d3Jvbmc"
            validity = "st=2026-01-01T00%3A00%3A00Z&se=2026-01-01T01%3A00%3A00Z&sp=rl&sv=2024-05-04&sr=c"
            token = f"{validity}&sig={signature}"
            payload = json.dumps({"msft:expiry": expiry, "token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with BackgroundHttpServer(Handler) as server:
        # The package reads PC_SDK_SAS_URL once into its cached Settings; tokens are cached per URL.
        monkeypatch.setenv("PC_SDK_SAS_URL", f"http://127.0.0.1:{server.port}/token")
        monkeypatch.setattr(sas, "TOKEN_CACHE", {})
        PlanetaryComputerSettings.get.cache_clear()
        try:
            yield endpoint
        finally:
            endpoint.release.set()
            PlanetaryComputerSettings.get.cache_clear()


@pytest.fixture
def blob_store(cog, monkeypatch) -> Iterator[Recorded]:
    """The "blob storage" host, reached through GDAL_HTTP_PROXY: serves the COG to requests signed with
    SIGNATURE, 403 to others."""
    recorded = Recorded()

    def signed(url: str, headers: dict[str, str]) -> int:
        return 200 if parse_qs(urlsplit(url).query).get("sig") == [SIGNATURE] else 403

    with BackgroundHttpServer(_serving(cog, recorded, signed)) as server:
        monkeypatch.setenv("GDAL_HTTP_PROXY", f"127.0.0.1:{server.port}")
        yield recorded


def _planetary_inputs(hosts: list[str]) -> SceneInputs:
    access = SourceAccess(name=PC, signing="planetary-computer")
    return SceneInputs(("image",), AssetPolicy.allowing(["http"], hosts), timeout_s=5, sources=(access,))


def test_a_planetary_computer_image_is_signed_right_before_the_read(token_endpoint, blob_store):
    inputs = _planetary_inputs([".blob.core.windows.net"])
    item = {"type": "Feature", "id": "m_4911664", "assets": {"image": {"href": BLOB_HREF}}}
    image = inputs.choose_image(item)
    assert image.href == BLOB_HREF  # the item and its choice stay unsigned
    access = inputs.access(source=PC)

    first = render_quicklook(image.href, 64, timeout_s=5, policy=inputs.policy, access=access)
    second = render_quicklook(image.href, 64, timeout_s=5, policy=inputs.policy, access=access)

    assert first == second
    assert token_endpoint.asked == ["/token/naipeuwest/naip"]  # one token, from the package's cache after
    urls = [url for _, url, _ in blob_store.requests]
    assert urls
    assert all(url.startswith(BLOB_HREF + "?st=") and f"sig={SIGNATURE}" in url for url in urls)


def test_an_image_outside_the_allow_list_is_refused_before_a_token_is_asked(token_endpoint, blob_store):
    inputs = _planetary_inputs(["cdn.example.com"])
    item = {"type": "Feature", "id": "m_4911664", "assets": {"image": {"href": BLOB_HREF}}}
    with pytest.raises(PermanentSceneError, match=r"host 'naipeuwest\.blob\.core\.windows\.net' is not in"):
        inputs.choose_image(item)
    assert token_endpoint.asked == []
    assert blob_store.requests == []


def test_a_refused_signed_read_never_shows_the_token(token_endpoint, blob_store, caplog):
    caplog.set_level(logging.INFO)
    token_endpoint.mode = "wrong"
    inputs = _planetary_inputs([".blob.core.windows.net"])
    access = inputs.access(source=PC)
    with (
        pytest.raises(PermanentSceneError) as excinfo,
        open_image(BLOB_HREF, timeout_s=5, policy=inputs.policy, access=access),
    ):
        pytest.fail("a refused read opens nothing")
    assert excinfo.value.code == "asset_refused"
    assert "HTTP 403" in str(excinfo.value)
    assert BLOB_HREF in str(excinfo.value)
    assert blob_store.requests, "the signed URL was read"
    for text in (str(excinfo.value), repr(excinfo.value.__cause__), caplog.text):
        assert "d3Jvbmc" not in text
        assert "sig=" not in text


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("refuse", PermanentSceneError, "the SAS token endpoint answered HTTP 403"),
        ("hang", TransientSceneError, "no SAS token from the Planetary Computer within 0.5 s"),
    ],
)
def test_a_token_endpoint_that_refuses_or_hangs_is_a_scene_failure(token_endpoint, mode, error, message):
    token_endpoint.mode = mode
    access = SourceAccess(name=PC, signing="planetary-computer")
    started = time.monotonic()
    with pytest.raises(error, match=message):
        access.signed(BLOB_HREF, timeout_s=0.5)
    assert time.monotonic() - started < 5


@pytest.fixture
def s3_endpoint(cog) -> Iterator[tuple[str, Recorded]]:
    """A local S3-compatible endpoint (path-style: /bucket/key); serves the COG at any key."""
    recorded = Recorded()
    with BackgroundHttpServer(_serving(cog, recorded, lambda path, headers: 200)) as server:
        yield f"http://127.0.0.1:{server.port}", recorded


def test_a_requester_pays_s3_image_is_read_signed_with_the_payer_header(s3_endpoint, monkeypatch):
    endpoint, recorded = s3_endpoint
    # GDAL's own credential search, from the environment (fake keys: the endpoint does not verify).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOOKOUTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    s3 = S3Settings(no_sign_request=False, requester_pays=True, region="us-west-2", endpoint=endpoint)
    access = SourceAccess(name="https://earth-search.aws.element84.com/v1", s3=s3)
    policy = AssetPolicy.allowing(["s3"], ["usgs-landsat"])
    href = "s3://usgs-landsat/collection02/level-2/paid.tif"

    with open_image(href, timeout_s=5, policy=policy, access=access) as (dataset, _):
        assert dataset.count == 3

    assert {path for _, path, _ in recorded.requests} == {"/usgs-landsat/collection02/level-2/paid.tif"}
    assert set(recorded.headers("x-amz-request-payer")) == {"requester"}
    authorizations = recorded.headers("Authorization")
    assert all(a and a.startswith("AWS4-HMAC-SHA256 Credential=AKIDLOOKOUTTEST/") for a in authorizations)
    assert all("/us-west-2/s3/aws4_request" in a for a in authorizations)


def test_a_public_s3_image_is_read_unsigned_by_default(s3_endpoint, monkeypatch):
    endpoint, recorded = s3_endpoint
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOOKOUTTEST")  # present, and still not used
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    access = SourceAccess(s3=S3Settings(endpoint=endpoint))
    policy = AssetPolicy.allowing(["s3"], ["maxar-opendata"])

    with open_image("s3://maxar-opendata/events/public.tif", timeout_s=5, policy=policy, access=access):
        pass

    assert recorded.requests
    assert set(recorded.headers("Authorization")) == {None}
    assert set(recorded.headers("x-amz-request-payer")) == {None}


def test_asset_headers_go_with_http_image_reads(cog):
    recorded = Recorded()

    def keyed(path: str, headers: dict[str, str]) -> int:
        return 200 if headers.get("X-API-Key") == "k-1, with a comma" else 401

    access = SourceAccess(asset_headers={"X-API-Key": "k-1, with a comma"})
    with BackgroundHttpServer(_serving(cog, recorded, keyed)) as server:
        policy = AssetPolicy.allowing(["http"], ["127.0.0.1"])
        with open_image(
            f"http://127.0.0.1:{server.port}/scene.tif", timeout_s=5, policy=policy, access=access
        ):
            pass
        with (
            pytest.raises(PermanentSceneError, match="HTTP 401"),  # without the source's headers
            open_image(f"http://127.0.0.1:{server.port}/other.tif", timeout_s=5, policy=policy),
        ):
            pytest.fail("a refused read opens nothing")
    assert "k-1, with a comma" in recorded.headers("X-API-Key")


def _item_server(item: dict, recorded: Recorded, redirect_to: str | None = None) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            recorded.requests.append(("GET", self.path, dict(self.headers)))
            if redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(item).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def test_item_reads_send_the_api_headers_to_the_api_only():
    item = {"type": "Feature", "id": "i-1", "assets": {}}
    api, mirror = Recorded(), Recorded()
    with BackgroundHttpServer(_item_server(item, mirror)) as other:
        moved = f"http://127.0.0.1:{other.port}/items/i-1.json"
        with BackgroundHttpServer(_item_server(item, api, redirect_to=moved)) as server:
            base = f"http://127.0.0.1:{server.port}/v1"
            access = SourceAccess(name=base, api_headers={"X-API-Key": "api-secret"})
            inputs = SceneInputs(("visual",), AssetPolicy.allowing(["http"]), timeout_s=5, sources=(access,))
            assert inputs.read_item(f"{base}/collections/c/items/i-1") == item
    assert api.headers("X-API-Key") == ["api-secret"]
    assert mirror.headers("X-API-Key") == [None]  # another origin, after a redirect


def test_a_stac_api_source_sends_its_headers_from_the_environment(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    recorded = Recorded()

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet."""

        def _json(self, document: dict) -> None:
            recorded.requests.append((self.command, self.path, dict(self.headers)))
            if self.headers.get("X-API-Key") != "stac-secret":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            self._json(
                {
                    "type": "Catalog",
                    "id": "keyed",
                    "stac_version": "1.0.0",
                    "description": "a STAC API that wants an API key",
                    "conformsTo": [
                        "https://api.stacspec.org/v1.0.0/core",
                        "https://api.stacspec.org/v1.0.0/item-search",
                    ],
                    "links": [
                        {"rel": "self", "href": base},
                        {"rel": "root", "href": base},
                        {
                            "rel": "search",
                            "href": f"{base}/search",
                            "method": "POST",
                            "type": "application/geo+json",
                        },
                    ],
                }
            )

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._json({"type": "FeatureCollection", "features": [], "links": []})

    with BackgroundHttpServer(Api) as server:
        entry = SourceSettings(
            url=f"http://127.0.0.1:{server.port}", headers_from_env={"X-API-Key": "LOOKOUT_TEST_STAC_KEY"}
        )
        with pytest.raises(SettingsError, match="LOOKOUT_TEST_STAC_KEY is not set"):
            open_source(entry, StacSettings())
        monkeypatch.setenv("LOOKOUT_TEST_STAC_KEY", "stac-secret")
        source = open_source(entry, StacSettings(max_retries=0))
        aoi = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
        assert source.search("c", aoi, datetime(2026, 1, 1, tzinfo=UTC), 10) == []

    assert {method for method, _, _ in recorded.requests} == {"GET", "POST"}
    assert set(recorded.headers("X-API-Key")) == {"stac-secret"}
    assert "stac-secret" not in caplog.text
