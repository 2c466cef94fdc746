"""Serialized answers kept for reuse: the CLIXML of a pipeline's output objects, by the
``cache_key`` the host runtime gave the result (``backend.InvocationResult``).

psrpcore's serializer walks every property of every PSObject through its attribute machinery;
measured with py-spy on the lab, serializing the output was a fifth of the lab's CPU at 200
hosts. An answer that the runtime vouches is unchanged (same host or organisation-wide scope,
same commands, same state generation) is serialized once and its bytes sent again.

Bounded by bytes (least recently used out first): a 10,000-host fleet has more distinct
answers than are worth keeping, and a state change makes the old ones unreachable anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_BUDGET = 64 * 1024 * 1024


class ClixmlCache:
    """Thread-safe LRU of ``key -> tuple of <Obj> elements (UTF-8 bytes)``."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[bytes, ...] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, value: tuple[bytes, ...]) -> None:
        cost = sum(len(item) for item in value) + 64
        if cost > self.budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= sum(len(item) for item in old) + 64
            self._entries[key] = value
            self.size += cost
            while self.size > self.budget and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self.size -= sum(len(item) for item in dropped) + 64

    def __len__(self) -> int:
        return len(self._entries)
