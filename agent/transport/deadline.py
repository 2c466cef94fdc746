"""Deadlines: every host has one overall, and every command one of its own inside it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from agent.errors import HostTimeoutError

__all__ = ["Budget", "HostDeadline"]

Clock = Callable[[], float]


class HostDeadline:
    """The time everything done to one host must fit in (connects, retries, commands).

    ``seconds=None`` means no overall limit (each command still has its own).
    """

    def __init__(self, host: str, seconds: float | None, *, clock: Clock = time.monotonic) -> None:
        self.host = host
        self.seconds = seconds
        self._clock = clock
        self._end = math.inf if seconds is None else clock() + seconds

    def __repr__(self) -> str:
        return f"HostDeadline({self.host!r}, {self.seconds!r}, remaining={self.remaining():.1f})"

    def remaining(self) -> float:
        return self._end - self._clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self) -> None:
        """Raises HostTimeoutError when the host's time is up."""
        if self.expired:
            raise self.timeout_error()

    def timeout_error(self) -> HostTimeoutError:
        return HostTimeoutError(self.host, f"the host's deadline of {self.seconds:g}s passed")

    def budget(self, seconds: float | None, what: str) -> Budget:
        """A budget of ``min(seconds, remaining host time)`` for one operation named ``what``."""
        return Budget(self, seconds, what, clock=self._clock)


class Budget:
    """One operation's deadline, bounded by its host's."""

    def __init__(
        self, host: HostDeadline, seconds: float | None, what: str, *, clock: Clock = time.monotonic
    ) -> None:
        self.host = host
        self.seconds = seconds
        self.what = what
        self._clock = clock
        self._end = math.inf if seconds is None else clock() + seconds

    def remaining(self) -> float:
        return min(self._end - self._clock(), self.host.remaining())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def timeout_error(self) -> HostTimeoutError:
        """The error to raise when this budget ran out, naming which limit was hit."""
        if self.host.remaining() <= 0 or self.seconds is None:
            return self.host.timeout_error()
        return HostTimeoutError(self.host.host, f"{self.what} did not finish within {self.seconds:g}s")
