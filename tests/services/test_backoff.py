"""The one retry policy: doubling waits with a cap, plus jitter that spreads clients failing together."""

import pytest
from pydantic import ValidationError

from services.backoff import Backoff
from services.settings import DispatcherSettings, WatcherSettings, WebhookSettings


def test_waits_double_from_initial_up_to_the_cap():
    backoff = Backoff(initial_s=5.0, max_s=60.0, jitter_s=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff.delay(10_000) == 60.0  # days of failures do not overflow
    with pytest.raises(ValueError, match="failures"):
        backoff.delay(0)


def test_jitter_is_added_after_the_cap_and_spreads_the_waits():
    backoff = Backoff(initial_s=1.0, max_s=8.0, jitter_s=2.0)
    early = [backoff.delay(1) for _ in range(200)]
    capped = [backoff.delay(50) for _ in range(200)]
    assert all(1.0 <= wait <= 3.0 for wait in early)
    # Clients failing for long sit at the cap; they still do not come back at the same instant.
    assert all(8.0 <= wait <= 10.0 for wait in capped)
    assert len(set(capped)) > 150


def test_a_wait_may_be_zero_but_initial_may_not_exceed_max():
    assert Backoff(initial_s=0, max_s=0, jitter_s=0).delay(3) == 0.0
    with pytest.raises(ValidationError, match=r"initial_s=10\.0 exceeds max_s=5\.0"):
        Backoff(initial_s=10, max_s=5)
    with pytest.raises(ValidationError, match="jitter"):
        Backoff(jitter_s=-1)
    with pytest.raises(ValidationError, match="initial"):
        Backoff(initial_ss=1)  # a misspelt key is refused, not ignored


def test_every_component_that_retries_takes_the_same_setting():
    sections = [DispatcherSettings(), WebhookSettings(), WatcherSettings()]
    assert all(isinstance(section.backoff, Backoff) for section in sections)
    assert [s.backoff.initial_s for s in sections] == [2.0, 1.0, 5.0]
