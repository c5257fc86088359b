"""watcher.sources as users write them: plain URLs, or objects with signing, S3 options and headers whose
values come from the environment; bad entries are refused naming the entry's field."""

import json
import re

import pytest
import yaml

from services.settings import (
    REPO_ROOT,
    S3Settings,
    SettingsError,
    SourceSettings,
    WatcherSettings,
    load_settings,
)

PC = "https://planetarycomputer.microsoft.com/api/stac/v1"
EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"


def test_plain_urls_and_objects_mix_and_plain_urls_get_the_defaults():
    settings = load_settings(
        watcher={
            "sources": [
                EARTH_SEARCH,
                {"url": PC, "signing": "planetary-computer"},
                {
                    "url": "https://stac.example.com",
                    "s3": {"no_sign_request": False, "requester_pays": True, "region": "us-west-2"},
                    "headers_from_env": {"X-API-Key": "EXAMPLE_STAC_KEY"},
                },
            ]
        },
        dispatcher={"asset_hosts": [".example.com"]},
    )
    plain, planetary, paying = settings.watcher.sources
    assert plain == SourceSettings(url=EARTH_SEARCH)
    assert plain.signing == "none"
    assert plain.s3 == S3Settings()
    assert plain.s3.no_sign_request
    assert plain.headers_from_env == plain.asset_headers_from_env == {}
    assert planetary.signing == "planetary-computer"
    assert paying.s3 == S3Settings(no_sign_request=False, requester_pays=True, region="us-west-2")
    assert paying.headers_from_env == {"X-API-Key": "EXAMPLE_STAC_KEY"}


def test_sources_from_the_environment_as_json(monkeypatch):
    entries = [EARTH_SEARCH, {"url": PC, "signing": "planetary-computer"}]
    monkeypatch.setenv("LOOKOUT_WATCHER__SOURCES", json.dumps(entries))
    assert [s.url for s in load_settings().watcher.sources] == [EARTH_SEARCH, PC]


@pytest.mark.parametrize(
    ("entry", "where", "reason"),
    [
        (
            {"url": PC, "sign": "pc"},
            "watcher.sources.0.sign",
            "unknown key; watcher.sources.0 takes url, signing",
        ),
        ({"url": PC, "signing": "azure"}, "watcher.sources.0.signing", "'none' or 'planetary-computer'"),
        ({"url": PC, "s3": {"requester_pay": True}}, "watcher.sources.0.s3.requester_pay", "unknown key"),
        ({"url": PC, "s3": {"requester_pays": True}}, "watcher.sources.0.s3", "requester_pays needs signed"),
        ({"url": PC, "s3": {"endpoint": "minio:9000"}}, "watcher.sources.0.s3.endpoint", "not a base URL"),
        ({"url": PC, "s3": {"endpoint": "https://m.example/x"}}, "watcher.sources.0.s3.endpoint", "base URL"),
        ({"url": PC, "s3": {"region": "US West"}}, "watcher.sources.0.s3.region", "pattern"),
        (
            {"url": PC, "headers_from_env": {"X Key": "A"}},
            "headers_from_env",
            "'X Key' is not an HTTP header",
        ),
        (
            {"url": PC, "headers_from_env": {"X-Key": "sk-live-123"}},
            "watcher.sources.0.headers_from_env",
            "X-Key: 'sk-live-123' is not an environment variable name",
        ),
        ({"url": "/srv/catalog", "headers_from_env": {"X-Key": "K"}}, "headers_from_env", "static catalog"),
        ({"signing": "none"}, "watcher.sources.0.url", "Field required"),
        (42, "watcher.sources.0", "valid dictionary"),
    ],
)
def test_a_bad_entry_is_refused_naming_its_field(entry, where, reason):
    with pytest.raises(SettingsError) as excinfo:
        load_settings(watcher={"sources": [entry]})
    line = next(line for line in str(excinfo.value).splitlines() if where in line)
    assert reason in line


def test_the_same_source_twice_is_refused():
    with pytest.raises(
        SettingsError, match=r"watcher\.sources: .*entries 0 and 1 are the same .*\(keyword arg"
    ):
        load_settings(watcher={"sources": [PC, {"url": PC + "/", "signing": "planetary-computer"}]})


def test_asset_headers_need_named_asset_hosts():
    source = {"url": "https://stac.example.com", "asset_headers_from_env": {"X-API-Key": "EXAMPLE_KEY"}}
    with pytest.raises(SettingsError, match=r"asset_headers_from_env .*dispatcher\.asset_hosts must name"):
        load_settings(watcher={"sources": [source]})
    settings = load_settings(watcher={"sources": [source]}, dispatcher={"asset_hosts": ["data.example.com"]})
    assert settings.watcher.sources[0].asset_headers_from_env == {"X-API-Key": "EXAMPLE_KEY"}


def test_header_values_come_from_the_environment_when_asked(monkeypatch):
    source = SourceSettings(
        url="https://stac.example.com",
        headers_from_env={"X-API-Key": "EXAMPLE_STAC_KEY"},
        asset_headers_from_env={"Authorization": "EXAMPLE_ASSET_TOKEN"},
    )
    monkeypatch.setenv("EXAMPLE_STAC_KEY", "key-1")
    monkeypatch.setenv("EXAMPLE_ASSET_TOKEN", "Bearer t-2")
    assert source.api_headers() == {"X-API-Key": "key-1"}
    assert source.asset_headers() == {"Authorization": "Bearer t-2"}
    assert "key-1" not in repr(source)  # the settings hold variable names only

    monkeypatch.delenv("EXAMPLE_STAC_KEY")
    with pytest.raises(
        SettingsError, match=r"headers_from_env\.X-API-Key: environment variable EXAMPLE_STAC_KEY"
    ):
        source.api_headers()
    monkeypatch.setenv("EXAMPLE_ASSET_TOKEN", "Bearer a\r\nX-Injected: 1")
    with pytest.raises(SettingsError, match="EXAMPLE_ASSET_TOKEN holds a line break"):
        source.asset_headers()


def test_entries_set_after_validation_as_plain_strings_are_read_as_urls():
    # model_copy does not validate: the entry stays a string.
    watcher = WatcherSettings().model_copy(update={"sources": ["/srv/catalog"]})
    assert watcher.source_list() == [SourceSettings(url="/srv/catalog")]


def test_the_settings_examples_of_docs_catalogs_load():
    """Every YAML block of docs/catalogs.md is a settings fragment that loads (the Kubernetes one, a Helm
    values file, is rendered in tests/helm/test_catalog_sources.py)."""
    text = (REPO_ROOT / "docs" / "catalogs.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    fragments = [block for block in blocks if "config" not in block]
    assert len(fragments) >= 4
    for fragment in fragments:
        settings = load_settings(**fragment)
        assert settings.watcher.sources, fragment
