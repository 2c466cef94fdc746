"""Ansible's ``--limit``: which of an inventory's hosts a pattern selects."""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Protocol

from agent.errors import UsageError
from agent.model.target import HostTarget

# Named for the package, as it was before the package was split and as agent.transport's modules
# share theirs. The CLI holds back this logger's records while it selects hosts (cli/_common.py).
log = logging.getLogger("agent.inventory")


class Selectable(Protocol):
    """What ``--limit`` reads of an inventory (:class:`agent.inventory.Inventory` is one)."""

    @property
    def hosts(self) -> tuple[HostTarget, ...]: ...

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]: ...


def _split_pattern(pattern: str) -> list[str]:
    # Ansible: commas separate terms; without a comma, colons do (unless it is an IPv6 address).
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            ipaddress.IPv6Address(pattern.strip().lstrip("!&"))
            parts = [pattern]
        except ValueError:
            parts = pattern.split(":")
    return [part.strip() for part in parts if part.strip()]


def _match_term(inventory: Selectable, term: str) -> list[str]:
    """Host names one term selects: a group or host name, with fnmatch wildcards or ~regex."""
    names = [t.name for t in inventory.hosts]
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UsageError(f"--limit {term!r}: not a valid regular expression: {exc}") from None
        groups = [g for g in inventory.groups if regex.search(g)]
        hosts = [n for n in names if regex.search(n)]
    else:
        lowered = term.lower()
        groups = [g for g in inventory.groups if fnmatch.fnmatchcase(g.lower(), lowered)]
        hosts = [n for n in names if fnmatch.fnmatchcase(n.lower(), lowered)]
    selected = set(hosts)
    for group in groups:
        selected.update(inventory.groups[group])
    return [n for n in names if n in selected]


def select_hosts(inventory: Selectable, limit: str | None) -> tuple[HostTarget, ...]:
    """Ansible's ``--limit``: ``a,b`` or ``a:b`` union, ``&x`` intersection, ``!x`` exclusion.

    Raises:
        UsageError: no host matches the whole pattern.
    """
    if limit is None or not limit.strip():
        return inventory.hosts
    terms = _split_pattern(limit)
    positive = [t for t in terms if not t.startswith(("!", "&"))]
    intersect = [t[1:] for t in terms if t.startswith("&")]
    exclude = [t[1:] for t in terms if t.startswith("!")]
    if not positive:
        positive = ["all"]
    chosen: list[str] = []
    seen: set[str] = set()
    for term in positive:
        matched = _match_term(inventory, term)
        if not matched:
            log.warning("--limit term %r matches no host or group; ignoring it", term)
        for name in matched:
            if name not in seen:
                seen.add(name)
                chosen.append(name)
    for term in intersect:
        keep = set(_match_term(inventory, term))
        chosen = [n for n in chosen if n in keep]
    for term in exclude:
        drop = set(_match_term(inventory, term))
        chosen = [n for n in chosen if n not in drop]
    if not chosen:
        raise UsageError(f"no hosts match --limit {limit!r}")
    wanted = set(chosen)
    return tuple(t for t in inventory.hosts if t.name in wanted)
