"""Per-source health: retry backoff after failures and stale-feed detection (pure, clock passed in).

A feed is stale when it produced no new item for longer than ``stale_after``, counted from the last
new item, or from when the watcher started watching it. A source that keeps failing goes stale too:
from the outside both look the same, no new scenes. Each staleness episode is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.backoff import Backoff


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass
class SourceHealth:
    """What the watcher knows about one source's recent polls."""

    watching_since: datetime
    last_success: datetime | None = None
    last_new_item: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    retry_at: datetime | None = None
    stale: bool = False

    def due(self, now: datetime) -> bool:
        """Whether the source may be polled now (False while it backs off after a failure)."""
        return self.retry_at is None or now >= self.retry_at

    def record_success(self, now: datetime) -> None:
        """Every collection of the source was searched without error."""
        self.last_success = now
        self.consecutive_failures = 0
        self.last_error = None
        self.retry_at = None

    def record_new_items(self, now: datetime, count: int) -> bool:
        """``count`` new items were published; returns True when this ends a staleness episode."""
        if count <= 0:
            return False
        self.last_new_item = now
        recovered, self.stale = self.stale, False
        return recovered

    def record_failure(self, now: datetime, error: str, backoff: Backoff) -> float:
        """A poll failed; returns the backoff delay (s) before the next attempt."""
        self.consecutive_failures += 1
        self.last_error = error
        delay = backoff.delay(self.consecutive_failures)
        self.retry_at = now + timedelta(seconds=delay)
        return delay

    def check_stale(self, now: datetime, stale_after: timedelta) -> bool:
        """Update ``stale``; returns True only when a new staleness episode starts (warn once)."""
        quiet_since = self.last_new_item or self.watching_since
        if now - quiet_since <= stale_after or self.stale:
            return False
        self.stale = True
        return True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready status (what ``/healthz`` shows per source); ``failing``: the last attempt failed."""
        return {
            "failing": self.consecutive_failures > 0,
            "last_success": _iso(self.last_success),
            "last_new_item": _iso(self.last_new_item),
            "stale": self.stale,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "retry_at": _iso(self.retry_at),
            "watching_since": _iso(self.watching_since),
        }
