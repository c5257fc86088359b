"""Suite-wide set-up: offline model hubs, local-only Ray, and the real services, started once."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
from collections.abc import Iterator

import pytest

# Nothing may reach a model hub; Ray must not write an auth token into the home folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from services.embedded.stack import LocalStack
from services.settings import LookoutSettings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--train-seeds",
        default=os.environ.get("LOOKOUT_TRAIN_SEEDS", "0"),
        help="seeds for the tests that train (those taking a `train_seed` argument): '0', '0-9' or '1,4,7'; "
        "default $LOOKOUT_TRAIN_SEEDS or 0",
    )


def _seeds(spec: str) -> list[int]:
    seeds: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    if not seeds:
        raise pytest.UsageError(f"--train-seeds: no seed in {spec!r}")
    return seeds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that trains takes ``train_seed`` and runs once per seed asked. Its claim must hold for any
    seed: another initialisation moves a run much further than another CPU's numerical path does, so a
    claim that holds for seeds 0-9 does not hang on one machine's rounding."""
    if "train_seed" in metafunc.fixturenames:
        seeds = _seeds(metafunc.config.getoption("--train-seeds"))
        metafunc.parametrize("train_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """Real Redis, Tansu broker and pgstac STAC API on 127.0.0.1, started once per test session."""
    with LocalStack() as stack:
        _STARTED.extend(
            [
                f"redis-server pid {stack.redis.process.pid} at {stack.redis.url}",
                f"tansu (Kafka protocol) pid {stack.kafka.process.pid} at {stack.kafka.bootstrap_servers}",
                f"stac-fastapi-pgstac pids {stack.stac.pids} at {stack.stac.url}",
            ]
        )
        yield stack


@pytest.fixture(scope="session")
def stack_settings(local_stack: LocalStack) -> LookoutSettings:
    """Settings whose clients point at the session's services."""
    return local_stack.connected_settings()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which real servers the session talked to, so a reader of the log can see it."""
    if _STARTED:
        terminalreporter.section("real services used by the integration tests")
        for line in _STARTED:
            terminalreporter.write_line(line)


_STARTED: list[str] = []


def _outside_loopback_namespace() -> list[str]:
    import psutil

    return [name for name in psutil.net_if_addrs() if name != "lo"]


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray instance, only inside the loopback-only namespace (Ray listens on all interfaces)."""
    others = _outside_loopback_namespace()
    if others:
        pytest.fail(
            f"Ray must run inside a loopback-only network namespace, but interfaces {others} exist: "
            "run the suite with `bash deploy/test.sh` (it uses deploy/netns.sh)"
        )
    import ray

    for attempt in range(1, RAY_START_ATTEMPTS + 1):
        before = _child_pids()
        try:
            ray.init(
                address="local",
                num_cpus=4,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=300 * 2**20,
            )
            break
        except Exception as exc:  # Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc):
                raise
            print(f"\nray_local: attempt {attempt} of {RAY_START_ATTEMPTS}: {exc}; stopping what it started")
            _stop_failed_ray_start(before)
            if attempt == RAY_START_ATTEMPTS:
                raise
    yield
    ray.shutdown()


# Ray waits a fixed 30 s for its raylet to register with the GCS; on a loaded 2-core machine that can
# take longer. A start that timed out is stopped (its processes, by PID) and tried again.
RAY_START_ATTEMPTS = 3


def _child_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def _stop_failed_ray_start(before: set[int]) -> None:
    """Stop (SIGTERM, then SIGKILL; by PID) the processes this process started since ``before``: what a
    timed-out ``ray.init`` left running. Their Popen handles are polled, so that freeing them later does
    not warn (warnings are errors here)."""
    import psutil
    import ray

    ray.shutdown()
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(started, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=15)
    pids = {p.pid for p in started}
    for handle in gc.get_objects():
        if isinstance(handle, subprocess.Popen) and handle.pid in pids and handle.returncode is None:
            handle.poll()
