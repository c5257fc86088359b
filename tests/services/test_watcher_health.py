"""Watcher source health: backoff schedule and staleness transitions (pure, explicit clock)."""

from datetime import UTC, datetime, timedelta

from services.backoff import Backoff
from services.watcher.health import SourceHealth

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
STALE_AFTER = timedelta(hours=1)
EXACT = Backoff(initial_s=5, max_s=60, jitter_s=0)


def test_a_failing_source_backs_off_and_recovers_on_success():
    health = SourceHealth(watching_since=T0)
    assert health.due(T0)
    assert health.record_failure(T0, "APIError: refused", EXACT) == 5
    assert not health.due(T0 + timedelta(seconds=4))
    assert health.due(T0 + timedelta(seconds=5))
    assert health.record_failure(T0 + timedelta(seconds=5), "APIError: refused", EXACT) == 10
    status = health.as_dict()
    assert (status["consecutive_failures"], status["last_error"]) == (2, "APIError: refused")
    assert status["retry_at"] == (T0 + timedelta(seconds=15)).isoformat()

    health.record_success(T0 + timedelta(seconds=15))
    assert health.due(T0 + timedelta(seconds=15))
    status = health.as_dict()
    assert (status["consecutive_failures"], status["last_error"], status["retry_at"]) == (0, None, None)
    assert status["last_success"] == (T0 + timedelta(seconds=15)).isoformat()


def test_the_next_attempt_is_scheduled_with_the_jittered_wait():
    health = SourceHealth(watching_since=T0)
    delay = health.record_failure(T0, "APIError: refused", Backoff(initial_s=5, max_s=60, jitter_s=5))
    assert 5 <= delay <= 10
    assert health.retry_at == T0 + timedelta(seconds=delay)
    assert not health.due(T0 + timedelta(seconds=delay) - timedelta(microseconds=1))


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
        health.record_failure(now, "ConnectionError", Backoff(initial_s=60, max_s=600, jitter_s=0))
        now = health.retry_at
    assert health.check_stale(now, STALE_AFTER)
    assert health.as_dict()["stale"] is True
