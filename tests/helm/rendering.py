"""Render the Lookout chart offline through the Helm v4 SDK (helm-python-sdk) and pick objects out of it."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from services.settings import CONFIG_ENV_VAR, REPO_ROOT, LookoutSettings, load_settings

CHART = REPO_ROOT / "helm" / "lookout"
CR_SCHEMAS = REPO_ROOT / "helm" / "schemas"
# The Kubernetes version the chart is checked against (kubernetes-validate schemas, helm lint).
KUBE_VERSION = "1.33.0"
RELEASE = "lk"
NAMESPACE = "lookout"
# The chart-testing value sets in helm/lookout/ci/: defaults, GPU, KEDA off, Strimzi, external services.
VALUE_SETS = {
    path.name.removesuffix("-values.yaml"): path for path in sorted((CHART / "ci").glob("*-values.yaml"))
}


def value_set(name: str) -> dict[str, Any]:
    """The values of one ci/<name>-values.yaml file."""
    return yaml.safe_load(VALUE_SETS[name].read_text())


@dataclass(frozen=True)
class Rendered:
    """The manifests of one `helm template` run."""

    manifests: dict[str, str]

    @cached_property
    def objects(self) -> list[dict[str, Any]]:
        """Every object of every template (NOTES.txt is text, not a manifest)."""
        return [
            doc
            for name, text in self.manifests.items()
            if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text)
            if isinstance(doc, dict)
        ]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """All objects of ``kind``."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        """The single object of ``kind`` whose name ends with ``name_suffix``."""
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
        return found[0]

    @property
    def rayservice(self) -> dict[str, Any]:
        """The segmenter's RayService."""
        return self.one("RayService")

    @property
    def serve_config(self) -> dict[str, Any]:
        """The RayService's serveConfigV2, parsed."""
        return yaml.safe_load(self.rayservice["spec"]["serveConfigV2"])

    @property
    def settings_text(self) -> str:
        """configs/service.yaml as the ConfigMap gives it to every component."""
        return self.one("ConfigMap", "-config")["data"]["service.yaml"]

    @cached_property
    def secret_values(self) -> dict[tuple[str, str], str]:
        """What the chart's Secrets hold: (Secret name, key) -> value (``data`` decoded)."""
        values: dict[tuple[str, str], str] = {}
        for secret in self.of_kind("Secret"):
            name = secret["metadata"]["name"]
            for key, value in secret.get("stringData", {}).items():
                values[name, key] = value
            for key, value in secret.get("data", {}).items():
                values[name, key] = base64.b64decode(value).decode()
        return values

    @property
    def key_pepper(self) -> str:
        """The API key pepper the chart's Secret holds."""
        name = self.one("Secret", "-api-key-pepper")["metadata"]["name"]
        return self.secret_values[name, "pepper"]

    def pod_specs(self) -> dict[str, dict[str, Any]]:
        """Pod specs: Deployments and StatefulSets by name, Ray groups as ``ray-head``, ``ray-<group>``."""
        specs = {
            obj["metadata"]["name"]: obj["spec"]["template"]["spec"]
            for obj in self.objects
            if obj["kind"] in ("Deployment", "StatefulSet")
        }
        cluster = self.rayservice["spec"]["rayClusterConfig"]
        specs["ray-head"] = cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster["workerGroupSpecs"]:
            specs[f"ray-{group['groupName']}"] = group["template"]["spec"]
        return specs


def render(values: dict[str, Any]) -> Rendered:
    """Render the chart as `helm template lk helm/lookout -n lookout` would (values.schema.json included)."""
    with helm_python.Chart.load(CHART) as chart:
        return Rendered(chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def lint(values: dict[str, Any]) -> dict[str, Any]:
    """`helm lint --strict` with ``values`` against :data:`KUBE_VERSION`."""
    return helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")


def settings_file(rendered: Rendered, folder: Path) -> Path:
    """The ConfigMap's service.yaml written to ``folder`` (what LOOKOUT_CONFIG names in the pods)."""
    path = folder / "service.yaml"
    path.write_text(rendered.settings_text)
    return path


def container_environment(
    container: dict[str, Any], secrets: Mapping[tuple[str, str], str]
) -> dict[str, str]:
    """A container's environment as the kubelet builds it: values, and secretKeyRef values looked up in
    ``secrets`` ((Secret name, key) -> value; KeyError for a reference it lacks)."""
    environment = {}
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = secrets[ref["name"], ref["key"]]
    return environment


def load_container_settings(
    rendered: Rendered,
    container: dict[str, Any],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    existing_secrets: Mapping[tuple[str, str], str] | None = None,
) -> LookoutSettings:
    """The settings ``container`` loads: its LOOKOUT_* variables alone (this process's are removed), the
    chart's Secrets and ``existing_secrets`` behind them, LOOKOUT_CONFIG naming the ConfigMap's file
    written to ``folder``."""
    environment = container_environment(container, {**rendered.secret_values, **(existing_secrets or {})})
    environment[CONFIG_ENV_VAR] = str(settings_file(rendered, folder))
    for name in os.environ:
        if name.startswith("LOOKOUT_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        if name.startswith("LOOKOUT_"):
            monkeypatch.setenv(name, value)
    return load_settings()
