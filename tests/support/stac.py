"""Minimal STAC collections and items for tests that publish to a real STAC API."""

from datetime import datetime

import pystac
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

PLACEHOLDER_ASSET = "http://127.0.0.1/scene.tif"  # never read: these tests only search


def make_collection(
    collection_id: str, bbox: list[float], start: datetime, description: str = "test scenes"
) -> pystac.Collection:
    """An open-ended collection covering ``bbox`` from ``start``."""
    return pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, None]])),
        license="CC-BY-SA-4.0",
    )


def make_item(
    item_id: str, collection_id: str, when: datetime, footprint: BaseGeometry, cloud_cover: float = 1.0
) -> pystac.Item:
    """An item with a (placeholder) COG asset named ``visual``."""
    item = pystac.Item(
        id=item_id,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=when,
        properties={"eo:cloud_cover": cloud_cover},
        collection=collection_id,
    )
    item.add_asset("visual", pystac.Asset(href=PLACEHOLDER_ASSET, media_type=pystac.MediaType.COG))
    return item
