"""OGC API - Features read by a client nobody here wrote: GDAL's OAPIF driver (``ogrinfo``/``ogr2ogr``,
the reader QGIS shares its protocol with) against the API served on 127.0.0.1 over detections stored in
the real Redis. It lists the queries as layers, pages through more detections than one page by
following the ``next`` links, and has the server answer its bbox and datetime filters.

GDAL's HTTP requests are read from its debug log (``HTTP: Fetch(url)`` lines), so the test sees which
filters the server answered and which pages came from the server's links.
"""

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from shapely.geometry import box, shape

from services.api import create_app
from services.api.routes.ogc import MAX_LIMIT
from services.api.server import ApiServer
from services.contracts import Detection, Query, QueryCreate
from services.store import QueryStore
from tests.support.detections import make_detection, write_detections

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}
SCENES, PER_SCENE = 5, 6  # 30 detections: more than several pages of PAGE_SIZE
PAGE_SIZE = 7
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
FETCH = re.compile(r"HTTP: Fetch\((?P<url>[^)]*)\)")


def _square(lon: float, lat: float, size: float = 0.004) -> dict:
    """A square detection, its corners rounded to 7 decimals as the dispatcher writes them."""
    corners = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat)]
    return {"type": "Polygon", "coordinates": [[[round(x, 7), round(y, 7)] for x, y in corners]]}


def _gdal_environment() -> dict[str, str]:
    """This process's environment without proxies (every request here goes to 127.0.0.1)."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    """A GDAL command line with its debug log on stderr; fails the test on a non-zero exit or an error."""
    executable = shutil.which(tool)
    if executable is None:
        pytest.fail(
            f"{tool} is not installed: these tests need GDAL's command line tools (the Debian package "
            "gdal-bin: apt-get install -y gdal-bin; deploy/bootstrap.sh installs it)"
        )
    done = subprocess.run(
        [executable, *args, "--debug", "on"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_gdal_environment(),
        check=False,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    log = f"{tool} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, log
    assert not errors, log
    return done


def _read_all(url: str, layer: str, out: Path, *options: str) -> tuple[list[dict], list[str]]:
    """``ogr2ogr`` of one layer to the GeoJSON file ``out``: its features and the URLs GDAL fetched."""
    done = _run("ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{url}", layer, *options)
    features = json.loads(out.read_text())["features"]
    return features, [m["url"] for m in FETCH.finditer(done.stderr)]


def _feature_count(url: str, layer: str, *options: str) -> int:
    """What ``ogrinfo -so`` reports as the layer's feature count (the server's ``numberMatched``)."""
    done = _run("ogrinfo", "-ro", "-so", f"OAPIF:{url}", layer, *options)
    return int(re.search(r"^Feature Count: (\d+)$", done.stdout, re.MULTILINE)[1])


@pytest.fixture
def stored(redis_client, keys) -> tuple[Query, list[Detection], Query]:
    """A query with SCENES x PER_SCENE detections on a grid (scene k one day after scene k-1, in row
    k), and a second query with none."""
    queries = QueryStore(redis_client, keys)
    query = queries.create(QueryCreate(text="small airplanes", aoi=SQUARE, collections=["s2"]))
    empty = queries.create(QueryCreate(text="oil tanks", aoi=SQUARE, collections=["s2"]))
    detections = []
    for scene in range(SCENES):
        item_id = f"scene-{scene}"
        acquired = FIRST_DAY + timedelta(days=scene)
        scene_detections = [
            make_detection(
                query, "s2", item_id, _square(10.005 + 0.015 * i, 50.005 + 0.015 * scene), acquired=acquired
            )
            for i in range(PER_SCENE)
        ]
        detections += write_detections(redis_client, keys, query, "s2", item_id, scene_detections)
    return query, detections, empty


@pytest.fixture
def api_url(stack_settings, redis_client, keys) -> Iterator[str]:
    """The API on 127.0.0.1 (a free port) over the test's Redis keys."""
    settings = stack_settings.model_copy(
        update={"api": stack_settings.api.model_copy(update={"collections": None})}
    )
    with ApiServer(create_app(settings, redis_client=redis_client, keys=keys)) as server:
        yield server.url


def test_gdal_lists_each_standing_query_as_a_layer(api_url, stored):
    query, _, empty = stored
    done = _run("ogrinfo", "-ro", f"OAPIF:{api_url}")
    layers = re.findall(r"^\d+: (\w+) \(title: ([^)]*)\)", done.stdout, re.MULTILINE)
    assert sorted(layers) == sorted([(query.id, query.text), (empty.id, empty.text)])
    assert _feature_count(api_url, query.id) == SCENES * PER_SCENE
    assert _feature_count(api_url, empty.id) == 0


def test_gdal_pages_through_every_detection_by_the_next_links(api_url, stored, tmp_path):
    query, detections, _ = stored
    features, fetched = _read_all(
        api_url, query.id, tmp_path / "all.geojson", "-oo", f"PAGE_SIZE={PAGE_SIZE}"
    )

    ids = [f["properties"]["id"] for f in features]
    assert sorted(ids) == sorted(d.id for d in detections), "every detection, each once"
    # GDAL asks for the first page itself and follows the server's next links for the rest.
    offsets = [int(m[1]) for url in fetched if (m := re.search(r"[?&]offset=(\d+)", url))]
    assert offsets == list(range(PAGE_SIZE, len(detections), PAGE_SIZE))
    by_id = {d.id: d for d in detections}
    for feature in features:  # CRS84 lon/lat as stored, not swapped
        detection = by_id[feature["properties"]["id"]]
        assert shape(feature["geometry"]).equals(_shape(detection))
        assert feature["properties"]["item_id"] == detection.item_id


def test_the_server_answers_gdals_bbox_filter_on_every_page(api_url, stored, tmp_path):
    query, detections, _ = stored
    area = (10.0, 50.0, 10.045, 50.055)  # the first 3 columns of the first 4 rows, clear of the edges
    inside = {d.id for d in detections if box(*area).intersects(_shape(d))}
    assert len(inside) == 12  # four pages of 3

    spat = ["-spat", *(str(v) for v in area)]
    features, fetched = _read_all(api_url, query.id, tmp_path / "bbox.geojson", "-oo", "PAGE_SIZE=3", *spat)

    assert sorted(f["properties"]["id"] for f in features) == sorted(inside)
    pages = [url for url in fetched if f"/collections/{query.id}/items?" in url]
    filtered = [url for url in pages if "bbox=" in url]
    # After the unfiltered page GDAL reads to learn the layer's fields, every page is filtered by the
    # server: GDAL asks for the first, the server's next links carry the bbox on to the others.
    assert len(filtered) == 4
    assert pages[-len(filtered) :] == filtered
    assert _feature_count(api_url, query.id, *spat) == len(inside)


def test_the_server_answers_gdals_time_filter_on_acquisition(api_url, stored, tmp_path):
    query, detections, _ = stored
    since = FIRST_DAY + timedelta(days=3)
    where = f"acquired >= '{since:%Y-%m-%dT%H:%M:%SZ}'"
    features, fetched = _read_all(api_url, query.id, tmp_path / "since.geojson", "-where", where)
    # GDAL sends a comparison of a date-time field as ``datetime`` and then trusts the server's answer
    # (it does not filter again), so what it gets is the server's acquisition-time filter. (It sends
    # one on ``detected_at`` the same way: the server filters acquisition times, so GDAL's filters on
    # that field are wrong. OGC API - Features has one temporal filter per collection.)
    assert any("datetime=" in url for url in fetched)
    assert sorted(f["properties"]["id"] for f in features) == sorted(
        d.id for d in detections if d.acquired >= since
    )


def test_gdal_reads_one_detection_by_its_id(api_url, stored, tmp_path):
    query, detections, _ = stored
    wanted = detections[7]
    where = f"id = '{wanted.id}'"
    features, fetched = _read_all(api_url, query.id, tmp_path / "one.geojson", "-where", where)
    assert f"{api_url}/collections/{query.id}/items/{wanted.id}" in fetched
    assert [f["properties"]["id"] for f in features] == [wanted.id]


def test_a_page_size_above_the_maximum_is_served_as_the_maximum(api_url, stored, tmp_path):
    query, detections, _ = stored
    page_size = f"PAGE_SIZE={MAX_LIMIT * 2}"
    features, fetched = _read_all(api_url, query.id, tmp_path / "big.geojson", "-oo", page_size)
    assert len(features) == len(detections)
    assert any(f"limit={MAX_LIMIT * 2}" in url for url in fetched)  # sent as is, answered
    page = httpx.get(f"{api_url}/collections/{query.id}/items", params={"limit": MAX_LIMIT * 2}).json()
    self_link = next(link["href"] for link in page["links"] if link["rel"] == "self")
    assert f"limit={MAX_LIMIT}&" in self_link
    assert page["numberReturned"] == page["numberMatched"] == len(detections)


def _shape(detection: Detection):
    return shape(detection.geometry.model_dump(mode="json", exclude_none=True))
