"""The ``api`` settings: the embedded defaults and what a bad security setting is told."""

import pytest
import redis
from pydantic import ValidationError

from services.api.app import create_app
from services.contracts import RedisKeys
from services.settings import ApiSettings, load_settings


def test_the_embedded_default_is_open_local_and_knows_its_simulator_collection():
    api = load_settings().api
    assert api.auth_mode == "open"
    assert api.key_pepper is None
    assert api.collections == ["lookout-sim"]
    assert api.webhook.allow_hosts == ["127.0.0.1", "localhost", "::1"]
    assert (api.rate_limit, api.max_body_bytes) == ("600/minute", 1_048_576)


def test_outside_the_config_file_webhooks_may_reach_only_public_hosts():
    assert ApiSettings().webhook.allow_hosts == []


def test_api_keys_need_a_pepper_from_the_environment(monkeypatch):
    with pytest.raises(
        ValidationError, match="auth_mode api_key needs key_pepper: set LOOKOUT_API__KEY_PEPPER"
    ):
        ApiSettings(auth_mode="api_key")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        ApiSettings(auth_mode="api_key", key_pepper="short")
    monkeypatch.setenv("LOOKOUT_API__AUTH_MODE", "api_key")
    monkeypatch.setenv("LOOKOUT_API__KEY_PEPPER", "p" * 32)
    api = load_settings().api
    assert (api.auth_mode, api.key_pepper.get_secret_value()) == ("api_key", "p" * 32)
    assert "p" * 32 not in repr(api)


def test_rate_limits_use_the_limits_notation():
    assert ApiSettings(rate_limit="10/second;600/minute").rate_limit == "10/second;600/minute"
    assert ApiSettings(rate_limit=None).rate_limit is None
    with pytest.raises(ValidationError, match="'lots' is not a rate limit such as '600/minute'"):
        ApiSettings(rate_limit="lots")


def test_the_api_lays_out_its_redis_keys_under_the_configured_namespace():
    settings = load_settings(namespace={"topic_prefix": "blue-", "redis_prefix": "blue:"})
    client = redis.Redis()  # never connected: building the app reads nothing
    context = create_app(settings, redis_client=client).state.context
    assert context.keys == RedisKeys(prefix="blue:") == settings.redis_keys()
    assert context.queries.keys.prefix == "blue:"
    assert settings.topics().scenes == "blue-scenes"
