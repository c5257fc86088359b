"""docs/kubernetes.md's "Create a tenant and its API key", played with the rendered chart and a real
Redis: `lookout tenant add` run with an API pod's environment (what `kubectl exec deploy/<release>-api`
gets) issues a key that the API, built from the same pod's settings, accepts."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.adapters.redis_client import make_redis
from services.api.app import create_app
from services.api.tenancy import API_KEY_HEADER
from services.settings import CONFIG_ENV_VAR
from tests.helm.rendering import (
    RELEASE,
    container_environment,
    load_container_settings,
    render,
    settings_file,
    value_set,
)

pytestmark = pytest.mark.integration

LOOKOUT = Path(sys.executable).parent / "lookout"


def test_a_key_issued_in_an_api_pod_opens_the_api(stack_settings, tmp_path, monkeypatch):
    prefix = f"helm-tenants-{uuid.uuid4().hex[:8]}:"
    rendered = render(value_set("default") | {"config": {"namespace": {"redis_prefix": prefix}}})
    (api,) = rendered.one("Deployment", "-api")["spec"]["template"]["spec"]["containers"]
    # The pod's Secrets, but the session's Redis in place of the in-cluster one.
    redis_url = {(f"{RELEASE}-lookout-redis-url", "url"): stack_settings.redis.url}
    pod_env = container_environment(api, {**rendered.secret_values, **redis_url})
    pod_env[CONFIG_ENV_VAR] = str(settings_file(rendered, tmp_path))
    process_env = {name: value for name, value in os.environ.items() if not name.startswith("LOOKOUT_")}

    issued = subprocess.run(
        [str(LOOKOUT), "tenant", "add", "acme"],
        env=process_env | pod_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = issued.stdout.strip()
    assert key.startswith("lk_"), issued.stderr

    settings = load_container_settings(rendered, api, tmp_path, monkeypatch, redis_url)
    assert settings.api.auth_mode == "api_key"
    redis_client = make_redis(settings.redis)
    try:
        with TestClient(create_app(settings, keys=settings.redis_keys())) as client:
            assert client.get("/queries").status_code == 401
            served = client.get("/queries", headers={API_KEY_HEADER: key})
            assert served.status_code == 200, served.text
    finally:
        for stored in redis_client.scan_iter(match=f"{prefix}*"):
            redis_client.delete(stored)
        redis_client.close()
