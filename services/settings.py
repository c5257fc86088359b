"""Typed service settings: the one place that reads the environment.

Values come from (highest priority first) keyword arguments, ``LOOKOUT_*`` environment variables
(nested with ``__``, e.g. ``LOOKOUT_REDIS__URL``), then the YAML file named by ``LOOKOUT_CONFIG``
(default: ``configs/service.yaml`` in the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_FILE = REPO_ROOT / "configs" / "service.yaml"
CONFIG_ENV_VAR = "LOOKOUT_CONFIG"


class RedisSettings(BaseModel):
    """Where Redis is and how patiently to talk to it."""

    url: str = "redis://127.0.0.1:6379/0"
    socket_timeout_s: float = Field(5.0, gt=0)
    health_check_interval_s: int = Field(15, ge=0)


class KafkaSettings(BaseModel):
    """Kafka-protocol broker connection and consumer-group behaviour."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "lookout"
    # Short session/heartbeat timeouts make the first group assignment take ~3 s instead of ~23 s
    # (ENVIRONMENT.md); max_poll_interval must exceed the slowest scene a dispatcher processes.
    session_timeout_ms: int = Field(6000, gt=0)
    heartbeat_interval_ms: int = Field(1000, gt=0)
    max_poll_interval_ms: int = Field(300_000, gt=0)
    # GPU work is slow: a small batch per poll keeps processing well inside max_poll_interval.
    max_poll_records: int = Field(4, gt=0)
    request_timeout_ms: int = Field(30_000, gt=0)


class StacSettings(BaseModel):
    """STAC API access (production sources; the embedded default uses a local static catalog)."""

    api_url: str | None = None
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)


class EmbeddedSettings(BaseModel):
    """Where the embedded stack finds its programs and keeps its data."""

    stac_venv: Path = REPO_ROOT / ".venv-stac"
    postgres_bin: Path | None = None
    state_dir: Path | None = None
    keep_logs: bool = False


class LookoutSettings(BaseSettings):
    """All settings of the Lookout services."""

    model_config = SettingsConfigDict(env_prefix="LOOKOUT_", env_nested_delimiter="__", extra="forbid")

    redis: RedisSettings = RedisSettings()
    kafka: KafkaSettings = KafkaSettings()
    stac: StacSettings = StacSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the YAML config file."""
        config_file = Path(os.environ.get(CONFIG_ENV_VAR, DEFAULT_CONFIG_FILE))
        if not config_file.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV_VAR}: config file {config_file} does not exist")
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=config_file),
        )


def load_settings(**overrides: object) -> LookoutSettings:
    """Load settings from keyword overrides, ``LOOKOUT_*`` variables and the YAML config file."""
    return LookoutSettings(**overrides)
