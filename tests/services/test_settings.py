"""Settings: YAML file, environment overrides, clear errors."""

import pytest

from services.cli import main
from services.settings import SettingsError, load_settings


def test_yaml_defaults_then_environment_overrides(monkeypatch, tmp_path):
    config = tmp_path / "service.yaml"
    config.write_text("redis:\n  url: redis://from-yaml:6379/0\nkafka:\n  max_poll_records: 2\n")
    monkeypatch.setenv("LOOKOUT_CONFIG", str(config))
    monkeypatch.setenv("LOOKOUT_KAFKA__BOOTSTRAP_SERVERS", "broker:9093")
    settings = load_settings()
    assert settings.redis.url == "redis://from-yaml:6379/0"
    assert settings.kafka.max_poll_records == 2
    assert settings.kafka.bootstrap_servers == "broker:9093"


def test_bad_value_names_the_field(monkeypatch):
    monkeypatch.setenv("LOOKOUT_KAFKA__MAX_POLL_RECORDS", "0")
    with pytest.raises(SettingsError, match=r"kafka\.max_poll_records: .*LOOKOUT_KAFKA__MAX_POLL_RECORDS"):
        load_settings()


def test_late_item_settings_from_the_environment_and_a_negative_overlap_named(monkeypatch):
    monkeypatch.setenv("LOOKOUT_WATCHER__COLLECTION_OVERLAP_S", '{"naip": 15552000}')
    monkeypatch.setenv("LOOKOUT_WATCHER__PUBLICATION_FIELD", "published")
    settings = load_settings()
    assert settings.watcher.collection_overlap_s == {"naip": 15_552_000}
    assert (settings.watcher.publication_field, settings.watcher.publication_overlap_s) == ("published", 3600)
    monkeypatch.setenv("LOOKOUT_WATCHER__COLLECTION_OVERLAP_S", '{"naip": -1}')
    with pytest.raises(SettingsError, match=r"watcher\.collection_overlap_s: .*naip: -1.0 s is negative"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "key", "known"),
    [
        ("LOOKOUT_REDIS__URLL", "redis.urll", "url, socket_timeout_s"),
        ("LOOKOUT_KAFKA__BOOTSTRAP_SERVER", "kafka.bootstrap_server", "bootstrap_servers, client_id"),
        ("LOOKOUT_STAC__API", "stac.api", "api_url, timeout_s"),
        ("LOOKOUT_EMBEDDED__KEEP_LOG", "embedded.keep_log", "keep_logs"),
        ("LOOKOUT_WATCHER__BACKOFF__INITIAL", "watcher.backoff.initial", "initial_s, max_s, jitter_s"),
    ],
)
def test_a_misspelt_environment_variable_is_refused_with_its_key_and_name(monkeypatch, variable, key, known):
    monkeypatch.setenv(variable, "1")
    with pytest.raises(SettingsError) as excinfo:
        load_settings()
    message = str(excinfo.value)
    assert f"{key}: unknown key" in message
    assert known in message
    assert f"(environment variable {variable})" in message


def test_a_misspelt_key_in_the_config_file_names_the_file(monkeypatch, tmp_path):
    config = tmp_path / "service.yaml"
    config.write_text("redis:\n  urll: redis://typo:6379/0\n")
    monkeypatch.setenv("LOOKOUT_CONFIG", str(config))
    with pytest.raises(SettingsError, match=rf"redis\.urll: unknown key; .*\(config file {config}\)"):
        load_settings()


def test_the_cli_prints_a_settings_error_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("LOOKOUT_REDIS__URLL", "redis://typo:6379/0")
    assert main(["watch"]) == 2
    assert "redis.urll: unknown key" in capsys.readouterr().err


def test_missing_config_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKOUT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_settings()
