"""The STAC adapter against a real stac-fastapi-pgstac API."""

import uuid
from datetime import UTC, datetime

from shapely.geometry import box

from services.adapters.stac_client import StacPublisher, open_stac_api
from tests.support.stac import make_collection, make_item

FOOTPRINT = box(-84.45, 33.60, -84.40, 33.65)


def test_post_item_while_running_then_find_it_by_bbox_and_datetime(stack_settings):
    collection_id = f"scenes-{uuid.uuid4().hex[:8]}"
    publisher = StacPublisher(stack_settings.stac.api_url)
    publisher.put_collection(
        make_collection(collection_id, list(FOOTPRINT.bounds), datetime(2026, 1, 1, tzinfo=UTC))
    )
    publisher.add_item(
        make_item(
            "scene-1", collection_id, datetime(2026, 11, 20, 10, tzinfo=UTC), FOOTPRINT, cloud_cover=3.0
        )
    )
    publisher.close()

    api = open_stac_api(stack_settings.stac)

    def ids(**search) -> list[str]:
        return [i.id for i in api.search(collections=[collection_id], **search).items()]

    assert ids(bbox=[-84.43, 33.61, -84.42, 33.62], datetime="2026-11-01/2026-11-30") == ["scene-1"]
    assert ids(bbox=[10.0, 10.0, 10.1, 10.1], datetime="2026-11-01/2026-11-30") == []
    assert ids(bbox=[-84.43, 33.61, -84.42, 33.62], datetime="2026-10-01/2026-10-31") == []
