"""Bad values stop `helm install` with a message that names the field: values.schema.json checks each
value, the chart's `lookout.validate` template the rules that tie several values together."""

import json

import helm_python
import pytest

from services.settings import SegmenterSettings
from tests.helm.rendering import CHART, render

KAFKA = {"kafka": {"external": {"bootstrapServers": "kafka:9092"}}}


def _with(**sections: object) -> dict:
    return KAFKA | sections


BAD_VALUES = {
    "defaults alone (no Kafka)": ({}, "/kafka/external/bootstrapServers"),
    "a bootstrap server without port": (
        {"kafka": {"external": {"bootstrapServers": "kafka"}}},
        "/kafka/external/bootstrapServers",
    ),
    "an unknown Kafka mode": ({"kafka": {"mode": "confluent"}}, "/kafka/mode"),
    "a zero batch size": (
        _with(segmenter={"settings": {"max_batch_size": 0}}),
        "/segmenter/settings/max_batch_size",
    ),
    "an unknown device": (_with(segmenter={"settings": {"device": "tpu"}}), "/segmenter/settings/device"),
    "negative GPUs": (_with(segmenter={"settings": {"num_gpus": -1}}), "/segmenter/settings/num_gpus"),
    "an unknown segmenter setting": (
        _with(segmenter={"settings": {"batch_size": 4}}),
        "'batch_size' not allowed",
    ),
    "half an autoscaling config": (
        _with(segmenter={"settings": {"autoscaling": {"max_replicas": 4}}}),
        "missing properties 'min_replicas', 'target_ongoing_requests'",
    ),
    "an unknown checkpoint source": (
        _with(segmenter={"checkpoint": {"source": "s3"}}),
        "/segmenter/checkpoint/source",
    ),
    "a PVC checkpoint without a claim": (
        _with(segmenter={"checkpoint": {"source": "pvc"}}),
        "/segmenter/checkpoint/pvc/claimName",
    ),
    "an init container without a command": (
        _with(
            segmenter={
                "checkpoint": {"source": "initContainer", "initContainer": {"image": {"repository": "x"}}}
            }
        ),
        "/segmenter/checkpoint/initContainer/command",
    ),
    "a numeric ray start option": (
        _with(segmenter={"head": {"rayStartParams": {"num-cpus": 0}}}),
        "/segmenter/head/rayStartParams/num-cpus",
    ),
    "a misspelt dispatcher key": (
        _with(dispatcher={"autoscalng": {"enabled": False}}),
        "'autoscalng' not allowed",
    ),
    "a CPU target over 100 %": (
        _with(dispatcher={"autoscaling": {"targetCPUUtilizationPercentage": 150}}),
        "/dispatcher/autoscaling/targetCPUUtilizationPercentage",
    ),
    "a Redis URL of another scheme": (
        _with(redis={"mode": "external", "external": {"url": "http://redis:6379"}}),
        "/redis/external/url",
    ),
    "a bad ingress path type": (
        _with(api={"ingress": {"hosts": [{"host": "a", "paths": [{"path": "/", "pathType": "Glob"}]}]}}),
        "/api/ingress/hosts/0/paths/0/pathType",
    ),
    "a bad storage size": (
        _with(redis={"internal": {"persistence": {"size": "eight gigs"}}}),
        "/redis/internal/persistence/size",
    ),
    "a short API key pepper": (
        _with(api={"keyPepper": {"value": "hunter2"}}),
        "at '/api/keyPepper/value': minLength: got 7, want 32",
    ),
    # Rules across values (the chart's lookout.validate template).
    "replicas and autoscaling together": (
        _with(
            segmenter={
                "settings": {
                    "num_replicas": 2,
                    "autoscaling": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8},
                }
            }
        ),
        "segmenter.settings: num_replicas and autoscaling are exclusive",
    ),
    "autoscaling min above max": (
        _with(
            segmenter={
                "settings": {
                    "autoscaling": {"min_replicas": 5, "max_replicas": 4, "target_ongoing_requests": 8}
                }
            }
        ),
        "segmenter.settings.autoscaling: min_replicas=5 exceeds max_replicas=4",
    ),
    "GPU replicas on CPU workers": (
        _with(segmenter={"settings": {"num_gpus": 1}}),
        "segmenter.settings.num_gpus=1 needs GPU workers: set segmenter.workers.gpus",
    ),
    "a replica larger than a worker": (
        _with(segmenter={"settings": {"num_gpus": 2}, "workers": {"gpus": 1}}),
        "segmenter.settings.num_gpus=2 exceeds segmenter.workers.gpus=1",
    ),
    "worker replicas outside their bounds": (
        _with(segmenter={"workers": {"replicas": 9, "maxReplicas": 4}}),
        "segmenter.workers: need minReplicas (1) <= replicas (9) <= maxReplicas (4)",
    ),
    "dispatcher min above max": (
        _with(dispatcher={"autoscaling": {"minReplicas": 9, "maxReplicas": 2}}),
        "dispatcher.autoscaling: minReplicas=9 exceeds maxReplicas=2",
    ),
    "scale to zero without KEDA": (
        _with(keda={"enabled": False}, dispatcher={"autoscaling": {"minReplicas": 0}}),
        "dispatcher.autoscaling.minReplicas=0 needs KEDA",
    ),
    "more topic replicas than brokers": (
        {"kafka": {"mode": "strimzi", "strimzi": {"replicas": 1}}},
        "kafka.topics.replicas=3 exceeds kafka.strimzi.replicas=1",
    ),
    "a pepper both inline and from a Secret": (
        _with(api={"keyPepper": {"value": "p" * 32, "existingSecret": "lookout-api"}}),
        "api.keyPepper: set value or existingSecret, not both",
    ),
    "the pepper in the ConfigMap": (
        _with(config={"api": {"key_pepper": "p" * 32}}),
        "config.api.key_pepper: the pepper is a secret and must not sit in the ConfigMap",
    ),
    "an external Redis without its URL": (
        _with(redis={"mode": "external"}),
        "redis.mode=external needs redis.external.url or redis.external.existingSecret",
    ),
}


@pytest.mark.parametrize(("values", "field"), list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_bad_values_are_refused_naming_the_field(values, field):
    with pytest.raises((helm_python.HelmValuesError, helm_python.HelmRenderError)) as refused:
        render(values)
    assert field in str(refused.value)


def test_a_refused_pepper_is_not_echoed():
    pepper = "too-short-but-secret"
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(_with(api={"keyPepper": {"value": pepper}}))
    assert "/api/keyPepper/value" in str(refused.value)
    assert pepper not in str(refused.value)


def test_the_refusal_names_only_what_is_wrong():
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(_with(segmenter={"settings": {"max_batch_size": 0, "device": "tpu"}}))
    message = str(refused.value)
    assert "/segmenter/settings/max_batch_size" in message
    assert "/segmenter/settings/device" in message
    assert "bootstrapServers" not in message


def test_the_schema_of_segmenter_settings_follows_the_settings_model():
    schema = json.loads((CHART / "values.schema.json").read_text())
    settings_schema = schema["properties"]["segmenter"]["properties"]["settings"]
    # checkpoint is the chart's to set (segmenter.checkpoint); every other field is a value.
    assert set(settings_schema["properties"]) == set(SegmenterSettings.model_fields) - {"checkpoint"}
    assert settings_schema["additionalProperties"] is False
