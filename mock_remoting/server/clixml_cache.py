"""Serialized answers kept for reuse: the CLIXML of a pipeline's output objects, by the
``cache_key`` the host runtime gave the result (``backend.InvocationResult``).

psrpcore's serializer walks every property of every PSObject through its attribute machinery;
measured with py-spy on the lab, serializing the output was a fifth of the lab's CPU at 200
hosts. An answer that the runtime vouches is unchanged (same host or organisation-wide scope,
same commands, same state generation) is serialized once and its bytes sent again.

The same holds on the way in: pypsrp sends the same CreatePipeline text for the same cmdlet
and parameters to every host (the pipeline's id is in the message header, not its text), and
the same InitRunspacePool text for every pool; psrpcore's deserializer was another sixth of
the lab's CPU. :class:`ParsedCache` keeps what it
made of each distinct text.

Both are bounded by bytes (least recently used out first): a 10,000-host fleet has more
distinct answers than are worth keeping, and a state change makes the old ones unreachable.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from mock_remoting.server.pipelines import Recipes

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


class ParsedCache:
    """Thread-safe LRU of ``message text -> what psrpcore deserialized from it``, bounded by
    the texts' size (the objects are a few times larger)."""

    def __init__(self, budget: int = 16 * 1024 * 1024) -> None:
        self.budget = budget
        self.recipes = Recipes()  # CreatePipeline texts of one shape (pipelines.py)
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: bytes) -> Any | None:
        with self._lock:
            found = self._entries.get(text)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(text)
            self.hits += 1
            return found

    def put(self, text: bytes, value: Any) -> None:
        with self._lock:
            if text in self._entries:
                return
            self._entries[text] = value
            self.size += len(text)
            while self.size > self.budget and self._entries:
                dropped, _ = self._entries.popitem(last=False)
                self.size -= len(dropped)
