"""STAC API access: search through pystac-client, publish through the Transactions extension."""

from __future__ import annotations

from typing import Any

import httpx
import pystac
from pystac_client import Client
from pystac_client.stac_api_io import StacApiIO

from services.settings import StacSettings


def open_stac_api(settings: StacSettings, url: str | None = None) -> Client:
    """Open a STAC API with retries on transient HTTP errors (pystac-client's own retry support)."""
    target = url or settings.api_url
    if not target:
        raise ValueError("stac.api_url: no STAC API URL configured (set LOOKOUT_STAC__API_URL)")
    stac_io = StacApiIO(max_retries=settings.max_retries, timeout=settings.timeout_s)
    return Client.open(target, stac_io=stac_io)


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
