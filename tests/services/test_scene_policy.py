"""The URL allow-list of scene items and images: schemes, hosts, local paths and GDAL virtual paths (pure)."""

import pytest

from services.scenes import AssetPolicy, PermanentSceneError, gdal_name, local_path
from services.settings import DispatcherSettings

REMOTE_ONLY = AssetPolicy.allowing(["https"], ["cdn.example.com", ".s3.amazonaws.com"])
EMBEDDED = AssetPolicy.allowing(["file", "http", "https"])


@pytest.mark.parametrize(
    "href",
    [
        "https://cdn.example.com/scenes/a.tif",
        "HTTPS://CDN.example.com/a.tif",  # schemes and hosts compare case-insensitively
        "https://bucket.s3.amazonaws.com/a.tif",
        "https://user:secret@cdn.example.com:8443/a.tif",
    ],
)
def test_allowed_remote_hrefs(href):
    assert REMOTE_ONLY.refusal(href) is None


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("http://cdn.example.com/a.tif", "scheme 'http' is not in dispatcher.asset_schemes ['https']"),
        ("https://evil.example.org/a.tif", "host 'evil.example.org' is not in dispatcher.asset_hosts"),
        ("https://s3.amazonaws.com.evil.org/a.tif", "host 's3.amazonaws.com.evil.org' is not in"),
        ("https://169.254.169.254/latest/meta-data", "host '169.254.169.254' is not in"),
        ("s3://bucket/a.tif", "scheme 's3' is not in"),
        ("/data/scenes/a.tif", "local files are not allowed"),
        ("file:///etc/passwd", "local files are not allowed"),
        ("/vsicurl/https://cdn.example.com/a.tif", "GDAL virtual file system paths"),
        ("https:///a.tif", "the URL names no host"),
        ("ftp://cdn.example.com/a.tif", "scheme 'ftp' is not in"),
    ],
)
def test_refused_hrefs_say_why(href, reason):
    refusal = REMOTE_ONLY.refusal(href)
    assert refusal is not None
    assert reason in refusal


def test_the_embedded_default_reads_local_files_but_no_vsi_paths_and_no_remote_file_urls():
    assert EMBEDDED.refusal("/tmp/lookout/catalog/scene-1.tif") is None
    assert EMBEDDED.refusal("file:///tmp/lookout/catalog/scene-1.tif") is None
    assert EMBEDDED.refusal("http://10.0.0.5/a.tif") is None  # no host list: any host
    assert "virtual file system" in EMBEDDED.refusal("/vsis3/bucket/a.tif")
    assert "remote host 'fileserver'" in EMBEDDED.refusal("file://fileserver/share/a.tif")
    assert "relative path" in EMBEDDED.refusal("scenes/a.tif")
    assert "relative path" in EMBEDDED.refusal("file:scenes/a.tif")


@pytest.mark.parametrize(
    ("href", "path"),
    [
        ("/data/scenes/a b.tif", "/data/scenes/a b.tif"),
        ("file:///data/scenes/a%20b.tif", "/data/scenes/a b.tif"),
        ("file://localhost/data/scenes/a.tif", "/data/scenes/a.tif"),
    ],
)
def test_local_hrefs_name_their_file_as_gdal_opens_it(href, path):
    assert str(local_path(href)) == path
    assert gdal_name(href) == path


def test_remote_hrefs_go_to_gdal_as_written():
    assert gdal_name("https://cdn.example.com/a%20b.tif") == "https://cdn.example.com/a%20b.tif"


def test_check_raises_a_permanent_error_naming_the_field():
    with pytest.raises(PermanentSceneError, match=r"assets.visual.href '/etc/passwd': local files") as err:
        REMOTE_ONLY.check("/etc/passwd", "assets.visual.href")
    assert err.value.code == "url_not_allowed"


def test_policy_from_settings_and_the_settings_checks():
    policy = AssetPolicy.from_settings(
        DispatcherSettings(asset_schemes=["HTTPS"], asset_hosts=[".Example.com"])
    )
    assert policy == AssetPolicy(frozenset({"https"}), (".example.com",))
    assert DispatcherSettings().asset_schemes == ["http", "https"]  # no local files unless configured
    with pytest.raises(ValueError, match="asset_schemes"):
        DispatcherSettings(asset_schemes=["https://"])
    with pytest.raises(ValueError, match="asset_hosts"):
        DispatcherSettings(asset_hosts=["https://cdn.example.com/"])
