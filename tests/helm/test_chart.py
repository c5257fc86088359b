"""The Helm chart rendered with each value set in helm/lookout/ci/: strict lint, every built-in kind valid for
Kubernetes, custom resources valid against helm/schemas/, the Serve config valid for Ray Serve and equal to
what the settings model derives, and the ConfigMap loading as the components load their settings."""

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml
from ray.serve.schema import ServeDeploySchema

from services.segmenter.serve_app import DEPLOYMENT_NAME, deployment_options
from services.settings import SegmenterSettings
from tests.helm.rendering import (
    CHART,
    CR_SCHEMAS,
    KUBE_VERSION,
    NAMESPACE,
    VALUE_SETS,
    Rendered,
    lint,
    load_container_settings,
    render,
    value_set,
)

SETS = sorted(VALUE_SETS)
CR_SCHEMA_FILES = {
    "RayService": "rayservice",
    "Kafka": "strimzi-kafka",
    "KafkaNodePool": "strimzi-kafkanodepool",
    "KafkaTopic": "strimzi-kafkatopic",
    "ScaledObject": "keda-scaledobject",
}
IMPORT_PATH = "services.segmenter.serve_app:app_builder"


@pytest.fixture(scope="module", params=SETS)
def rendered(request) -> Rendered:
    return render(value_set(request.param))


def test_the_value_sets_cover_what_the_chart_must_show():
    assert set(SETS) == {"default", "gpu", "keda-off", "strimzi", "external"}


@pytest.mark.parametrize("name", SETS)
def test_lint_is_clean_in_strict_mode(name):
    report = lint(value_set(name))
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; the only info left is "icon is recommended".
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def _builtin(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def test_every_builtin_object_is_valid_for_kubernetes(rendered):
    builtin = [obj for obj in rendered.objects if _builtin(obj)]
    assert len(builtin) >= 10
    for obj in builtin:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_the_ray_pod_templates_are_valid_pod_templates(rendered):
    cluster = rendered.rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        # KubeRay adds the container command; core/v1 PodTemplate checks everything else.
        pod_template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "ray-group"},
            "template": group["template"],
        }
        kubernetes_validate.validate(pod_template, KUBE_VERSION, strict=True)


def test_every_custom_resource_matches_its_project_schema(rendered):
    custom = [obj for obj in rendered.objects if not _builtin(obj)]
    assert custom, "the RayService at least"
    for obj in custom:
        schema = json.loads((CR_SCHEMAS / f"{CR_SCHEMA_FILES[obj['kind']]}.schema.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(obj)


def test_a_misspelt_custom_resource_field_is_caught_by_its_schema():
    obj = render(value_set("strimzi")).one("KafkaTopic", "-scenes")
    obj["spec"]["partition"] = obj["spec"].pop("partitions")
    schema = json.loads((CR_SCHEMAS / "strimzi-kafkatopic.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="partitions"):
        jsonschema.Draft202012Validator(schema).validate(obj)


def test_serve_config_is_valid_for_ray_serve_and_runs_the_lookout_up_application(rendered):
    config = ServeDeploySchema.model_validate(rendered.serve_config)
    (app,) = config.applications
    assert app.import_path == IMPORT_PATH
    assert app.route_prefix is None  # the dispatcher uses handles; no HTTP route
    settings = SegmenterSettings.model_validate(app.args)
    assert app.name == settings.app_name
    (deployment,) = rendered.serve_config["applications"][0]["deployments"]
    assert deployment == {"name": DEPLOYMENT_NAME, **deployment_options(settings)}


# What the Secrets that the external value set names would hold in a cluster.
EXISTING_SECRETS = {
    ("lookout-redis", "redis-url"): "redis://redis.test:6379/0",
    ("lookout-stac", "url"): "https://stac.example.net/v1",
    ("lookout-api", "key-pepper"): "an existing pepper of at least 32 characters",
}


def test_the_configmap_loads_as_each_component_loads_its_settings(rendered, tmp_path, monkeypatch):
    containers = {
        name: spec["containers"][0]
        for name, spec in rendered.pod_specs().items()
        if any(env["name"] == "LOOKOUT_CONFIG" for env in spec["containers"][0].get("env", []))
    }
    assert {name.rpartition("-")[2] for name in containers} >= {"api", "dispatcher", "watcher", "head"}
    args = rendered.serve_config["applications"][0]["args"]
    kafka_trigger = rendered.of_kind("ScaledObject")
    for name, container in containers.items():
        assert {"name": "LOOKOUT_CONFIG", "value": "/etc/lookout/service.yaml"} in container["env"]
        settings = load_container_settings(rendered, container, tmp_path, monkeypatch, EXISTING_SECRETS)
        assert settings.segmenter == SegmenterSettings.model_validate(args), name
        assert settings.api.host == "0.0.0.0"
        if kafka_trigger:
            metadata = kafka_trigger[0]["spec"]["triggers"][0]["metadata"]
            assert metadata["bootstrapServers"] == settings.kafka.bootstrap_servers
            assert metadata["consumerGroup"] == settings.dispatcher.group_id
            assert metadata["topic"] == settings.topics().scenes


def test_the_chart_runs_the_ray_version_the_image_installs():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["segmenter"]["rayVersion"] == ray.__version__


def test_one_image_runs_every_lookout_component_as_a_non_root_user(rendered):
    specs = rendered.pod_specs()
    lookout = {name: spec for name, spec in specs.items() if not name.endswith("-redis")}
    assert {name.rpartition("-")[2] for name in lookout} >= {"api", "dispatcher", "watcher", "head"}
    images = {c["image"] for spec in lookout.values() for c in spec["containers"]}
    assert len(images) == 1
    for spec in specs.values():
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_watcher_is_one_instance_replaced_by_recreate():
    watcher = render(value_set("default")).one("Deployment", "-watcher")
    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["strategy"] == {"type": "Recreate"}


def test_the_dispatcher_reaches_the_segmenter_through_the_rayservice_head_service():
    rendered = render(value_set("default"))
    (container,) = rendered.one("Deployment", "-dispatcher")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RAY_ADDRESS"] == f"ray://{rendered.rayservice['metadata']['name']}-head-svc:10001"
    ray_policy = rendered.one("NetworkPolicy", "-ray")
    assert {"port": 10001, "protocol": "TCP"} in ray_policy["spec"]["ingress"][1]["ports"]


def test_keda_scales_the_dispatcher_on_consumer_lag_and_owns_its_replica_count():
    rendered = render(value_set("default"))
    scaled = rendered.one("ScaledObject")
    assert scaled["spec"]["triggers"][0]["type"] == "kafka"
    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == rendered.one("Deployment", "-dispatcher")["metadata"]["name"]
    )
    assert "replicas" not in rendered.one("Deployment", "-dispatcher")["spec"]
    assert rendered.of_kind("HorizontalPodAutoscaler") == []


def test_without_keda_a_cpu_autoscaler_takes_over():
    rendered = render(value_set("keda-off"))
    assert rendered.of_kind("ScaledObject") == []
    hpa = rendered.one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_without_autoscaling_the_dispatcher_keeps_its_replica_count():
    values = value_set("default") | {"dispatcher": {"replicas": 3, "autoscaling": {"enabled": False}}}
    rendered = render(values)
    assert rendered.one("Deployment", "-dispatcher")["spec"]["replicas"] == 3
    assert rendered.of_kind("ScaledObject") == rendered.of_kind("HorizontalPodAutoscaler") == []


def test_gpu_workers_carry_the_gpus_the_replicas_ask_for():
    rendered = render(value_set("gpu"))
    worker = rendered.pod_specs()["ray-gpu"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    (deployment,) = rendered.serve_config["applications"][0]["deployments"]
    assert deployment["ray_actor_options"]["num_gpus"] == 0.5
    assert deployment["autoscaling_config"] == {
        "min_replicas": 2,
        "max_replicas": 16,
        "target_ongoing_requests": 16,
    }
    assert "num_replicas" not in deployment
    mounts = {m["mountPath"]: m for m in worker["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    assert rendered.serve_config["applications"][0]["args"]["checkpoint"] == "/models/danet-lite-v3.pt"


def test_strimzi_mode_makes_the_cluster_and_the_prefixed_topics_the_components_use(tmp_path, monkeypatch):
    rendered = render(value_set("strimzi"))
    kafka = rendered.one("Kafka")
    topics = {t["spec"]["topicName"]: t["spec"] for t in rendered.of_kind("KafkaTopic")}
    assert set(topics) == {"prod.scenes", "prod.detections", "prod.scenes.dlq"}
    assert topics["prod.scenes"]["partitions"] == 24
    assert all(t["replicas"] == 3 for t in topics.values())
    (dispatcher,) = rendered.one("Deployment", "-dispatcher")["spec"]["template"]["spec"]["containers"]
    settings = load_container_settings(rendered, dispatcher, tmp_path, monkeypatch)
    assert set(topics) == set(settings.topics().all())
    assert settings.kafka.bootstrap_servers == (
        f"{kafka['metadata']['name']}-kafka-bootstrap.{NAMESPACE}.svc:9092"
    )
    assert rendered.one("ScaledObject")["spec"]["triggers"][0]["metadata"]["topic"] == "prod.scenes"


def test_an_init_container_can_fetch_the_checkpoint_for_each_worker():
    rendered = render(value_set("strimzi"))
    worker = rendered.pod_specs()["ray-workers"]
    (init,) = worker["initContainers"]
    assert init["command"][:3] == ["aws", "s3", "cp"]
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert rendered.serve_config["applications"][0]["args"]["checkpoint"] == "/models/danet.pt"
    assert "initContainers" not in rendered.pod_specs()["ray-head"]


def test_without_a_checkpoint_the_preset_is_built():
    values = value_set("default") | {"segmenter": {"checkpoint": {"source": "none"}}}
    rendered = render(values)
    args = rendered.serve_config["applications"][0]["args"]
    assert args["checkpoint"] is None
    assert yaml.safe_load(rendered.settings_text)["segmenter"]["checkpoint"] is None


def test_external_services_come_from_existing_secrets():
    rendered = render(value_set("external"))
    assert rendered.of_kind("StatefulSet") == rendered.of_kind("Secret") == []
    for name, spec in rendered.pod_specs().items():
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["LOOKOUT_REDIS__URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "lookout-redis",
            "key": "redis-url",
        }, name
        assert env["LOOKOUT_STAC__API_URL"]["valueFrom"]["secretKeyRef"]["name"] == "lookout-stac", name
    ingress = rendered.one("Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "lookout.example.net"
    assert rendered.one("NetworkPolicy", "-api")["spec"]["ingress"][0]["from"]


def test_the_internal_redis_url_points_at_the_release_redis():
    rendered = render(value_set("default"))
    secret = rendered.one("Secret", "-redis-url")
    service = rendered.one("Service", "-redis")
    assert secret["stringData"]["url"] == f"redis://{service['metadata']['name']}.{NAMESPACE}.svc:6379/0"
