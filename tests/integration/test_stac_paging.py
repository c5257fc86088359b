"""Paging and time filters of the watcher's STAC searches as real catalogs serve them.

- The real pgstac API pages a POSTed search with ``next`` links that POST a ``body`` holding a token
  (seen through the recording proxy of tests.support.faulty_proxy);
- a small local catalog pages POSTed searches with GET links holding only ``?token=``, relative to the
  page, as some catalogs do;
- pgstac finds items whose publication time (``created``) is at or after a time, through the Filter
  extension (CQL2 JSON) and the Query extension alike, sorted by it, and items with a datetime range
  by any overlap of the range with the window.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from shapely.geometry import box, mapping

from services.adapters.stac_client import StacPublisher, at_or_after, open_stac_api
from services.settings import StacSettings
from services.watcher import StacApiSource
from services.watcher.planning import sort_ascending
from tests.support.faulty_proxy import FaultyProxy
from tests.support.http_server import BackgroundHttpServer
from tests.support.stac import make_collection, make_item

AOI = box(-84.45, 33.60, -84.40, 33.65)
INSIDE = box(-84.43, 33.61, -84.42, 33.62)


def _noon(day: int) -> datetime:
    return datetime(2026, 6, day, 12, tzinfo=UTC)


@pytest.fixture
def collection(stack_settings) -> Iterator[tuple[str, StacPublisher]]:
    collection_id = f"paging-{uuid.uuid4().hex[:8]}"
    publisher = StacPublisher(stack_settings.stac.api_url)
    publisher.put_collection(make_collection(collection_id, [-180, -90, 180, 90], _noon(1)))
    yield collection_id, publisher
    publisher.close()


def _add(publisher: StacPublisher, collection_id: str, item_id: str, **properties: Any) -> None:
    """An item inside the AOI; ``properties`` replace or add to the placeholder's (``datetime=None``
    with ``start_datetime``/``end_datetime`` makes a range)."""
    body = make_item(item_id, collection_id, _noon(1), INSIDE).to_dict()
    body["properties"].update(properties)
    publisher.add_item(body)


def test_pgstac_pages_a_posted_search_by_post_bodies_and_every_page_is_read(stack_settings, collection):
    collection_id, publisher = collection
    for day in range(1, 6):
        _add(publisher, collection_id, f"d{day}", datetime=_noon(day).isoformat())
    with FaultyProxy(stack_settings.stac.api_url) as proxy:
        source = StacApiSource(proxy.url, stack_settings.stac, page_size=2)
        found = source.search(collection_id, mapping(AOI), _noon(1), max_items=100)
        searches = [r for r in proxy.requests if r.path.startswith("/search")]

    assert [item["id"] for item in found] == ["d1", "d2", "d3", "d4", "d5"]  # sorted, oldest first
    # Three pages: the search, then two POSTs of pgstac's next-link body (the search and a token).
    assert [r.method for r in searches] == ["POST", "POST", "POST"]
    bodies = [json.loads(r.body) for r in searches]
    assert "token" not in bodies[0]
    assert all(body["token"].startswith("next:") for body in bodies[1:])
    assert all(body["collections"] == [collection_id] and body["limit"] == 2 for body in bodies)


class TokenPagingCatalog(BaseHTTPRequestHandler):
    """A minimal STAC API: ``POST /search`` answers the first page; each page links the next as a
    relative GET ``search?token=N``, the search itself kept by the server. Items: ``ITEMS``."""

    ITEMS: ClassVar[list[dict[str, Any]]] = []
    PAGE = 2
    requests: ClassVar[list[tuple[str, str, dict[str, Any] | None]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, None))
        url = urlsplit(self.path)
        if url.path == "/":
            self._json(self._landing())
        elif url.path == "/search":
            self._json(self._page(int(parse_qs(url.query)["token"][0])))
        else:
            self._json({"code": "NotFound"}, status=404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body))
        self._json(self._page(0))

    def _landing(self) -> dict[str, Any]:
        root = f"http://{self.headers['Host']}"
        return {
            "type": "Catalog",
            "id": "token-paging",
            "description": "pages by GET token links",
            "stac_version": "1.0.0",
            "conformsTo": [
                "https://api.stacspec.org/v1.0.0/core",
                "https://api.stacspec.org/v1.0.0/item-search",
                "https://api.stacspec.org/v1.0.0/item-search#sort",
            ],
            "links": [
                {"rel": "self", "href": f"{root}/", "type": "application/json"},
                {"rel": "root", "href": f"{root}/", "type": "application/json"},
                {"rel": "search", "href": f"{root}/search", "type": "application/geo+json", "method": "POST"},
            ],
        }

    def _page(self, start: int) -> dict[str, Any]:
        end = start + self.PAGE
        links = [{"rel": "next", "href": f"search?token={end}"}] if end < len(self.ITEMS) else []
        return {"type": "FeatureCollection", "features": self.ITEMS[start:end], "links": links}

    def _json(self, document: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_a_catalog_paging_by_relative_get_token_links_is_read_to_the_end():
    items = [make_item(f"t{day}", "tokens", _noon(day), INSIDE).to_dict() for day in range(1, 6)]
    handler = type("Catalog", (TokenPagingCatalog,), {"ITEMS": items, "requests": []})
    with BackgroundHttpServer(handler) as server:
        source = StacApiSource(f"http://127.0.0.1:{server.port}", StacSettings(timeout_s=10), page_size=2)
        found = source.search("tokens", mapping(AOI), _noon(1), max_items=100)

    assert [item["id"] for item in found] == ["t1", "t2", "t3", "t4", "t5"]
    searches = [(method, path) for method, path, _ in handler.requests if path != "/"]
    assert searches == [("POST", "/search"), ("GET", "/search?token=2"), ("GET", "/search?token=4")]
    (first,) = [body for method, _, body in handler.requests if method == "POST"]
    assert first["collections"] == ["tokens"]
    assert first["datetime"].startswith("2026-06-01T12:00:00")


@pytest.mark.parametrize("how", ["filter", "query"])
def test_pgstac_finds_items_published_at_or_after_a_time_sorted_by_it(stack_settings, collection, how):
    collection_id, publisher = collection
    since = datetime(2026, 7, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    created = {
        "before": "2026-06-30T23:59:59.999Z",
        "same-second-earlier": "2026-07-01T00:00:00.1Z",
        "same-second-no-fraction": "2026-07-01T00:00:00Z",  # earlier, but let in by text: dedup's to drop
        "at": "2026-07-01T00:00:00.250Z",
        "whole-second-later": "2026-07-01T00:00:01Z",
        "hours-later": "2026-07-01T05:00:00.000Z",
    }
    for item_id, stamp in created.items():
        _add(publisher, collection_id, item_id, datetime=_noon(2).isoformat(), created=stamp)
    _add(publisher, collection_id, "unstamped", datetime=_noon(3).isoformat())
    client = open_stac_api(stack_settings.stac)

    search = client.search(
        collections=[collection_id], sortby=sort_ascending("created"), **at_or_after("created", since, how)
    )
    ids = [item["id"] for item in search.items_as_dicts()]
    # pgstac compares and sorts a property that is no declared queryable as text ("…00Z" after "…00.250Z").
    assert ids == ["at", "same-second-no-fraction", "whole-second-later", "hours-later"]


def test_pgstac_matches_a_datetime_range_that_overlaps_the_window_and_serves_it_without_datetime(
    stack_settings, collection
):
    collection_id, publisher = collection
    _add(
        publisher,
        collection_id,
        "june",
        datetime=None,
        start_datetime=_noon(1).isoformat(),
        end_datetime=_noon(30).isoformat(),
    )
    _add(publisher, collection_id, "june-10", datetime=_noon(10).isoformat())
    source = StacApiSource(stack_settings.stac.api_url, stack_settings.stac)

    def ids(start: datetime) -> list[str]:
        return [item["id"] for item in source.search(collection_id, mapping(AOI), start, 100)]

    assert ids(_noon(5)) == ["june", "june-10"]  # sorted by the range's start
    assert ids(_noon(20)) == ["june"]  # the range still overlaps the window
    assert ids(_noon(30) + timedelta(seconds=1)) == []
    (june,) = source.search(collection_id, mapping(AOI), _noon(20), 100)
    assert "datetime" not in june["properties"]
    assert june["properties"]["start_datetime"].startswith("2026-06-01T12:00:00")
