"""Which active queries a scene matches: collection, AOI ∩ footprint, cloud cover, time window, status."""

from datetime import UTC, datetime

import pytest

from services.contracts import Query, QueryStatus
from services.dispatcher.matching import matching_queries, mismatch, scene_facts

AOI = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}


def _item(
    *,
    lon: float = 10.05,
    cloud: float | None = 10.0,
    when: str | None = "2024-06-01T10:00:00Z",
    **props: object,
) -> dict:
    """A STAC item whose footprint is a 0.02° square centred on (lon, 50.05)."""
    x0, x1, y0, y1 = lon - 0.01, lon + 0.01, 50.04, 50.06
    properties: dict = {"datetime": when, **props}
    if cloud is not None:
        properties["eo:cloud_cover"] = cloud
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "item-1",
        "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
        "bbox": [x0, y0, x1, y1],
        "properties": properties,
        "links": [],
        "assets": {},
    }


def _query(**fields: object) -> Query:
    return Query.model_validate({"text": "storage tanks", "aoi": AOI, "collections": ["s2", "naip"]} | fields)


def test_matches_collection_and_footprint():
    query = _query()
    facts = scene_facts("s2", _item())
    assert mismatch(query, facts) is None
    assert "collection" in mismatch(query, scene_facts("landsat", _item()))
    assert "AOI does not intersect" in mismatch(query, scene_facts("s2", _item(lon=11.0)))
    # A footprint reaching just into the AOI's corner still matches.
    assert mismatch(query, scene_facts("s2", _item(lon=10.105))) is None


def test_cloud_cover_filter_applies_only_when_both_are_present():
    strict = _query(filters={"max_cloud_cover": 20})
    assert mismatch(strict, scene_facts("s2", _item(cloud=20.0))) is None
    assert "cloud cover 35.0% is above 20.0%" in mismatch(strict, scene_facts("s2", _item(cloud=35.0)))
    assert mismatch(strict, scene_facts("s2", _item(cloud=None))) is None
    assert mismatch(_query(), scene_facts("s2", _item(cloud=99.0))) is None


def test_time_window_bounds_are_inclusive_and_optional():
    june = _query(start=datetime(2024, 6, 1, tzinfo=UTC), end=datetime(2024, 6, 30, tzinfo=UTC))
    assert mismatch(june, scene_facts("s2", _item(when="2024-06-01T00:00:00Z"))) is None
    assert mismatch(june, scene_facts("s2", _item(when="2024-06-30T00:00:00+00:00"))) is None
    assert "before the query's start" in mismatch(june, scene_facts("s2", _item(when="2024-05-31T23:59:59Z")))
    assert "after the query's end" in mismatch(june, scene_facts("s2", _item(when="2024-07-01T00:00:00Z")))
    from_july = _query(start=datetime(2024, 7, 1, tzinfo=UTC))
    assert mismatch(from_july, scene_facts("s2", _item(when="2030-01-01T00:00:00Z"))) is None
    assert mismatch(_query(), scene_facts("s2", _item(when="1999-01-01T00:00:00Z"))) is None


def test_item_with_a_datetime_range_matches_when_the_ranges_overlap():
    june = _query(start=datetime(2024, 6, 1, tzinfo=UTC), end=datetime(2024, 6, 30, tzinfo=UTC))
    ranged = _item(when=None, start_datetime="2024-05-20T00:00:00Z", end_datetime="2024-06-02T00:00:00Z")
    assert mismatch(june, scene_facts("s2", ranged)) is None
    before = _item(when=None, start_datetime="2024-05-01T00:00:00Z", end_datetime="2024-05-02T00:00:00Z")
    assert "before the query's start" in mismatch(june, scene_facts("s2", before))
    assert "no acquisition time" in mismatch(june, scene_facts("s2", _item(when=None)))


def test_paused_pinned_api_and_pinned_model():
    facts = scene_facts("s2", _item(), source="https://stac.example.com/v1/")
    assert "paused" in mismatch(_query(status=QueryStatus.paused), facts)
    assert mismatch(_query(stac_api="https://stac.example.com/v1"), facts) is None
    assert "watches" in mismatch(_query(stac_api="https://other.example.com"), facts)
    assert mismatch(_query(model_version="danet-lite@2"), facts, model_name="danet-lite@2") is None
    assert "pins model" in mismatch(_query(model_version="danet-lite@1"), facts, model_name="danet-lite@2")


def test_matching_queries_keeps_order_and_drops_mismatches():
    a, b, c = _query(), _query(collections=["landsat"]), _query(filters={"max_cloud_cover": 50})
    assert matching_queries([a, b, c], scene_facts("s2", _item())) == [a, c]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({**_item(), "properties": {"datetime": "yesterday"}}, "properties.datetime"),
        ({**_item(), "properties": {"datetime": None, "eo:cloud_cover": "cloudy"}}, "eo:cloud_cover"),
        ({**_item(), "geometry": {"type": "Polygon"}}, "geometry"),
    ],
)
def test_malformed_items_name_the_field(item, field):
    with pytest.raises(ValueError, match=field):
        scene_facts("s2", item)
