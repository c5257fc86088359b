"""Every test in this folder talks to real servers."""

import uuid

import pytest

from services.adapters.redis_client import make_redis
from services.contracts import RedisKeys


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def redis_client(stack_settings):
    """A client of the session's Redis."""
    client = make_redis(stack_settings.redis)
    yield client
    client.close()


@pytest.fixture
def keys():
    """A key layout under a fresh prefix, so tests never see each other's data."""
    return RedisKeys(prefix=f"test-{uuid.uuid4().hex[:8]}:")
