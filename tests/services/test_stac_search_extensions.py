"""What the watcher asks of a STAC API, read from its conformance classes: sorting, and filtering by a
property (publication time), in any STAC API 1.x version."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.adapters.stac_client import CQL2_JSON, at_or_after, item_search_extensions, property_filter

CORE = "https://api.stacspec.org/v1.0.0/core"
# stac-fastapi-pgstac 5.x, as the local API answers.
PGSTAC = [
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    CQL2_JSON,
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.1.0/item-search#sort",
]


@pytest.mark.parametrize(
    "uri",
    [
        "https://api.stacspec.org/v1.0.0/item-search#sort",
        "https://api.stacspec.org/v1.0.0-rc.2/item-search#sort",
        "https://api.stacspec.org/v1.1.0/item-search#sort",  # stac-fastapi-pgstac 5.x
    ],
)
def test_sort_conformance_of_any_1x_version(uri):
    assert "sort" in item_search_extensions([CORE, uri])


@pytest.mark.parametrize(
    "uri",
    [
        "https://api.stacspec.org/v1.1.0/collection-search#sort",
        "https://api.stacspec.org/v1.1.0/ogcapi-features#sort",
        "https://api.stacspec.org/v1.1.0/item-search#sortby-extension",
        "https://example.com/v1.1.0/item-search#sort",
    ],
)
def test_other_sort_classes_do_not_count(uri):
    assert "sort" not in item_search_extensions(["https://api.stacspec.org/v1.0.0/item-search", uri])


def test_pgstac_declares_sort_filter_and_query():
    assert {"sort", "filter", "query"} <= item_search_extensions(PGSTAC)


@pytest.mark.parametrize(
    ("conforms_to", "expected"),
    [
        (PGSTAC, "filter"),
        # The Filter extension without CQL2 JSON (text only): the Query extension instead.
        ([uri for uri in PGSTAC if uri != CQL2_JSON], "query"),
        (["https://api.stacspec.org/v1.0.0-rc.1/item-search#query"], "query"),
        (["https://api.stacspec.org/v1.1.0/item-search#filter", CQL2_JSON], "filter"),
        ([CORE, "https://api.stacspec.org/v1.0.0/item-search#sort"], None),
    ],
)
def test_property_filter_prefers_cql2_json_then_the_query_extension(conforms_to, expected):
    assert property_filter(conforms_to) == expected


def test_at_or_after_writes_the_time_in_utc_with_six_fractional_digits():
    since = datetime(2026, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert at_or_after("created", since, "filter") == {
        "filter": {"op": ">=", "args": [{"property": "created"}, "2026-07-01T00:00:00.000000Z"]},
        "filter_lang": "cql2-json",
    }
    assert at_or_after("published", since, "query") == {
        "query": {"published": {"gte": "2026-07-01T00:00:00.000000Z"}}
    }


@pytest.mark.parametrize(
    ("stamp", "at_or_after_since"),
    [
        ("2026-07-01T00:00:00Z", True),  # no fractional part, same second: taken in (dedup drops it)
        ("2026-07-01T00:00:00.5Z", True),
        ("2026-07-01T00:00:00.250Z", True),
        ("2026-07-01T00:00:00.249999Z", False),
        ("2026-06-30T23:59:59.999Z", False),
        ("2026-07-01T00:00:01Z", True),
    ],
)
def test_text_comparison_against_the_literal_never_leaves_out_a_later_utc_time(stamp, at_or_after_since):
    # pgstac compares a property that is no declared queryable as text: the literal must order right.
    since = datetime(2026, 7, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    literal = at_or_after("created", since, "query")["query"]["created"]["gte"]
    assert (stamp >= literal) == at_or_after_since
