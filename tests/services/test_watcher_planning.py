"""Watcher planning: AOI unions per (source, collection), search windows, item parsing (pure)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import box, shape

from services.contracts import Query
from services.watcher.planning import (
    MAX_SEARCH_VERTICES,
    advance_high_water,
    datetime_interval,
    item_datetime,
    parse_items,
    plan_targets,
    search_geometry,
    window_start,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def _square(lon: float, lat: float, size: float = 0.01) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
        ],
    }


def _query(aoi: dict, collections: list[str], **fields) -> Query:
    return Query(text="buildings", aoi=aoi, collections=collections, **fields)


def test_aois_of_queries_watching_a_collection_are_unioned_per_source_and_collection():
    a = _query(_square(10.0, 50.0), ["s2", "landsat"], start=datetime(2026, 1, 1, tzinfo=UTC))
    b = _query(_square(10.005, 50.0), ["s2"])
    c = _query(_square(-84.4, 33.6), ["s2"], stac_api="https://earth-search.example/v1/")
    targets = plan_targets([a, b, c], ["file:///catalog.json"], now=NOW, overlap=DAY)

    by_pair = {(t.source, t.collection): t for t in targets}
    assert set(by_pair) == {
        ("file:///catalog.json", "landsat"),
        ("file:///catalog.json", "s2"),
        ("https://earth-search.example/v1", "s2"),  # the query's own API, without the trailing slash
    }
    s2 = by_pair[("file:///catalog.json", "s2")]
    assert s2.query_ids == (a.id, b.id)
    assert s2.aoi.equals(box(10.0, 50.0, 10.015, 50.01))
    assert shape(s2.intersects()).equals(s2.aoi)
    assert by_pair[("file:///catalog.json", "landsat")].query_ids == (a.id,)
    assert by_pair[("https://earth-search.example/v1", "s2")].query_ids == (c.id,)


def test_backfill_starts_at_the_earliest_start_and_a_query_without_start_at_now_minus_overlap():
    early = _query(_square(10, 50), ["s2"], start=datetime(2026, 3, 1, tzinfo=UTC))
    late = _query(_square(10, 50), ["s2"], start=datetime(2026, 6, 1, tzinfo=UTC))
    (both,) = plan_targets([late, early], ["src"], now=NOW, overlap=DAY)
    assert both.backfill_start == datetime(2026, 3, 1, tzinfo=UTC)

    (no_start,) = plan_targets([_query(_square(10, 50), ["s2"])], ["src"], now=NOW, overlap=DAY)
    assert no_start.backfill_start == NOW - DAY


def test_queries_without_own_api_watch_nothing_when_no_default_source_exists():
    assert plan_targets([_query(_square(10, 50), ["s2"])], [], now=NOW, overlap=DAY) == []


def test_search_geometry_falls_back_to_bounding_boxes_when_the_union_has_too_many_vertices():
    circle = shape(_square(10, 50)).centroid.buffer(0.01, quad_segs=MAX_SEARCH_VERTICES)
    other = box(11, 50, 11.01, 50.01)
    geometry = search_geometry([circle, other])
    assert geometry.equals(box(*circle.bounds).union(other))
    assert geometry.contains(circle)
    small = search_geometry([box(0, 0, 1, 1), box(0.5, 0, 2, 1)])
    assert small.equals(box(0, 0, 2, 1))


def test_window_starts_at_high_water_minus_overlap_else_backfill_else_cursor():
    hwm = datetime(2026, 11, 1, tzinfo=UTC)
    backfill = datetime(2026, 1, 1, tzinfo=UTC)
    assert window_start(None, backfill, DAY) == backfill
    assert window_start(hwm, backfill, DAY) == hwm - DAY
    assert window_start(hwm, backfill, timedelta(0)) == hwm
    cursor = datetime(2026, 10, 1, tzinfo=UTC)
    assert window_start(hwm, backfill, DAY, cursor) == cursor


def test_datetime_interval_is_open_ended_rfc3339_in_utc():
    assert datetime_interval(datetime(2026, 11, 1, 14, 30, tzinfo=UTC)) == "2026-11-01T14:30:00Z/.."
    local = datetime(2026, 11, 1, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert datetime_interval(local) == "2026-11-01T14:30:00Z/.."


def test_high_water_mark_only_moves_forward_and_never_past_now():
    hwm = datetime(2026, 11, 1, tzinfo=UTC)
    assert advance_high_water(None, [], NOW) is None
    assert advance_high_water(hwm, [], NOW) == hwm
    assert advance_high_water(hwm, [hwm - DAY], NOW) == hwm
    assert advance_high_water(hwm, [hwm - DAY, hwm + DAY], NOW) == hwm + DAY
    assert advance_high_water(None, [NOW + 10 * DAY], NOW) == NOW


def _item(item_id: str | None, **properties) -> dict:
    return {"type": "Feature", "id": item_id, "bbox": [0, 0, 1, 1], "properties": properties}


def test_item_datetime_reads_datetime_or_start_datetime():
    assert item_datetime(_item("a", datetime="2026-11-01T10:00:00Z")) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    ranged = _item("b", datetime=None, start_datetime="2026-11-01T10:00:00+02:00")
    assert item_datetime(ranged) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert item_datetime(_item("c", datetime="2026-11-01T10:00:00")) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"item 'd': properties.datetime and start_datetime"):
        item_datetime(_item("d", datetime=None))


def test_parse_items_keeps_first_of_repeated_ids_sorts_oldest_first_and_names_what_it_left_out():
    items = [
        _item("c", datetime="2026-11-02T10:00:00Z"),
        _item("a", datetime="2026-11-01T10:00:00Z"),
        _item(None, datetime="2026-11-01T11:00:00Z"),
        _item("b", datetime=None),
        _item("a", datetime="2026-11-01T12:00:00Z"),  # the same item on a later page
    ]
    parsed, problems = parse_items(items)
    assert [(p.item_id, p.acquired.day, p.acquired.hour) for p in parsed] == [("a", 1, 10), ("c", 2, 10)]
    assert len(problems) == 2
    assert "without an id" in problems[0]
    assert "'b'" in problems[1]
