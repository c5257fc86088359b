"""Segmenter settings and the Serve deployment options derived from them (no Ray started)."""

import pytest
from pydantic import ValidationError
from ray.serve import Application

from services.contracts import RedisKeys
from services.segmenter.serve_app import BatchConfig, SegmenterDeployment, app_builder, deployment_options
from services.settings import RedisSettings, SegmenterSettings, SettingsError, load_settings


def test_defaults_give_one_cpu_replica_that_can_hold_full_batches():
    settings = load_settings().segmenter
    # The embedded default is the shipped DANet-lite checkpoint, resolved against the repository root.
    assert settings.checkpoint.is_absolute()
    assert settings.checkpoint.is_file()
    assert settings.checkpoint.name == "danet-lite-v3.pt"
    assert (settings.preset, settings.device) == ("tiny", "auto")
    options = deployment_options(settings)
    assert options["num_replicas"] == 1
    assert "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert options["max_ongoing_requests"] >= settings.max_batch_size
    assert options["user_config"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.01}


def test_environment_sets_fractional_gpus_and_autoscaling(monkeypatch):
    monkeypatch.setenv("LOOKOUT_SEGMENTER__NUM_GPUS", "0.5")
    monkeypatch.setenv("LOOKOUT_SEGMENTER__MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("LOOKOUT_SEGMENTER__AUTOSCALING__MAX_REPLICAS", "4")
    options = deployment_options(load_settings().segmenter)
    assert options["ray_actor_options"]["num_gpus"] == 0.5
    assert options["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 8.0,
    }
    assert "num_replicas" not in options
    assert options["max_ongoing_requests"] >= 16


def test_invalid_settings_name_the_field():
    with pytest.raises(ValidationError, match="num_replicas and autoscaling are exclusive"):
        SegmenterSettings(num_replicas=2, autoscaling={"max_replicas": 3})
    with pytest.raises(ValidationError, match="min_replicas=3 exceeds max_replicas=2"):
        SegmenterSettings(autoscaling={"min_replicas": 3, "max_replicas": 2})
    with pytest.raises(SettingsError, match=r"segmenter\.max_batch_size: .* \(keyword argument\)"):
        load_settings(segmenter={"max_batch_size": 0})
    with pytest.raises(SettingsError, match=r"segmenter\.max_batch_siz: unknown key"):
        load_settings(segmenter={"max_batch_siz": 4})
    with pytest.raises(ValidationError, match="batch_wait_timeout_s"):
        BatchConfig.model_validate({"max_batch_size": 4, "batch_wait_timeout_s": -1})


def test_app_builder_reads_settings_and_overrides_from_args():
    assert isinstance(app_builder({"max_batch_size": 4, "num_replicas": 2}), Application)
    with pytest.raises(SettingsError, match=r"segmenter\.num_replicas: .* \(keyword argument\)"):
        app_builder({"num_replicas": 0})


def test_user_config_retunes_batching_and_keeps_the_keys_it_leaves_out():
    # The deployment's class outside Serve: its constructor loads the model, no Ray needed.
    settings = SegmenterSettings(device="cpu", text_cache={"enabled": False})
    replica = SegmenterDeployment.func_or_class(settings, RedisSettings(), RedisKeys())
    replica.check_health()
    info = replica.model_info()
    assert info["model_name"].startswith("danet-tiny@")
    assert (info["input_size"], info["device"]) == (64, "cpu")
    replica.reconfigure({"max_batch_size": 4})
    stats = replica.stats()
    assert (stats["max_batch_size"], stats["batch_wait_timeout_s"]) == (4, 0.01)
    assert stats["text_cache"] is None
    with pytest.raises(ValidationError, match="max_batch_size"):
        replica.reconfigure({"max_batch_size": 0})
    with pytest.raises(ValidationError, match=r"max_batch_siz\b"):
        replica.reconfigure({"max_batch_siz": 4})
