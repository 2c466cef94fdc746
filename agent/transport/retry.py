"""Retrying transient connection failures: exponential backoff with jitter, bounded twice.

Bounded by a number of attempts and by the operation's budget: a retry that could not start
before the deadline is not attempted. What counts as transient is decided in
:mod:`agent.transport._errors`; whether a *command* may be repeated at all is
:func:`agent.transport.base.is_safe_to_retry`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all; the wait before retry n is ``base * 2**n`` capped at
    ``max_delay``, with "equal jitter" (half fixed, half random) so that a fleet that lost the
    same server at once does not come back in lock-step."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return float(ceiling / 2 + rand() * ceiling / 2)


NO_RETRY = RetryPolicy(attempts=1)
