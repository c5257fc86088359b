"""The settings a cluster install runs with: the chart's cluster defaults (files/production.yaml) over the
embedded default's configs/service.yaml, the `config` value over them, and the API key pepper from a
Secret in the pods that load the settings."""

import re
from pathlib import Path

import pytest
import yaml

from services.settings import LookoutSettings, SettingsError, load_settings
from tests.helm.rendering import (
    CHART,
    RELEASE,
    Rendered,
    load_container_settings,
    render,
    settings_file,
    value_set,
)

PEPPER_VAR = "LOOKOUT_API__KEY_PEPPER"
API_POD = f"{RELEASE}-lookout-api"


def _container(rendered: Rendered, pod: str) -> dict:
    """The first container of a pod spec (see Rendered.pod_specs for the names)."""
    return rendered.pod_specs()[pod]["containers"][0]


def _env_names(container: dict) -> set[str]:
    return {variable["name"] for variable in container.get("env", [])}


def _api_settings(rendered: Rendered, folder: Path, monkeypatch: pytest.MonkeyPatch) -> LookoutSettings:
    """The settings an API pod loads."""
    return load_container_settings(rendered, _container(rendered, API_POD), folder, monkeypatch)


def _lookout_pods(rendered: Rendered) -> list[str]:
    """The pods that run Lookout code (every one but the in-chart Redis)."""
    return [name for name in rendered.pod_specs() if not name.endswith("-redis")]


def test_the_cluster_defaults_replace_the_local_only_ones(tmp_path, monkeypatch):
    embedded = yaml.safe_load((CHART / "files" / "service.yaml").read_text())
    rendered = render(value_set("default"))
    settings = _api_settings(rendered, tmp_path, monkeypatch)
    assert settings.api.auth_mode == "api_key" != embedded["api"]["auth_mode"]
    assert settings.api.collections is None
    assert embedded["api"]["collections"] is not None
    assert settings.api.webhook.allow_hosts == []
    assert settings.api.stac_api_allow_hosts == []
    assert embedded["api"]["webhook"]["allow_hosts"] != []
    assert settings.dispatcher.asset_schemes == ["https"]
    assert settings.kafka.topic_replication_factor == -1
    assert settings.store.detection_retention_days == 90
    assert embedded["store"]["detection_retention_days"] is None
    # Everything the chart does not decide stays as configs/service.yaml has it.
    assert settings.api.rate_limit == embedded["api"]["rate_limit"]
    assert settings.dispatcher.asset_hosts == embedded["dispatcher"]["asset_hosts"]


def test_config_wins_over_the_cluster_defaults_null_and_empty_values_included(tmp_path, monkeypatch):
    config = {
        "api": {
            "auth_mode": "open",
            "collections": ["sentinel-2-l2a"],
            "rate_limit": None,
            "webhook": {"allow_hosts": ["hooks.internal.example"]},
        },
        "dispatcher": {"asset_schemes": ["https", "http"], "asset_hosts": [".amazonaws.com"]},
        "kafka": {"topic_replication_factor": 3},
        "watcher": {"overlap_s": 0, "collection_overlap_s": {"naip": 15_552_000}, "publication_field": None},
        "namespace": {"topic_prefix": "eu.", "redis_prefix": "eu:"},
        "store": {"detection_retention_days": None},
    }
    rendered = render(value_set("default") | {"config": config})
    settings = _api_settings(rendered, tmp_path, monkeypatch)
    assert settings.api.auth_mode == "open"
    assert settings.api.collections == ["sentinel-2-l2a"]
    assert settings.api.rate_limit is None
    assert settings.api.webhook.allow_hosts == ["hooks.internal.example"]
    assert settings.dispatcher.asset_schemes == ["https", "http"]
    assert settings.dispatcher.asset_hosts == [".amazonaws.com"]
    assert settings.kafka.topic_replication_factor == 3
    assert settings.watcher.overlap_s == 0
    assert settings.watcher.collection_overlap_s == {"naip": 15_552_000}
    assert settings.watcher.publication_field is None
    assert settings.store.detection_retention() is None
    assert (settings.topics().scenes, settings.redis_keys().prefix) == ("eu.scenes", "eu:")
    # A key config leaves alone keeps its cluster default.
    override_webhooks_only = {"config": {"api": {"webhook": {"timeout_s": 5}}}}
    rendered = render(value_set("default") | override_webhooks_only)
    settings = _api_settings(rendered, tmp_path, monkeypatch)
    assert (settings.api.webhook.timeout_s, settings.api.webhook.allow_hosts) == (5, [])


def test_what_the_chart_decides_wins_over_config(tmp_path, monkeypatch):
    config = {"api": {"host": "127.0.0.1", "port": 9999}, "kafka": {"bootstrap_servers": "elsewhere:9092"}}
    rendered = render(value_set("default") | {"config": config, "api": {"port": 8081}})
    settings = _api_settings(rendered, tmp_path, monkeypatch)
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 8081)
    assert settings.kafka.bootstrap_servers == value_set("default")["kafka"]["external"]["bootstrapServers"]


def test_the_chart_makes_a_pepper_secret_that_helm_uninstall_keeps():
    rendered = render(value_set("default"))
    secret = rendered.one("Secret", "-api-key-pepper")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # Offline (helm template) `lookup` finds no Secret to keep, so a new random pepper is made.
    assert re.fullmatch(r"[A-Za-z0-9]{48}", rendered.key_pepper)
    for pod in _lookout_pods(rendered):
        (pepper,) = [v for v in _container(rendered, pod)["env"] if v["name"] == PEPPER_VAR]
        assert pepper["valueFrom"]["secretKeyRef"] == {
            "name": secret["metadata"]["name"],
            "key": "pepper",
        }, pod


def test_a_pepper_given_inline_is_the_secrets_and_reaches_the_settings(tmp_path, monkeypatch):
    pepper = "a pepper given in the values, 32+ characters long"
    rendered = render(value_set("default") | {"api": {"keyPepper": {"value": pepper}}})
    assert rendered.key_pepper == pepper
    assert pepper not in rendered.settings_text
    settings = _api_settings(rendered, tmp_path, monkeypatch)
    assert settings.api.key_pepper.get_secret_value() == pepper


def test_an_existing_pepper_secret_replaces_the_charts():
    existing = {"existingSecret": "team-secrets", "existingSecretKey": "lookout-pepper"}
    rendered = render(value_set("default") | {"api": {"keyPepper": existing}})
    assert [s["metadata"]["name"] for s in rendered.of_kind("Secret")] == [f"{RELEASE}-lookout-redis-url"]
    (pepper,) = [v for v in _container(rendered, API_POD)["env"] if v["name"] == PEPPER_VAR]
    assert pepper["valueFrom"]["secretKeyRef"] == {"name": "team-secrets", "key": "lookout-pepper"}


def test_in_open_mode_only_the_api_pods_carry_the_pepper(tmp_path, monkeypatch):
    rendered = render(value_set("default") | {"config": {"api": {"auth_mode": "open"}}})
    carrying = {pod for pod in _lookout_pods(rendered) if PEPPER_VAR in _env_names(_container(rendered, pod))}
    assert carrying == {API_POD}
    for pod in _lookout_pods(rendered):
        settings = load_container_settings(rendered, _container(rendered, pod), tmp_path, monkeypatch)
        assert settings.api.auth_mode == "open"
        assert (settings.api.key_pepper is not None) == (pod == API_POD)


def test_in_api_key_mode_every_component_needs_the_pepper(tmp_path, monkeypatch):
    # Why the watcher, dispatcher and Ray pods carry it: each loads the whole settings file, and the api
    # section refuses auth_mode api_key without a pepper.
    rendered = render(value_set("default"))
    monkeypatch.delenv(PEPPER_VAR, raising=False)
    monkeypatch.setenv("LOOKOUT_CONFIG", str(settings_file(rendered, tmp_path)))
    with pytest.raises(SettingsError, match="auth_mode api_key needs key_pepper"):
        load_settings()


def test_strimzi_brokers_give_created_topics_the_replication_of_the_kafka_topics(tmp_path, monkeypatch):
    # A component that starts before the Topic Operator creates the topic itself, asking for the broker's
    # default replication (-1): that default is the KafkaTopics' replication.
    values = value_set("strimzi") | {"kafka": {"mode": "strimzi", "strimzi": {"replicas": 5}}}
    values["kafka"]["topics"] = {"replicas": 2}
    rendered = render(values)
    broker_config = rendered.one("Kafka")["spec"]["kafka"]["config"]
    assert {t["spec"]["replicas"] for t in rendered.of_kind("KafkaTopic")} == {2}
    assert broker_config["default.replication.factor"] == 2
    assert broker_config["min.insync.replicas"] == 1  # a write must not need more replicas than a topic has
    assert broker_config["offsets.topic.replication.factor"] == 3
    settings = load_container_settings(
        rendered, _container(rendered, f"{RELEASE}-lookout-dispatcher"), tmp_path, monkeypatch
    )
    assert settings.kafka.topic_replication_factor == -1
