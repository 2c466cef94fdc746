"""Fault injection: what can go wrong on a lab host, and when.

A host's faults come from its scenario entry (``HostSpec.faults``) or, at run time, from
``Lab.inject(host, mapping)``. Both use this schema (every key optional)::

    latency_ms: 20          # added before answering every request of the host
    open_delay_ms: 1500     # slow session open: extra delay before answering each Create
    fail:                   # one rule, or a list of rules
      - kind: http-500      # http-401 | http-500 | hang | drop | quota
        on: Command         # WSMan action: Create | Command | Send | Receive | Signal | Delete | any
        endpoint: exchange  # exchange (/PowerShell) | os (/wsman PSRP) | winrs (/wsman cmd) | any
        after: 1            # let this many matching requests through first (default 0)
        times: 1            # then fail this many of them (default: every one from then on)

So ``{kind: http-500, on: Command, endpoint: exchange, after: 1, times: 1}`` fails exactly the
second Command on /PowerShell. What each kind does to the request it hits:

==========  ===========================================================================
http-401    answers 401 with fresh ``WWW-Authenticate`` challenges (credentials refused)
http-500    answers HTTP 500 with an empty body (an IIS/HTTP.sys failure, not a SOAP fault)
hang        never answers; the connection stays open until the client gives up
drop        closes the TCP connection without answering (mid-operation)
quota       answers the WS-Management quota fault 2150859173 (too many concurrent shells)
==========  ===========================================================================

A rule counts only the requests it matches (action and endpoint), so rules are independent.
Latency and the open delay apply before the rule is looked at. This module is pure: the
server asks :meth:`HostFaults.decide` once per WSMan request and acts on the answer.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class FaultSpecError(ValueError):
    """A fault mapping does not follow the schema above. ``key`` names the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"faults.{key}: {problem}")


class FaultKind(str, enum.Enum):
    HTTP_401 = "http-401"
    HTTP_500 = "http-500"
    HANG = "hang"
    DROP = "drop"
    QUOTA = "quota"


ACTIONS = ("Create", "Command", "Send", "Receive", "Signal", "Delete")
ENDPOINTS = ("exchange", "os", "winrs")


@dataclass(frozen=True, slots=True)
class FaultRule:
    kind: FaultKind
    on: str | None  # an ACTIONS member, or None for any action
    endpoint: str | None  # an ENDPOINTS member, or None for any endpoint
    after: int
    times: int | None  # None: every matching request after ``after``

    def matches(self, action: str, endpoint: str) -> bool:
        return (self.on is None or self.on == action) and (self.endpoint is None or self.endpoint == endpoint)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    latency_ms: float = 0.0
    open_delay_ms: float = 0.0
    rules: tuple[FaultRule, ...] = ()


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise FaultSpecError(f"{where}{key}", f"must be a number >= 0, not {value!r}")
    return float(value)


def _count(raw: Mapping[str, Any], key: str, where: str, default: int | None) -> int | None:
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultSpecError(f"{where}{key}", f"must be an integer >= 0, not {value!r}")
    return value


def _choice(raw: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str | None:
    value = raw.get(key, "any")
    if not isinstance(value, str):
        raise FaultSpecError(f"{where}{key}", f"must be a string, not {value!r}")
    if value.lower() == "any":
        return None
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise FaultSpecError(f"{where}{key}", f"{value!r} is not one of {', '.join((*allowed, 'any'))}")


def _rule(raw: Any, where: str) -> FaultRule:
    if not isinstance(raw, Mapping):
        raise FaultSpecError(where.rstrip("."), f"a rule must be a mapping, not {type(raw).__name__}")
    unknown = sorted(set(raw) - {"kind", "on", "endpoint", "after", "times"})
    if unknown:
        raise FaultSpecError(f"{where}{unknown[0]}", "unknown key")
    kind_text = raw.get("kind")
    try:
        kind = FaultKind(str(kind_text).lower())
    except ValueError:
        allowed = ", ".join(k.value for k in FaultKind)
        raise FaultSpecError(f"{where}kind", f"{kind_text!r} is not one of {allowed}") from None
    return FaultRule(
        kind=kind,
        on=_choice(raw, "on", where, ACTIONS),
        endpoint=_choice(raw, "endpoint", where, ENDPOINTS),
        after=_count(raw, "after", where, 0) or 0,
        times=_count(raw, "times", where, None),
    )


def parse_faults(raw: Mapping[str, Any] | None) -> FaultSpec:
    """Validate a fault mapping (the schema in this module's docstring).

    Raises:
        FaultSpecError: naming the offending key.
    """
    if raw is None:
        return FaultSpec()
    if not isinstance(raw, Mapping):
        raise FaultSpecError("faults", f"must be a mapping, not {type(raw).__name__}")
    unknown = sorted(set(raw) - {"latency_ms", "open_delay_ms", "fail"})
    if unknown:
        raise FaultSpecError(str(unknown[0]), "unknown key")
    fail = raw.get("fail") or ()
    items = [fail] if isinstance(fail, Mapping) else list(fail) if isinstance(fail, (list, tuple)) else None
    if items is None:
        raise FaultSpecError("fail", "must be a rule mapping or a list of them")
    rules = tuple(
        _rule(item, f"fail[{index}]." if len(items) > 1 else "fail.") for index, item in enumerate(items)
    )
    return FaultSpec(
        latency_ms=_number(raw, "latency_ms", ""),
        open_delay_ms=_number(raw, "open_delay_ms", ""),
        rules=rules,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: sleep ``delay_s`` first, then fail with ``kind`` (or not)."""

    delay_s: float
    kind: FaultKind | None


class HostFaults:
    """The live fault state of one host. Thread-safe: the lab may inject from any thread."""

    def __init__(self, base_latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._base_latency_ms = base_latency_ms
        self._spec = FaultSpec()
        self._seen: list[int] = []

    def set(self, spec: FaultSpec) -> None:
        with self._lock:
            self._spec = spec
            self._seen = [0] * len(spec.rules)

    def clear(self) -> None:
        self.set(FaultSpec())

    @property
    def spec(self) -> FaultSpec:
        with self._lock:
            return self._spec

    def decide(self, action: str, endpoint: str) -> Decision:
        """Account one request and say what happens to it. The first firing rule wins."""
        with self._lock:
            spec = self._spec
            delay_ms = self._base_latency_ms + spec.latency_ms
            if action == "Create":
                delay_ms += spec.open_delay_ms
            chosen: FaultKind | None = None
            for index, rule in enumerate(spec.rules):
                if not rule.matches(action, endpoint):
                    continue
                seen = self._seen[index]
                self._seen[index] = seen + 1
                if (
                    chosen is None
                    and seen >= rule.after
                    and (rule.times is None or seen < rule.after + rule.times)
                ):
                    chosen = rule.kind
            return Decision(delay_ms / 1000.0, chosen)
