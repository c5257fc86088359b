"""Suite-wide set-up: offline model hubs, local-only Ray, and the real services, started once."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Nothing may reach a model hub; Ray must not write an auth token into the home folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from services.embedded.stack import LocalStack
from services.settings import LookoutSettings


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

    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=300 * 2**20,
    )
    yield
    ray.shutdown()
