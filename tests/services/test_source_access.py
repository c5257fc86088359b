"""How a source's images and items are read (services.scenes.access): GDAL's S3 and header options in the
rasterio.Env of a read, which source's options a scene or an item gets, and the allow-list and redaction
around a signed href. Reads against local servers: tests/integration/test_source_reads.py."""

import planetary_computer
import pytest
import rasterio
from rasterio.env import get_gdal_config

from services.scenes import (
    AssetPolicy,
    PermanentSceneError,
    SceneInputs,
    SourceAccess,
    image_reads,
    redact,
    source_access,
)
from services.scenes.access import s3_gdal_options, source_name
from services.settings import DispatcherSettings, S3Settings, SettingsError, SourceSettings, StacSettings
from services.watcher import open_source

PC = "https://planetarycomputer.microsoft.com/api/stac/v1"
S3_HREF = "s3://usgs-landsat/collection02/level-2/red.tif"
S3_POLICY = AssetPolicy.allowing(["https", "s3"], ["usgs-landsat", ".blob.core.windows.net"])


def test_an_s3_source_reads_unsigned_by_default():
    assert SourceAccess().gdal_options(S3_HREF) == {"AWS_NO_SIGN_REQUEST": "YES"}


def test_a_requester_pays_source_signs_and_names_the_payer_and_region():
    s3 = S3Settings(no_sign_request=False, requester_pays=True, region="us-west-2")
    assert s3_gdal_options(s3) == {
        "AWS_NO_SIGN_REQUEST": "NO",
        "AWS_REQUEST_PAYER": "requester",
        "AWS_REGION": "us-west-2",
    }


@pytest.mark.parametrize(
    ("endpoint", "https"), [("http://127.0.0.1:9000", "NO"), ("https://s3.example.org", "YES")]
)
def test_a_custom_endpoint_is_reached_path_style(endpoint, https):
    options = s3_gdal_options(S3Settings(endpoint=endpoint))
    assert options["AWS_S3_ENDPOINT"] == endpoint.split("://")[1]
    assert options["AWS_HTTPS"] == https
    assert options["AWS_VIRTUAL_HOSTING"] == "FALSE"


def test_s3_options_only_for_s3_hrefs_and_headers_only_for_http_ones():
    access = SourceAccess(asset_headers={"X-API-Key": "k, with a comma"})
    assert access.gdal_options("https://data.example.com/a.tif") == {
        "GDAL_HTTP_HEADERS": "X-API-Key: k, with a comma\r\n"
    }
    assert access.gdal_options(S3_HREF) == {"AWS_NO_SIGN_REQUEST": "YES"}
    assert access.gdal_options("/data/a.tif") == {}
    assert "k, with a comma" not in repr(access)


def test_the_rasterio_env_of_a_read_holds_the_sources_s3_options_and_drops_them_after():
    access = SourceAccess(
        s3=S3Settings(
            no_sign_request=False, requester_pays=True, region="us-west-2", endpoint="http://127.0.0.1:9"
        )
    )
    with image_reads(S3_HREF, S3_POLICY, access, timeout_s=7) as name:
        assert name == S3_HREF  # rasterio opens s3:// URLs through /vsis3/
        options = rasterio.env.getenv()
        assert get_gdal_config("AWS_REQUEST_PAYER") == "requester"
    expected = {
        "AWS_NO_SIGN_REQUEST": "NO",
        "AWS_REQUEST_PAYER": "requester",
        "AWS_REGION": "us-west-2",
        "AWS_S3_ENDPOINT": "127.0.0.1:9",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    assert {key: options.get(key) for key in expected} == expected
    assert options["GDAL_HTTP_TIMEOUT"] == "7"  # the settings of every read stay
    assert get_gdal_config("AWS_REQUEST_PAYER") is None


def test_a_scene_finds_its_sources_options_by_name_else_by_its_item_href():
    planetary = SourceAccess(name=PC, signing="planetary-computer")
    nested = SourceAccess(name=PC + "/collections/naip")
    other = SourceAccess(name="https://earth-search.aws.element84.com/v1")
    accesses = [planetary, nested, other]
    assert source_access(accesses, source=PC) is planetary
    assert source_access(accesses, source=PC + "/") is planetary
    assert source_access(accesses, item_href=f"{PC}/collections/naip/items/x") is nested  # the longest URL
    assert source_access(accesses, item_href=f"{PC}/collections/sentinel-2-l2a/items/y") is planetary
    assert source_access(accesses, source="https://elsewhere.example", item_href=None) == SourceAccess()
    assert (
        source_access(accesses, item_href="https://planetarycomputer.microsoft.com.evil.org/x")
        == SourceAccess()
    )


def test_api_headers_go_to_item_reads_under_the_sources_url_only():
    access = SourceAccess(name="https://stac.example.com/v1", api_headers={"X-API-Key": "secret"})
    assert access.item_headers("https://stac.example.com/v1/collections/c/items/i") == {"X-API-Key": "secret"}
    assert access.item_headers("https://stac.example.com/v2/collections/c/items/i") == {}
    assert access.item_headers("https://cdn.example.com/item.json") == {}


def test_source_names_agree_with_the_watchers(tmp_path):
    (tmp_path / "catalog.json").write_text("{}")
    for url in (PC + "/", str(tmp_path), str(tmp_path / "catalog.json")):
        assert source_name(url) == open_source(url, StacSettings()).name


def test_scene_inputs_read_the_sources_header_values_at_start(monkeypatch):
    source = SourceSettings(
        url=PC, signing="planetary-computer", headers_from_env={"X-API-Key": "LOOKOUT_TEST_KEY"}
    )
    with pytest.raises(SettingsError, match="LOOKOUT_TEST_KEY is not set"):
        SceneInputs.from_settings(DispatcherSettings(), [source])
    monkeypatch.setenv("LOOKOUT_TEST_KEY", "k-1")
    inputs = SceneInputs.from_settings(DispatcherSettings(), [source])
    assert inputs.access(source=PC) == SourceAccess(
        name=PC, signing="planetary-computer", api_headers={"X-API-Key": "k-1"}
    )


def test_only_http_hrefs_of_a_signing_source_are_signed(monkeypatch):
    def fail(href: str) -> str:
        raise AssertionError(f"{href} should not be signed")

    monkeypatch.setattr(planetary_computer, "sign_url", fail)
    planetary = SourceAccess(name=PC, signing="planetary-computer")
    assert planetary.signed(S3_HREF, timeout_s=1) == S3_HREF
    assert SourceAccess().signed("https://a.blob.core.windows.net/c/x.tif", timeout_s=1).endswith("x.tif")


def test_a_signed_url_is_checked_by_the_allow_list_again_and_never_shown(monkeypatch):
    monkeypatch.setattr(
        planetary_computer, "sign_url", lambda href: "https://elsewhere.example.net/x.tif?sig=SECRET"
    )
    planetary = SourceAccess(name=PC, signing="planetary-computer")
    href = "https://naipeuwest.blob.core.windows.net/naip/x.tif"
    with pytest.raises(PermanentSceneError) as excinfo, image_reads(href, S3_POLICY, planetary, timeout_s=1):
        pytest.fail("a refused signed URL is never opened")
    assert excinfo.value.code == "url_not_allowed"
    assert "elsewhere.example.net" in str(excinfo.value)
    assert "SECRET" not in str(excinfo.value)


def test_redact_hides_query_strings_and_passwords_only():
    assert (
        redact("https://a.blob.core.windows.net/c/x.tif?st=1&sig=s")
        == "https://a.blob.core.windows.net/c/x.tif?[redacted]"
    )
    assert redact("https://user:pw@cdn.example.com/a.tif") == "https://user:[redacted]@cdn.example.com/a.tif"
    for plain in (
        "s3://bucket/a b.tif",
        "/data/a.tif",
        "file:///data/a%20b.tif",
        "https://cdn.example.com/a.tif",
    ):
        assert redact(plain) == plain
