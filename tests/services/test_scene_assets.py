"""Which asset of a STAC item is the scene's image, and where it is (pure)."""

import pytest

from services.scenes import AssetPolicy, PermanentSceneError, SceneInputs, choose_asset


def select(item: dict, keys: list[str]) -> tuple[str, str]:
    """(key, absolute href) of the chosen asset."""
    choice = choose_asset(item, keys)
    return choice.key, choice.href


def _item(assets: object, self_href: str | None = None) -> dict:
    links = [{"rel": "self", "href": self_href}] if self_href else []
    return {"id": "x", "assets": assets, "links": links}


def test_select_asset_takes_the_first_configured_key_present():
    item = _item({"data": {"href": "/data/x.tif"}, "visual": {"href": "https://cdn.example.com/x.tif"}})
    assert select(item, ["visual", "data"]) == ("visual", "https://cdn.example.com/x.tif")
    assert select(item, ["image", "data"]) == ("data", "/data/x.tif")


def test_select_asset_resolves_relative_hrefs_against_the_self_link():
    item = _item({"image": {"href": "./x.tif"}}, self_href="https://stac.example.com/items/x.json")
    assert select(item, ["image"]) == ("image", "https://stac.example.com/items/x.tif")
    with pytest.raises(PermanentSceneError, match="relative and the item has no self link"):
        select(_item({"image": {"href": "./x.tif"}}), ["image"])


def test_select_asset_without_usable_asset_is_permanent():
    with pytest.raises(
        PermanentSceneError, match=r"none of the asset keys \['visual'\].*\['thumbnail'\]"
    ) as err:
        select(_item({"thumbnail": {"href": "/t.png"}}), ["visual"])
    assert err.value.code == "no_usable_asset"


def test_the_choice_says_which_asset_and_why():
    choice = choose_asset(_item({"visual": {"href": "/data/x.tif"}}), ["visual", "data"])
    assert (choice.key, choice.href, choice.field) == ("visual", "/data/x.tif", "assets.visual.href")
    assert choice.reason == "the first of the asset keys ['visual', 'data'] the item has"


def test_relative_hrefs_follow_where_the_item_was_read_from():
    item = _item({"data": {"href": "raw.tif"}, "visual": {"href": "./visual.tif"}}, "/elsewhere/x.json")
    base = "/catalog/scenes/item.json"
    assert choose_asset(item, ["visual"], base).href == "/catalog/scenes/visual.tif"
    assert choose_asset(item, ["image", "data"], base).href == "/catalog/scenes/raw.tif"
    remote = choose_asset(item, ["visual"], "https://stac.example.org/items/item.json")
    assert remote.href == "https://stac.example.org/items/visual.tif"
    assert choose_asset(item, ["visual"]).href == "/elsewhere/visual.tif"  # no base: the self link


def test_an_item_whose_assets_are_not_an_object_has_no_usable_asset():
    with pytest.raises(PermanentSceneError, match="assets: not an object but list") as err:
        choose_asset(_item(["visual.tif"]), ["visual"])
    assert err.value.code == "no_usable_asset"


def test_scene_inputs_refuse_an_image_outside_the_policy_naming_the_field():
    inputs = SceneInputs(("visual",), AssetPolicy.allowing(["file", "http", "https"]), timeout_s=5)
    item = _item({"visual": {"href": "s3://bucket/visual.tif"}})
    with pytest.raises(
        PermanentSceneError, match=r"assets.visual.href 's3://bucket/visual.tif': scheme 's3' is not in"
    ) as err:
        inputs.choose_image(item, base="/catalog/item.json")
    assert err.value.code == "url_not_allowed"
    assert inputs.choose_image(_item({"visual": {"href": "v.tif"}}), "/c/i.json").href == "/c/v.tif"
