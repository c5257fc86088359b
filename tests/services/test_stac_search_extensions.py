"""The watcher asks for sorted search results from every STAC API 1.x that declares sorting."""

import pytest

from services.adapters.stac_client import declares_sort


@pytest.mark.parametrize(
    "uri",
    [
        "https://api.stacspec.org/v1.0.0/item-search#sort",
        "https://api.stacspec.org/v1.0.0-rc.2/item-search#sort",
        "https://api.stacspec.org/v1.1.0/item-search#sort",  # stac-fastapi-pgstac 5.x
    ],
)
def test_sort_conformance_of_any_1x_version(uri):
    assert declares_sort(["https://api.stacspec.org/v1.0.0/core", uri])


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
    assert not declares_sort(["https://api.stacspec.org/v1.0.0/item-search", uri])
