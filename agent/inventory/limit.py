"""Ansible's ``--limit``: which of an inventory's hosts a pattern selects.

The grammar and its quirks are ansible-core's (``InventoryManager.subset``, ``get_hosts``,
``_evaluate_patterns``, ``_match_one_pattern``, ``_enumerate_matches``, ``split_host_pattern``
in ``lib/ansible/inventory/manager.py``); exfix's ``--limit P`` selects what
``ansible all --limit P --list-hosts`` lists:

- terms are separated by commas; without a comma, by colons, unless the whole pattern is one
  address (an IPv6 address, ``host:port``, a ``[1:3]`` range);
- ``@FILE`` reads one term per line from FILE;
- plain terms are a union, then ``&term`` intersects, then ``!term`` removes, whatever their
  order; only ``&``/``!`` terms start from ``all``;
- a term is matched against every group name (``all`` and ``ungrouped`` included) and, when it
  matches no group or is a wildcard (``*``, ``?``, ``[``, ``.``) or a regex, against every host
  name: shell wildcards match the whole name, ``~regex`` matches from its start (``re.match``),
  and both are case-sensitive;
- a term naming a host exactly is that host;
- ``group[0]``, ``group[-1]``, ``group[1:3]`` (inclusive) and ``group[2:]`` pick from the
  term's matches in order (not after a regex); an index past the end is an error.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from agent.errors import InventoryError, UsageError
from agent.inventory.addresses import parse_address
from agent.model.target import HostTarget

# Named for the package, as it was before the package was split and as agent.transport's modules
# share theirs. The CLI holds back this logger's records while it selects hosts (cli/_common.py).
log = logging.getLogger("agent.inventory")

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_SPLIT = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


class Selectable(Protocol):
    """What ``--limit`` reads of an inventory (:class:`agent.inventory.Inventory` is one)."""

    @property
    def hosts(self) -> tuple[HostTarget, ...]: ...

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]: ...

    @property
    def order(self) -> tuple[str, ...]: ...

    @property
    def unreachable(self) -> Mapping[str, InventoryError]: ...


def split_host_pattern(pattern: str) -> list[str]:
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            parse_address(pattern, allow_ranges=True)
            parts = [pattern]
        except ValueError:
            parts = _SPLIT.findall(pattern)
    return [part.strip() for part in parts if part.strip()]


def _terms(limit: str) -> list[str]:
    terms: list[str] = []
    for term in split_host_pattern(limit):
        if not term.startswith("@"):
            terms.append(term)
            continue
        path = Path(term[1:])
        if not path.exists():
            raise UsageError(f"--limit {term}: no such file")
        if not path.is_file():
            raise UsageError(f"--limit {term}: a limit file must be a file, not a directory")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"--limit {term}: cannot read: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        terms.extend(line.strip() for line in text.split("\n"))
    return terms


class _Matcher:
    def __init__(self, inventory: Selectable) -> None:
        self.inventory = inventory
        self.names = inventory.order or tuple(t.name for t in inventory.hosts)
        self.known = set(self.names)

    def evaluate(self, terms: list[str]) -> list[str]:
        ordered = [t for t in terms if t and t[0] not in "!&"]
        ordered = (ordered or ["all"]) + [t for t in terms if t and t[0] == "&"]
        ordered += [t for t in terms if t and t[0] == "!"]
        hosts: list[str] = []
        for term in ordered:
            if term in self.known:
                hosts.append(term)
                continue
            matched = self.one(term)
            if term[0] == "!":
                drop = set(matched)
                hosts = [h for h in hosts if h not in drop]
            elif term[0] == "&":
                keep = set(matched)
                hosts = [h for h in hosts if h in keep]
            else:
                present = set(hosts)
                hosts.extend(h for h in matched if h not in present)
        return hosts

    def one(self, term: str) -> list[str]:
        if term[0] in "&!":
            term = term[1:]
        expr, subscript = _split_subscript(term)
        matched = self.enumerate(expr, term)
        if not matched or subscript is None:
            return matched
        start, end = subscript
        try:
            if end:
                return matched[start : (len(matched) - 1 if end == -1 else end) + 1]
            return [matched[start]]
        except IndexError:
            raise UsageError(f"--limit: no hosts match the subscripted pattern {term!r}") from None

    def enumerate(self, pattern: str, term: str) -> list[str]:
        regex = _compile(pattern)
        groups = [g for g in self.inventory.groups if regex.match(g)]
        results: list[str] = []
        for group in groups:
            results.extend(self.inventory.groups[group])
        if not groups or pattern[0] == "~" or any(ch in pattern for ch in ".?*["):
            results.extend(n for n in self.names if regex.match(n))
        if not results and not groups and pattern != "all":
            log.warning("--limit term %r matches no host or group; ignoring it", term)
        return results


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern[1:] if pattern[0] == "~" else fnmatch.translate(pattern))
    except re.error as exc:
        kind = "regular expression" if pattern[0] == "~" else "pattern"
        raise UsageError(f"--limit {pattern!r}: not a valid {kind}: {exc}") from None


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern[0] == "~":
        return pattern, None
    match = _SUBSCRIPT.match(pattern)
    if match is None:
        return pattern, None
    expr, index, start, _, end = match.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def select_hosts(inventory: Selectable, limit: str | None) -> tuple[HostTarget, ...]:
    """The hosts ``ansible all --limit LIMIT`` would list, in inventory order.

    Raises:
        UsageError: no host matches the whole pattern, or a subscript is out of range.
        InventoryError: a selected host is one exfix cannot reach (``ansible_connection: ssh``).
    """
    matcher = _Matcher(inventory)
    everything = list(inventory.groups.get("all", matcher.names))
    if limit is None or not limit.strip():
        chosen = set(everything)
    else:
        subset = set(matcher.evaluate(_terms(limit)))
        chosen = {h for h in everything if h in subset}
        if not chosen:
            raise UsageError(f"no hosts match --limit {limit!r}")
    for name in matcher.names:
        if name in chosen and name in inventory.unreachable:
            raise inventory.unreachable[name]
    return tuple(t for t in inventory.hosts if t.name in chosen)
