"""deploy/Dockerfile, checked without a container engine: it installs with the README's set-up script, its
build context has every file it copies, it runs as the non-root user the chart expects, and its
entrypoint is the `lookout` command."""

import shlex
import tomllib
from pathlib import PurePosixPath

import pytest
from dockerfile_parse import DockerfileParser

from services.settings import REPO_ROOT
from tests.helm.rendering import render, value_set

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@pytest.fixture(scope="module")
def stages() -> list[list[dict]]:
    """The Dockerfile's instructions, one list per stage (FROM starts a stage)."""
    parser = DockerfileParser(str(DOCKERFILE))
    result: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def _values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _copy_sources(value: str) -> list[str]:
    """The source paths of a COPY instruction (flags and destination dropped)."""
    words = [w for w in shlex.split(value) if not w.startswith("--")]
    return words[:-1]


def _allowed_by_dockerignore(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` reaches the build context: .dockerignore is an allow-list ('*', then '!' entries)."""
    assert patterns[0] == "*", ".dockerignore must start by excluding everything"
    allowed = [PurePosixPath(p[1:].rstrip("/")) for p in patterns if p.startswith("!")]
    candidate = PurePosixPath(path.rstrip("/"))
    return any(candidate == entry or entry in candidate.parents for entry in allowed)


def test_two_stages_build_then_run(stages):
    assert [stage[0]["value"].split()[-1] for stage in stages] == ["build", "runtime"]


def test_the_build_stage_installs_with_the_readme_set_up_script(stages):
    build, _ = stages
    runs = _values(build, "RUN")
    assert any("bash deploy/bootstrap.sh" in run for run in runs), runs
    assert not any("pip install" in run for run in runs), "dependencies are installed by bootstrap.sh only"


def test_every_copied_file_exists_and_is_in_the_build_context(stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [value for stage in stages for value in _values(stage, "COPY") if "--from=" not in value]
    sources = [source for value in copies for source in _copy_sources(value)]
    assert "deploy/bootstrap.sh" in sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert _allowed_by_dockerignore(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # bootstrap.sh reads these; they must be in the image's build stage too.
    for needed in ("pyproject.toml", "deploy/constraints.txt", "deploy/requirements-nodeps.txt"):
        assert needed in sources


def test_the_runtime_image_takes_the_venv_and_sources_from_the_build(stages):
    _, runtime = stages
    from_build = [
        _copy_sources(v)[0].rsplit("/", 1)[-1] for v in _values(runtime, "COPY") if "--from=build" in v
    ]
    assert set(from_build) == {".venv", "configs", "danet", "services"}
    # KubeRay runs `ray start` in a login shell, which rebuilds PATH from /etc/profile(.d).
    assert any("/etc/profile.d/" in run and ".venv/bin" in run for run in _values(runtime, "RUN"))


def test_the_image_runs_lookout_as_the_user_the_chart_runs_as(stages):
    _, runtime = stages
    (user,) = _values(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert uid not in ("0", "root")
    pod = render(value_set("default")).pod_specs()["ray-head"]["securityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    (entrypoint,) = _values(runtime, "ENTRYPOINT")
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == '["lookout"]'
    assert "lookout" in scripts
