"""Watcher planning: AOI unions per (source, collection), search windows by acquisition and publication
time, dedup lifetimes, item parsing (pure)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import box, shape

from services.contracts import Query
from services.watcher.planning import (
    MAX_SEARCH_VERTICES,
    advance_high_water,
    capped_cursor,
    datetime_interval,
    item_acquired_until,
    item_datetime,
    item_published,
    merge_found,
    parse_items,
    plan_targets,
    publication_window_start,
    search_geometry,
    window_start,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RECORDED = Path(__file__).resolve().parents[1] / "data" / "stac-items"


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


def test_a_collection_with_its_own_overlap_starts_queries_without_start_that_far_back():
    query = _query(_square(10, 50), ["naip", "s2"])
    naip, s2 = plan_targets([query], ["src"], now=NOW, overlap=DAY, by_collection={"naip": 180 * DAY})
    assert (naip.collection, naip.backfill_start) == ("naip", NOW - 180 * DAY)
    assert (s2.collection, s2.backfill_start) == ("s2", NOW - DAY)


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


def test_publication_window_starts_at_the_mark_minus_overlap_else_now_minus_overlap_else_cursor():
    mark = datetime(2026, 11, 19, tzinfo=UTC)
    assert publication_window_start(mark, NOW, HOUR) == mark - HOUR
    assert publication_window_start(None, NOW, HOUR) == NOW - HOUR  # the first search: from now on
    cursor = datetime(2026, 11, 18, tzinfo=UTC)
    assert publication_window_start(mark, NOW, HOUR, cursor) == cursor


def test_a_capped_search_continues_from_its_latest_item():
    times = [datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)]
    assert capped_cursor(times, capped=True) == datetime(2026, 11, 3, tzinfo=UTC)
    assert capped_cursor(times, capped=False) is None
    assert capped_cursor([], capped=True) is None


def test_merge_found_keeps_the_first_of_each_id_oldest_first():
    first, _ = parse_items(
        [_item("b", datetime="2026-11-02T00:00:00Z"), _item("a", datetime="2026-11-03T00:00:00Z")]
    )
    second, _ = parse_items(
        [_item("a", datetime="2026-11-09T00:00:00Z"), _item("c", datetime="2026-11-01T00:00:00Z")]
    )
    merged = merge_found(first, second)
    assert [(item.item_id, item.acquired.day) for item in merged] == [("c", 1), ("b", 2), ("a", 3)]


def test_a_late_item_is_outside_the_acquisition_window_inside_the_publication_window_and_kept_once():
    # Seen so far: acquisitions up to 20 Nov, publications up to 20 Nov 02:00. Then an item acquired on
    # 10 Nov is published on 21 Nov (Landsat on Earth Search comes about ten days late).
    high_water = datetime(2026, 11, 20, tzinfo=UTC)
    published_mark = datetime(2026, 11, 20, 2, tzinfo=UTC)
    now = datetime(2026, 11, 21, 1, tzinfo=UTC)
    (late,), _ = parse_items(
        [_item("late", datetime="2026-11-10T00:00:00Z", created="2026-11-21T00:30:00Z")], "created"
    )
    assert late.acquired < window_start(high_water, NOW - 30 * DAY, DAY)  # the acquisition search misses it
    assert late.published >= publication_window_start(published_mark, now, HOUR)  # this one finds it

    # After the poll the publication mark is its publication time; its dedup entry must outlive both
    # next windows, so the next polls, which find it again, drop it.
    next_mark = advance_high_water(published_mark, [late.published], now)
    forget_before = min(window_start(high_water, NOW, DAY), publication_window_start(next_mark, now, HOUR))
    assert late.last_found >= forget_before
    assert late.published >= publication_window_start(next_mark, now, HOUR)  # found again next poll
    # Only once the publication window has passed it can its entry go, and no search returns it then.
    much_later = advance_high_water(next_mark, [late.published + 2 * HOUR], now + 3 * HOUR)
    assert late.last_found < publication_window_start(much_later, now, HOUR)


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


def test_item_datetime_reads_start_datetime_of_a_range_else_datetime():
    assert item_datetime(_item("a", datetime="2026-11-01T10:00:00Z")) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    ranged = _item("b", datetime=None, start_datetime="2026-11-01T10:00:00+02:00")
    assert item_datetime(ranged) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert item_datetime(_item("c", datetime="2026-11-01T10:00:00")) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"item 'd': properties.datetime and start_datetime"):
        item_datetime(_item("d", datetime=None))
    # Both (Sentinel-1 on Earth Search): the start, which pgstac sorts ranges by.
    both = _item("e", datetime="2026-11-01T10:00:15Z", start_datetime="2026-11-01T10:00:00Z")
    assert item_datetime(both) == datetime(2026, 11, 1, 10, tzinfo=UTC)
    # pgstac serves a range item without the null datetime it was given.
    assert item_datetime(_item("f", start_datetime="2026-11-01T10:00:00Z")) == datetime(
        2026, 11, 1, 10, tzinfo=UTC
    )
    with pytest.raises(ValueError, match=r"item 'g': properties.datetime: 'yesterday'"):
        item_datetime(_item("g", datetime="yesterday"))


def test_an_item_is_acquired_until_the_end_of_its_range_and_published_at_its_publication_field():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ranged = _item("a", start_datetime="2026-11-01T00:00:00Z", end_datetime="2026-11-30T00:00:00Z")
    assert item_acquired_until(ranged, start) == datetime(2026, 11, 30, tzinfo=UTC)
    assert item_acquired_until(_item("b", datetime="2026-11-01T00:00:00Z"), start) == start
    with pytest.raises(ValueError, match=r"item 'c': properties.end_datetime"):
        item_acquired_until(_item("c", end_datetime="soon"), start)

    stamped = _item("d", datetime="2026-11-01T00:00:00Z", created="2026-11-05T12:00:00.5Z", published="bad")
    assert item_published(stamped, "created") == datetime(2026, 11, 5, 12, 0, 0, 500_000, tzinfo=UTC)
    assert item_published(stamped, None) is None  # publication_field off
    assert item_published(stamped, "updated") is None  # missing
    assert item_published(stamped, "published") is None  # not a date-time: as if missing


def test_a_dedup_entry_lives_until_the_end_of_the_acquisition_or_the_publication_whichever_is_later():
    (point, ranged, late), _ = parse_items(
        [
            _item("point", datetime="2026-11-01T00:00:00Z"),
            _item("ranged", start_datetime="2026-11-02T00:00:00Z", end_datetime="2026-11-30T00:00:00Z"),
            _item("late", datetime="2026-11-03T00:00:00Z", created="2026-12-24T00:00:00Z"),
        ],
        "created",
    )
    assert point.last_found == datetime(2026, 11, 1, tzinfo=UTC)
    assert ranged.last_found == datetime(2026, 11, 30, tzinfo=UTC)
    assert late.last_found == datetime(2026, 12, 24, tzinfo=UTC)


def test_recorded_items_of_every_public_catalog_parse_without_gsd_or_assets_being_needed():
    paths = sorted(RECORDED.glob("*.json"))
    items = [json.loads(path.read_text()) for path in paths]
    for item in items:  # nothing but id and times is read
        item["properties"].pop("gsd", None)
        item["assets"] = {}
    parsed, problems = parse_items(items, "created")
    assert problems == []
    by_id = {item.item_id: item for item in parsed}
    assert len(by_id) == len(items) == 7
    # Earth Search stamps `created`; Planetary Computer and the Maxar open data catalog do not.
    stamped = {item.item_id for item in parsed if item.published is not None}
    earth_search = {
        item["id"] for path, item in zip(paths, items, strict=True) if path.name.startswith("earth-search")
    }
    assert stamped == earth_search
    landsat = by_id["LC08_L2SP_033032_20231008_02_T1"]
    assert landsat.published - landsat.acquired > 9 * DAY  # published ten days after acquisition
    s1 = by_id["S1A_IW_GRDH_1SSH_20250731T135608_20250731T135637_060328_077F7E"]
    assert (s1.acquired, s1.acquired_until) == (
        datetime(2025, 7, 31, 13, 56, 8, 210318, tzinfo=UTC),
        datetime(2025, 7, 31, 13, 56, 37, 254452, tzinfo=UTC),
    )


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
