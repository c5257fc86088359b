"""A settable time source, so backoff and staleness are checked without waiting."""

from datetime import UTC, datetime, timedelta


class Clock:
    """Returns a fixed "now" that a test moves forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
