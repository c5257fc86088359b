"""Scene input selection from STAC metadata, on every item recorded from a public catalog
(tests/data/stac-items) and on edge cases of the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.scenes.selection import ModelInput, choose_scene_input

ITEMS = Path(__file__).resolve().parents[1] / "data" / "stac-items"
LITE = ModelInput(gsd_m=0.5, gsd_min_m=0.2, gsd_max_m=1.2)
KEYS = ("visual", "image", "data")


def _item(prefix: str) -> dict:
    (path,) = ITEMS.glob(f"{prefix}*.json")
    return json.loads(path.read_text())


# file prefix -> (decision, code, assets, band names, gsd_m, resample, words in the reason)
EXPECTED = {
    "planetary-computer__naip": (
        "accept",
        None,
        ["image"],
        ["red", "green", "blue"],
        0.6,
        1.2,
        "red, green and blue",
    ),
    "eoapi-maxar-open-data": ("accept", None, ["visual"], ["red", "green", "blue"], 0.61, 1.22, "RGB bands"),
    "earth-search__sentinel-2-l2a": ("refuse", "gsd_out_of_range", [], [], 10.0, None, "10 m is outside"),
    "planetary-computer__sentinel-2-l2a": (
        "refuse",
        "gsd_out_of_range",
        [],
        [],
        10.0,
        None,
        "10 m is outside",
    ),
    "earth-search__landsat-c2-l2": ("refuse", "gsd_out_of_range", [], [], 30.0, None, "30 m is outside"),
    "earth-search__cop-dem-glo-30": ("refuse", "not_optical", [], [], None, None, "floating-point data"),
    "earth-search__sentinel-1-grd": ("refuse", "not_optical", [], [], None, None, "SAR backscatter (IW)"),
}


def test_every_recorded_item_has_an_expected_decision():
    prefixes = {p.name.split("__")[0] + "__" + p.name.split("__")[1] for p in ITEMS.glob("*.json")}
    covered = {p for p in prefixes if any(p.startswith(k) for k in EXPECTED)}
    assert covered == prefixes


@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_recorded_items(prefix):
    decision_, code, assets, bands, gsd, resample, words = EXPECTED[prefix]
    decision = choose_scene_input(_item(prefix), LITE, KEYS)
    assert decision.decision == decision_, decision.reason
    assert decision.code == code
    assert list(decision.assets) == assets
    assert [c.name for c in decision.channels] == bands
    assert decision.gsd_m == gsd
    assert decision.resample == resample
    assert words in decision.reason


def test_naip_uses_the_first_three_of_its_four_bands():
    decision = choose_scene_input(_item("planetary-computer__naip"), LITE, KEYS)
    assert [c.band for c in decision.channels] == [1, 2, 3]


def test_maxar_multispectral_bands_are_picked_by_name_when_it_is_the_only_image():
    item = _item("eoapi-maxar-open-data")
    del item["assets"]["visual"]
    decision = choose_scene_input(item, LITE, KEYS)
    assert decision.accepted
    assert decision.asset == "ms_analytic"
    # coastal, blue, green, yellow, red, ...: red is band 5, green 3, blue 2
    assert [c.band for c in decision.channels] == [5, 3, 2]


def test_landsat_composes_rgb_from_single_band_assets_with_reflectance_scaling():
    item = _item("earth-search__landsat-c2-l2")
    coarse = ModelInput(gsd_m=30.0, gsd_min_m=10.0, gsd_max_m=60.0)
    decision = choose_scene_input(item, coarse, KEYS)
    assert decision.accepted, decision.reason
    assert list(decision.assets) == ["red", "green", "blue"]
    assert decision.asset is None
    red = decision.channels[0]
    assert (red.data_type, red.scale, red.offset) == ("uint16", 2.75e-05, -0.2)
    assert "composed from three single-band assets" in decision.reason


def test_sentinel2_visual_is_preferred_over_its_single_bands():
    coarse = ModelInput(gsd_m=10.0, gsd_min_m=5.0, gsd_max_m=20.0)
    decision = choose_scene_input(_item("earth-search__sentinel-2-l2a"), coarse, KEYS)
    assert decision.asset == "visual"
    assert decision.resample == 1.0


def test_a_panchromatic_band_is_grey():
    item = _item("eoapi-maxar-open-data")
    for key in ("visual", "ms_analytic"):
        del item["assets"][key]
    decision = choose_scene_input(item, LITE, KEYS)
    assert decision.accepted
    assert decision.asset == "pan_analytic"
    assert [c.name for c in decision.channels] == ["pan"]


def test_an_asset_without_band_metadata_under_a_configured_key_is_read_as_before():
    item = {"type": "Feature", "properties": {}, "assets": {"image": {"href": "scene.tif"}}}
    decision = choose_scene_input(item, LITE, KEYS)
    assert decision.accepted
    assert decision.from_raster
    assert decision.asset == "image"
    assert decision.gsd_m is None
    assert decision.resample is None
    assert "GSD not in the metadata" in decision.reason
    other = choose_scene_input(item, LITE, ("visual",))
    assert other.code == "no_image_asset"


def test_metadata_only_and_thumbnail_only_items_are_refused_with_what_they_have():
    item = {
        "properties": {},
        "assets": {
            "thumbnail": {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
            "mtl": {"href": "m.json", "type": "application/json", "roles": ["metadata"]},
        },
    }
    decision = choose_scene_input(item, LITE, KEYS)
    assert decision.code == "no_image_asset"
    assert "mtl, thumbnail" in decision.reason


def test_a_model_without_a_gsd_never_refuses_for_resolution():
    decision = choose_scene_input(_item("earth-search__sentinel-2-l2a"), ModelInput(), KEYS)
    assert decision.accepted
    assert decision.resample is None


def test_decision_json_is_what_explain_prints():
    data = choose_scene_input(_item("planetary-computer__naip"), LITE, KEYS).as_json()
    assert data["decision"] == "accept"
    assert data["asset"] == "image"
    assert data["bands"] == ["image:1 (red)", "image:2 (green)", "image:3 (blue)"]
    assert data["gsd_m"] == 0.6
    assert data["resample"] == 1.2


# --- lookout explain (no pixels read, no servers) ---

PC_API = "https://planetarycomputer.microsoft.com/api/stac/v1"


def _inputs(**dispatcher):
    from services.scenes.inputs import SceneInputs
    from services.settings import DispatcherSettings, SourceSettings

    pc = SourceSettings(url=PC_API, signing="planetary-computer")
    return SceneInputs.from_settings(DispatcherSettings(**dispatcher), [pc])


def test_explain_says_a_planetary_computer_read_is_signed():
    from services.scenes.explain import explain_item

    result = explain_item(
        _item("planetary-computer__naip"),
        _inputs(),
        LITE,
        source=PC_API,
    )
    assert result["decision"] == "accept"
    assert result["signed"] is True
    assert result["source"] == PC_API


def test_explain_refuses_an_accepted_input_whose_url_may_not_be_read():
    from services.scenes.explain import explain_item, format_explanation

    item = _item("eoapi-maxar-open-data")
    refused = explain_item(item, _inputs(), LITE)
    assert refused["decision"] == "refuse"
    assert refused["code"] == "url_not_allowed"
    assert "s3" in refused["reason"]
    assert refused["signed"] is False
    allowed = explain_item(item, _inputs(asset_schemes=["file", "http", "https", "s3"]), LITE)
    assert allowed["decision"] == "accept"
    assert "decision: accept" in format_explanation(allowed)


def test_lookout_explain_prints_the_decision_as_json(capsys):
    from services.cli import main

    assert main(["explain", "--json", str(next(ITEMS.glob("earth-search__sentinel-1-grd*.json")))]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["decision"] == "refuse"
    assert printed["code"] == "not_optical"
    assert printed["model"]
