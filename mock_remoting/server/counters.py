"""Request counters: per host, per endpoint (exchange / os / winrs) and per WSMan action."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CounterKey:
    host: str
    endpoint: str  # "exchange" | "os" | "winrs" | "http" (requests that never reached WSMan)
    action: str  # "Create", "Command", ... or "auth" for authentication round trips


class RequestCounters:
    """Thread-safe counts. The server increments from its loop; anyone may read.

    Counted by plain tuples, which readers get as CounterKeys: ``add`` runs about three times
    per request, and a frozen dataclass costs more to build and hash than the count itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, host: str, endpoint: str, action: str) -> None:
        with self._lock:
            self._counts[(host, endpoint, action)] += 1

    def snapshot(self) -> dict[CounterKey, int]:
        with self._lock:
            counts = list(self._counts.items())
        return {CounterKey(*key): count for key, count in counts}

    def get(self, host: str, endpoint: str | None = None, action: str | None = None) -> int:
        """The total for a host, optionally narrowed to one endpoint and/or action."""
        return sum(
            count
            for key, count in self.snapshot().items()
            if key.host == host
            and (endpoint is None or key.endpoint == endpoint)
            and (action is None or key.action == action)
        )

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def __iter__(self) -> Iterator[tuple[CounterKey, int]]:
        return iter(
            sorted(self.snapshot().items(), key=lambda kv: (kv[0].host, kv[0].endpoint, kv[0].action))
        )

    def render(self) -> str:
        """Human-readable lines, one per (host, endpoint, action), then a total."""
        lines = [f"{key.host} {key.endpoint} {key.action} {count}" for key, count in self]
        lines.append(f"total requests {self.total()}")
        return "\n".join(lines)
