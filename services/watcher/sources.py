"""Scene sources behind one small interface: STAC APIs (pystac-client) and local static catalogs (pystac).

A source answers which items of a collection intersect an AOI and were acquired at or after a time
(a range: ends at or after it), oldest first, at most N of them; a STAC API that can filter by a
property also answers which were published at or after a time. Both return item JSON (dicts) with
absolute hrefs, the form that goes on the ``scenes`` topic. Hrefs are never signed here (``signing``
applies when an image is read: `services.scenes.access`); a STAC API source sends its
``headers_from_env`` with every request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pystac
import requests
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.errors import ClientTypeError
from pystac_client.exceptions import APIError
from pystac_client.warnings import DoesNotConformTo
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from services.adapters.stac_client import StacResponseError, at_or_after, open_stac_api, property_filter
from services.settings import SourceSettings, StacSettings
from services.watcher.planning import api_source_name, datetime_interval, item_datetime, sort_ascending

log = logging.getLogger(__name__)

# What a source raises when it cannot answer right now: the watcher backs off and tries again later,
# and keeps polling the other sources. APIError: refused connections, timeouts and HTTP errors;
# JSONDecodeError, StacResponseError and ClientTypeError: answers that are not (valid) STAC JSON;
# DoesNotConformTo: an API without item search (misconfigured).
SOURCE_ERRORS: tuple[type[BaseException], ...] = (
    APIError,
    ClientTypeError,
    StacResponseError,
    DoesNotConformTo,
    requests.RequestException,
    httpx.HTTPError,
    json.JSONDecodeError,
    pystac.STACError,
    OSError,
)


class SceneSource(Protocol):
    """Where scenes come from."""

    name: str

    def search(self, collection: str, aoi: dict[str, Any], start: datetime, max_items: int) -> list[dict]:
        """Items of ``collection`` intersecting ``aoi`` (GeoJSON, CRS84) acquired at or after ``start``,
        oldest first (where the source can sort), at most ``max_items``; raises one of SOURCE_ERRORS
        when the source is unavailable."""
        ...

    def search_published(
        self, collection: str, aoi: dict[str, Any], field: str, since: datetime, max_items: int
    ) -> list[dict] | None:
        """Like ``search``, for items whose ``field`` property (a publication time such as ``created``) is
        at or after ``since``, ordered by it; None when the source cannot filter by a property."""
        ...


class StacApiSource:
    """A STAC API searched with pystac-client (POST /search, paged by ``page_size``), with `headers` on
    every request (values are secrets: never logged)."""

    def __init__(
        self,
        url: str,
        settings: StacSettings,
        *,
        page_size: int = 100,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.name = api_source_name(url)
        self.settings = settings
        self.page_size = page_size
        self._headers = dict(headers or {})
        self._warned_unsorted = False

    def search(self, collection: str, aoi: dict[str, Any], start: datetime, max_items: int) -> list[dict]:
        """See SceneSource.search; the API is opened per search so a restarted API is picked up."""
        client = self._open()
        search = client.search(
            collections=[collection],
            intersects=aoi,
            datetime=datetime_interval(start),
            sortby=self._sort_by(client, "datetime"),
            limit=self.page_size,
            max_items=max_items,
        )
        return list(search.items_as_dicts())

    def search_published(
        self, collection: str, aoi: dict[str, Any], field: str, since: datetime, max_items: int
    ) -> list[dict] | None:
        """See SceneSource.search_published: through the Filter (CQL2-JSON) or else the Query extension."""
        client = self._open()
        how = property_filter(client.get_conforms_to())
        if how is None:
            return None
        search = client.search(
            collections=[collection],
            intersects=aoi,
            sortby=self._sort_by(client, field),
            limit=self.page_size,
            max_items=max_items,
            **at_or_after(field, since, how),
        )
        return list(search.items_as_dicts())

    def _open(self) -> Client:
        return open_stac_api(self.settings, self.url, headers=self._headers)

    def _sort_by(self, client: Client, field: str) -> list[dict[str, str]] | None:
        """Ascending by ``field`` where the API can sort; else None, with a warning once."""
        if client.conforms_to(ConformanceClasses.SORT):
            return sort_ascending(field)
        if not self._warned_unsorted:
            # Without server-side sorting a poll that hits max_items holds an arbitrary subset in time,
            # and the next poll continues after its latest item: items in between can be missed.
            log.warning("source %s: the API cannot sort; polls cut at max_items may miss items", self.name)
            self._warned_unsorted = True
        return None


class StaticCatalogSource:
    """A static STAC catalog on local disk (the embedded default), re-read on every search because a
    writer (the scene simulator) appends to it."""

    def __init__(self, catalog_path: Path) -> None:
        path = Path(catalog_path)
        self.catalog_path = (path / "catalog.json" if path.is_dir() else path).resolve()
        self.name = self.catalog_path.as_uri()

    def search(self, collection: str, aoi: dict[str, Any], start: datetime, max_items: int) -> list[dict]:
        """See SceneSource.search; a collection missing from the catalog has no items yet."""
        catalog = pystac.Catalog.from_file(str(self.catalog_path))
        child = catalog.get_child(collection)
        if child is None:
            return []
        area: BaseGeometry = shape(aoi)
        found: list[tuple[datetime, dict]] = []
        for item in child.get_items():
            if item.geometry is None or not area.intersects(shape(item.geometry)):
                continue
            item.make_asset_hrefs_absolute()
            data = item.to_dict(transform_hrefs=False)
            acquired = item_datetime(data)
            if acquired >= start:
                found.append((acquired, data))
        found.sort(key=lambda pair: pair[0])
        return [data for _, data in found[:max_items]]

    def search_published(
        self, collection: str, aoi: dict[str, Any], field: str, since: datetime, max_items: int
    ) -> list[dict] | None:
        """None: the whole catalog is read on every search, so acquisition time alone finds every item."""
        return None


def open_source(
    location: SourceSettings | str, settings: StacSettings, *, page_size: int = 100
) -> SceneSource:
    """The source of a ``watcher.sources`` entry (or a plain location): an http(s) URL is a STAC API,
    anything else a static catalog path. A STAC API's header values are read from the environment now
    (SettingsError names a missing variable)."""
    source = location if isinstance(location, SourceSettings) else SourceSettings(url=location)
    if source.url.startswith(("http://", "https://")):
        return StacApiSource(source.url, settings, page_size=page_size, headers=source.api_headers())
    return StaticCatalogSource(Path(source.url))
