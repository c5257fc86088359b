"""Settings: YAML file, environment overrides, clear errors."""

import pytest
from pydantic import ValidationError

from services.settings import load_settings


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
    with pytest.raises(ValidationError, match=r"kafka\.max_poll_records"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKOUT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_settings()
