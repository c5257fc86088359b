"""STAC API access: search through pystac-client, publish through the Transactions extension."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
import pystac
from pystac_client import Client
from pystac_client.stac_api_io import StacApiIO

from services.settings import StacSettings

# Item-search extension conformance of any STAC API 1.x version. pystac-client 0.9 recognises only 1.0.x
# URIs, while stac-fastapi (pgstac) declares sort as 1.1.0: without this the watcher would never ask for
# sorted results.
_ITEM_SEARCH_EXTENSION = re.compile(
    r"^https://api\.stacspec\.org/v1\.\d+\.\d+(-[\w.]+)?/item-search#(?P<extension>[\w-]+)$"
)
# The extensions the watcher uses; pystac-client's conformance classes of the same names, upper-case.
_USED_EXTENSIONS = frozenset({"sort", "filter", "query"})
CQL2_JSON = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"

# How an API filters items by a property: a CQL2-JSON ``filter`` (Filter extension) or a ``query`` (Query
# extension).
PropertyFilter = Literal["filter", "query"]


class StacResponseError(Exception):
    """A STAC API answered with something that is not the STAC document asked for."""


class CheckedStacApiIO(StacApiIO):
    """pystac-client's HTTP layer, refusing answers that are not STAC.

    pystac-client reads a search page without a ``features`` list as the end of the results, so an
    API (or a proxy in front of it) answering with some other JSON would look like an API with no new
    items; here such a page is an error, and the watcher backs off and searches again.
    """

    def read_json(self, source: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The JSON object at ``source``; raises StacResponseError for any other JSON value."""
        data = super().read_json(source, *args, **kwargs)
        if not isinstance(data, dict):
            href = source.href if isinstance(source, pystac.Link) else source
            raise StacResponseError(f"{href}: answered a JSON {type(data).__name__}, not a JSON object")
        return data

    def get_pages(
        self, url: str, method: str | None = None, parameters: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Pages of a paging endpoint (``/search``, ``/collections``), following ``next`` links; each
        page must hold a ``features`` or ``collections`` list (an empty one ends the results).

        A ``next`` link either POSTs a ``body`` (pgstac's paging token, merged with the search when the link
        says ``merge``) or GETs its href (a ``?token=`` of its own, as some catalogs page even POSTed
        searches); pystac-client follows both. A relative href is resolved against the page's URL here.
        """
        page = self.read_json(url, method=method, parameters=parameters)
        where = url
        while True:
            entries = page.get("features", page.get("collections"))
            if not isinstance(entries, list):
                raise StacResponseError(
                    f"{where}: page has no 'features' or 'collections' list (keys {sorted(page)[:10]})"
                )
            if not entries:
                return
            yield page
            link = next((lk for lk in page.get("links") or [] if lk.get("rel") == "next"), None)
            if link is None:
                return
            if not link.get("href"):
                raise StacResponseError(f"{where}: 'next' link without an href")
            link = link | {"href": urljoin(where, str(link["href"]))}
            where = link["href"]
            page = self.read_json(pystac.Link.from_dict(link), parameters=parameters)


def item_search_extensions(conforms_to: list[str]) -> set[str]:
    """The item-search extensions (``sort``, ``filter``, ``query``, ...) a landing page's ``conformsTo``
    declares, in any STAC API 1.x version."""
    return {match["extension"] for uri in conforms_to if (match := _ITEM_SEARCH_EXTENSION.match(uri))}


def property_filter(conforms_to: list[str]) -> PropertyFilter | None:
    """How an API can filter items by a property value: CQL2-JSON ``filter``, else the Query extension's
    ``query``; None when it declares neither."""
    extensions = item_search_extensions(conforms_to)
    if "filter" in extensions and CQL2_JSON in conforms_to:
        return "filter"
    if "query" in extensions:
        return "query"
    return None


def at_or_after(field: str, since: datetime, how: PropertyFilter) -> dict[str, Any]:
    """pystac-client search arguments for items whose ``field`` property is at or after ``since``.

    The time goes as a string, not a CQL2 ``timestamp``: pgstac compares a property that is no declared
    date-time queryable as text and refuses a timestamp against it (HTTP 500), while a declared one, and
    Elasticsearch-backed APIs, parse the string. Written with six fractional digits and ``Z``, even a text
    comparison never leaves out a UTC (``Z``) time at or after ``since``, with or without fractional
    seconds; at worst it takes in one from the same second.
    """
    literal = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if how == "filter":
        return {"filter": {"op": ">=", "args": [{"property": field}, literal]}, "filter_lang": "cql2-json"}
    return {"query": {field: {"gte": literal}}}


def open_stac_api(
    settings: StacSettings, url: str | None = None, *, headers: Mapping[str, str] | None = None
) -> Client:
    """Open a STAC API with a timeout per request and retries of failed connections; `headers` go with
    every request (a source's API key, ``watcher.sources``).

    The timeout is passed to ``Client.open`` as well: given only to the StacApiIO, pystac-client
    replaces it with ``None`` (no timeout), and a hanging API would block the caller forever.
    """
    target = url or settings.api_url
    if not target:
        raise ValueError("stac.api_url: no STAC API URL configured (set LOOKOUT_STAC__API_URL)")
    stac_io = CheckedStacApiIO(
        headers=dict(headers or {}), max_retries=settings.max_retries, timeout=settings.timeout_s
    )
    client = Client.open(target, stac_io=stac_io, timeout=settings.timeout_s)
    for extension in item_search_extensions(client.get_conforms_to()) & _USED_EXTENSIONS:
        client.add_conforms_to(extension.upper())
    return client


class StacPublisher:
    """Writes collections and items to a STAC API that has the Transactions extension enabled."""

    def __init__(self, api_url: str, *, timeout_s: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_s)

    def put_collection(self, collection: pystac.Collection | dict[str, Any]) -> None:
        """Create the collection, or replace it if it exists."""
        body = collection.to_dict() if isinstance(collection, pystac.Collection) else collection
        response = self.http.post(f"{self.api_url}/collections", json=body)
        if response.status_code == 409:
            response = self.http.put(f"{self.api_url}/collections/{body['id']}", json=body)
        _raise_for_status(response, f"collection {body['id']}")

    def add_item(self, item: pystac.Item | dict[str, Any]) -> None:
        """Create the item, or replace it if it exists, in its collection."""
        body = item.to_dict() if isinstance(item, pystac.Item) else item
        collection = body.get("collection")
        if not collection:
            raise ValueError(f"item {body.get('id')}: 'collection' is required to publish it")
        base = f"{self.api_url}/collections/{collection}/items"
        response = self.http.post(base, json=body)
        if response.status_code == 409:
            response = self.http.put(f"{base}/{body['id']}", json=body)
        _raise_for_status(response, f"item {collection}/{body['id']}")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.is_error:
        raise RuntimeError(f"STAC API refused {what}: HTTP {response.status_code}: {response.text[:500]}")
