"""The Kubernetes example of docs/catalogs.md: watched sources with their options in the `config` value and
their credentials from Secrets through `secretEnv`, as the watcher, dispatcher and API pods load them."""

import re

import pytest
import yaml

from services.scenes import SceneInputs
from services.settings import REPO_ROOT
from tests.helm.rendering import RELEASE, container_environment, load_container_settings, render, value_set

CATALOGS = REPO_ROOT / "docs" / "catalogs.md"
PODS = [f"{RELEASE}-lookout-{component}" for component in ("watcher", "dispatcher", "api")]


def _kubernetes_example() -> dict:
    """The values of the docs' example (the YAML block that sets `config`)."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", CATALOGS.read_text(), re.S)]
    (values,) = [block for block in blocks if "config" in block]
    return values


@pytest.mark.parametrize("pod", PODS)
def test_the_documented_sources_and_their_secrets_reach_every_component(pod, tmp_path, monkeypatch):
    example = _kubernetes_example()
    rendered = render(value_set("default") | example)
    container = rendered.pod_specs()[pod]["containers"][0]
    secrets = {(e["secretName"], e["key"]): f"value of {e['name']}" for e in example["secretEnv"]}
    environment = container_environment(container, {**rendered.secret_values, **secrets})
    assert {e["name"] for e in example["secretEnv"]} <= set(environment)

    settings = load_container_settings(rendered, container, tmp_path, monkeypatch, secrets)
    sources = settings.watcher.source_list()
    assert [s.signing for s in sources] == ["planetary-computer", "none", "none"]
    assert sources[1].s3.requester_pays
    assert settings.dispatcher.asset_schemes == ["https", "s3"]
    # What the dispatcher and the quicklooks read the sources with, header values from the pod's Secrets.
    monkeypatch.setenv("VENDOR_STAC_KEY", environment["VENDOR_STAC_KEY"])
    inputs = SceneInputs.from_settings(settings.dispatcher, sources)
    vendor = inputs.access(source="https://stac.vendor.example.com/v1")
    assert vendor.api_headers == {"X-API-Key": "value of VENDOR_STAC_KEY"}
