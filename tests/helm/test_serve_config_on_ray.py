"""The chart's RayService runs the Serve application `lookout up` runs: its rendered serveConfigV2 is
deployed on a local Ray through Serve's declarative API (what the Ray dashboard does when the KubeRay
operator sends it the config), and the deployment answers `segment` calls exactly as the in-process
segmenter built from the same settings does.

Needs a loopback-only namespace (Ray listens on every interface): `bash deploy/netns.sh .venv/bin/python -m
pytest tests/helm`.
"""

import time
import uuid

import numpy as np
import pytest
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.schema import ApplicationStatus, ServeDeploySchema

from services.adapters.redis_client import make_redis
from services.contracts import RedisKeys
from services.segmenter import build_local_segmenter
from services.segmenter.client import ServeSegmenter
from services.settings import SegmenterSettings
from tests.helm.rendering import render, settings_file, value_set

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Chart values for a fast model: the tiny preset with random (seeded) weights on the CPU. A long batch
# wait makes the deployment's batches hold several requests, whatever the machine's load.
TINY = {
    "segmenter": {
        "settings": {
            "app_name": "segmenter-from-chart",
            "preset": "tiny",
            "pretrained": False,
            "device": "cpu",
            "max_batch_size": 4,
            "batch_wait_timeout_s": 0.5,
        },
        "checkpoint": {"source": "none"},
    }
}
DEPLOY_WAIT_S = 300


def _wait_until_running(app_name: str) -> None:
    """Block until Serve reports the application RUNNING; fail with Serve's message if it cannot deploy."""
    deadline = time.monotonic() + DEPLOY_WAIT_S
    while time.monotonic() < deadline:
        app = serve.status().applications.get(app_name)
        if app is not None and app.status == ApplicationStatus.RUNNING:
            return
        if app is not None and app.status in (ApplicationStatus.DEPLOY_FAILED, ApplicationStatus.UNHEALTHY):
            pytest.fail(f"application {app_name}: {app.status}: {app.message}")
        time.sleep(0.5)
    pytest.fail(f"application {app_name} not RUNNING after {DEPLOY_WAIT_S} s")


def test_the_rendered_serve_config_deploys_on_ray_and_segments(ray_local, stack_settings, tmp_path):
    rendered = render(value_set("default") | TINY)
    config = rendered.serve_config
    (app,) = config["applications"]

    # In a Ray pod the chart's environment gives the application its settings file (the ConfigMap), the
    # Redis URL and the API key pepper (Secrets: every component loads the api section, which needs the
    # pepper in the chart's api_key mode); here the same variables point at the rendered file, the
    # session's Redis and the rendered pepper.
    pod_env = [e["name"] for e in rendered.pod_specs()["ray-head"]["containers"][0]["env"]]
    env_vars = {
        "LOOKOUT_CONFIG": str(settings_file(rendered, tmp_path)),
        "LOOKOUT_REDIS__URL": stack_settings.redis.url,
        "LOOKOUT_API__KEY_PEPPER": rendered.key_pepper,
    }
    assert sorted(pod_env) == sorted(env_vars)
    app["runtime_env"] = {"env_vars": env_vars}
    # Handles only, as the dispatcher uses: no HTTP proxy on this shared machine (in the cluster the proxies
    # answer KubeRay's health checks).
    config["proxy_location"] = "Disabled"

    serve.start(proxy_location="Disabled")
    try:
        _get_global_client().deploy_apps(ServeDeploySchema.model_validate(config))
        _wait_until_running(app["name"])
        remote = ServeSegmenter.from_app(app["name"], timeout_s=120)
        local = build_local_segmenter(SegmenterSettings.model_validate(app["args"]))
        assert (remote.model_name, remote.input_size) == (local.model_name, local.input_size)
        assert remote.model_info["device"] == "cpu"

        size = remote.input_size
        tiles = np.random.default_rng(3).integers(0, 256, (6, 3, size, size), dtype=np.uint8)
        unique = f"the building {uuid.uuid4().hex[:8]}"
        texts = [unique, "small airplanes", "the ships in the harbour"] * 2
        np.testing.assert_allclose(remote.segment(tiles, texts), local.segment(tiles, texts), atol=1e-5)

        stats = remote.handle.stats.remote().result()
        # The batch parameters arrived through the config's user_config, and batching happened.
        assert (stats["max_batch_size"], stats["batch_wait_timeout_s"]) == (4, 0.5)
        assert max(stats["batch_sizes"]) > 1, stats
        # The text-embedding cache wrote to the Redis named by the pod environment.
        encoder, version = stats["text_encoder"].split(":", 1)
        redis_client = make_redis(stack_settings.redis)
        try:
            assert redis_client.exists(RedisKeys().text_embedding(encoder, version, unique)) == 1
        finally:
            redis_client.close()
    finally:
        serve.shutdown()
