"""Installed from a wheel, away from the repository: the default settings and the DANet presets ship as
package data and are found from any working folder."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from services.settings import REPO_ROOT

pytestmark = pytest.mark.slow

# Run in the unpacked wheel, from a folder of its own: where each module and file came from.
PROBE = """
import json, services, danet
from danet.config import config_dir, list_presets, load_preset
from services.settings import DEFAULT_CONFIG_FILE, load_settings

settings = load_settings()
load_preset("lite")
print(json.dumps({
    "services": services.__file__, "danet": danet.__file__, "config_file": str(DEFAULT_CONFIG_FILE),
    "presets": list_presets(), "config_dir": str(config_dir()),
    "checkpoint": str(settings.segmenter.checkpoint),
    "checkpoint_exists": settings.segmenter.checkpoint.is_file(),
    "webhook_attempts": settings.api.webhook.max_attempts,
}))
"""


def _checkout_copy(target: Path) -> Path:
    """What a clean checkout holds of the packages (links kept as links, as git stores them)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
         "pyproject.toml", "README.md", "danet", "services", "configs"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in git
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    return target


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = _checkout_copy(root / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(root / "dist")],
        cwd=source, check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("lookout-*.whl")
    site = root / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def _run(site: Path, cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    # The unpacked wheel comes first on sys.path, before the venv's editable install of the repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKOUT_", "DANET_"))}
    env |= extra_env | {"PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_settings_and_presets_are_found_in_the_installed_wheel_from_another_folder(unpacked_wheel, tmp_path):
    probe = _run(unpacked_wheel, tmp_path, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    for key in ("services", "danet", "config_file", "config_dir", "checkpoint"):
        assert Path(found[key]).is_relative_to(unpacked_wheel), (key, found[key])
    assert found["config_file"].endswith("services/configs/service.yaml")
    assert {"base", "lite", "tiny"} <= set(found["presets"])
    assert found["checkpoint_exists"]
    assert found["webhook_attempts"] == 5  # the shipped service.yaml, not the code's defaults alone


def test_the_lookout_command_runs_from_another_folder_and_refuses_a_misspelt_setting(
    unpacked_wheel, tmp_path
):
    help_text = _run(unpacked_wheel, tmp_path, "-m", "services.cli", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "dispatch" in help_text.stdout
    # Settings are loaded (from the wheel's service.yaml) before anything starts; the typo stops it.
    typo = _run(unpacked_wheel, tmp_path, "-m", "services.cli", "watch", LOOKOUT_REDIS__URLL="redis://x")
    assert typo.returncode == 2
    assert "redis.urll: unknown key" in typo.stderr
    assert "(environment variable LOOKOUT_REDIS__URLL)" in typo.stderr


def test_lookout_explain_runs_from_another_folder(unpacked_wheel, tmp_path):
    """The installed `lookout explain` reads an item and the shipped checkpoint's contract, offline."""
    item = REPO_ROOT / "tests/data/stac-items"
    (naip,) = item.glob("planetary-computer__naip__*.json")
    shutil.copy(naip, tmp_path / "naip.json")
    explained = _run(unpacked_wheel, tmp_path, "-m", "services.cli", "explain", "--json", "naip.json")
    assert explained.returncode == 0, explained.stderr
    decision = json.loads(explained.stdout)
    assert decision["decision"] == "accept"
    assert decision["asset"] == "image"
