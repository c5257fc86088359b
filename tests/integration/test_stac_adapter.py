"""The STAC adapter against a real stac-fastapi-pgstac API."""

import uuid
from datetime import UTC, datetime

import pystac
from shapely.geometry import box, mapping

from services.adapters.stac_client import StacPublisher, open_stac_api

FOOTPRINT = box(-84.45, 33.60, -84.40, 33.65)


def _collection(collection_id: str) -> pystac.Collection:
    return pystac.Collection(
        id=collection_id,
        description="test scenes",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(FOOTPRINT.bounds)]),
            pystac.TemporalExtent([[datetime(2026, 1, 1, tzinfo=UTC), None]]),
        ),
        license="CC-BY-SA-4.0",
    )


def _item(item_id: str, collection_id: str, when: datetime) -> pystac.Item:
    item = pystac.Item(
        id=item_id,
        geometry=mapping(FOOTPRINT),
        bbox=list(FOOTPRINT.bounds),
        datetime=when,
        properties={"eo:cloud_cover": 3.0},
        collection=collection_id,
    )
    item.add_asset("visual", pystac.Asset(href="http://127.0.0.1/scene.tif", media_type=pystac.MediaType.COG))
    return item


def test_post_item_while_running_then_find_it_by_bbox_and_datetime(stack_settings):
    collection_id = f"scenes-{uuid.uuid4().hex[:8]}"
    publisher = StacPublisher(stack_settings.stac.api_url)
    publisher.put_collection(_collection(collection_id))
    publisher.add_item(_item("scene-1", collection_id, datetime(2026, 11, 20, 10, tzinfo=UTC)))
    publisher.close()

    api = open_stac_api(stack_settings.stac)

    def ids(**search) -> list[str]:
        return [i.id for i in api.search(collections=[collection_id], **search).items()]

    assert ids(bbox=[-84.43, 33.61, -84.42, 33.62], datetime="2026-11-01/2026-11-30") == ["scene-1"]
    assert ids(bbox=[10.0, 10.0, 10.1, 10.1], datetime="2026-11-01/2026-11-30") == []
    assert ids(bbox=[-84.43, 33.61, -84.42, 33.62], datetime="2026-10-01/2026-10-31") == []
