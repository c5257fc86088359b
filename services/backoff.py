"""How long to wait before trying again: one policy for every retry in the services.

The watcher (a failing source), the dispatcher (a scene that failed, Redis down) and the webhook
deliveries all wait ``initial_s``, doubling after each further consecutive failure up to ``max_s``, plus
a random ``0 .. jitter_s`` so that clients that failed together do not all come back together. The
waits are tenacity's strategies; the loops stay the components' own, because none of them is a plain
"call again" loop (the watcher schedules by its clock, the dispatcher counts attempts in Redis across
restarts, and every wait must end at once when the component is stopped).
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from tenacity import RetryCallState, wait_exponential, wait_random


class Backoff(BaseModel):
    """Exponential backoff with a cap and additive jitter (a settings section: ``<component>.backoff``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(1.0, ge=0, description="Wait after the first failure; doubles after each next")
    max_s: float = Field(60.0, ge=0, description="Upper bound of the doubling part of a wait")
    jitter_s: float = Field(1.0, ge=0, description="Up to this much random time is added to every wait")

    @model_validator(mode="after")
    def _initial_not_above_max(self) -> Self:
        if self.initial_s > self.max_s:
            raise ValueError(f"initial_s={self.initial_s} exceeds max_s={self.max_s}")
        return self

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1, 2, ...).

        ``min(initial_s · 2^(failures-1), max_s) + uniform(0, jitter_s)``. The jitter is added after the
        cap (tenacity's ``wait_exponential_jitter`` adds it before): clients failing for long are the
        ones at the cap, and they need spreading most.
        """
        if failures < 1:
            raise ValueError(f"failures: {failures} must be at least 1")
        wait = wait_exponential(multiplier=self.initial_s, max=self.max_s) + wait_random(0, self.jitter_s)
        # The strategies read only the attempt number of a retry state.
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = failures
        return float(wait(state))
