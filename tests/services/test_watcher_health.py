"""Watcher source health: backoff schedule and staleness transitions (pure, explicit clock)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.watcher.health import SourceHealth, backoff_delay

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
STALE_AFTER = timedelta(hours=1)


def test_backoff_doubles_from_base_up_to_the_cap():
    assert [backoff_delay(n, 5.0, 60.0) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff_delay(10_000, 5.0, 60.0) == 60.0  # days of failures do not overflow
    with pytest.raises(ValueError, match="failures"):
        backoff_delay(0, 5.0, 60.0)


def test_a_failing_source_backs_off_and_recovers_on_success():
    health = SourceHealth(watching_since=T0)
    assert health.due(T0)
    assert health.record_failure(T0, "APIError: refused", base_s=5, max_s=60) == 5
    assert not health.due(T0 + timedelta(seconds=4))
    assert health.due(T0 + timedelta(seconds=5))
    assert health.record_failure(T0 + timedelta(seconds=5), "APIError: refused", base_s=5, max_s=60) == 10
    status = health.as_dict()
    assert (status["consecutive_failures"], status["last_error"]) == (2, "APIError: refused")
    assert status["retry_at"] == (T0 + timedelta(seconds=15)).isoformat()

    health.record_success(T0 + timedelta(seconds=15))
    assert health.due(T0 + timedelta(seconds=15))
    status = health.as_dict()
    assert (status["consecutive_failures"], status["last_error"], status["retry_at"]) == (0, None, None)
    assert status["last_success"] == (T0 + timedelta(seconds=15)).isoformat()


def test_staleness_is_reported_once_per_episode_and_ends_with_a_new_item():
    health = SourceHealth(watching_since=T0)
    # Quiet since the watcher started watching: not stale until stale_after has passed.
    assert not health.check_stale(T0 + STALE_AFTER, STALE_AFTER)
    assert health.check_stale(T0 + STALE_AFTER + timedelta(seconds=1), STALE_AFTER)  # episode starts
    assert health.stale
    assert not health.check_stale(T0 + 5 * STALE_AFTER, STALE_AFTER)  # same episode: no second warning
    assert health.stale

    health.record_success(T0 + 5 * STALE_AFTER)
    assert health.stale  # searches succeed but bring nothing new: still stale
    assert not health.record_new_items(T0 + 5 * STALE_AFTER, 0)
    assert health.record_new_items(T0 + 6 * STALE_AFTER, 2)  # recovered
    assert not health.stale
    assert health.as_dict()["last_new_item"] == (T0 + 6 * STALE_AFTER).isoformat()

    assert not health.check_stale(T0 + 7 * STALE_AFTER, STALE_AFTER)
    assert health.check_stale(T0 + 7 * STALE_AFTER + timedelta(seconds=1), STALE_AFTER)  # a new episode


def test_a_source_that_keeps_failing_goes_stale_too():
    health = SourceHealth(watching_since=T0)
    now = T0
    while now - T0 <= STALE_AFTER:
        health.record_failure(now, "ConnectionError", base_s=60, max_s=600)
        now = health.retry_at
    assert health.check_stale(now, STALE_AFTER)
    assert health.as_dict()["stale"] is True
